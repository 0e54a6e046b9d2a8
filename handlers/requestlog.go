package handlers

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// The request log: every answer is logged once, with its status, size and time, and a panic
// is answered and logged instead of ending the server.

// recoverPanic turns a panic into a 500 page, once: the page is rendered outside the session,
// and a panic while answering (or after the answer has begun) ends the connection instead.
func (h *Handler) recoverPanic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler || rec.status != 0 {
				panic(http.ErrAbortHandler) // net/http closes the connection, quietly
			}
			w.Header().Set("Connection", "close")
			h.serverError(rec, r, fmt.Errorf("panic: %v", v))
		}()
		next.ServeHTTP(rec, r)
	})
}

// statusRecorder remembers the status and size of a response, for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// statusClientClosed is what the request log says of a request whose client hung up before
// any answer (nginx's 499): it is not a response the server sent.
const statusClientClosed = 499

func (h *Handler) logRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec, ok := w.(*statusRecorder) // recoverPanic's, when it runs first: one is enough
		if !ok {
			rec = &statusRecorder{ResponseWriter: w}
		}
		next.ServeHTTP(rec, r)
		switch {
		case rec.status == 0 && r.Context().Err() != nil:
			rec.status = statusClientClosed
		case rec.status == 0: // nothing written: net/http sends 200
			rec.status = http.StatusOK
		}
		h.logger.LogAttrs(r.Context(), levelFor(rec.status), "request",
			slog.String("method", clip(r.Method)), slog.String("uri", loggedURI(r)),
			slog.Int("status", rec.status), slog.Int("bytes", rec.bytes),
			slog.Duration("duration", time.Since(start)), slog.String("ip", h.clientIP(r)),
			slog.String("ua", clip(r.UserAgent())))
	})
}

// maxLogged bounds what the log keeps of anything a client sends: a URI or a header may be
// 64 KiB, and a log line per request must not be.
const maxLogged = 256

// clip cuts s to maxLogged bytes (on a character boundary), marking the cut.
func clip(s string) string {
	if len(s) <= maxLogged {
		return s
	}
	return strings.ToValidUTF8(s[:maxLogged], "") + "…"
}

// loggedURI is the request's URI as the log keeps it. The links of mails carry a token in their
// path, which the log never keeps.
func loggedURI(r *http.Request) string {
	for _, secret := range []string{"/password/reset/", "/email/confirm/"} {
		if strings.HasPrefix(r.URL.Path, secret) {
			return secret + "…"
		}
	}
	return clip(r.URL.RequestURI())
}

package handlers

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"

	"github.com/a-h/templ"
	"github.com/justinas/nosurf"

	"market/assets"
	"market/components"
	"market/store"
)

// isFragment: htmx wants part of the page; handlers branch on it once, before building a page's
// chrome (which pops the flash messages). Boosted navigations and history restores replace
// the whole body, so they get the full page.
func isFragment(r *http.Request) bool {
	return r.Header.Get("HX-Request") == "true" &&
		r.Header.Get("HX-Boosted") != "true" &&
		r.Header.Get("HX-History-Restore-Request") != "true"
}

var bufferPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

var gzipPool = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression)
	return zw
}}

// minGzip is the size under which compressing costs more than it saves.
const minGzip = 1024

// render writes a component: into a buffer first, so that a failing component becomes a clean
// 500, then gzipped when the client accepts it and the page is big enough to gain.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	if err := h.tryRender(w, r, status, c); err != nil {
		h.serverError(w, r, err)
	}
}

// tryRender renders c and sends it; when rendering fails, nothing is written and the error is
// the caller's to answer.
func (h *Handler) tryRender(w http.ResponseWriter, r *http.Request, status int, c templ.Component) error {
	buf := bufferPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufferPool.Put(buf)
	// Rendering reads nothing from the database: a request at the end of its budget (a trade
	// answered as of unknown outcome, say) still gets its answer rendered.
	if err := c.Render(context.WithoutCancel(r.Context()), buf); err != nil {
		return err
	}
	h.writeHTML(w, r, status, buf.Bytes())
	return nil
}

// htmlType and noStore are header values every page shares (see securityHeaders).
var (
	htmlType = []string{"text/html; charset=utf-8"}
	noStore  = []string{"no-store"}
)

// writeHTML sends a rendered page. A write that fails means the client has gone: the request
// ends there, and the request log says so.
func (h *Handler) writeHTML(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	hd := w.Header()
	hd["Content-Type"] = htmlType[:1:1]
	if _, ok := currentUser(r); ok && hd.Get("Cache-Control") == "" {
		// A signed-in page shows a budget: never from a cache, nor from the back button's.
		hd["Cache-Control"] = noStore[:1:1]
	}
	// One URL, two shapes: caches must key on HX-Request (Add: nosurf and scs set Vary: Cookie).
	hd.Add("Vary", "HX-Request")
	hd.Add("Vary", "Accept-Encoding")
	if len(body) < minGzip || !assets.AcceptsGzip(r) {
		hd.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		w.Write(body)
		return
	}
	hd.Set("Content-Encoding", "gzip")
	hd.Del("Content-Length")
	w.WriteHeader(status)
	zw := gzipPool.Get().(*gzip.Writer)
	zw.Reset(w)
	if _, err := zw.Write(body); err == nil {
		zw.Close()
	}
	zw.Reset(io.Discard) // let go of w
	gzipPool.Put(zw)
}

// chrome is the frame of a full page: user, budget, token, flash messages, preferences.
func (h *Handler) chrome(r *http.Request, title, nav string) components.Chrome {
	ctx := r.Context()
	c := components.Chrome{
		Title:     title,
		Nav:       nav,
		CSRFToken: nosurf.Token(r), // "" outside nosurf
		Assets:    h.urls,
		Shortcuts: shortcutsOn(r),
	}
	if u, ok := currentUser(r); ok {
		c.Username, c.Budget, c.Admin = u.Username, u.Budget, u.Role == store.RoleAdmin
		if !u.EmailConfirmed {
			c.Unconfirmed = u.Email
		}
	}
	if n := pageNotice(r); n.flash != "" {
		c.Flash = append(c.Flash, n.flash)
	} else if n.alert != "" {
		c.Alerts = append(c.Alerts, n.alert)
	}
	if !hasSession(r) { // an error answered before the session was loaded
		return c
	}
	if h.sessions.Exists(ctx, keyFlash) {
		c.Flash = append(c.Flash, h.sessions.PopString(ctx, keyFlash))
	}
	if h.sessions.Exists(ctx, keyAlert) {
		c.Alerts = append(c.Alerts, h.sessions.PopString(ctx, keyAlert))
	}
	return c
}

// shortcutsOn reads the single-key shortcuts switch from its cookie; on unless turned off.
func shortcutsOn(r *http.Request) bool {
	c, err := cookie(r, "kbd")
	return err != nil || c.Value != "off"
}

// flash keeps a message for the next page the user sees.
func (h *Handler) flash(ctx context.Context, message string) { h.sessions.Put(ctx, keyFlash, message) }

// alert keeps a refusal for the next page the user sees.
func (h *Handler) alert(ctx context.Context, message string) { h.sessions.Put(ctx, keyAlert, message) }

// serverError logs the cause and shows a generic page; nothing of err reaches the client.
// A request whose client has gone (or that the server is abandoning) is not a server error:
// it is logged once, and nothing is written. Trouble that passes (the database unreachable,
// every password-hashing slot taken) is a 503 with Retry-After, never a 500.
func (h *Handler) serverError(w http.ResponseWriter, r *http.Request, err error) {
	if abandoned(r, err) {
		h.cancelled(r, err)
		return
	}
	switch {
	case overBudget(r):
		h.logger.WarnContext(context.WithoutCancel(r.Context()), "over budget", "method", clip(r.Method), "uri", loggedURI(r), "err", err)
		h.unavailable(w, r, 5, "The market is slow to answer right now. Try again in a moment.")
	case errors.Is(err, store.ErrBusy):
		h.logger.WarnContext(r.Context(), "busy", "method", clip(r.Method), "uri", loggedURI(r), "err", err)
		h.unavailable(w, r, 1, "The server is busy. Try again in a moment.")
	case store.Locked(err):
		h.logger.WarnContext(r.Context(), "database busy", "method", clip(r.Method), "uri", loggedURI(r), "err", err)
		h.unavailable(w, r, 1, "The server is busy. Try again in a moment.")
	case store.Unavailable(err):
		h.logger.ErrorContext(r.Context(), "database unavailable", "method", clip(r.Method), "uri", loggedURI(r), "err", err)
		h.unavailable(w, r, 5, "The market cannot reach its database right now. Try again in a moment.")
	case store.CannotWrite(err):
		h.logger.ErrorContext(r.Context(), "database cannot write", "method", clip(r.Method), "uri", loggedURI(r), "err", err)
		h.unavailable(w, r, 30, "The market cannot save changes right now. Try again in a few minutes.")
	default:
		h.logger.ErrorContext(r.Context(), "server error", "method", clip(r.Method), "uri", loggedURI(r), "err", err)
		h.clientError(w, r, http.StatusInternalServerError, "Something went wrong on our side. Try again in a moment.")
	}
}

// unavailable answers 503 with message, asking to come back in retryAfter seconds.
func (h *Handler) unavailable(w http.ResponseWriter, r *http.Request, retryAfter int, message string) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	h.clientError(w, r, http.StatusServiceUnavailable, message)
}

// sessionError answers a request whose session could not be loaded or saved: like any other
// failure, a 503 when the database is unreachable or slow.
func (h *Handler) sessionError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil && !overBudget(r) { // the client has gone: nobody to answer
		h.logger.Info("session not saved: request cancelled", "uri", loggedURI(r), "err", err)
		return
	}
	h.serverError(w, r, fmt.Errorf("session: %w", err))
}

// abandoned reports whether err is the request's own end: its context cancelled because the
// client hung up, or because the server is shutting down (not because it ran over its budget).
func abandoned(r *http.Request, err error) bool {
	return r.Context().Err() != nil && !overBudget(r) &&
		(errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}

// cancelled logs a request that ended before its answer, with the cause.
func (h *Handler) cancelled(r *http.Request, err error) {
	h.logger.LogAttrs(context.WithoutCancel(r.Context()), slog.LevelInfo, "request cancelled",
		slog.String("method", clip(r.Method)), slog.String("uri", loggedURI(r)),
		slog.Any("cause", context.Cause(r.Context())), slog.Any("err", err))
}

// clientError answers an error status with a message: a page for a browser, an out-of-band
// alert (and no other swap) for htmx. It is the end of every error path, so it never hands a
// failure back to serverError: a page that cannot be rendered becomes a plain-text answer.
func (h *Handler) clientError(w http.ResponseWriter, r *http.Request, status int, message string) {
	w.Header().Set("Cache-Control", "no-store")
	var page templ.Component
	if r.Header.Get("HX-Request") == "true" {
		w.Header().Set("HX-Reswap", "none")
		page = components.FlashOOB(nil, []string{message})
	} else {
		page = components.ErrorPage(h.chrome(r, http.StatusText(status), ""), http.StatusText(status), message)
	}
	if err := h.tryRender(w, r, status, page); err != nil {
		if abandoned(r, err) {
			h.cancelled(r, err)
			return
		}
		h.logger.ErrorContext(r.Context(), "error page failed", "status", status, "uri", loggedURI(r), "err", err)
		plainError(w, status, message)
	}
}

// plainError is the answer of last resort: text, no template, nothing that can fail.
func plainError(w http.ResponseWriter, status int, message string) {
	w.Header().Del("HX-Reswap")
	http.Error(w, message, status)
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.clientError(w, r, http.StatusNotFound, "There is nothing at this address. Check the link, or start again from the home page.")
}

// pathItem parses the id of an address like /items/{id} or /admin/items/{id}; false after a 404
// answer.
func (h *Handler) pathItem(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, ok := parseID(r.PathValue("id"))
	if !ok {
		h.notFound(w, r)
	}
	return id, ok
}

// lookupFailed answers a failed read of what the address names, and reports whether it failed:
// 404 when there is no such thing, the server's error otherwise.
func (h *Handler) lookupFailed(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, store.ErrNotFound):
		h.notFound(w, r)
	default:
		h.serverError(w, r, err)
	}
	return true
}

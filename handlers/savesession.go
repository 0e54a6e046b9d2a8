package handlers

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/alexedwards/scs/v2"

	"market/store"
)

// loadAndSave is scs's LoadAndSave with one answer per request. The session is loaded before
// the handler runs and saved when the handler starts its answer (its first WriteHeader or
// Write), so that the cookie goes out with it. When that save fails, the failure is the answer
// (a 503, by sessionError) and whatever the handler writes after it goes nowhere: scs's own
// middleware wrote its error and then let the handler's status through as well.
//
// A GET changes the session only in passing (a flash shown, the idle timer moved on once a
// minute): such a save that fails is logged, and the page the handler wrote is served.
func (h *Handler) loadAndSave(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Cookie")
		var token string
		if c, err := r.Cookie(h.sessions.Cookie.Name); err == nil {
			token = c.Value
		}
		// The session's row names its user: on PostgreSQL the load reads the user and the
		// market version with it, for authenticate (one round trip, not two).
		ctx, err := h.sessions.Load(store.WithSessionUser(r.Context(), &store.SessionUser{}), token)
		if errors.Is(err, errBadSession) { // not the database's trouble: no session, not a 503
			h.logger.Info("session not decoded; served without one", "uri", loggedURI(r), "err", err)
			ctx, err = h.sessions.Load(store.WithSessionUser(r.Context(), &store.SessionUser{}), "")
		}
		if err != nil {
			h.sessionError(w, r, err)
			return
		}
		sw := &sessionWriter{ResponseWriter: w, h: h}
		sw.r = r.WithContext(context.WithValue(ctx, sessionKey, sw))
		next.ServeHTTP(sw, sw.r)
		sw.save()
	})
}

// hasSession reports whether r passed loadAndSave: only such requests may touch the session.
func hasSession(r *http.Request) bool { return r.Context().Value(sessionKey) != nil }

// sessionWriter saves the session before the first byte of the answer.
type sessionWriter struct {
	http.ResponseWriter
	h      *Handler
	r      *http.Request
	saved  bool // the save was tried (it happens once)
	failed bool // it failed and its error answered the request
}

// save saves the session once, and reports whether the handler's answer may go out.
func (sw *sessionWriter) save() bool {
	if sw.saved {
		return !sw.failed
	}
	sw.saved = true
	err := sw.h.saveSession(sw.ResponseWriter, sw.r.Context())
	if err == nil {
		return true
	}
	if sw.r.Method == http.MethodGet || sw.r.Method == http.MethodHead {
		sw.h.logger.Warn("session not saved; page served", "uri", loggedURI(sw.r), "err", err)
		return true
	}
	sw.failed = true
	for _, k := range []string{"Location", "HX-Location", "HX-Redirect", "HX-Trigger"} {
		sw.Header().Del(k) // where the handler's answer would have sent the client
	}
	sw.h.sessionError(sw.ResponseWriter, sw.r, err)
	return false
}

func (sw *sessionWriter) WriteHeader(code int) {
	if sw.save() {
		sw.ResponseWriter.WriteHeader(code)
	}
}

func (sw *sessionWriter) Write(b []byte) (int, error) {
	if !sw.save() {
		return len(b), nil // the answer is the save's error; the handler's goes nowhere
	}
	return sw.ResponseWriter.Write(b)
}

func (sw *sessionWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }

// saveSession writes the session's changes to the store and its cookie to w.
func (h *Handler) saveSession(w http.ResponseWriter, ctx context.Context) error {
	switch h.sessions.Status(ctx) {
	case scs.Modified:
		token, expiry, err := h.commitSession(ctx)
		if err != nil {
			return err
		}
		h.sessions.WriteSessionCookie(ctx, w, token, expiry)
	case scs.Destroyed:
		h.sessions.WriteSessionCookie(ctx, w, "", time.Time{})
	}
	return nil
}

// commitSession saves the session now, its row naming the user its data signs in (see
// store.SessionUser).
func (h *Handler) commitSession(ctx context.Context) (string, time.Time, error) {
	if su := store.SessionUserOf(ctx); su != nil {
		su.UserID = h.sessions.GetInt64(ctx, keyUserID)
	}
	return h.sessions.Commit(ctx)
}

// saveNow saves r's session before the handler answers, so that the handler can say what
// happened when it fails (sign-up: the account exists, the login did not stick). Nothing is
// saved again at the answer.
func (h *Handler) saveNow(w http.ResponseWriter, r *http.Request) error {
	sw, ok := r.Context().Value(sessionKey).(*sessionWriter)
	if !ok {
		return errors.New("save session: the request has no session")
	}
	sw.saved = true
	return h.saveSession(sw.ResponseWriter, r.Context())
}

// errBudget is the cause of a request's context when the request ran out of time (budget).
var errBudget = errors.New("request over its time budget")

// budget bounds how long a request may take: its context ends after the route's budget, so
// every database call and every wait in it ends too, and the answer is a 503 with Retry-After
// (serverError) instead of a wait as long as the database's. Live streams keep their own. A
// picture's upload has a page's budget until its handler knows it is an admin's, which then
// renews it (renewBudget): a stranger's never gets the minute an upload may take to arrive.
func (h *Handler) budget(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := h.budgetFor(r)
		switch {
		case d <= 0:
			next.ServeHTTP(w, r)
		case isPictureUpload(r) || isStream(r):
			ctx, cancel := context.WithCancelCause(r.Context())
			timer := time.AfterFunc(d, func() { cancel(errBudget) })
			defer cancel(nil)
			defer timer.Stop()
			next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, budgetKey, timer)))
		default:
			ctx, cancel := context.WithTimeoutCause(r.Context(), d, errBudget)
			defer cancel()
			next.ServeHTTP(w, r.WithContext(ctx))
		}
	})
}

// endBudget lifts r's budget, when it can be renewed (budget): a live stream's lasts until its
// viewer is known, then the stream lasts as long as its client stays.
func endBudget(r *http.Request) {
	if timer, ok := r.Context().Value(budgetKey).(*time.Timer); ok {
		timer.Stop()
	}
}

// isStream reports whether r opens a live stream.
func isStream(r *http.Request) bool { return r.URL.Path == "/market/events" }

// renewBudget gives r d from now, when its budget can be renewed (budget) and has not run out.
func renewBudget(r *http.Request, d time.Duration) {
	if timer, ok := r.Context().Value(budgetKey).(*time.Timer); ok && r.Context().Err() == nil {
		timer.Reset(d)
	}
}

// budgetFor is r's budget: a request that hashes a password may first wait for a hashing slot,
// so it gets twice a page's; a live stream has a page's to load its session and its viewer
// (then its handler lifts it: endBudget).
func (h *Handler) budgetFor(r *http.Request) time.Duration {
	switch {
	case r.Method == http.MethodPost && hashes(r.URL.Path):
		return 2 * h.cfg.RequestBudget
	default:
		return h.cfg.RequestBudget
	}
}

// hashes reports whether a POST to path may hash a password.
func hashes(path string) bool {
	switch path {
	case "/register", "/login", "/account/password", "/account/email", "/password/reset":
		return true
	}
	return false
}

// overBudget reports whether r's context ended because r ran out of its budget.
func overBudget(r *http.Request) bool { return errors.Is(context.Cause(r.Context()), errBudget) }

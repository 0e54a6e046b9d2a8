package handlers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/justinas/nosurf"

	"market/components"
	"market/handlers/metrics"
	"market/store"
)

// Session keys.
const (
	keyUserID = "user_id"
	keySeen   = "seen"  // unix seconds of the last request, for the idle timeout
	keyFlash  = "flash" // a result for #flash on the next page
	keyAlert  = "alert" // a refusal for #flash-alert on the next page
)

// securityPolicy forbids inline script, style and handlers, framing and foreign forms.
const securityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; " +
	"form-action 'self'; base-uri 'self'; object-src 'none'"

// securityHeaders are the headers every answer carries, each with its value as a slice every
// answer shares: an allocation less per header and request. Nothing changes a header's values
// in place (Add appends to a full slice, so copies it; Set replaces it).
var securityHeaders = []struct {
	key   string // canonical
	value []string
}{
	{"Content-Security-Policy", []string{securityPolicy}},
	{"X-Content-Type-Options", []string{"nosniff"}},
	{"Referrer-Policy", []string{"same-origin"}},
	{"X-Frame-Options", []string{"DENY"}},
	{"Cross-Origin-Opener-Policy", []string{"same-origin"}},
	{"Permissions-Policy", []string{"camera=(), microphone=(), geolocation=()"}},
}

// hstsHeader is Strict-Transport-Security's value, sent when users reach us over HTTPS.
var hstsHeader = []string{"max-age=63072000; includeSubDomains"}

func (h *Handler) secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		for _, sh := range securityHeaders {
			hd[sh.key] = sh.value[:1:1]
		}
		if h.cfg.Secure {
			hd["Strict-Transport-Security"] = hstsHeader[:1:1]
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody answers 413 to a body over the cap. It reads the (small) body here, before nosurf
// parses the form, which would otherwise turn an oversized post into a 403.
//
// A picture's upload (up to 5 MB) from a request with a session cookie is not read here: this
// runs before the session, the CSRF token and the admin are checked, and a cookie is no proof of
// anything. holdUpload gives what runs before the handler the body under the normal cap, and
// the handler the rest once it knows the upload is an admin's. Without a cookie an upload cannot
// be an admin's, and is capped like any other request.
func (h *Handler) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upload := isPictureUpload(r) && h.carriesSession(r)
		limit, tooLargeText := h.cfg.MaxBodyBytes, "That request was too large."
		if upload {
			limit, tooLargeText = pictureBodyCap, errPictureBytes.Error()
		}
		if r.ContentLength > limit {
			h.clientError(w, r, http.StatusRequestEntityTooLarge, tooLargeText)
			return
		}
		if upload {
			next.ServeHTTP(w, h.holdUpload(w, r))
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				h.clientError(w, r, http.StatusRequestEntityTooLarge, tooLargeText)
				return
			}
			if err != nil {
				h.clientError(w, r, http.StatusBadRequest, "That request could not be read.")
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		next.ServeHTTP(w, r)
	})
}

// carriesSession reports whether r comes with a session cookie (not whether its session is
// alive: that takes a read of the database).
func (h *Handler) carriesSession(r *http.Request) bool {
	c, err := r.Cookie(h.sessions.Cookie.Name)
	return err == nil && c.Value != ""
}

// csrf refuses unsafe requests without a valid token (from the form field or X-CSRF-Token).
func (h *Handler) csrf(next http.Handler) http.Handler { return h.newCSRF(next) }

// newCSRF is nosurf as this handler configures it, guarding next. New builds one more, with
// nothing to guard, that issues the new tokens at login and logout: RegenerateToken needs only
// the cookie's settings, which both share from here.
func (h *Handler) newCSRF(next http.Handler) *nosurf.CSRFHandler {
	cs := nosurf.New(next)
	cs.SetBaseCookie(http.Cookie{
		Path:     "/",
		HttpOnly: true,
		Secure:   h.cfg.Secure,
		SameSite: http.SameSiteLaxMode,
		MaxAge:   nosurf.MaxAge,
	})
	cs.SetIsTLSFunc(func(r *http.Request) bool { return r.TLS != nil || h.cfg.Secure })
	if len(h.cfg.TrustedOrigins) > 0 {
		// main checked the list with the same call, so an error here cannot happen.
		if allow, err := nosurf.StaticOrigins(h.cfg.TrustedOrigins...); err == nil {
			cs.SetIsAllowedOriginFunc(allow)
		}
	}
	cs.SetFailureHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.logger.Info("csrf refused", "method", clip(r.Method), "uri", loggedURI(r), "reason", fmt.Sprint(nosurf.Reason(r)))
		const expired = "This page has expired or did not come from this site. Reload the page and try again."
		const formExpired = "This form has expired or did not come from this site. Go back, reload the page and try again."
		if r.Header.Get("HX-Request") == "true" {
			// The one error said in both live regions: the contract promises it in #flash
			// (never a silent nothing), and #flash-alert is where every other error is.
			w.Header().Set("HX-Reswap", "none")
			h.render(w, r, http.StatusForbidden, components.FlashOOB([]string{expired}, []string{expired}))
			return
		}
		// A page of its own: reloading it would only post the same stale form again. It runs
		// after authenticate, so its navigation bar shows who is signed in.
		h.authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.clientError(w, r, http.StatusForbidden, formExpired)
		})).ServeHTTP(w, r)
	}))
	return cs
}

type ctxKey int

const (
	userKey    ctxKey = iota // the signed-in user and the version (authenticate)
	versionKey               // the version, for a live stream's reads (events.go)
	sessionKey
	noticeKey
	uploadKey // a picture upload's whole body (holdUpload)
	budgetKey // the timer of a budget that can be renewed (budget)
)

// authenticate puts the signed-in user into the context, with the market version read at the
// start of the request: the caches answer the rest of the request as of that version (a cache
// miss reads the newest data, and caches it only if the version has not moved). A session idle
// for longer than the idle timeout is ended.
func (h *Handler) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		id := h.sessions.GetInt64(ctx, keyUserID)
		if id == 0 {
			next.ServeHTTP(w, r)
			return
		}
		now := h.cfg.Now().Unix()
		seen := h.sessions.GetInt64(ctx, keySeen)
		if now-seen > int64(h.cfg.IdleTimeout/time.Second) {
			if err := h.sessions.Destroy(ctx); err != nil {
				h.serverError(w, r, err)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		// Refreshing the timestamp writes the session, so do it at most once a minute; a live
		// stream opening (or reconnecting) is no sign of a person, so it leaves it.
		if now-seen >= 60 && r.URL.Path != "/market/events" {
			h.sessions.Put(ctx, keySeen, now)
		}
		version, user, err := h.sessionUser(ctx, id)
		if err == nil && h.sessionEnded(ctx, user) { // ended from another session (account.go)
			err = store.ErrNotFound
		}
		if errors.Is(err, store.ErrNotFound) {
			h.sessions.Remove(ctx, keyUserID)
			next.ServeHTTP(w, r)
			return
		}
		if err != nil {
			h.serverError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, userKey, &signedIn{user, version})))
	})
}

// signedIn is what authenticate found: the user, and the market version read with them (one
// value in the context, not two).
type signedIn struct {
	user    store.User
	version int64
}

// currentUser is the signed-in user; ok is false for anonymous requests.
func currentUser(r *http.Request) (store.User, bool) {
	if s, ok := r.Context().Value(userKey).(*signedIn); ok {
		return s.user, true
	}
	return store.User{}, false
}

// requireUser sends anonymous visitors to log in: a redirect for a browser, HX-Redirect for htmx.
func (h *Handler) requireUser(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := currentUser(r); ok {
			next(w, r)
			return
		}
		w.Header().Add("Vary", "HX-Request")
		h.setNotice(w, "login") // a cookie, not a session: an anonymous visit writes nothing
		// htmx would swap a redirect's login page into a table row: it is told to navigate, and
		// to come back afterwards to the page the user was on.
		if r.Header.Get("HX-Request") == "true" {
			to := "/login"
			if cur, err := url.Parse(r.Header.Get("HX-Current-URL")); err == nil && cur.Path != "" {
				if next := safeNext(cur.RequestURI()); next != "" {
					to += "?next=" + url.QueryEscape(next)
				}
			}
			w.Header().Set("HX-Redirect", to)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		next := r.URL.Path
		if r.Method == http.MethodGet {
			next = r.URL.RequestURI()
		}
		http.Redirect(w, r, "/login?next="+url.QueryEscape(next), http.StatusFound)
	})
}

// reportRoute tells the metrics, when they count r, which of mux's routes r is for. It runs
// before any middleware can answer, so that a request refused early (by the CSRF check, say)
// still counts under its route.
func reportRoute(mux *http.ServeMux, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if metrics.Counting(r) {
			_, pattern := mux.Handler(r)
			metrics.SetRoute(r, pattern)
		}
		next.ServeHTTP(w, r)
	})
}

// errorPages answers unknown paths and wrong methods with our own 404 and 405 pages.
func (h *Handler) errorPages(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		var allowed []string
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			probe := *r // the mux reads the method, host and path: no need to copy the headers
			probe.Method = m
			if _, pattern := mux.Handler(&probe); pattern != "" {
				allowed = append(allowed, m)
				if m == http.MethodGet {
					allowed = append(allowed, http.MethodHead)
				}
			}
		}
		if len(allowed) == 0 {
			h.notFound(w, r)
			return
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		h.clientError(w, r, http.StatusMethodNotAllowed, "That page does not accept this kind of request.")
	})
}

// clientIP is the address the rate limits count against: the connection's, or, behind a
// trusted reverse proxy, the last address that proxy appended to X-Forwarded-For. Without
// TrustProxy the header is ignored, since anyone can send it.
func (h *Handler) clientIP(r *http.Request) string {
	if h.cfg.TrustProxy {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			hops := strings.Split(xff[len(xff)-1], ",")
			if ip := net.ParseIP(strings.TrimSpace(hops[len(hops)-1])); ip != nil {
				return addrBlock(ip.String())
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return addrBlock(host)
}

// addrBlock is the block of addresses that counts as one client for the limits: an IPv4
// address, or the /64 an IPv6 address is in, since one IPv6 host can take any address of its
// /64. A rate limit counts events under a key made of it (and, for logins, of the username too).
func addrBlock(host string) string {
	ip, err := netip.ParseAddr(host) // net.ParseIP's answer is allocated
	if err != nil || ip.Is4() || ip.Is4In6() || ip.Zone() != "" {
		return host
	}
	return netip.PrefixFrom(ip, 64).Masked().Addr().String() + "/64"
}

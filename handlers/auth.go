package handlers

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"

	"market/components"
	"market/store"
)

func (h *Handler) home(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, components.HomePage(h.chrome(r, "Home", "home")))
}

// asset serves a static file, or the 404 page when there is none.
func (h *Handler) asset(w http.ResponseWriter, r *http.Request) {
	if !h.assets.Has(r.URL.Path) {
		h.notFound(w, r)
		return
	}
	h.assets.ServeHTTP(w, r)
}

// healthz answers whether the database answers, within 2 s: a health check that waits as long
// as a hung database would tell a load balancer nothing.
func (h *Handler) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := h.store.Ping(ctx); err != nil {
		h.logger.Error("health check", "err", err)
		w.Header().Set("Retry-After", "5")
		http.Error(w, "database unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// readyz tells a load balancer whether this instance can take writes: 503 with Retry-After
// while its database cannot be reached or cannot write (a full disk, a read-only file, a
// failing disk), within 2 s. Liveness (/healthz) stays 200 while reads work. Asked often, it
// costs at most one small write a second (Store.Writable).
func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := h.store.Writable(ctx); err != nil {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "not ready: the database cannot take writes", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ready\n"))
}

// form holds what a user typed and the first error of each field.
type form struct {
	values map[string]string
	errors map[string]string
}

func newForm(r *http.Request, fields ...string) form {
	f := form{values: map[string]string{}, errors: map[string]string{}}
	for _, name := range fields {
		v := r.PostFormValue(name)
		if !strings.Contains(name, "password") {
			v = strings.TrimSpace(v)
		}
		f.values[name] = v
	}
	return f
}

// check records message for field unless ok, or unless the field already failed a rule.
func (f form) check(ok bool, field, message string) {
	if !ok && f.errors[field] == "" {
		f.errors[field] = message
	}
}

func (f form) valid() bool { return len(f.errors) == 0 }

// checkNewPassword applies the password rules to the fields password and confirm_password; what
// names the password in the messages ("password", "new password") is the form's.
func (f form) checkNewPassword(what string) {
	password := f.values["password"]
	f.check(password != "", "password", "Enter a "+what+".")
	f.check(len(password) >= 8, "password", "Use at least 8 characters for your password.")
	f.check(len(password) <= 72, "password", "Use at most 72 bytes for your password.")
	f.check(f.values["confirm_password"] != "", "confirm_password", "Confirm your "+what+".")
	f.check(f.values["confirm_password"] == password, "confirm_password", "The passwords do not match.")
}

func (f form) view() components.FormView {
	return components.FormView{Values: f.values, Errors: f.errors}
}

func validUsername(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// validEmail accepts a bare address (no display name) whose domain has a dot.
func validEmail(s string) bool {
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s {
		return false
	}
	_, domain, _ := strings.Cut(addr.Address, "@")
	return strings.Contains(domain, ".") && !strings.HasPrefix(domain, ".") && !strings.HasSuffix(domain, ".")
}

func (h *Handler) registerForm(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, components.RegisterPage(h.chrome(r, "Register", "register"), components.FormView{}))
}

func (h *Handler) register(w http.ResponseWriter, r *http.Request) {
	f := newForm(r, "username", "email", "password", "confirm_password")
	username, email, password := f.values["username"], f.values["email"], f.values["password"]
	f.check(username != "", "username", "Enter a username.")
	f.check(len(username) >= 2 && len(username) <= 30, "username", "Use 2 to 30 characters for your username.")
	f.check(validUsername(username), "username", "Use only letters, digits, _ . or - in your username.")
	f.check(email != "", "email", "Enter an email address.")
	f.check(len(email) <= 120, "email", "Use an email address of at most 120 characters.")
	f.check(validEmail(email), "email", "Enter an email address like name@example.com.")
	f.checkNewPassword("password")
	if !f.valid() {
		h.registerFailed(w, r, http.StatusOK, f)
		return
	}

	ip, now := h.clientIP(r), h.cfg.Now()
	// Every valid form counts, a taken name or email too: the store finds those without hashing,
	// so this count is what keeps probing for registered emails from being free. It is taken
	// before the account is made, so parallel sign-ups meet the cap too.
	if wait := h.signups.take(r.Context(), ip, now); wait > 0 {
		setRetryAfter(w, wait)
		h.registerFailed(w, r, http.StatusTooManyRequests, f,
			"Too many accounts were created from your address. Try again in "+minutes(wait)+".")
		return
	}
	user, err := h.store.CreateUser(r.Context(), username, email, password)
	f.check(!errors.Is(err, store.ErrDuplicateUsername), "username", "That username is taken. Choose another.")
	f.check(!errors.Is(err, store.ErrDuplicateEmail), "email", "That email address is already registered. Log in instead.")
	if err != nil && f.valid() { // our trouble, not the form's: the attempt does not count
		h.signups.undo(r.Context(), ip, now)
		h.serverError(w, r, err)
		return
	}
	if !f.valid() {
		h.registerFailed(w, r, http.StatusOK, f)
		return
	}
	h.logger.Info("user registered", "user_id", user.ID)
	if err := h.sendConfirm(r.Context(), user); err != nil { // the account stands; the banner can send it again
		h.logger.Error("confirmation mail", "user_id", user.ID, "err", err)
	}
	h.flash(r.Context(), fmt.Sprintf("Account created successfully! You are now logged in as %s.", user.Username))
	// The account exists from here on: whatever fails now, the answer says so, never an error
	// that would send the user back to a form whose username is now taken.
	err = h.startSession(w, r, user)
	if err == nil {
		err = h.saveNow(w, r)
	}
	if err != nil {
		h.registeredNotLoggedIn(w, r, user, err)
		return
	}
	http.Redirect(w, r, "/market", http.StatusFound)
}

// registeredNotLoggedIn answers a sign-up whose account was made but whose session could not
// be saved: the login form, with the username filled in and what happened.
func (h *Handler) registeredNotLoggedIn(w http.ResponseWriter, r *http.Request, user store.User, err error) {
	h.logger.Warn("registered, session not saved", "user_id", user.ID, "err", err)
	c := h.chrome(r, "Log in", "login")
	c.Flash, c.Alerts = nil, []string{fmt.Sprintf(
		"Your account %s was created, but we could not log you in just now. Log in to continue.", user.Username)}
	view := components.FormView{Values: map[string]string{"username": user.Username}}
	h.render(w, r, http.StatusOK, components.LoginPage(c, view))
}

// registerFailed shows the form again, with its errors and any alerts. The alerts go straight
// onto the page, not through a session: a refused sign-up writes nothing.
func (h *Handler) registerFailed(w http.ResponseWriter, r *http.Request, status int, f form, alerts ...string) {
	f.values["password"], f.values["confirm_password"] = "", ""
	c := h.chrome(r, "Register", "register")
	c.Alerts = append(c.Alerts, alerts...)
	h.render(w, r, status, components.RegisterPage(c, f.view()))
}

// startSession logs user in on a fresh session token, so a token fixed before login is useless,
// and a fresh CSRF token, so a page left open from before (another account's, in another tab)
// can post nothing as this user.
func (h *Handler) startSession(w http.ResponseWriter, r *http.Request, user store.User) error {
	ctx := r.Context()
	if err := h.sessions.RenewToken(ctx); err != nil {
		return fmt.Errorf("renew session token: %w", err)
	}
	h.csrfTokens.RegenerateToken(w, r)
	h.sessions.Put(ctx, keyUserID, user.ID)
	h.sessions.Put(ctx, keySeen, h.cfg.Now().Unix())
	h.sessions.Put(ctx, keyGen, user.SessionGen)
	return nil
}

// loginForm is the log-in form. Sent here to log in (a next page), the visitor is told why:
// from the parameter, since an anonymous visit keeps nothing on the server to say it.
func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request) {
	v := components.FormView{Next: safeNext(r.URL.Query().Get("next"))}
	c := h.chrome(r, "Log in", "login")
	if pleaseLogIn := notices["login"].alert; v.Next != "" && !slices.Contains(c.Alerts, pleaseLogIn) {
		c.Alerts = append(c.Alerts, pleaseLogIn)
	}
	h.render(w, r, http.StatusOK, components.LoginPage(c, v))
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	f := newForm(r, "username", "password")
	next := safeNext(r.FormValue("next"))
	username, password := f.values["username"], f.values["password"]
	ip, now := h.clientIP(r), h.cfg.Now()
	byUser := loginKey(username, ip)
	if wait := h.takeLogin(r.Context(), byUser, ip, now); wait > 0 {
		setRetryAfter(w, wait)
		h.loginFailed(w, r, http.StatusTooManyRequests, f, next,
			"Too many failed login attempts. Try again in "+minutes(wait)+".")
		return
	}
	user, err := store.User{}, store.ErrInvalidCredentials
	if byUser != "" { // else no account has that name: it fails without a lookup or a hash
		user, err = h.store.Authenticate(r.Context(), username, password)
	}
	if errors.Is(err, store.ErrInvalidCredentials) {
		h.logger.Info("login failed", "ip", ip)
		h.loginFailed(w, r, http.StatusOK, f, next, "Login failed. Check username and password.")
		return
	}
	if err != nil { // our trouble (busy, the database): the attempt does not count
		h.forgiveLogin(r.Context(), byUser, ip, now)
		h.serverError(w, r, err)
		return
	}
	h.loginByUser.reset(r.Context(), byUser)
	h.loginByAddr.undo(r.Context(), ip, now)
	if err := h.startSession(w, r, user); err != nil {
		h.serverError(w, r, err)
		return
	}
	h.flash(r.Context(), fmt.Sprintf("Login successful! Welcome back, %s.", user.Username))
	if next == "" {
		next = "/market"
	}
	http.Redirect(w, r, next, http.StatusFound)
}

// loginKey is the failed-login counter of a username from an address block, or "" when no
// account can have that name (longer than the form allows, or characters a username never
// has): that attempt is counted per address only, and no client text becomes a key. Usernames
// are ASCII letters, digits and _ . -, on which lower case is the database's own equality
// (SQLite's NOCASE, PostgreSQL's ICU collation): spellings it takes for one name share one
// counter, and any other spelling (full-width letters, say) cannot log in at all.
func loginKey(username, ip string) string {
	if !plausibleUsername(username) {
		return ""
	}
	return strings.ToLower(username) + "\x00" + ip
}

// plausibleUsername: a name sign-up would accept.
func plausibleUsername(s string) bool { return len(s) >= 2 && len(s) <= 30 && validUsername(s) }

// takeLogin counts an attempt as a failure, per username and address (byUser, unless "") and
// per address, until the password is checked; a right one is forgiven. Counting only after
// bcrypt would let parallel guesses all pass the check. At a limit it counts nothing and says
// how long to wait.
func (h *Handler) takeLogin(ctx context.Context, byUser, ip string, now time.Time) time.Duration {
	if byUser == "" {
		return h.loginByAddr.take(ctx, ip, now)
	}
	wait := h.loginByUser.take(ctx, byUser, now)
	if wait > 0 {
		return max(wait, h.loginByAddr.retryAfter(ctx, ip, now))
	}
	if wait = h.loginByAddr.take(ctx, ip, now); wait > 0 {
		h.loginByUser.undo(ctx, byUser, now)
	}
	return wait
}

// forgiveLogin takes back the attempt takeLogin counted: the password proved right, or was
// never checked (our trouble).
func (h *Handler) forgiveLogin(ctx context.Context, byUser, ip string, now time.Time) {
	h.loginByUser.undo(ctx, byUser, now)
	h.loginByAddr.undo(ctx, ip, now)
}

// setRetryAfter says in whole seconds, rounded up, when to try again.
func setRetryAfter(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
}

// loginFailed shows the form again with message; straight onto the page, not through a
// session, so a failed login writes only its counts.
func (h *Handler) loginFailed(w http.ResponseWriter, r *http.Request, status int, f form, next, message string) {
	f.values["password"] = ""
	v := f.view()
	v.Next = next
	c := h.chrome(r, "Log in", "login")
	c.Alerts = append(c.Alerts, message)
	h.render(w, r, status, components.LoginPage(c, v))
}

// minutes says a wait in whole minutes, rounded up: "1 minute", "15 minutes".
func minutes(d time.Duration) string {
	n := max(1, int(math.Ceil(d.Minutes())))
	if n == 1 {
		return "1 minute"
	}
	return strconv.Itoa(n) + " minutes"
}

// logout ends the session (GET from our own links, or POST). A GET from another site only
// asks: a page with a form that posts, with the CSRF token, when the user confirms.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if h.sessions.GetInt64(ctx, keyUserID) == 0 {
		http.Redirect(w, r, "/", http.StatusFound)
		return
	}
	if r.Method == http.MethodGet && !fromOurSite(r) {
		w.Header().Set("Cache-Control", "no-store")
		h.render(w, r, http.StatusOK, components.LogoutPage(h.chrome(r, "Log out", "")))
		return
	}
	if err := h.sessions.Destroy(ctx); err != nil { // deletes the session on the server
		h.serverError(w, r, err)
		return
	}
	h.csrfTokens.RegenerateToken(w, r) // pages still open in other tabs can post nothing now
	h.setNotice(w, "logout")           // a cookie: the visitor, anonymous now, has no session
	http.Redirect(w, r, "/", http.StatusFound)
}

// fromOurSite: the browser says the request came from one of our pages, or from the user
// (typed, a bookmark); a browser too old to say is believed. Another site, even a sibling
// subdomain (same-site), is not.
func fromOurSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return true
	}
	return false
}

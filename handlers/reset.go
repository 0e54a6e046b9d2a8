package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"market/components"
	"market/store"
)

// Password reset. GET/POST /password/forgot ask for an address and always answer the same:
// the request's own work (the form, the limits, the page) does not depend on whether an
// account uses the address, and what does (finding the account, the token, the mail) runs
// after the answer, off the request path (later). The link, /password/reset/{token}, puts the
// token's hash in the session and redirects to /password/reset, whose form chooses the new
// password: the token leaves the address bar before any page is shown, so it never reaches a
// Referer, and the request log never holds it (loggedURI).

// keyReset is the session key of the reset token's hash, between the link and the form.
const keyReset = "reset"

func (h *Handler) forgotForm(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, components.ForgotPage(h.chrome(r, "Forgot your password?", "login"), components.FormView{}))
}

func (h *Handler) forgotPassword(w http.ResponseWriter, r *http.Request) {
	f := newForm(r, "email_address")
	email := f.values["email_address"]
	f.check(email != "", "email_address", "Enter an email address.")
	f.check(len(email) <= 120, "email_address", "Use an email address of at most 120 characters.")
	f.check(validEmail(email), "email_address", "Enter an email address like name@example.com.")
	c := h.chrome(r, "Forgot your password?", "login")
	if !f.valid() {
		h.render(w, r, http.StatusOK, components.ForgotPage(c, f.view()))
		return
	}
	ip, now := h.clientIP(r), h.cfg.Now()
	if wait := h.resets.take(r.Context(), ip, now); wait > 0 {
		setRetryAfter(w, wait)
		c.Alerts = append(c.Alerts, "Too many requests for a new password from your address. Try again in "+minutes(wait)+".")
		h.render(w, r, http.StatusTooManyRequests, components.ForgotPage(c, f.view()))
		return
	}
	if h.takeMailTarget(r.Context(), email, now) {
		h.later(func(ctx context.Context) { h.requestReset(ctx, email, now) })
	}
	c.Flash = append(c.Flash, fmt.Sprintf(msgResetSent, email))
	h.render(w, r, http.StatusOK, components.ForgotPage(c, components.FormView{}))
}

// laterTimeout bounds the work later runs: a reset's lookup, token and mail.
const laterTimeout = 10 * time.Second

// later runs fn off the request path, at most a few at a time: past that, fn is dropped and
// logged (a reset link can be asked for again), never queued without bound. WaitLater waits
// for it.
func (h *Handler) later(fn func(ctx context.Context)) {
	select {
	case h.background <- struct{}{}:
	default:
		h.logger.Warn("busy: a reset request was dropped")
		return
	}
	h.laterWork.Go(func() {
		defer func() { <-h.background }()
		ctx, cancel := context.WithTimeout(context.Background(), laterTimeout)
		defer cancel()
		fn(ctx)
	})
}

// WaitLater waits until the work of later is done, or ctx ends (then it reports false). At
// shutdown, once no request is in flight, it lets the resets that were answered queue their
// mails before the store closes.
func (h *Handler) WaitLater(ctx context.Context) bool {
	done := make(chan struct{})
	go func() {
		h.laterWork.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// requestReset queues a reset link to the account that uses email, if one does.
func (h *Handler) requestReset(ctx context.Context, email string, now time.Time) {
	token := newToken()
	m, err := outboxMail(ctx, email, token, components.ResetMail(h.link("/password/reset/"+token)))
	if err != nil {
		h.logger.Error("reset mail", "err", err)
		return
	}
	t := store.Token{Hash: store.TokenHash(token), Purpose: store.TokenReset, Email: email, Expires: now.Add(resetLife)}
	found, err := h.store.RequestReset(ctx, t, m)
	if err != nil {
		h.logger.Error("reset request", "err", err)
		return
	}
	if found {
		h.mailQueued()
	}
}

// resetLink is the link of a reset mail: a valid token goes into the session, and the browser
// to the form; any other finds the contract's message.
func (h *Handler) resetLink(w http.ResponseWriter, r *http.Request) {
	noReferrer(w)
	ctx := r.Context()
	hash := store.TokenHash(r.PathValue("token"))
	_, _, err := h.store.TokenUser(ctx, store.TokenReset, hash, h.cfg.Now())
	if errors.Is(err, store.ErrTokenInvalid) {
		h.resetExpired(w, r)
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	if err := h.sessions.RenewToken(ctx); err != nil {
		h.serverError(w, r, err)
		return
	}
	h.sessions.Put(ctx, keyReset, hash)
	http.Redirect(w, r, "/password/reset", http.StatusSeeOther)
}

// resetExpired says a reset link cannot be used, with the way to ask for another.
func (h *Handler) resetExpired(w http.ResponseWriter, r *http.Request) {
	c := h.chrome(r, "Choose a new password", "login")
	c.Alerts = append(c.Alerts, msgLinkExpired)
	h.render(w, r, http.StatusOK, components.LinkPage(c, "Choose a new password", "/password/forgot", "Ask for a new link"))
}

// resetToken is the hash of the session's reset token and its user while the token can be
// used, else "".
func (h *Handler) resetToken(r *http.Request) (string, store.User, error) {
	hash := h.sessions.GetString(r.Context(), keyReset)
	if hash == "" {
		return "", store.User{}, nil
	}
	u, _, err := h.store.TokenUser(r.Context(), store.TokenReset, hash, h.cfg.Now())
	if errors.Is(err, store.ErrTokenInvalid) {
		return "", u, nil
	}
	return hash, u, err
}

func (h *Handler) resetForm(w http.ResponseWriter, r *http.Request) {
	noReferrer(w)
	hash, _, err := h.resetToken(r)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	if hash == "" {
		h.resetExpired(w, r)
		return
	}
	h.render(w, r, http.StatusOK, components.ResetPage(h.chrome(r, "Choose a new password", "login"), components.FormView{}))
}

// resetPassword chooses the new password: every session of the user ends, every reset token
// dies, a notice goes to the address, and the browser goes to log in.
func (h *Handler) resetPassword(w http.ResponseWriter, r *http.Request) {
	noReferrer(w)
	ctx := r.Context()
	f := newForm(r, "password", "confirm_password")
	f.checkNewPassword("password")
	hash, user, err := h.resetToken(r)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	if hash == "" {
		h.resetExpired(w, r)
		return
	}
	if !f.valid() {
		f.values["password"], f.values["confirm_password"] = "", ""
		h.render(w, r, http.StatusOK, components.ResetPage(h.chrome(r, "Choose a new password", "login"), f.view()))
		return
	}
	notice, err := outboxMail(ctx, "", "", components.PasswordChangedMail(user.Username))
	if err == nil {
		_, err = h.store.ResetPassword(ctx, hash, f.values["password"], notice, h.cfg.Now())
	}
	if errors.Is(err, store.ErrTokenInvalid) {
		h.sessions.Remove(ctx, keyReset)
		h.resetExpired(w, r)
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.logger.Info("password reset", "user_id", user.ID)
	h.mailQueued()
	h.sessions.Remove(ctx, keyReset)
	h.sessions.Remove(ctx, keyUserID)
	if err := h.sessions.RenewToken(ctx); err != nil {
		h.serverError(w, r, err)
		return
	}
	h.flash(ctx, "Your password has been changed. Log in with your new password.")
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

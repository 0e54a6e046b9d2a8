package handlers

import (
	"context"
	"errors"
	"net/http"

	"github.com/a-h/templ"
	"github.com/justinas/nosurf"

	"market/components"
	"market/store"
)

// keyGen is the session key of the user's session generation at login: a session whose
// generation is older than the user's has ended (a password change, or "sign out everywhere
// else", on any instance).
const keyGen = "gen"

// sessionEnded reports whether the session started under an older generation than the user's.
func (h *Handler) sessionEnded(ctx context.Context, u store.User) bool {
	return h.sessions.GetInt64(ctx, keyGen) < u.SessionGen
}

// keepSession runs change, which moves the user's session generation on (ending the sessions
// of older ones), and keeps this session, on its token (its other tabs' live streams go on). The
// session is saved with the next generation before the change, so that no moment finds it older
// than its user, here or on another instance; when the change fails, or another came first, it
// takes the generation that stands.
func (h *Handler) keepSession(ctx context.Context, u store.User, change func() (int64, error)) error {
	h.sessions.Put(ctx, keyGen, u.SessionGen+1)
	if _, _, err := h.commitSession(ctx); err != nil {
		h.sessions.Put(ctx, keyGen, u.SessionGen)
		return err
	}
	gen, err := change()
	if err != nil {
		gen = u.SessionGen
	}
	h.sessions.Put(ctx, keyGen, gen)
	return err
}

func (h *Handler) accountPage(w http.ResponseWriter, r *http.Request) {
	h.renderAccount(w, r, http.StatusOK, form{values: map[string]string{}, errors: map[string]string{}})
}

func (h *Handler) renderAccount(w http.ResponseWriter, r *http.Request, status int, f form) {
	user, _ := currentUser(r)
	for k := range f.values {
		f.values[k] = "" // passwords are never sent back
	}
	if isFragment(r) {
		h.render(w, r, status, components.PasswordForm(nosurf.Token(r), f.view()))
		return
	}
	h.render(w, r, status, components.AccountPage(h.chrome(r, "Your account", "account"), user.Email, f.view(), components.FormView{}))
}

func (h *Handler) changePassword(w http.ResponseWriter, r *http.Request) {
	user, _ := currentUser(r)
	ctx := r.Context()
	f := newForm(r, "current_password", "password", "confirm_password")
	password := f.values["password"]
	f.check(f.values["current_password"] != "", "current_password", "Enter your current password.")
	f.checkNewPassword("new password")
	if !f.valid() {
		h.renderAccount(w, r, http.StatusOK, f)
		return
	}
	// A wrong current password counts as a failed login of this user from this address, and of
	// the address: each attempt counts until the password proves right, as at login.
	ip, now := h.clientIP(r), h.cfg.Now()
	byUser := loginKey(user.Username, ip)
	if wait := h.takeLogin(r.Context(), byUser, ip, now); wait > 0 {
		setRetryAfter(w, wait)
		f.check(false, "current_password", "Too many failed login attempts. Try again in "+minutes(wait)+".")
		h.renderAccount(w, r, http.StatusTooManyRequests, f)
		return
	}
	err := h.keepSession(ctx, user, func() (int64, error) {
		return h.store.ChangePassword(ctx, user.ID, f.values["current_password"], password)
	})
	if errors.Is(err, store.ErrInvalidCredentials) {
		h.logger.Info("password change refused", "user_id", user.ID, "ip", ip)
		f.check(false, "current_password", "Current password is incorrect.")
		h.renderAccount(w, r, http.StatusOK, f)
		return
	}
	h.forgiveLogin(r.Context(), byUser, ip, now)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.logger.Info("password changed", "user_id", user.ID)
	h.accountDone(w, r, "Your password has been changed.")
}

func (h *Handler) endSessions(w http.ResponseWriter, r *http.Request) {
	user, _ := currentUser(r)
	err := h.keepSession(r.Context(), user, func() (int64, error) { return h.store.EndSessions(r.Context(), user.ID) })
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.logger.Info("other sessions ended", "user_id", user.ID)
	h.accountDone(w, r, "Signed out of every other session.")
}

// accountDone ends a change of the account: htmx gets the message (and an empty password form,
// when that was the target); a browser goes back to /account, which shows it.
func (h *Handler) accountDone(w http.ResponseWriter, r *http.Request, msg string) {
	if !isFragment(r) {
		h.flash(r.Context(), msg)
		http.Redirect(w, r, "/account", http.StatusSeeOther)
		return
	}
	flash := components.FlashOOB([]string{msg}, nil)
	if r.Header.Get("HX-Target") == "password-form" {
		h.render(w, r, http.StatusOK, templ.Join(components.PasswordForm(nosurf.Token(r), components.FormView{}), flash))
		return
	}
	h.render(w, r, http.StatusOK, flash)
}

package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"market/components"
	"market/store"
)

// changeEmail asks to change the account's address: with the right current password (a wrong
// one counts as a failed login) and an address no account uses, a link goes to the new address
// and a notice to the old one; the address changes when the link is followed (email.go).
func (h *Handler) changeEmail(w http.ResponseWriter, r *http.Request) {
	user, _ := currentUser(r)
	ctx := r.Context()
	f := newForm(r, "email_address", "current_password")
	email := f.values["email_address"]
	f.check(email != "", "email_address", "Enter an email address.")
	f.check(len(email) <= 120, "email_address", "Use an email address of at most 120 characters.")
	f.check(validEmail(email), "email_address", "Enter an email address like name@example.com.")
	f.check(!strings.EqualFold(email, user.Email), "email_address", "That is your email address already.")
	f.check(f.values["current_password"] != "", "current_password", "Enter your current password.")
	if !f.valid() {
		h.renderAccountEmail(w, r, http.StatusOK, f)
		return
	}
	ip, now := h.clientIP(r), h.cfg.Now()
	byUser := loginKey(user.Username, ip)
	if wait := h.takeLogin(ctx, byUser, ip, now); wait > 0 {
		setRetryAfter(w, wait)
		f.check(false, "current_password", "Too many failed login attempts. Try again in "+minutes(wait)+".")
		h.renderAccountEmail(w, r, http.StatusTooManyRequests, f)
		return
	}
	err := h.store.CheckEmailChange(ctx, user.ID, f.values["current_password"], email)
	if errors.Is(err, store.ErrInvalidCredentials) {
		h.logger.Info("email change refused", "user_id", user.ID, "ip", ip)
		f.check(false, "current_password", "Current password is incorrect.")
		h.renderAccountEmail(w, r, http.StatusOK, f)
		return
	}
	if err == nil || errors.Is(err, store.ErrDuplicateEmail) { // the password proved right
		h.forgiveLogin(ctx, byUser, ip, now)
	}
	if errors.Is(err, store.ErrDuplicateEmail) {
		f.check(false, "email_address", "That email address is already registered. Log in instead.")
		h.renderAccountEmail(w, r, http.StatusOK, f)
		return
	}
	if err == nil && h.takeMailTarget(ctx, email, now) {
		err = h.issueChange(r, user, email)
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.accountDone(w, r, fmt.Sprintf("We sent a link to %s to confirm the change.", email))
}

// issueChange stores a change token for email with its link, and the notice to the old address.
func (h *Handler) issueChange(r *http.Request, user store.User, email string) error {
	ctx, now, token := r.Context(), h.cfg.Now(), newToken()
	confirm, err := outboxMail(ctx, email, token, components.ChangeEmailMail(h.link("/email/confirm/"+token), user.Username, email))
	if err != nil {
		return err
	}
	notice, err := outboxMail(ctx, user.Email, "", components.EmailChangeNotice(user.Username, email))
	if err != nil {
		return err
	}
	t := store.Token{Hash: store.TokenHash(token), Purpose: store.TokenChange, Email: email, Expires: now.Add(confirmLife)}
	if err := h.store.IssueToken(ctx, user.ID, t, confirm, notice); err != nil {
		return err
	}
	h.logger.Info("email change asked", "user_id", user.ID)
	h.mailQueued()
	return nil
}

// renderAccountEmail shows /account again with the address form's errors (passwords never
// sent back).
func (h *Handler) renderAccountEmail(w http.ResponseWriter, r *http.Request, status int, f form) {
	user, _ := currentUser(r)
	f.values["current_password"] = ""
	if isFragment(r) {
		h.render(w, r, status, components.EmailForm(h.chrome(r, "", "").CSRFToken, f.view()))
		return
	}
	h.render(w, r, status, components.AccountPage(h.chrome(r, "Your account", "account"), user.Email,
		components.FormView{}, f.view()))
}

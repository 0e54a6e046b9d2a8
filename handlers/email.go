package handlers

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"market/components"
	"market/store"
)

// Mail: confirming the address (sign-up, the banner's button, the link), and the helpers every
// mail shares: tokens, links from Config.BaseURL (never from the request's Host), the limits per
// target address, and the outbox. Password reset is in reset.go, the address change in
// account_email.go.

const (
	confirmLife = 24 * time.Hour // a confirm or change link
	resetLife   = time.Hour      // a reset link
)

// Messages of the mail pages (the contract's words).
const (
	msgLinkExpired = "This link has expired or was already used."
	msgResetSent   = "If an account uses %s, we sent it a link to choose a new password. The link works for one hour."
)

// newToken is 32 random bytes, URL-safe: what a link carries. The store keeps its hash only.
func newToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// link is the absolute address of path on the market's public URL.
func (h *Handler) link(path string) string { return strings.TrimSuffix(h.cfg.BaseURL, "/") + path }

// outboxMail renders v for to; secret is the token its link carries ("" for none).
func outboxMail(ctx context.Context, to, secret string, v components.MailView) (store.Mail, error) {
	var b bytes.Buffer
	if err := v.HTML.Render(ctx, &b); err != nil {
		return store.Mail{}, fmt.Errorf("render mail: %w", err)
	}
	return store.Mail{To: to, Subject: v.Subject, Text: v.Text, HTML: b.String(), Secret: secret}, nil
}

// mailQueued tells this instance's worker that a mail waits.
func (h *Handler) mailQueued() {
	if h.cfg.MailQueued != nil {
		h.cfg.MailQueued()
	}
}

// takeMailTarget counts a reset or confirmation mail to address: false, and nothing counted,
// past 1 a minute or 5 an hour. A request past it sends nothing and says what one that sent
// says, so the limits never tell whether an account uses the address.
func (h *Handler) takeMailTarget(ctx context.Context, address string, now time.Time) bool {
	key := strings.ToLower(address)
	if h.mailMinute.take(ctx, key, now) > 0 {
		return false
	}
	if h.mailHour.take(ctx, key, now) > 0 {
		h.mailMinute.undo(ctx, key, now)
		return false
	}
	return true
}

// sendConfirm queues a confirmation link to u's address, when the limits allow one.
func (h *Handler) sendConfirm(ctx context.Context, u store.User) error {
	now := h.cfg.Now()
	if !h.takeMailTarget(ctx, u.Email, now) {
		return nil
	}
	token := newToken()
	m, err := outboxMail(ctx, u.Email, token, components.ConfirmMail(h.link("/email/confirm/"+token), u.Email))
	if err != nil {
		return err
	}
	t := store.Token{Hash: store.TokenHash(token), Purpose: store.TokenConfirm, Email: u.Email, Expires: now.Add(confirmLife)}
	if err := h.store.IssueToken(ctx, u.ID, t, m); err != nil {
		return err
	}
	h.mailQueued()
	return nil
}

// resendConfirm is the banner's button: a new confirmation link (within the limits).
func (h *Handler) resendConfirm(w http.ResponseWriter, r *http.Request) {
	user, _ := currentUser(r)
	if user.EmailConfirmed {
		h.accountDone(w, r, fmt.Sprintf("Your email address %s is confirmed.", user.Email))
		return
	}
	if err := h.sendConfirm(r.Context(), user); err != nil {
		h.serverError(w, r, err)
		return
	}
	h.accountDone(w, r, fmt.Sprintf("We sent a link to %s.", user.Email))
}

// noReferrer keeps a page's address, which may hold a token, out of every Referer.
func noReferrer(w http.ResponseWriter) {
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Cache-Control", "no-store")
}

// confirmEmail follows a confirm or change link: the address is confirmed, or becomes the
// account's. The page answers in place (no session is needed to say it): the link's token is
// used by then, and the request log never holds it (loggedURI).
func (h *Handler) confirmEmail(w http.ResponseWriter, r *http.Request) {
	noReferrer(w)
	c := h.chrome(r, "Your email address", "")
	u, purpose, err := h.store.ConfirmEmail(r.Context(), store.TokenHash(r.PathValue("token")), h.cfg.Now())
	again, againText := "/login", "Log in to ask for a new link"
	if _, ok := currentUser(r); ok {
		again, againText = "/account", "Ask for a new link from your account"
	}
	switch {
	case errors.Is(err, store.ErrTokenInvalid):
		c.Alerts = append(c.Alerts, msgLinkExpired)
	case errors.Is(err, store.ErrDuplicateEmail):
		c.Alerts = append(c.Alerts, "That email address is already registered to another account.")
	case err != nil:
		h.serverError(w, r, err)
		return
	case purpose == store.TokenChange:
		c.Flash, c.Unconfirmed, again = append(c.Flash, fmt.Sprintf("Your email address is now %s.", u.Email)), "", ""
		h.logger.Info("email changed", "user_id", u.ID)
	default:
		c.Flash, c.Unconfirmed, again = append(c.Flash, fmt.Sprintf("Your email address %s is confirmed.", u.Email)), "", ""
		h.logger.Info("email confirmed", "user_id", u.ID)
	}
	h.render(w, r, http.StatusOK, components.LinkPage(c, "Your email address", again, againText))
}

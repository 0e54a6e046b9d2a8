package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"market/components"
	"market/store"
)

// adminMail lists the outbox, newest first.
func (h *Handler) adminMail(w http.ResponseWriter, r *http.Request) {
	mails, err := h.store.Mails(r.Context(), 200)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, components.AdminMailPage(h.chrome(r, "Mail", "admin"), mails))
}

// retryMail queues a failed mail again.
func (h *Handler) retryMail(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		h.notFound(w, r)
		return
	}
	m, err := h.store.RetryMail(r.Context(), id, h.cfg.Now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		h.sessions.Put(r.Context(), keyAlert, fmt.Sprintf("Mail %d has not failed: there is nothing to send again.", id))
	case err != nil:
		h.serverError(w, r, err)
		return
	default:
		h.logger.Info("mail queued again", "id", m.ID)
		h.mailQueued()
		h.flash(r.Context(), fmt.Sprintf("The mail to %s is queued again.", m.To))
	}
	http.Redirect(w, r, "/admin/mail", http.StatusSeeOther)
}

package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/a-h/templ"
	"github.com/justinas/nosurf"

	"market/components"
	"market/store"
)

// Operating the market: /admin and below answer only admins; anyone else signed in gets the
// 404 page, which does not reveal that anything is there.

// requireAdmin lets admins through; anonymous visitors are sent to log in as for the market.
func (h *Handler) requireAdmin(next http.HandlerFunc) http.Handler {
	return h.requireUser(func(w http.ResponseWriter, r *http.Request) {
		if u, _ := currentUser(r); u.Role != store.RoleAdmin {
			h.notFound(w, r)
			return
		}
		next(w, r)
	})
}

// adminQuery is the search, sort and page of the operator's item list, and the page of users.
func adminQuery(r *http.Request) (store.MarketQuery, int) {
	query := r.URL.Query()
	q := store.MarketQuery{Q: query.Get("q"), Sort: query.Get("sort")}
	q.Page, _ = strconv.Atoi(query.Get("page"))
	upage, _ := strconv.Atoi(query.Get("upage"))
	return q, upage
}

func (h *Handler) adminPage(w http.ResponseWriter, r *http.Request) {
	q, upage := adminQuery(r)
	items, err := h.store.AdminItems(r.Context(), q)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	if isFragment(r) { // a search: the list only
		h.render(w, r, http.StatusOK, components.AdminItems(nosurf.Token(r), items, upage))
		return
	}
	h.renderAdmin(w, r, http.StatusOK, items, upage, form{values: map[string]string{}, errors: map[string]string{}})
}

// renderAdmin renders the whole operator's page with the add-item form as given.
func (h *Handler) renderAdmin(w http.ResponseWriter, r *http.Request, status int, items store.AdminItemsPage, upage int, add form) {
	ctx := r.Context()
	users, err := h.store.UsersPaged(ctx, upage)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	g, err := h.store.MarketGlance(ctx, h.cfg.Now())
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	live, err := h.liveURL(r, store.MarketQuery{})
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	v := components.AdminView{Items: items, Users: users, Add: add.view(), Glance: g, Live: live}
	h.render(w, r, status, components.AdminPage(h.chrome(r, "Run the market", "admin"), v))
}

// adminGlance is the glance alone, which the page fetches again on each market event.
func (h *Handler) adminGlance(w http.ResponseWriter, r *http.Request) {
	g, err := h.store.MarketGlance(r.Context(), h.cfg.Now())
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, components.Glance(g))
}

// itemForm reads and checks the item fields: the first failing rule per field.
func itemForm(r *http.Request) (form, store.ItemInput) {
	f := newForm(r, "name", "price", "barcode", "description")
	name, barcode := f.values["name"], f.values["barcode"]
	f.check(name != "", "name", "Enter a name.")
	f.check(utf8.RuneCountInString(name) <= 50, "name", "Use at most 50 characters for the name.")
	price, err := strconv.ParseInt(f.values["price"], 10, 64)
	f.check(f.values["price"] != "", "price", "Enter a price.")
	f.check(err == nil, "price", "Enter the price as a whole number of dollars, such as 25.")
	f.check(price >= 1 && price <= 1_000_000, "price", "Use a price from $1 to $1,000,000.")
	f.check(barcode != "", "barcode", "Enter a barcode.")
	f.check(len(barcode) == 12 && strings.Trim(barcode, "0123456789") == "", "barcode", "Use exactly 12 digits for the barcode.")
	f.check(utf8.RuneCountInString(f.values["description"]) <= 1024, "description", "Use at most 1,024 characters for the description.")
	return f, store.ItemInput{Name: name, Price: price, Barcode: barcode, Description: f.values["description"]}
}

// itemClashes turns the store's refusals of a name or barcode into form errors; false when err
// is something else.
func itemClashes(f form, err error) bool {
	f.check(!errors.Is(err, store.ErrDuplicateName), "name", "Another item has that name. Choose another.")
	f.check(!errors.Is(err, store.ErrDuplicateBarcode), "barcode", "Another item has that barcode. Check it.")
	return !f.valid()
}

func (h *Handler) addItem(w http.ResponseWriter, r *http.Request) {
	user, _ := currentUser(r)
	f, in := itemForm(r)
	var it store.Item
	if f.valid() {
		var err error
		it, err = h.store.AddItem(r.Context(), user.ID, in)
		if err != nil && !itemClashes(f, err) {
			h.serverError(w, r, err)
			return
		}
	}
	if !f.valid() {
		if isFragment(r) {
			h.render(w, r, http.StatusOK, components.AddItemForm(nosurf.Token(r), f.view()))
			return
		}
		q, upage := adminQuery(r)
		items, err := h.store.AdminItems(r.Context(), q)
		if err != nil {
			h.serverError(w, r, err)
			return
		}
		h.renderAdmin(w, r, http.StatusOK, items, upage, f)
		return
	}
	h.logger.Info("item added", "user_id", user.ID, "item_id", it.ID)
	msg := fmt.Sprintf("Added %s.", it.Name)
	if !isFragment(r) {
		h.flash(r.Context(), msg)
		http.Redirect(w, r, "/admin", http.StatusSeeOther)
		return
	}
	tok := nosurf.Token(r)
	h.render(w, r, http.StatusOK, templ.Join(components.AddItemForm(tok, components.FormView{}),
		components.AdminResult([]string{msg}, nil, components.AddedItemRow(tok, store.AdminItem{Item: it}))))
}

func (h *Handler) editItemForm(w http.ResponseWriter, r *http.Request) {
	id, ok := h.pathItem(w, r)
	if !ok {
		return
	}
	it, err := h.store.AdminItem(r.Context(), id)
	if h.lookupFailed(w, r, err) {
		return
	}
	if shown, err := h.store.Item(r.Context(), id); err == nil {
		it.Picture = shown.Picture
	}
	v := components.EditItemView{Item: it, Form: components.FormView{Values: components.ItemValues(it.Item)}}
	h.render(w, r, http.StatusOK, components.EditItemPage(h.chrome(r, "Edit "+it.Name, "admin"), v))
}

func (h *Handler) editItem(w http.ResponseWriter, r *http.Request) {
	user, _ := currentUser(r)
	id, ok := h.pathItem(w, r)
	if !ok {
		return
	}
	f, in := itemForm(r)
	var (
		it  store.AdminItem
		err error
	)
	if f.valid() {
		it, err = h.store.EditItem(r.Context(), user.ID, id, in)
	} else {
		it, err = h.store.AdminItem(r.Context(), id)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		h.notFound(w, r)
		return
	case errors.Is(err, store.ErrOwned):
		f.check(false, "price", fmt.Sprintf("%s is owned by %s; its price can change once it is sold back.", it.Name, it.Owner))
	case err != nil && !itemClashes(f, err):
		h.serverError(w, r, err)
		return
	}
	v := components.EditItemView{Item: it, Form: f.view()}
	if !f.valid() {
		if isFragment(r) {
			h.render(w, r, http.StatusOK, components.EditItemForm(nosurf.Token(r), v))
			return
		}
		h.render(w, r, http.StatusOK, components.EditItemPage(h.chrome(r, "Edit "+it.Name, "admin"), v))
		return
	}
	h.logger.Info("item edited", "user_id", user.ID, "item_id", id)
	msg := fmt.Sprintf("Saved %s.", it.Name)
	if !isFragment(r) {
		h.flash(r.Context(), msg)
		http.Redirect(w, r, "/admin", http.StatusSeeOther)
		return
	}
	h.render(w, r, http.StatusOK, templ.Join(components.EditItemForm(nosurf.Token(r), v), components.FlashOOB([]string{msg}, nil)))
}

func (h *Handler) retireItem(w http.ResponseWriter, r *http.Request) {
	user, _ := currentUser(r)
	id, ok := h.pathItem(w, r)
	if !ok {
		return
	}
	it, err := h.store.RetireItem(r.Context(), user.ID, id)
	var (
		flash, alert string
		row          templ.Component
	)
	switch {
	case err == nil:
		flash, row = fmt.Sprintf("Retired %s.", it.Name), components.RemovedRow("admin-item-"+strconv.FormatInt(id, 10))
		h.logger.Info("item retired", "user_id", user.ID, "item_id", id)
	case errors.Is(err, store.ErrOwned):
		alert = fmt.Sprintf("%s is owned by %s; it can be retired once it is sold back.", it.Name, it.Owner)
	case errors.Is(err, store.ErrNotFound):
		alert = "That item does not exist."
	default:
		h.serverError(w, r, err)
		return
	}
	h.adminAnswer(w, r, flash, alert, row)
}

// adminAnswer ends an operator's action: htmx gets the message and the changed rows in place;
// a browser goes back to /admin, which shows the message.
func (h *Handler) adminAnswer(w http.ResponseWriter, r *http.Request, flash, alert string, rows templ.Component) {
	if !isFragment(r) {
		if flash != "" {
			h.flash(r.Context(), flash)
		} else {
			h.alert(r.Context(), alert)
		}
		http.Redirect(w, r, "/admin", http.StatusSeeOther)
		return
	}
	var flashes, alerts []string
	if flash != "" {
		flashes = []string{flash}
	} else {
		alerts, rows = []string{alert}, nil
	}
	h.render(w, r, http.StatusOK, components.AdminResult(flashes, alerts, rows))
}

// maxGrant bounds one grant either way, far beyond any real one, so sums never overflow.
const maxGrant = 1_000_000_000

func (h *Handler) grant(w http.ResponseWriter, r *http.Request) {
	user, _ := currentUser(r)
	id, ok := parseID(r.PathValue("id"))
	if !ok {
		h.notFound(w, r)
		return
	}
	raw := strings.TrimSpace(r.PostFormValue("amount"))
	amount, err := strconv.ParseInt(strings.TrimPrefix(raw, "$"), 10, 64)
	switch {
	case raw == "":
		h.adminAnswer(w, r, "", "Enter an amount to grant, in whole dollars.", nil)
		return
	case err != nil:
		h.adminAnswer(w, r, "", "Enter the amount as a whole number of dollars, such as 50 or -20.", nil)
		return
	case amount == 0:
		h.adminAnswer(w, r, "", "Enter an amount other than $0.", nil)
		return
	case amount > maxGrant || amount < -maxGrant:
		h.adminAnswer(w, r, "", "Grant at most $1,000,000,000 at a time.", nil)
		return
	}
	u, err := h.store.Grant(r.Context(), user.ID, id, amount)
	switch {
	case err == nil:
		h.logger.Info("grant", "user_id", user.ID, "to_user_id", id, "amount", amount)
		h.adminAnswer(w, r, fmt.Sprintf("Granted %s to %s.", components.Money(amount), u.Username), "",
			components.AdminUserRow(nosurf.Token(r), u, true))
	case errors.Is(err, store.ErrInsufficientFunds):
		h.adminAnswer(w, r, "", fmt.Sprintf("%s has %s: granting %s would take the budget below $0.",
			u.Username, components.Money(u.Budget), components.Money(amount)), nil)
	default:
		h.lookupFailed(w, r, err)
	}
}

func (h *Handler) adminLog(w http.ResponseWriter, r *http.Request) {
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	p, err := h.store.AdminLog(r.Context(), page)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, components.AdminLogPage(h.chrome(r, "Admin log", "admin"), p))
}

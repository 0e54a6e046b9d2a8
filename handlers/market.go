package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/a-h/templ"
	"github.com/justinas/nosurf"

	"market/components"
	"market/store"
)

// marketQuery is the search, sort and page a market URL's query asks for. Bad values are left
// for the store to turn into its defaults: a request never fails on them.
func marketQuery(query url.Values) store.MarketQuery {
	page, _ := strconv.Atoi(query.Get("page"))
	return store.MarketQuery{Q: query.Get("q"), Sort: query.Get("sort"), Page: page}
}

func (h *Handler) marketPage(w http.ResponseWriter, r *http.Request) {
	user, _ := currentUser(r)
	q := marketQuery(r.URL.Query())
	var owner int64 // the full page lists the user's items: read with the page
	if !isFragment(r) {
		owner = user.ID
	}
	m, owned, err := h.pageData(r.Context(), &q, owner)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	page, rows := m.page, m.rowsFor(user.Budget) // with the cues of this buyer's budget
	live, err := h.liveURL(r, page.Query)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	if isFragment(r) {
		// The stream follows the search: a new one for the new query, from this version.
		h.render(w, r, http.StatusOK, templ.Join(components.MarketResults(page, rows), components.LiveStreamOOB(live)))
		return
	}
	view := components.MarketView{Page: page, Rows: rows, Owned: owned, Live: live}
	h.render(w, r, http.StatusOK, m.pageFor(r.Context(), h.chrome(r, "Market", "market"), view))
}

// trade buys (purchase_item) or sells (sold_item) one item. A browser is redirected back to the
// market (or to the item's page it traded from) with the message; htmx gets the message, the
// rows that moved and the new budget, or from the item's page its trade form as it stands now.
// A refusal changes nothing on the page but the message: the budget shown stays the true one.
func (h *Handler) trade(w http.ResponseWriter, r *http.Request) {
	user, _ := currentUser(r)
	ctx := r.Context()
	t, buying, budget, onScreen, tradeErr := h.runTrade(r, user)
	if errors.Is(tradeErr, store.ErrCommitUnknown) {
		budget = user.Budget
	}
	flash, alert, err := h.tradeMessage(user, t, buying, tradeErr)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	if !isFragment(r) {
		if flash != "" {
			h.flash(ctx, flash)
		} else {
			h.alert(ctx, alert)
		}
		http.Redirect(w, r, tradedFrom(r), http.StatusFound)
		return
	}
	var flashes, alerts []string
	if flash != "" {
		flashes = []string{flash}
	} else {
		alerts = []string{alert}
	}
	if id, ok := itemOnScreen(r); ok {
		h.itemTradeResult(w, r, id, flashes, alerts, budget)
		return
	}
	var removed int64         // the row that leaves its list
	var added templ.Component // the row that joins a list
	addTo := "owned-rows"     // which list
	switch {
	case flash != "" && buying:
		removed, added = t.Item.ID, components.OwnedRow(t.Item)
	case flash != "":
		removed, added, addTo = t.Item.ID, components.ItemRow(t.Item, t.Budget), "item-rows"
	}
	h.render(w, r, http.StatusOK, components.TradeResult(flashes, alerts, removed, added, addTo, budget, onScreen))
}

// tradeMessage is what a trade's outcome tells the user: a result (flash) or a refusal (alert).
// An error it cannot explain comes back, for a server error.
func (h *Handler) tradeMessage(user store.User, t store.Trade, buying bool, err error) (flash, alert string, _ error) {
	name := t.Item.Name
	switch {
	case err == nil && buying:
		h.logger.Info("item bought", "user_id", user.ID, "item_id", t.Item.ID, "price", t.Item.Price)
		return fmt.Sprintf("Purchased %s!", name), "", nil
	case err == nil:
		h.logger.Info("item sold", "user_id", user.ID, "item_id", t.Item.ID, "price", t.Item.Price)
		return fmt.Sprintf("Sold %s back to the market!", name), "", nil
	case errors.Is(err, store.ErrInsufficientFunds):
		return "", fmt.Sprintf("You don't have enough budget to purchase %s.", name), nil
	case errors.Is(err, store.ErrUnavailable):
		return "", fmt.Sprintf("%s is no longer available.", name), nil
	case errors.Is(err, store.ErrNotOwner):
		return "", fmt.Sprintf("You don't own %s.", name), nil
	case errors.Is(err, store.ErrNotFound):
		return "", "That item does not exist.", nil
	case errors.Is(err, store.ErrCommitUnknown):
		// It may have happened: never tried again, never said to have failed.
		h.logger.Error("trade outcome unknown", "user_id", user.ID, "item_id", t.Item.ID, "err", err)
		if buying {
			return "", fmt.Sprintf("We could not confirm the purchase of %s; see Your trades.", name), nil
		}
		return "", fmt.Sprintf("We could not confirm the sale of %s; see Your trades.", name), nil
	}
	return "", "", err
}

// tradedFrom is where a plain form's trade goes back to: the page of the item it names when it
// was sent from there (its field back), else the market.
func tradedFrom(r *http.Request) string {
	back := r.PostFormValue("back")
	for _, field := range []string{"purchase_item", "sold_item"} {
		if id := r.PostFormValue(field); id != "" && back == "/items/"+id {
			if _, ok := parseID(id); ok {
				return back
			}
		}
	}
	return "/market"
}

// itemOnScreen is the item whose page the htmx request came from, when it is the item traded.
func itemOnScreen(r *http.Request) (int64, bool) {
	cur, err := url.Parse(r.Header.Get("HX-Current-URL"))
	if err != nil {
		return 0, false
	}
	raw, ok := strings.CutPrefix(cur.Path, "/items/")
	if !ok {
		return 0, false
	}
	id, ok := parseID(raw)
	if !ok || (r.PostFormValue("purchase_item") != raw && r.PostFormValue("sold_item") != raw) {
		return 0, false
	}
	return id, true
}

// itemTradeResult answers a trade made from the item's page: the message, its trade form as the
// item stands now (bought, sold back, or taken by someone else), and the budget.
func (h *Handler) itemTradeResult(w http.ResponseWriter, r *http.Request, id int64, flash, alerts []string, budget int64) {
	user, _ := currentUser(r)
	it, err := h.store.Item(r.Context(), id)
	var form templ.Component
	if err == nil {
		v := components.ItemView{Item: it, ViewerID: user.ID, Budget: budget}
		form = components.ItemTrade(nosurf.Token(r), v, true)
	} else if !errors.Is(err, store.ErrNotFound) {
		h.logger.Warn("item after trade", "item_id", id, "err", err) // the trade stands: answer it
	}
	h.render(w, r, http.StatusOK, components.ItemTradeResult(flash, alerts, form, budget))
}

// runTrade runs the purchase or sale the form asks for. budget is the user's budget as the
// trade, done or refused, left it, or as the request found it when the form names no item.
// onScreen, for an htmx request from the market page, is that page (its search, sort and page,
// from HX-Current-URL) as the trade left it, for its count and pager: read with the trade
// (store.TradeOnPage); nil when it is not the market, or when it could not be read.
func (h *Handler) runTrade(r *http.Request, user store.User) (t store.Trade, buying bool, budget int64, onScreen *store.MarketPage, err error) {
	buyID, sellID := r.PostFormValue("purchase_item"), r.PostFormValue("sold_item")
	buying = buyID != ""
	raw := buyID
	if !buying {
		raw = sellID
	}
	id, ok := parseID(raw)
	q, fromMarket := marketOnScreen(r)
	switch {
	case !ok || (buyID != "" && sellID != ""):
		if fromMarket {
			onScreen = h.pageOnScreen(r, q)
		}
		return t, buying, user.Budget, onScreen, store.ErrNotFound
	case !fromMarket && buying:
		t, err = h.store.Buy(r.Context(), user.ID, id)
	case !fromMarket:
		t, err = h.store.Sell(r.Context(), user.ID, id)
	default:
		var after store.PageAfter
		t, after, err = h.store.TradeOnPage(r.Context(), user.ID, id, buying, q)
		switch {
		case after.Err == nil:
			onScreen = &after.Page
		case after.Err != err: // the trade stands: answered without the count
			h.logger.Warn("count after trade", "uri", loggedURI(r), "err", after.Err)
		}
	}
	return t, buying, t.Budget, onScreen, err
}

// marketOnScreen is the market query of the page an htmx request came from (HX-Current-URL:
// its search, sort and page); ok is false when it did not come from the market.
func marketOnScreen(r *http.Request) (q store.MarketQuery, ok bool) {
	if !isFragment(r) {
		return q, false
	}
	cur, err := url.Parse(r.Header.Get("HX-Current-URL"))
	if err != nil || cur.Path != "/market" {
		return q, false
	}
	return marketQuery(cur.Query()), true
}

// pageOnScreen is the market page q at the request's version (nothing was traded), nil when it
// cannot be read.
func (h *Handler) pageOnScreen(r *http.Request, q store.MarketQuery) *store.MarketPage {
	page, _, err := h.market(r.Context(), q)
	if err != nil {
		h.logger.Warn("count on screen", "uri", loggedURI(r), "err", err)
		return nil
	}
	return &page
}

func (h *Handler) itemPage(w http.ResponseWriter, r *http.Request) {
	user, _ := currentUser(r)
	id, ok := h.pathItem(w, r)
	if !ok {
		return
	}
	it, err := h.store.Item(r.Context(), id)
	if h.lookupFailed(w, r, err) {
		return
	}
	v := components.ItemView{Item: it, ViewerID: user.ID, Budget: user.Budget}
	if isFragment(r) {
		h.render(w, r, http.StatusOK, components.ItemDetails(v, "h2", components.DialogTrade(v)))
		return
	}
	c := h.chrome(r, it.Name, "market")
	c.Description = it.Name + ", " + components.Money(it.Price) + ": " + components.FirstLine(it.Description)
	h.render(w, r, http.StatusOK, components.ItemPage(c, v))
}

func (h *Handler) tradesPage(w http.ResponseWriter, r *http.Request) {
	user, _ := currentUser(r)
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	p, err := h.store.Ledger(r.Context(), user.ID, page)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, components.TradesPage(h.chrome(r, "Your trades", "trades"), p))
}

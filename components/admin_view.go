package components

import (
	"fmt"
	"net/url"
	"strconv"
	"time"

	"market/store"
)

// AdminView is the operator's page: the catalogue, the users, the add-item form and the
// market at a glance.
type AdminView struct {
	Items  store.AdminItemsPage
	Users  store.UsersPage
	Add    FormView // the add-item form, as typed, with its errors
	Glance store.Glance
	// Live is the URL of the stream whose events refresh the glance; "" for none.
	Live string
}

// EditItemView is the page that edits one item.
type EditItemView struct {
	Item store.AdminItem
	Form FormView
}

// itemFields are the fields of the add and edit forms; the description is a textarea of its own.
var (
	itemFields = []formField{
		{"name", "Name", "text", "off", "1 to 50 characters"},
		{"price", "Price in dollars", "text", "off", "A whole number from 1 to 1,000,000"},
		{"barcode", "Barcode", "text", "off", "12 digits"},
	}
	descriptionField = formField{"description", "Description", "textarea", "off", "Up to 1,024 characters"}
	allItemFields    = append(itemFields[:len(itemFields):len(itemFields)], descriptionField)
)

// ItemValues are an item's fields as a form shows them.
func ItemValues(it store.Item) map[string]string {
	return map[string]string{
		"name": it.Name, "price": strconv.FormatInt(it.Price, 10), "barcode": it.Barcode, "description": it.Description,
	}
}

func adminItemID(id int64) string  { return "admin-item-" + strconv.FormatInt(id, 10) }
func adminUserID(id int64) string  { return "user-" + strconv.FormatInt(id, 10) }
func adminItemURL(id int64) string { return "/admin/items/" + strconv.FormatInt(id, 10) }
func retireURL(id int64) string    { return adminItemURL(id) + "/retire" }
func grantURL(id int64) string     { return "/admin/users/" + strconv.FormatInt(id, 10) + "/grant" }
func grantInputID(id int64) string { return "amount-" + strconv.FormatInt(id, 10) }
func logTime(t time.Time) string   { return t.Format("2 Jan 2006 15:04:05") }
func isoTime(t time.Time) string   { return t.Format(time.RFC3339) }
func hourLabel(t time.Time) string { return t.Format("15:04") }
func adminPagerURL(q store.MarketQuery, page, upage int) string {
	v := url.Values{}
	if q.Q != "" {
		v.Set("q", q.Q)
	}
	if q.Sort != "" && q.Sort != store.SortName {
		v.Set("sort", q.Sort)
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	if upage > 1 {
		v.Set("upage", strconv.Itoa(upage))
	}
	if len(v) == 0 {
		return "/admin"
	}
	return "/admin?" + v.Encode()
}

func adminItemsText(p store.AdminItemsPage) string {
	noun := "items"
	if p.Total == 1 {
		noun = "item"
	}
	if p.Query.Q != "" {
		return fmt.Sprintf("%d %s match “%s”. Page %d of %d.", p.Total, noun, p.Query.Q, p.Page, p.Pages)
	}
	return fmt.Sprintf("%d %s on sale or owned. Page %d of %d.", p.Total, noun, p.Page, p.Pages)
}

// bar is one bar of the trades chart, in the SVG's own units.
type bar struct {
	X, Y, W, H int
	Hour       time.Time
	Trades     int
}

// chart geometry: 24 bars on a 480-wide baseline at 150, with room for labels below.
const (
	chartW, chartBase = 480, 150
)

// bars lays out the hourly trades as bars scaled to the busiest hour.
func bars(g store.Glance) []bar {
	peak := 1
	for _, n := range g.Hourly {
		peak = max(peak, n)
	}
	out := make([]bar, len(g.Hourly))
	w := chartW / len(g.Hourly)
	for i, n := range g.Hourly {
		h := n * (chartBase - 10) / peak
		out[i] = bar{X: i*w + 2, Y: chartBase - h, W: w - 4, H: h, Hour: g.Start.Add(time.Duration(i) * time.Hour), Trades: n}
	}
	return out
}

// moneyBar is one of the money bars: what it counts and how wide it is, out of chartW.
type moneyBar struct {
	Label string
	Value int64
	W     int
	Class string
}

func moneyBars(g store.Glance) []moneyBar {
	peak := max(g.Budgets, g.OnSale, g.Owned, 1)
	scale := func(v int64) int { return int(v * (chartW - 170) / peak) }
	return []moneyBar{
		{"Budgets", g.Budgets, scale(g.Budgets), "bar-budgets"},
		{"Items on sale", g.OnSale, scale(g.OnSale), "bar-sale"},
		{"Items owned", g.Owned, scale(g.Owned), "bar-owned"},
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func totalTrades(g store.Glance) int {
	n := 0
	for _, v := range g.Hourly {
		n += v
	}
	return n
}

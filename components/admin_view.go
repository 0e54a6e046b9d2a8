package components

import (
	"fmt"
	"net/url"
	"regexp"
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
		verb := "match"
		if p.Total == 1 {
			verb = "matches"
		}
		return fmt.Sprintf("%d %s %s “%s”. Page %d of %d.", p.Total, noun, verb, p.Query.Q, p.Page, p.Pages)
	}
	return fmt.Sprintf("%d %s on sale or owned. Page %d of %d.", p.Total, noun, p.Page, p.Pages)
}

// bar is one bar of the trades chart, in the SVG's own units.
type bar struct {
	X, Y, W, H int
	Hour       time.Time
	Trades     int
}

// Chart geometry, in the SVG's units: a 320-wide drawing, so that its 14-unit labels stay
// readable on a 320 px screen. The bars stand on a baseline at chartBase, chartTop high at most,
// right of the scale's labels (chartLeft).
const (
	chartW, chartBase, chartTop, chartLeft = 320, 160, 20, 32
)

// tick is a line of the trades chart's scale: its value and height.
type tick struct{ Value, Y int }

// scaleTop is the top of the trades chart's scale: the smallest of 2, 4, 6, 10, 20, 40, ...
// that holds the busiest hour.
func scaleTop(g store.Glance) int {
	peak := 1
	for _, n := range g.Hourly {
		peak = max(peak, n)
	}
	for k := 1; ; k *= 10 {
		for _, m := range []int{2, 4, 6, 10} {
			if m*k >= peak {
				return m * k
			}
		}
	}
}

// ticks are the scale's lines: none, half and all of its top.
func ticks(g store.Glance) []tick {
	top := scaleTop(g)
	out := make([]tick, 0, 3)
	for _, v := range []int{0, top / 2, top} {
		out = append(out, tick{Value: v, Y: chartBase - v*(chartBase-chartTop)/top})
	}
	return out
}

// bars lays out the hourly trades as bars on the scale.
func bars(g store.Glance) []bar {
	top := scaleTop(g)
	out := make([]bar, len(g.Hourly))
	w := (chartW - chartLeft) / max(len(g.Hourly), 1)
	for i, n := range g.Hourly {
		h := n * (chartBase - chartTop) / top
		out[i] = bar{X: chartLeft + i*w + 1, Y: chartBase - h, W: w - 2, H: h, Hour: g.Start.Add(time.Duration(i) * time.Hour), Trades: n}
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
	scale := func(v int64) int { return int(v * (chartW - 180) / peak) }
	return []moneyBar{
		{"Budgets", g.Budgets, scale(g.Budgets), "bar-budgets"},
		{"Items on sale", g.OnSale, scale(g.OnSale), "bar-sale"},
		{"Items owned", g.Owned, scale(g.Owned), "bar-owned"},
	}
}

// logAmount finds the amounts of a log line's fields ("budget 895", "price 25").
var logAmount = regexp.MustCompile(`(^|, )(budget|price) (-?[0-9]+)\b`)

// LogValue is a value of the admin log as people read it: its amounts as money ("budget $895").
func LogValue(s string) string {
	return logAmount.ReplaceAllStringFunc(s, func(m string) string {
		sub := logAmount.FindStringSubmatch(m)
		n, err := strconv.ParseInt(sub[3], 10, 64)
		if err != nil {
			return m
		}
		return sub[1] + sub[2] + " " + Money(n)
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

func totalTrades(g store.Glance) int {
	n := 0
	for _, v := range g.Hourly {
		n += v
	}
	return n
}

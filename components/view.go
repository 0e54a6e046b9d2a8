// Package components renders the market's HTML with templ: full pages (…Page) and the
// fragments htmx swaps into them.
package components

import (
	"context"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/a-h/templ"

	"market/store"
)

// Assets are the content-hashed URLs of the static files every page loads.
type Assets struct {
	CSS, JS, HTMX, SSE string
	// Icon is the favicon.
	Icon string
	// AdminCSS and AdminJS are loaded by the operator's and account pages only.
	AdminCSS, AdminJS string
}

// Chrome is what every full page needs besides its own content: the frame around it.
type Chrome struct {
	Title string
	// Description is the page's meta description; "" for the market's.
	Description string
	CSRFToken   string
	Assets      Assets
	// Username is empty for anonymous visitors.
	Username string
	// Admin: the user runs the market (the navigation bar links to /admin).
	Admin  bool
	Budget int64
	// Flash holds results for #flash, Alerts refusals and errors for #flash-alert.
	Flash, Alerts []string
	// Shortcuts reports whether single-key shortcuts are on.
	Shortcuts bool
	// Nav is the current section, for aria-current: "home", "market", "trades", "account",
	// "admin", "login", "register".
	Nav string
	// Unconfirmed is the signed-in user's address while it is not confirmed (a banner says
	// so), else "".
	Unconfirmed string
	// Invalid marks a page whose form came back with errors: its title starts with "Error: ".
	Invalid bool
	// framing: the page is rendered for a frame, with marks where each viewer's parts go.
	framing bool
}

// invalidIf marks c as the page of a form with errors when it is one.
func invalidIf(c Chrome, invalid bool) Chrome {
	c.Invalid = c.Invalid || invalid
	return c
}

// LoggedIn reports whether a user is signed in.
func (c Chrome) LoggedIn() bool { return c.Username != "" }

// Money formats whole currency units with thousands separators: $1,000 and -$25.
func Money(v int64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	s := strconv.FormatInt(v, 10)
	var b strings.Builder
	b.Grow(len(s) + len(s)/3 + 2)
	b.WriteString(sign)
	b.WriteByte('$')
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// MarketView is the market page's own content. Rows renders the rows of #item-rows (ItemRows
// of Page.Items); the caller passes it so that it can reuse rows it rendered before.
type MarketView struct {
	Page  store.MarketPage
	Rows  templ.Component
	Owned []store.Item
	// Live is the URL of the page's live stream (GET /market/events with the page's version
	// and query); "" for none.
	Live string
}

// FormView carries what a user typed into a form and the first error of each field.
type FormView struct {
	Values map[string]string
	Errors map[string]string
	// Next is where a login goes afterwards.
	Next string
}

// Value is the typed value of a field.
func (f FormView) Value(field string) string { return f.Values[field] }

// Error is the error shown next to a field, or "".
func (f FormView) Error(field string) string { return f.Errors[field] }

func itemID(id int64) string                  { return "item-" + strconv.FormatInt(id, 10) }
func idString(id int64) string                { return strconv.FormatInt(id, 10) }
func itemURL(id int64) string                 { return "/items/" + strconv.FormatInt(id, 10) }
func buttonID(action string, id int64) string { return action + "-" + strconv.FormatInt(id, 10) }

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// messageEscaper escapes what text content needs, and only that: a message such as "You don't
// own Phone." reads the same in the page's source as on screen.
var messageEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// Message renders a message as text content (never inside an attribute).
func Message(m string) templ.Component {
	return templ.ComponentFunc(func(_ context.Context, w io.Writer) error {
		_, err := io.WriteString(w, messageEscaper.Replace(m))
		return err
	})
}

// NoBudget stands for a budget not known where the rows are rendered (rows shared by many
// viewers): no affordability cue, which app.js then fills from the page's budget.
const NoBudget int64 = -1

// ShortText is what a buyer with budget lacks to buy at price ("$410 more than you have"), or
// "" when they can afford it or the budget is not known.
func ShortText(price, budget int64) string {
	if !Short(price, budget) {
		return ""
	}
	return Money(price-budget) + " more than you have"
}

// Short reports whether a buyer with budget lacks money to buy at price: only then does an
// item's row depend on the budget (its cue, its button marked aria-disabled).
func Short(price, budget int64) bool { return budget >= 0 && price > budget }

func shortID(id int64) string { return "short-" + strconv.FormatInt(id, 10) }

// FirstLine is the first line of a description, for a list's one-line summary.
func FirstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return s
}

// itemCount is "1 item" or "N items".
func itemCount(n int) string {
	if n == 1 {
		return "1 item"
	}
	return strconv.Itoa(n) + " items"
}

// ownedValue is what the items cost: the prices their owner paid.
func ownedValue(items []store.Item) int64 {
	var v int64
	for _, it := range items {
		v += it.Price
	}
	return v
}

// SignedMoney is Money with its sign, for a change of a budget: +$50, -$20.
func SignedMoney(v int64) string {
	if v > 0 {
		return "+" + Money(v)
	}
	return Money(v)
}

package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"market/store"
)

func id(it store.Item) string { return strconv.FormatInt(it.ID, 10) }

func TestMarketPage(t *testing.T) {
	app := newTestApp(t)
	c := app.signUp("alice")
	c.get("/market") // the sign-up flash
	doc := c.get("/market").doc(t)
	rows := doc.Find("#item-rows tr[id^='item-']")
	if rows.Length() < 20 {
		t.Fatalf("%d items on sale, want the demo catalogue of 20 or more", rows.Length())
	}
	var names []string
	rows.Each(func(_ int, s *goquery.Selection) { names = append(names, text(s.Find("th"))) })
	for i := 1; i < len(names); i++ {
		if strings.ToLower(names[i-1]) > strings.ToLower(names[i]) {
			t.Errorf("not sorted by name: %q before %q", names[i-1], names[i])
		}
	}
	phone := app.item("Phone")
	row := doc.Find("#item-" + id(phone))
	if !strings.Contains(text(row), phone.Barcode) || !strings.Contains(text(row), "$500") {
		t.Errorf("Phone row %q lacks barcode or price", text(row))
	}
	btn := row.Find(`button[name="purchase_item"][value="` + id(phone) + `"]`)
	formID, _ := btn.Attr("form")
	form := doc.Find("form#" + formID)
	if btn.Length() != 1 || form.AttrOr("method", "") != "post" || form.AttrOr("action", "") != "/market" ||
		form.Find(`input[name="csrf_token"]`).Length() != 1 {
		t.Errorf("buy button is not a real form submit with a CSRF field")
	}
	if href, _ := row.Find("a").Attr("href"); href != "/items/"+id(phone) {
		t.Errorf("no link to the description: %q", href)
	}
	if doc.Find("#owned-rows tr").Length() != 0 {
		t.Error("a new user owns items")
	}
	if doc.Find(`#flash[role="status"]`).Length() != 1 || doc.Find(`#flash-alert[role="alert"]`).Length() != 1 {
		t.Error("live regions missing")
	}
	if cc := c.get("/market").Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("signed-in page Cache-Control %q, want no-store: a budget must not come from a cache", cc)
	}
}

// trade posts a plain purchase or sale and follows the redirect to read the message.
func (c *client) trade(field, value string) (response, string) {
	res := c.post("/market", url.Values{field: {value}})
	msg := ""
	if res.StatusCode == http.StatusFound {
		msg = messages(c.get("/market").doc(c.app.t))
	}
	return res, msg
}

func TestTradePlain(t *testing.T) {
	app := newTestApp(t)
	c := app.signUp("alice")
	c.get("/market")
	phone, sofa, laptop := app.item("Phone"), app.item("Sofa"), app.item("Laptop")
	other := app.signUp("bob")
	if res, _ := other.trade("purchase_item", id(laptop)); res.StatusCode != http.StatusFound {
		t.Fatal("bob could not buy the laptop")
	}

	steps := []struct {
		name, field, value, want string
		wantBudget               string
	}{
		{"buy", "purchase_item", id(phone), "Purchased Phone!", "$500"},
		{"buy what is sold", "purchase_item", id(phone), "Phone is no longer available.", "$500"},
		{"buy what another owns", "purchase_item", id(laptop), "Laptop is no longer available.", "$500"},
		{"buy beyond budget", "purchase_item", id(sofa), "You don't have enough budget to purchase Sofa.", "$500"},
		{"buy unknown id", "purchase_item", "99999", "That item does not exist.", "$500"},
		{"buy malformed id", "purchase_item", "abc", "That item does not exist.", "$500"},
		{"buy negative id", "purchase_item", "-1", "That item does not exist.", "$500"},
		{"sell what another owns", "sold_item", id(laptop), "You don't own Laptop.", "$500"},
		{"sell unknown id", "sold_item", "0", "That item does not exist.", "$500"},
		{"sell", "sold_item", id(phone), "Sold Phone back to the market!", "$1,000"},
		{"sell again", "sold_item", id(phone), "You don't own Phone.", "$1,000"},
		{"neither field", "other", "1", "That item does not exist.", "$1,000"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			res, msg := c.trade(s.field, s.value)
			if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/market" {
				t.Fatalf("%d → %q, want 302 → /market", res.StatusCode, res.Header.Get("Location"))
			}
			if msg != s.want {
				t.Errorf("message %q, want %q", msg, s.want)
			}
			if got := text(c.get("/market").doc(t).Find("#budget")); got != s.wantBudget {
				t.Errorf("budget %s, want %s", got, s.wantBudget)
			}
		})
	}
	if problems, err := app.store.Check(context.Background()); err != nil || len(problems) > 0 {
		t.Errorf("check: %v %v", problems, err)
	}
}

func TestTradeShowsOwnedItems(t *testing.T) {
	app := newTestApp(t)
	c := app.signUp("alice")
	phone := app.item("Phone")
	c.trade("purchase_item", id(phone))
	doc := c.get("/market").doc(t)
	if doc.Find("#item-rows #item-"+id(phone)).Length() != 0 {
		t.Error("bought item still on the market")
	}
	if doc.Find(`#owned-rows #item-`+id(phone)+` button[name="sold_item"][value="`+id(phone)+`"]`).Length() != 1 {
		t.Error("bought item not under the user's items with a sell button")
	}
}

func TestManyBuyersOneItem(t *testing.T) {
	app := newTestApp(t)
	laptop := app.item("Laptop")
	const n = 10
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = app.signUp("buyer" + strconv.Itoa(i))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	bought := 0
	for _, c := range clients {
		c.web.Token = c.token()
	}
	for _, c := range clients {
		wg.Go(func() {
			res, err := c.web.Buy(laptop.ID)
			switch {
			case err != nil || res.StatusCode != http.StatusOK:
				t.Errorf("a purchase in the race: %v %v", err, res.Response)
			case strings.Contains(res.Body, "Purchased Laptop!"):
				mu.Lock()
				bought++
				mu.Unlock()
			case !strings.Contains(res.Body, "Laptop is no longer available."):
				t.Errorf("a purchase that lost the race: %.300s", res.Body)
			}
		})
	}
	wg.Wait()
	if owner := app.owner(laptop.ID); bought != 1 || owner == 0 {
		t.Fatalf("%d purchases succeeded (owner %d), want exactly one", bought, owner)
	}
	totals := app.totals()
	if totals.Budgets+totals.Owned != totals.Granted {
		t.Errorf("money created or lost: %+v", totals)
	}
}

func TestCSRFRefused(t *testing.T) {
	app := newTestApp(t)
	c := app.signUp("alice")
	phone := app.item("Phone")
	tests := []struct {
		name    string
		form    url.Values
		headers map[string]string
	}{
		{"no token", url.Values{"purchase_item": {id(phone)}}, nil},
		{"wrong token", url.Values{"purchase_item": {id(phone)}, "csrf_token": {"AAAA"}}, nil},
		{"foreign origin", url.Values{"purchase_item": {id(phone)}, "csrf_token": {c.token()}}, map[string]string{"Origin": "https://evil.example"}},
		{"htmx without header", url.Values{"purchase_item": {id(phone)}}, map[string]string{"HX-Request": "true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := c.do(http.MethodPost, "/market", tt.form, tt.headers)
			if res.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d, want 403", res.StatusCode)
			}
			if !strings.Contains(strings.ToLower(res.body), "reload the page and try again.") {
				t.Errorf("403 without a way forward: %s", res.body)
			}
			// A plain form's 403 is a page of the signed-in user's, not of a stranger's.
			if tt.headers == nil && text(res.doc(t).Find("#budget")) != "$1,000" {
				t.Error("the 403 page does not show the signed-in user's budget")
			}
			if app.owner(phone.ID) != 0 {
				t.Fatal("a refused request bought the item")
			}
		})
	}
	// Unsafe requests meet the CSRF check before routing, even on unknown paths.
	if res := c.do(http.MethodPost, "/no-such-page", url.Values{}, nil); res.StatusCode != http.StatusForbidden {
		t.Errorf("POST to unknown path without token: %d, want 403", res.StatusCode)
	}
}

func TestCookies(t *testing.T) {
	app := newTestApp(t)
	c := app.client()
	first := c.get("/login")
	res := c.post("/register", url.Values{"username": {"alice"}, "email": {"a@example.com"},
		"password": {"long enough"}, "confirm_password": {"long enough"}})
	seen := map[string]bool{}
	for _, raw := range append(first.Header.Values("Set-Cookie"), res.Header.Values("Set-Cookie")...) {
		name, _, _ := strings.Cut(raw, "=")
		seen[name] = true
		if !strings.Contains(raw, "HttpOnly") || !strings.Contains(raw, "SameSite=Lax") {
			t.Errorf("cookie %s lacks HttpOnly or SameSite=Lax: %s", name, raw)
		}
	}
	if !seen["session"] || !seen["csrf_token"] {
		t.Errorf("cookies set: %v, want session and csrf_token", seen)
	}
}

func TestRoutes(t *testing.T) {
	app := newTestApp(t)
	anon := app.client()
	user := app.signUp("alice")
	phone := app.item("Phone")
	tests := []struct {
		name, method, path string
		c                  *client
		wantStatus         int
		wantText           string
	}{
		{"home", "GET", "/", anon, 200, "Create an account"},
		{"home alias", "GET", "/home", anon, 200, "Create an account"},
		{"register form", "GET", "/register", anon, 200, "Confirm password"},
		{"login form", "GET", "/login", anon, 200, "Log in"},
		{"item page", "GET", "/items/" + id(phone), user, 200, phone.Description},
		{"unknown item", "GET", "/items/99999", user, 404, "There is nothing at this address."},
		{"malformed item id", "GET", "/items/abc", user, 404, "There is nothing at this address."},
		{"signed item id", "GET", "/items/+" + id(phone), user, 404, "There is nothing at this address."},
		{"zero-padded item id", "GET", "/items/0" + id(phone), user, 404, "There is nothing at this address."},
		{"unknown asset", "GET", "/assets/nope.js", anon, 404, "There is nothing at this address."},
		{"item page needs login", "GET", "/items/" + id(phone), anon, 302, ""},
		{"trades page", "GET", "/trades", user, 200, "Opening budget"},
		{"unknown path", "GET", "/no-such-page", anon, 404, "There is nothing at this address."},
		{"wrong method", "PUT", "/market", user, 403, ""}, // unsafe: the CSRF check answers first
		{"wrong safe method", "GET", "/logout/x", anon, 404, ""},
		{"health", "GET", "/healthz", anon, 200, "ok"},
		{"ready", "GET", "/readyz", anon, 200, "ready"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := tt.c.do(tt.method, tt.path, nil, nil)
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("%s %s: %d, want %d", tt.method, tt.path, res.StatusCode, tt.wantStatus)
			}
			if !strings.Contains(res.body, tt.wantText) {
				t.Errorf("body lacks %q", tt.wantText)
			}
		})
	}
	// A wrong method with a valid token reaches the mux: 405 with Allow.
	res := user.do(http.MethodPut, "/market", url.Values{"csrf_token": {user.token()}}, nil)
	if res.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(res.Header.Get("Allow"), "GET") {
		t.Errorf("PUT /market with token: %d Allow %q, want 405", res.StatusCode, res.Header.Get("Allow"))
	}
	for _, path := range []string{"/healthz", "/readyz", "/assets/" + "app.css"} {
		if res := anon.do(http.MethodPost, path, nil, map[string]string{"X-CSRF-Token": anon.token()}); res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST %s with token: %d, want 405", path, res.StatusCode)
		}
	}
	if res := anon.do(http.MethodDelete, "/login", nil, map[string]string{"X-CSRF-Token": anon.token()}); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("DELETE /login with token: %d, want 405", res.StatusCode)
	}
}

func TestAssets(t *testing.T) {
	app := newTestApp(t)
	c := app.client()
	doc := c.get("/").doc(t)
	for _, sel := range []string{`link[rel="stylesheet"]`, `script[src*="htmx"]`, `script[src*="app."]`} {
		attr := "src"
		if strings.HasPrefix(sel, "link") {
			attr = "href"
		}
		src, ok := doc.Find(sel).Attr(attr)
		if !ok {
			t.Fatalf("no %s on the page", sel)
		}
		res := c.get(src, map[string]string{"Accept-Encoding": "gzip"})
		if res.StatusCode != 200 || res.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" ||
			res.Header.Get("Content-Encoding") != "gzip" {
			t.Errorf("%s: %d cache %q encoding %q", src, res.StatusCode, res.Header.Get("Cache-Control"), res.Header.Get("Content-Encoding"))
		}
	}
	if res := c.get("/assets/app.css"); res.StatusCode != 200 || !strings.Contains(res.body, "focus-visible") {
		t.Errorf("plain /assets/app.css: %d", res.StatusCode)
	}
	if res := c.get("/assets/nope.js"); res.StatusCode != 404 {
		t.Errorf("unknown asset: %d", res.StatusCode)
	}
}

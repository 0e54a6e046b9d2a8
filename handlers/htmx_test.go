package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
)

// Every htmx endpoint answers in two shapes: plain and boosted or history-restore requests get
// the full page, htmx requests the fragment; all of them say Vary: HX-Request.
func TestPageOrFragment(t *testing.T) {
	app := newTestApp(t)
	c := app.signUp("alice")
	phone := app.item("Phone")
	shapes := []struct {
		name     string
		headers  map[string]string
		wantPage bool
	}{
		{"plain", nil, true},
		{"htmx", map[string]string{"HX-Request": "true"}, false},
		{"boosted", map[string]string{"HX-Request": "true", "HX-Boosted": "true"}, true},
		{"history restore", map[string]string{"HX-Request": "true", "HX-History-Restore-Request": "true"}, true},
	}
	paths := []struct{ path, fragmentSelector string }{
		{"/market?q=phone", `tr#item-` + id(phone)},
		{"/items/" + id(phone), `#item-dialog-title`},
	}
	for _, p := range paths {
		for _, s := range shapes {
			t.Run(p.path+" "+s.name, func(t *testing.T) {
				res := c.get(p.path, s.headers)
				if res.StatusCode != http.StatusOK {
					t.Fatalf("status %d", res.StatusCode)
				}
				if !strings.Contains(strings.Join(res.Header.Values("Vary"), ","), "HX-Request") {
					t.Errorf("Vary %q lacks HX-Request", res.Header.Values("Vary"))
				}
				isPage := strings.Contains(res.body, "<html") && strings.Contains(res.body, "<body")
				if isPage != s.wantPage {
					t.Fatalf("full page = %v, want %v", isPage, s.wantPage)
				}
				if !s.wantPage {
					doc := res.doc(t)
					if doc.Find(p.fragmentSelector).Length() != 1 {
						t.Errorf("fragment lacks %s: %s", p.fragmentSelector, res.body)
					}
				}
			})
		}
	}
}

// Pages that have no fragment answer every shape with the whole page; a trade answers a
// browser and a boosted form with a redirect, and htmx with a fragment.
func TestShapesOfOtherEndpoints(t *testing.T) {
	app := newTestApp(t)
	anon := app.client()
	htmx := map[string]string{"HX-Request": "true"}
	for _, path := range []string{"/", "/home", "/login", "/register"} {
		for _, h := range []map[string]string{nil, htmx} {
			if res := anon.get(path, h); res.StatusCode != http.StatusOK || !strings.Contains(res.body, "<html") {
				t.Errorf("GET %s (%v): %d, want the page", path, h, res.StatusCode)
			}
		}
	}
	c := app.signUp("alice")
	if res := c.get("/trades", htmx); !strings.Contains(res.body, "<html") {
		t.Error("GET /trades for htmx is not the page")
	}
	mouse := app.item("Mouse")
	for _, tt := range []struct {
		name    string
		headers map[string]string
		want    int
	}{
		{"plain", map[string]string{}, http.StatusFound},
		{"boosted", map[string]string{"HX-Request": "true", "HX-Boosted": "true"}, http.StatusFound},
		{"htmx", map[string]string{"HX-Request": "true"}, http.StatusOK},
	} {
		for _, field := range []string{"purchase_item", "sold_item"} {
			tt.headers["X-CSRF-Token"] = c.token()
			res := c.do(http.MethodPost, "/market", url.Values{field: {id(mouse)}}, tt.headers)
			if res.StatusCode != tt.want {
				t.Errorf("%s %s: %d, want %d", tt.name, field, res.StatusCode, tt.want)
			}
			if tt.want == http.StatusFound && res.Header.Get("Location") != "/market" {
				t.Errorf("%s %s redirects to %q", tt.name, field, res.Header.Get("Location"))
			}
		}
	}
}

func TestHtmxPurchaseAndSale(t *testing.T) {
	app := newTestApp(t)
	c := app.signUp("alice")
	phone := app.item("Phone")

	res := c.htmx("/market", url.Values{"purchase_item": {id(phone)}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("purchase: %d", res.StatusCode)
	}
	if strings.Contains(res.body, "<html") || strings.Contains(res.body, "<body") {
		t.Fatal("purchase answered a page, want a fragment")
	}
	if len(res.body) > 2048 {
		t.Errorf("fragment is %d bytes, want under 2 KB", len(res.body))
	}
	doc := res.doc(t)
	if got := text(doc.Find(`[hx-swap-oob="innerHTML:#flash"] p`)); got != "Purchased Phone!" {
		t.Errorf("flash %q", got)
	}
	if doc.Find(`[hx-swap-oob="innerHTML:#flash-alert"] p`).Length() != 0 {
		t.Error("success also filled the alert region")
	}
	if doc.Find(`template tr#item-`+id(phone)+`[hx-swap-oob="delete"]`).Length() != 1 {
		t.Error("row not removed from the market out of band")
	}
	added := doc.Find(`template tbody[hx-swap-oob="beforeend:#owned-rows"] tr#item-` + id(phone))
	if added.Find(`button[name="sold_item"][value="`+id(phone)+`"]`).Length() != 1 {
		t.Error("row not added to the user's items with a sell button")
	}
	if b := doc.Find(`span#budget[hx-swap-oob="true"]`); text(b) != "$500" {
		t.Errorf("budget %q, want $500 out of band", text(b))
	}

	res = c.htmx("/market", url.Values{"sold_item": {id(phone)}})
	doc = res.doc(t)
	if got := text(doc.Find(`[hx-swap-oob="innerHTML:#flash"] p`)); got != "Sold Phone back to the market!" {
		t.Errorf("flash %q", got)
	}
	if doc.Find(`template tbody[hx-swap-oob="beforeend:#item-rows"] tr#item-`+id(phone)+` button[name="purchase_item"]`).Length() != 1 {
		t.Error("sold row not back on the market")
	}
	if b := doc.Find(`span#budget[hx-swap-oob="true"]`); text(b) != "$1,000" {
		t.Errorf("budget %q, want $1,000", text(b))
	}
}

func TestHtmxRefusals(t *testing.T) {
	app := newTestApp(t)
	c := app.signUp("alice")
	bob := app.signUp("bob")
	laptop, sofa, phone := app.item("Laptop"), app.item("Sofa"), app.item("Phone")
	bob.buy(laptop.ID)

	tests := []struct {
		name, field, value, want string
	}{
		{"too expensive", "purchase_item", id(sofa), "You don't have enough budget to purchase Sofa."},
		{"already sold", "purchase_item", id(laptop), "Laptop is no longer available."},
		{"not yours", "sold_item", id(laptop), "You don't own Laptop."},
		{"on the market, not yours", "sold_item", id(phone), "You don't own Phone."},
		{"unknown id", "purchase_item", "424242", "That item does not exist."},
		{"garbage id", "purchase_item", "1; DROP TABLE items", "That item does not exist."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := app.totals()
			res := c.htmx("/market", url.Values{tt.field: {tt.value}})
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", res.StatusCode)
			}
			doc := res.doc(t)
			if got := text(doc.Find(`[hx-swap-oob="innerHTML:#flash-alert"] p`)); got != tt.want {
				t.Errorf("alert %q, want %q", got, tt.want)
			}
			if got := text(doc.Find(`span#budget[hx-swap-oob="true"]`)); got != "$1,000" {
				t.Errorf("budget %q, want the true $1,000", got)
			}
			if doc.Find(`tr, [hx-swap-oob^="beforeend"], [hx-swap-oob="delete"]`).Length() != 0 {
				t.Error("a refusal moved a row")
			}
			if !strings.Contains(res.body, tt.want) {
				t.Errorf("the message is not in the body as written (apostrophes escaped?): %s", res.body)
			}
			after := app.totals()
			if after != before {
				t.Errorf("money moved on a refusal: %+v → %+v", before, after)
			}
		})
	}
}

func TestHtmxExpiredSessionAndToken(t *testing.T) {
	app := newTestApp(t)
	c := app.signUp("alice")
	phone := app.item("Phone")

	// A bad token: 403 with a message asking to reload, put into #flash-alert, nothing else swapped.
	res := c.do(http.MethodPost, "/market", url.Values{"purchase_item": {id(phone)}},
		map[string]string{"HX-Request": "true", "X-CSRF-Token": "bm90IGEgdG9rZW4="})
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("bad token: %d, want 403", res.StatusCode)
	}
	if res.Header.Get("HX-Reswap") != "none" {
		t.Errorf("HX-Reswap %q, want none", res.Header.Get("HX-Reswap"))
	}
	for _, region := range []string{"#flash", "#flash-alert"} {
		if got := text(res.doc(t).Find(`[hx-swap-oob="innerHTML:` + region + `"] p`)); !strings.Contains(got, "Reload the page") {
			t.Errorf("%s gets %q, which does not say to reload", region, got)
		}
	}
	if strings.Contains(res.body, "<html") {
		t.Error("403 to htmx is a whole page")
	}

	// A session that expired while the page stood idle: 401 with HX-Redirect to the login page.
	tok := c.token()
	app.clock.Advance(2 * time.Hour)
	res = c.do(http.MethodPost, "/market", url.Values{"purchase_item": {id(phone)}},
		map[string]string{"HX-Request": "true", "X-CSRF-Token": tok})
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("HX-Redirect") != "/login" {
		t.Errorf("expired session: %d HX-Redirect %q, want 401 /login", res.StatusCode, res.Header.Get("HX-Redirect"))
	}
	if !strings.Contains(strings.Join(res.Header.Values("Vary"), ","), "HX-Request") {
		t.Error("the 401 to htmx does not say Vary: HX-Request")
	}
	if got := messages(c.get("/login").doc(t)); got != "Please log in to access this page." {
		t.Errorf("login page after the redirect says %q", got)
	}
	// Sent from a page (htmx says which), the way back leads there after logging in.
	res = c.do(http.MethodGet, "/items/"+id(phone), nil,
		map[string]string{"HX-Request": "true", "HX-Current-URL": app.server.URL + "/market?q=lap&sort=price"})
	if got, want := res.Header.Get("HX-Redirect"), "/login?next=%2Fmarket%3Fq%3Dlap%26sort%3Dprice"; got != want {
		t.Errorf("HX-Redirect %q, want %q", got, want)
	}
	res = c.do(http.MethodGet, "/items/"+id(phone), nil,
		map[string]string{"HX-Request": "true", "HX-Current-URL": "https://evil.example//evil.example/x"})
	if got := res.Header.Get("HX-Redirect"); got != "/login" {
		t.Errorf("HX-Redirect %q for a foreign current URL, want /login", got)
	}
	if app.owner(phone.ID) != 0 {
		t.Error("a refused request bought the item")
	}
}

// Logging out, or in as someone else, in one tab leaves the pages open in other tabs with a
// token that no longer works: they cannot trade for whoever is signed in now.
func TestStaleTabCannotTradeForTheNextUser(t *testing.T) {
	app := newTestApp(t)
	app.signUp("bob")
	browser := app.signUp("alice")
	mouse := app.item("Mouse")
	trade := func(tok string) int {
		return browser.do(http.MethodPost, "/market", url.Values{"purchase_item": {id(mouse)}},
			map[string]string{"HX-Request": "true", "X-CSRF-Token": tok}).StatusCode
	}
	stale := browser.token() // alice's market, left open in a second tab
	browser.get("/logout")
	if code := trade(stale); code != http.StatusForbidden {
		t.Errorf("a trade from a page left open before logout: %d, want 403", code)
	}
	stale = browser.token() // the login page, left open
	res := browser.post("/login", url.Values{"username": {"bob"}, "password": {"correct horse"}})
	if res.StatusCode != http.StatusFound {
		t.Fatalf("bob's login: %d", res.StatusCode)
	}
	if code := trade(stale); code != http.StatusForbidden {
		t.Errorf("a trade with a token from before bob's login: %d, want 403", code)
	}
	if owner := app.owner(mouse.ID); owner != 0 {
		t.Errorf("a stale page bought the mouse for user %d", owner)
	}
	if code := trade(browser.token()); code != http.StatusOK || app.owner(mouse.ID) == 0 {
		t.Errorf("bob's own page cannot trade: %d", code)
	}
}

func TestPageCarriesHtmxSetup(t *testing.T) {
	app := newTestApp(t)
	c := app.signUp("alice")
	doc := c.get("/market").doc(t)
	headers, _ := doc.Find("body").Attr("hx-headers")
	if !strings.Contains(headers, `"X-CSRF-Token"`) {
		t.Errorf("body hx-headers %q lacks the CSRF token", headers)
	}
	cfg, _ := doc.Find(`meta[name="htmx-config"]`).Attr("content")
	for _, want := range []string{`"includeIndicatorStyles":false`, `"allowEval":false`, `"defaultSettleDelay":0`} {
		if !strings.Contains(cfg, want) {
			t.Errorf("htmx-config lacks %s", want)
		}
	}
	doc.Find("script").Each(func(_ int, s *goquery.Selection) {
		if _, ok := s.Attr("src"); !ok || strings.TrimSpace(s.Text()) != "" {
			t.Error("inline script on the page")
		}
	})
	if doc.Find("[style]").Length() > 0 || doc.Find("style").Length() > 0 {
		t.Error("inline style on the page")
	}
	doc.Find("*").Each(func(_ int, s *goquery.Selection) {
		for _, a := range s.Nodes[0].Attr {
			if strings.HasPrefix(a.Key, "on") || strings.HasPrefix(a.Key, "hx-on") {
				t.Errorf("inline handler %s on <%s>", a.Key, s.Nodes[0].Data)
			}
		}
	})
	if doc.Find(`button[name="purchase_item"][hx-post="/market"]`).Length() < 20 {
		t.Error("buy buttons lack hx-post")
	}
}

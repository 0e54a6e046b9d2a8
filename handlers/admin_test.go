package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"market/store"
)

// signUpAdmin registers a user, makes them an admin (as `market role` does) and returns their
// client.
func (a *testApp) signUpAdmin(username string) *client {
	a.t.Helper()
	c := a.signUp(username)
	if _, err := a.store.SetRole(context.Background(), username, store.RoleAdmin); err != nil {
		a.t.Fatal(err)
	}
	return c
}

func itemForm(name, price, barcode, description string) url.Values {
	return url.Values{"name": {name}, "price": {price}, "barcode": {barcode}, "description": {description}}
}

// nextMessages follows a redirect and returns the messages its page shows.
func (c *client) nextMessages(res response) string {
	c.app.t.Helper()
	if res.StatusCode != http.StatusSeeOther {
		c.app.t.Fatalf("want 303, got %d: %s", res.StatusCode, res.body)
	}
	return messages(c.get(res.Header.Get("Location")).doc(c.app.t))
}

// Every admin route: anonymous visitors are sent to log in (htmx: 401 and HX-Redirect),
// signed-in users who are not admins get the 404 page, admins get the page or the action.
func TestAdminRoutesAccess(t *testing.T) {
	app := newTestApp(t)
	admin := app.signUpAdmin("boss")
	user := app.signUp("alice")
	anon := app.client()
	kettle := strconv.FormatInt(app.item("Kettle").ID, 10)
	alice := strconv.FormatInt(userID(t, app, "alice"), 10)
	routes := []struct {
		method, path string
		form         url.Values
		adminStatus  int
	}{
		{"GET", "/admin", nil, 200},
		{"GET", "/admin/glance", nil, 200},
		{"GET", "/admin/log", nil, 200},
		{"GET", "/admin/items/" + kettle, nil, 200},
		{"POST", "/admin/items", itemForm("Kite", "12", "555555555555", ""), 303},
		{"POST", "/admin/items/" + kettle, itemForm("Kettle", "30", app.item("Kettle").Barcode, ""), 303},
		{"POST", "/admin/users/" + alice + "/grant", url.Values{"amount": {"5"}}, 303},
		{"POST", "/admin/items/" + kettle + "/retire", nil, 303},
	}
	for _, rt := range routes {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			send := func(c *client, headers map[string]string) response {
				if rt.method == "GET" {
					return c.get(rt.path, headers)
				}
				form := url.Values{}
				for k, v := range rt.form {
					form[k] = v
				}
				return c.post(rt.path, form, headers)
			}
			res := send(anon, nil)
			if res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Header.Get("Location"), "/login?next=") {
				t.Errorf("anonymous: %d %q, want 302 to the login page", res.StatusCode, res.Header.Get("Location"))
			}
			res = send(anon, map[string]string{"HX-Request": "true"})
			if res.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(res.Header.Get("HX-Redirect"), "/login") {
				t.Errorf("anonymous htmx: %d %q, want 401 with HX-Redirect", res.StatusCode, res.Header.Get("HX-Redirect"))
			}
			if res := send(user, nil); res.StatusCode != http.StatusNotFound || strings.Contains(res.body, "admin") {
				t.Errorf("not an admin: %d, want the plain 404 page", res.StatusCode)
			}
			if res := send(admin, nil); res.StatusCode != rt.adminStatus {
				t.Errorf("admin: %d, want %d: %s", res.StatusCode, rt.adminStatus, res.body)
			}
		})
	}
	// Without the CSRF token an admin's post is refused and changes nothing.
	res := admin.do("POST", "/admin/users/"+alice+"/grant", url.Values{"amount": {"100"}}, nil)
	if res.StatusCode != http.StatusForbidden || budgetOf(t, app, "alice") != 1005 {
		t.Errorf("grant without CSRF token: %d, budget %d", res.StatusCode, budgetOf(t, app, "alice"))
	}
	// The navigation bar links to /admin for admins only, and to /account for everyone.
	if n := admin.get("/market").doc(t).Find(`nav a[href="/admin"]`).Length(); n != 1 {
		t.Errorf("admin's navigation: %d links to /admin", n)
	}
	doc := user.get("/market").doc(t)
	if doc.Find(`nav a[href="/admin"]`).Length() != 0 || doc.Find(`nav a[href="/account"]`).Length() != 1 {
		t.Error("a user's navigation: want /account and no /admin")
	}
}

func userID(t *testing.T, app *testApp, name string) int64 {
	t.Helper()
	users, err := app.store.Users(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if u.Username == name {
			return u.ID
		}
	}
	t.Fatalf("no user %s", name)
	return 0
}

func budgetOf(t *testing.T, app *testApp, name string) int64 {
	t.Helper()
	u, err := app.store.User(context.Background(), userID(t, app, name))
	if err != nil {
		t.Fatal(err)
	}
	return u.Budget
}

func TestAdminAddItem(t *testing.T) {
	app := newTestApp(t)
	admin := app.signUpAdmin("boss")
	buyer := app.signUp("alice")
	kettle := app.item("Kettle")
	long := strings.Repeat("x", 51)
	cases := []struct {
		name  string
		form  url.Values
		field string
		want  string
	}{
		{"no name", itemForm("", "5", "111111111111", ""), "name", "Enter a name."},
		{"long name", itemForm(long, "5", "111111111111", ""), "name", "Use at most 50 characters for the name."},
		{"taken name", itemForm("Kettle", "5", "111111111111", ""), "name", "Another item has that name. Choose another."},
		{"no price", itemForm("Kite", "", "111111111111", ""), "price", "Enter a price."},
		{"price not a number", itemForm("Kite", "5.50", "111111111111", ""), "price", "Enter the price as a whole number of dollars, such as 25."},
		{"price zero", itemForm("Kite", "0", "111111111111", ""), "price", "Use a price from $1 to $1,000,000."},
		{"price too high", itemForm("Kite", "1000001", "111111111111", ""), "price", "Use a price from $1 to $1,000,000."},
		{"no barcode", itemForm("Kite", "5", "", ""), "barcode", "Enter a barcode."},
		{"short barcode", itemForm("Kite", "5", "12345", ""), "barcode", "Use exactly 12 digits for the barcode."},
		{"letters in barcode", itemForm("Kite", "5", "12345678901a", ""), "barcode", "Use exactly 12 digits for the barcode."},
		{"taken barcode", itemForm("Kite", "5", kettle.Barcode, ""), "barcode", "Another item has that barcode. Check it."},
		{"long description", itemForm("Kite", "5", "111111111111", strings.Repeat("d", 1025)), "description", "Use at most 1,024 characters for the description."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, htmx := range []bool{false, true} {
				var res response
				if htmx {
					res = admin.htmx("/admin/items", tc.form)
				} else {
					res = admin.post("/admin/items", tc.form)
				}
				doc := res.doc(t)
				if res.StatusCode != http.StatusOK || text(doc.Find("#"+tc.field+"-error")) != "Error: "+tc.want {
					t.Errorf("htmx %v: %d, error by %s %q, want %q", htmx, res.StatusCode, tc.field, text(doc.Find("#"+tc.field+"-error")), tc.want)
				}
				if htmx && strings.Contains(res.body, "<body") {
					t.Error("htmx: want the form only")
				}
				if v, _ := doc.Find("#name").Attr("value"); v != tc.form.Get("name") {
					t.Errorf("typed name not kept: %q", v)
				}
			}
		})
	}
	if msg := admin.nextMessages(admin.post("/admin/items", itemForm("Kite", "12", "555555555555", "Flies"))); msg != "Added Kite." {
		t.Errorf("flash after adding: %q", msg)
	}
	res := admin.htmx("/admin/items", itemForm("Yo-yo", "3", "555555555556", ""))
	doc := res.doc(t)
	if messages(doc) != "Added Yo-yo." || doc.Find(`[hx-swap-oob="afterbegin:#admin-item-rows"] tr`).Length() != 1 ||
		doc.Find("#add-item #name").AttrOr("value", "?") != "" {
		t.Errorf("htmx add: want the flash, the new row and an empty form: %s", res.body)
	}
	// The new items are on the market, and can be bought.
	kite := app.item("Kite")
	if kite.Price != 12 || kite.Description != "Flies" {
		t.Errorf("new item: %+v", kite)
	}
	buyer.buy(kite.ID)
	if n := text(admin.get("/admin/log").doc(t).Find(`[data-testid="log-row"]`).First().Find("td").Eq(2)); n != "add item" {
		t.Errorf("log's newest row: %q", n)
	}
}

func TestAdminEditItem(t *testing.T) {
	app := newTestApp(t)
	admin := app.signUpAdmin("boss")
	buyer := app.signUp("alice")
	kettle := app.item("Kettle")
	path := "/admin/items/" + strconv.FormatInt(kettle.ID, 10)
	doc := admin.get(path).doc(t)
	if v, _ := doc.Find("#price").Attr("value"); v != strconv.FormatInt(kettle.Price, 10) {
		t.Errorf("edit form's price: %q", v)
	}
	if msg := admin.nextMessages(admin.post(path, itemForm("Kettle", "77", kettle.Barcode, "New"))); msg != "Saved Kettle." {
		t.Errorf("flash after saving: %q", msg)
	}
	buyer.buy(kettle.ID)
	if b := budgetOf(t, app, "alice"); b != 1000-77 {
		t.Errorf("buyer paid %d, want the new price", 1000-b)
	}
	// Owned: the price cannot change (by the field); the name can.
	res := admin.post(path, itemForm("Kettle", "10", kettle.Barcode, "New"))
	want := "Error: Kettle is owned by alice; its price can change once it is sold back."
	if res.StatusCode != http.StatusOK || text(res.doc(t).Find("#price-error")) != want {
		t.Errorf("re-price an owned item: %d %q", res.StatusCode, text(res.doc(t).Find("#price-error")))
	}
	res = admin.htmx(path, itemForm("Tea kettle", "77", kettle.Barcode, "New"))
	if messages(res.doc(t)) != "Saved Tea kettle." || res.doc(t).Find("#edit-item").Length() != 1 {
		t.Errorf("htmx save: %s", res.body)
	}
	for _, p := range []string{"/admin/items/999999", "/admin/items/x", "/admin/items/01"} {
		if res := admin.get(p); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, res.StatusCode)
		}
	}
	if res := admin.post("/admin/items/999999", itemForm("Q", "1", "999999999999", "")); res.StatusCode != http.StatusNotFound {
		t.Errorf("POST to an unknown item: %d", res.StatusCode)
	}
}

func TestAdminRetireItem(t *testing.T) {
	app := newTestApp(t)
	admin := app.signUpAdmin("boss")
	buyer := app.signUp("alice")
	kettle, phone := app.item("Kettle"), app.item("Phone")
	buyer.buy(phone.ID)
	before := text(buyer.get("/market").doc(t).Find("#result-count"))

	retire := func(id int64) string { return "/admin/items/" + strconv.FormatInt(id, 10) + "/retire" }
	if msg := admin.nextMessages(admin.post(retire(phone.ID), nil)); msg != "Phone is owned by alice; it can be retired once it is sold back." {
		t.Errorf("retire an owned item: %q", msg)
	}
	res := admin.htmx(retire(phone.ID), nil)
	if messages(res.doc(t)) != "Phone is owned by alice; it can be retired once it is sold back." || res.doc(t).Find("tr").Length() != 0 {
		t.Errorf("htmx retire of an owned item: %s", res.body)
	}
	res = admin.htmx(retire(kettle.ID), nil)
	if messages(res.doc(t)) != "Retired Kettle." || !strings.Contains(res.body, `id="admin-item-`+strconv.FormatInt(kettle.ID, 10)+`" hx-swap-oob="delete"`) {
		t.Errorf("htmx retire: %s", res.body)
	}
	// Gone: from the market, its searches, its page and its count.
	page := buyer.get("/market").doc(t)
	if page.Find("#item-"+strconv.FormatInt(kettle.ID, 10)).Length() != 0 || text(page.Find("#result-count")) == before {
		t.Errorf("a retired item on the market, or the count unchanged: %q", text(page.Find("#result-count")))
	}
	if n := buyer.get("/market?q=kettle", map[string]string{"HX-Request": "true"}).doc(t).Find("tr").Length(); n != 0 {
		t.Errorf("search finds %d rows for a retired item", n)
	}
	if res := buyer.get("/items/" + strconv.FormatInt(kettle.ID, 10)); res.StatusCode != http.StatusNotFound {
		t.Errorf("item page of a retired item: %d", res.StatusCode)
	}
	res = buyer.answer(buyer.web.Buy(kettle.ID))
	if messages(res.doc(t)) != "That item does not exist." {
		t.Errorf("buy a retired item: %q", messages(res.doc(t)))
	}
	if msg := admin.nextMessages(admin.post(retire(kettle.ID), nil)); msg != "That item does not exist." {
		t.Errorf("retire twice: %q", msg)
	}
	assertCheck(t, app)
}

func assertCheck(t *testing.T, app *testApp) {
	t.Helper()
	problems, err := app.store.Check(context.Background())
	if err != nil || len(problems) > 0 {
		t.Errorf("check: %v %v", problems, err)
	}
}

func TestAdminGrant(t *testing.T) {
	app := newTestApp(t)
	admin := app.signUpAdmin("boss")
	app.signUp("alice")
	path := "/admin/users/" + strconv.FormatInt(userID(t, app, "alice"), 10) + "/grant"
	steps := []struct {
		amount, want string
		budget       int64
	}{
		{"50", "Granted $50 to alice.", 1050},
		{"-20", "Granted -$20 to alice.", 1030},
		{"1500", "Granted $1,500 to alice.", 2530},
		{"-2531", "alice has $2,530: granting -$2,531 would take the budget below $0.", 2530},
		{"", "Enter an amount to grant, in whole dollars.", 2530},
		{"ten", "Enter the amount as a whole number of dollars, such as 50 or -20.", 2530},
		{"2.5", "Enter the amount as a whole number of dollars, such as 50 or -20.", 2530},
		{"0", "Enter an amount other than $0.", 2530},
		{"99999999999", "Grant at most $1,000,000,000 at a time.", 2530},
		{"-2530", "Granted -$2,530 to alice.", 0},
	}
	for i, s := range steps {
		form := url.Values{"amount": {s.amount}}
		var msg string
		if i%2 == 0 {
			msg = admin.nextMessages(admin.post(path, form))
		} else {
			res := admin.htmx(path, form)
			msg = messages(res.doc(t))
			if strings.HasPrefix(s.want, "Granted") && text(res.doc(t).Find(`tr[hx-swap-oob="true"] [data-testid="user-budget"]`)) != strings.TrimPrefix(moneyText(s.budget), "") {
				t.Errorf("htmx grant %s: the row's new budget is missing: %s", s.amount, res.body)
			}
		}
		if msg != s.want || budgetOf(t, app, "alice") != s.budget {
			t.Errorf("grant %q: %q, budget %d; want %q, %d", s.amount, msg, budgetOf(t, app, "alice"), s.want, s.budget)
		}
	}
	if res := admin.post("/admin/users/999999/grant", url.Values{"amount": {"5"}}); res.StatusCode != http.StatusNotFound {
		t.Errorf("grant to nobody: %d", res.StatusCode)
	}
	entries, err := app.store.Ledger(context.Background(), userID(t, app, "alice"), 1)
	if err != nil || entries.Total != 5 || entries.Entries[0].Kind != "grant" || entries.Entries[0].Amount != -2530 {
		t.Errorf("ledger: %+v %v, want the opening grant and four grants", entries, err)
	}
	log := admin.get("/admin/log").doc(t).Find(`[data-testid="log-row"]`)
	if log.Length() != 5 || text(log.First().Find("td").Eq(4)) != "budget $2,530" || text(log.First().Find("td").Eq(5)) != "budget $0" {
		t.Errorf("admin log: %d rows, newest %q", log.Length(), text(log.First()))
	}
	assertCheck(t, app)
}

func moneyText(v int64) string {
	s := strconv.FormatInt(v, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return "$" + s
}

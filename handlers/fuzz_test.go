package handlers_test

import (
	"context"
	"net/http"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"market/handlers"
	"market/store"
)

// bodyCap is the default request body cap (Config.MaxBodyBytes).
const bodyCap = 64 << 10

// forT is the app seen from one fuzz iteration: helpers must fail the iteration's *testing.T,
// since *testing.F's methods may not be called inside the fuzz target.
func (a *testApp) forT(t *testing.T) *testApp {
	cp := *a
	cp.t = t
	return &cp
}

// validSignup is the documented rule for a sign-up, written independently of the handler.
func validSignup(username, email, password, confirm string) bool {
	username, email = strings.TrimSpace(username), strings.TrimSpace(email)
	if len(username) < 2 || len(username) > 30 {
		return false
	}
	for _, c := range []byte(username) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Name != "" || addr.Address != email || len(email) > 120 {
		return false
	}
	if _, domain, _ := strings.Cut(email, "@"); !strings.Contains(domain, ".") {
		return false
	}
	return len(password) >= 8 && len(password) <= 72 && confirm == password
}

// assertMoney fails unless Check is clean and budgets plus owned items equal what was granted.
func assertMoney(t *testing.T, st *store.Store) store.Totals {
	t.Helper()
	ctx := context.Background()
	if problems, err := st.Check(ctx); err != nil || len(problems) > 0 {
		t.Fatalf("check: %v %q", err, problems)
	}
	tot, err := st.Totals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tot.Budgets+tot.Owned != tot.Granted {
		t.Fatalf("money created or lost: %+v", tot)
	}
	return tot
}

// FuzzRegister sends arbitrary sign-up forms. No input gets a 5xx; an account is made only
// from a form the sign-up rules accept, and then it can log in; anything else changes nothing.
func FuzzRegister(f *testing.F) {
	f.Add("alice", "alice@example.com", "correct horse", "correct horse")
	f.Add("  bob  ", "  bob@example.com ", "12345678", "12345678")
	f.Add("a", "a@b.c", "short", "short")
	f.Add("zoë", "zoe@example.com", "long enough", "long enough")
	f.Add("carol", "Carol <carol@example.com>", "long enough", "long enough")
	f.Add("dave", "dave@localhost", "long enough", "long enough")
	f.Add("erin", "erin@example.com", strings.Repeat("p", 73), strings.Repeat("p", 73))
	f.Add("frank", strings.Repeat("f", 110)+"@example.com", "long enough", "long enough")
	f.Add("ALICE", "other@example.com", "long enough", "long enough")
	f.Add("grace", "ALICE@EXAMPLE.COM", "long enough", "long enough")
	f.Add("huge", "huge@example.com", strings.Repeat("x", bodyCap), strings.Repeat("x", bodyCap))
	f.Add("nul\x00l", "n@example.com\x00", "pass\x00word", "pass\x00word")
	f.Add("'; DROP TABLE users; --", "x@example.com", "long enough", "long enough")
	app := newTestApp(f, handlers.Config{SignupsPerHour: 1 << 30})
	ctx := context.Background()

	f.Fuzz(func(t *testing.T, username, email, password, confirm string) {
		a := app.forT(t)
		before, err := a.store.Users(ctx)
		if err != nil {
			t.Fatal(err)
		}
		form := url.Values{"username": {username}, "email": {email}, "password": {password}, "confirm_password": {confirm}}
		c := a.client()
		form.Set("csrf_token", c.token())
		tooBig := len(form.Encode()) > bodyCap
		res := c.do(http.MethodPost, "/register", form, nil)
		after, err := a.store.Users(ctx)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case res.StatusCode == http.StatusRequestEntityTooLarge && tooBig:
		case tooBig:
			t.Fatalf("a %d-byte body: status %d, want 413", len(form.Encode()), res.StatusCode)
		case res.StatusCode == http.StatusFound:
			if !validSignup(username, email, password, confirm) {
				t.Fatalf("account made from a form the rules refuse: %q %q %q %q", username, email, password, confirm)
			}
			if res.Header.Get("Location") != "/market" || len(after) != len(before)+1 {
				t.Fatalf("302 → %q, users %d → %d", res.Header.Get("Location"), len(before), len(after))
			}
			if _, err := a.store.Authenticate(ctx, strings.TrimSpace(username), password); err != nil {
				t.Fatalf("the new account cannot log in: %v", err)
			}
		case res.StatusCode == http.StatusOK:
			if len(after) != len(before) {
				t.Fatalf("a refused sign-up made an account")
			}
			if res.doc(t).Find(`[id$="-error"]`).Length() == 0 {
				t.Fatalf("refused without saying why: %.300s", res.body)
			}
		default:
			t.Fatalf("status %d: %.300s", res.StatusCode, res.body)
		}
		if tooBig && len(after) != len(before) {
			t.Fatal("an oversized sign-up made an account")
		}
		assertMoney(t, a.store)
	})
}

// FuzzTrade posts arbitrary purchase_item and sold_item values, as a plain form or as htmx.
// No input gets a 5xx, and unless the answer says a trade happened, no money or item moves.
func FuzzTrade(f *testing.F) {
	// fields: bit 0 sends purchase_item, bit 1 sends sold_item.
	f.Add("1", "", uint8(1), true)
	f.Add("", "1", uint8(2), true)
	f.Add("2", "", uint8(1), false)
	f.Add("", "2", uint8(2), false)
	f.Add("1", "1", uint8(3), true)
	f.Add("3", "", uint8(3), true)
	f.Add(" 4 ", "", uint8(1), true)
	f.Add("-1", "", uint8(1), true)
	f.Add("0", "0", uint8(2), false)
	f.Add("99999", "", uint8(1), true)
	f.Add("9223372036854775807", "", uint8(1), true)
	f.Add("9223372036854775808", "", uint8(1), true)
	f.Add("1e3", "0x10", uint8(3), true)
	f.Add("abc", "", uint8(1), false)
	f.Add("1; DROP TABLE items", "", uint8(1), true)
	f.Add("", "", uint8(0), true)
	f.Add(strings.Repeat("9", 100_000), "", uint8(1), true)
	f.Add("", strings.Repeat("1", bodyCap), uint8(2), false)

	app := newTestApp(f)
	ctx := context.Background()
	alice := app.signUp("alice")
	bob := app.signUp("bob")
	laptop := app.item("Laptop")
	bob.trade("purchase_item", id(laptop)) // something alice can try to buy or sell and must not get
	token := alice.token()
	aliceUser, err := app.store.Authenticate(ctx, "alice", "correct horse")
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, purchase, sold string, fields uint8, htmx bool) {
		a := app.forT(t)
		c := &client{app: a, hc: alice.hc, web: alice.web}
		form := url.Values{}
		if fields&1 != 0 {
			form.Set("purchase_item", purchase)
		}
		if fields&2 != 0 {
			form.Set("sold_item", sold)
		}
		totalsBefore := assertMoney(t, a.store)
		userBefore, err := a.store.User(ctx, aliceUser.ID)
		if err != nil {
			t.Fatal(err)
		}
		ownedBefore, _ := a.store.OwnedItems(ctx, aliceUser.ID)
		laptopBefore, _ := a.store.Item(ctx, laptop.ID)

		headers := map[string]string{"X-CSRF-Token": token}
		if htmx {
			headers["HX-Request"] = "true"
		}
		tooBig := len(form.Encode()) > bodyCap
		res := c.do(http.MethodPost, "/market", form, headers)
		var msg string
		switch {
		case tooBig && res.StatusCode == http.StatusRequestEntityTooLarge:
		case tooBig:
			t.Fatalf("a %d-byte body: status %d, want 413", len(form.Encode()), res.StatusCode)
		case htmx && res.StatusCode == http.StatusOK:
			msg = messages(res.doc(t))
		case !htmx && res.StatusCode == http.StatusFound && res.Header.Get("Location") == "/market":
			msg = messages(c.get("/market").doc(t))
		default:
			t.Fatalf("status %d: %.300s", res.StatusCode, res.body)
		}

		traded := strings.HasPrefix(msg, "Purchased ") || strings.HasPrefix(msg, "Sold ")
		if !tooBig && msg == "" {
			t.Fatalf("no message for %v", form)
		}
		if traded {
			raw := purchase
			if fields&1 == 0 || purchase == "" {
				raw = sold
			}
			if n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64); err != nil || n <= 0 {
				t.Fatalf("a trade happened for the id %q: %s", raw, msg)
			}
			if fields&1 != 0 && purchase != "" && fields&2 != 0 && sold != "" {
				t.Fatalf("a trade happened with both fields: %s", msg)
			}
		}
		totalsAfter := assertMoney(t, a.store)
		userAfter, _ := a.store.User(ctx, aliceUser.ID)
		ownedAfter, _ := a.store.OwnedItems(ctx, aliceUser.ID)
		laptopAfter, _ := a.store.Item(ctx, laptop.ID)
		if laptopAfter.OwnerID != laptopBefore.OwnerID {
			t.Fatalf("bob's laptop moved: %s", msg)
		}
		if !traded && (totalsAfter != totalsBefore || userAfter.Budget != userBefore.Budget || len(ownedAfter) != len(ownedBefore)) {
			t.Fatalf("no trade (%q), yet totals %+v → %+v, budget %d → %d, owned %d → %d", msg,
				totalsBefore, totalsAfter, userBefore.Budget, userAfter.Budget, len(ownedBefore), len(ownedAfter))
		}
	})
}

// FuzzMarketQuery searches, sorts and pages with arbitrary values: always a 200 page or fragment.
func FuzzMarketQuery(f *testing.F) {
	f.Add("lamp", "name", "1", false)
	f.Add("", "-price", "2", true)
	f.Add("%_\\", "price; DROP TABLE items", "-1", true)
	f.Add(strings.Repeat("é", 300), "", "99999999999999999999", false)
	f.Add("\x00\xff", "-name", "0x10", true)
	app := newTestApp(f)
	alice := app.signUp("alice")
	f.Fuzz(func(t *testing.T, q, sort, page string, htmx bool) {
		a := app.forT(t)
		c := &client{app: a, hc: alice.hc, web: alice.web}
		var headers map[string]string
		if htmx {
			headers = map[string]string{"HX-Request": "true"}
		}
		res := c.get("/market?"+url.Values{"q": {q}, "sort": {sort}, "page": {page}}.Encode(), headers)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %.300s", res.StatusCode, res.body)
		}
		if htmx == strings.Contains(res.body, "<body") {
			t.Fatalf("htmx=%v but the answer is the wrong shape", htmx)
		}
	})
}

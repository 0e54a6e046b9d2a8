package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"market/store"
)

// TestBrowser drives the market in headless Chromium: trades swapped in place by htmx, the
// keyboard model, and axe-core on every page and dialog. One browser serves every subtest;
// each subtest has its own app, tab and cookies.
func TestBrowser(t *testing.T) {
	browser := startBrowser(t)
	t.Run("RecordersSeeViolations", func(t *testing.T) { browserRecorders(t, browser) })
	t.Run("TradeInPlace", func(t *testing.T) { browserTradeInPlace(t, browser) })
	t.Run("ExpiredCSRFToken", func(t *testing.T) { browserExpiredCSRFToken(t, browser) })
	t.Run("KeyboardJourney", func(t *testing.T) { browserKeyboardJourney(t, browser) })
	t.Run("SearchOrderAndHistory", func(t *testing.T) { browserSearchOrderAndHistory(t, browser) })
	t.Run("ShortcutsSwitch", func(t *testing.T) { browserShortcutsSwitch(t, browser) })
	t.Run("ItemDetails", func(t *testing.T) { browserItemDetails(t, browser) })
	t.Run("AxePages", func(t *testing.T) { browserAxePages(t, browser) })
	t.Run("Reflow", func(t *testing.T) { browserReflow(t, browser) })
	t.Run("AutomationKeys", func(t *testing.T) { browserAutomationKeys(t, browser) })
	t.Run("SoldItemInOrder", func(t *testing.T) { browserSoldItemInOrder(t, browser) })
	t.Run("PressRightAfterSearch", func(t *testing.T) { browserPressRightAfterSearch(t, browser) })
	t.Run("SearchThenKeys", func(t *testing.T) { browserSearchThenKeys(t, browser) })
	t.Run("FastEnters", func(t *testing.T) { browserFastEnters(t, browser) })
	t.Run("FocusWhileInFlight", func(t *testing.T) { browserFocusWhileInFlight(t, browser) })
	t.Run("TradeBeforeSearchAnswers", func(t *testing.T) { browserTradeBeforeSearchAnswers(t, browser) })
	t.Run("RowsReplacedBehindDialog", func(t *testing.T) { browserRowsReplacedBehindDialog(t, browser) })
	t.Run("DetailsDismissedEarly", func(t *testing.T) { browserDetailsDismissedEarly(t, browser) })
	t.Run("BackForwardCache", func(t *testing.T) { browserBackForwardCache(t, browser) })
	t.Run("AnswerAfterRowLeft", func(t *testing.T) { browserAnswerAfterRowLeft(t, browser) })
	t.Run("RefusalBeforeSearchAnswers", func(t *testing.T) { browserRefusalBeforeSearchAnswers(t, browser) })
	t.Run("RefusedOnlyItem", func(t *testing.T) { browserRefusedOnlyItem(t, browser) })
	t.Run("WithoutJavaScript", func(t *testing.T) { browserWithoutJavaScript(t, browser) })
	t.Run("FormErrors", func(t *testing.T) { browserFormErrors(t, browser) })
}

// itemID is the DOM id number of a demo item.
func browserItemID(app *testApp, name string) string { return strconv.FormatInt(app.item(name).ID, 10) }

// signUpWithForm creates an account through the register form, submitting it with a click or,
// from the keyboard, with Enter in the last field; it ends on the market.
func (b *browserTab) signUpWithForm(username string, keyboard bool) {
	b.t.Helper()
	b.navigate("/register")
	fill := []chromedp.Action[chromedp.Void]{
		chromedp.SendKeys(chromedp.ID("username"), username),
		chromedp.SendKeys(chromedp.ID("email"), username+"@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), "correct horse"),
		chromedp.SendKeys(chromedp.ID("confirm_password"), "correct horse"),
	}
	b.run("fill the register form", fill...)
	if keyboard {
		b.key(kb.Enter)
	} else {
		b.run("click Create account", chromedp.Click(chromedp.CSS(`form[action="/register"] button[type="submit"]`)))
	}
	b.waitFor("the market after sign-up", `location.pathname === '/market' && document.readyState === 'complete'`)
	want := fmt.Sprintf("Account created successfully! You are now logged in as %s.", username)
	if got := b.text("flash"); got != want {
		b.t.Fatalf("after sign-up #flash says %q, want %q", got, want)
	}
	if got := b.text("budget"); got != "$1,000" {
		b.t.Fatalf("new account's #budget is %q, want $1,000", got)
	}
}

// markPage tags the window and the #flash node, so that later checks prove that no page load
// happened and that the live region was never replaced.
func (b *browserTab) markPage() {
	b.t.Helper()
	evalJS[chromedp.Void](b, `window.__sameDocument = 'yes'; document.getElementById('flash').__sameNode = true`)
}

// samePage fails the test if the page was loaded again since markPage.
func (b *browserTab) samePage(step string) {
	b.t.Helper()
	got := b.js(`[window.__sameDocument, document.getElementById('flash')?.__sameNode,
	              performance.getEntriesByType('navigation').length].join(',')`)
	if got != "yes,true,1" {
		b.t.Errorf("%s: the page was reloaded or #flash replaced (marker,flash node,navigations = %s, want yes,true,1)", step, got)
	}
}

// rowsOf lists the item ids ("item-7") in a tbody.
func (b *browserTab) rowsOf(tbody string) []string {
	b.t.Helper()
	return b.ids("#" + tbody + ` > tr[id^="item-"]`)
}

// without is list without s, keeping the order.
func browserWithout(list []string, s string) []string {
	var out []string
	for _, v := range list {
		if v != s {
			out = append(out, v)
		}
	}
	return out
}

// confirmDialog checks the open confirmation dialog: its title, description, the confirm
// button's label, and that the confirm button has focus.
func (b *browserTab) confirmDialog(title, desc, ok string) {
	b.t.Helper()
	b.waitFor("the confirmation dialog", `document.getElementById('confirm').open && document.getElementById('confirm').matches(':modal')`)
	got := [3]string{b.text("confirm-title"), b.text("confirm-desc"), b.text("confirm-ok")}
	if want := [3]string{title, desc, ok}; got != want {
		b.t.Errorf("confirmation dialog says %q, want %q", got, want)
	}
	if f := b.focused(); f != "confirm-ok" {
		b.t.Errorf("focus is on %s with the dialog open, want the confirm button", f)
	}
}

// tradeRequests counts the trade posts the page has sent.
func (b *browserTab) tradeRequests() int {
	b.t.Helper()
	return evalJS[int](b, `performance.getEntriesByType('resource').filter((e) =>
	  e.initiatorType === 'xmlhttprequest' && new URL(e.name).pathname === '/market' && new URL(e.name).search === '').length`)
}

// lastTradeBytes is the size of the last trade response, and of the page's document, as
// decoded (HTML) and as sent (gzip above 1 KiB).
func (b *browserTab) lastTradeBytes() (trade, page, tradeWire, pageWire int) {
	b.t.Helper()
	v := evalJS[[]int](b, `(() => {
	  const t = performance.getEntriesByType('resource').filter((e) =>
	    e.initiatorType === 'xmlhttprequest' && new URL(e.name).pathname === '/market').at(-1);
	  const p = performance.getEntriesByType('navigation')[0];
	  return [t?.decodedBodySize ?? -1, p.decodedBodySize, t?.encodedBodySize ?? -1, p.encodedBodySize];
	})()`)
	return v[0], v[1], v[2], v[3]
}

// browserRecorders proves the CSP and exception recorders that every other subtest relies on would
// see a violation and an exception, then forgets them.
func browserRecorders(t *testing.T, browser context.Context) {
	app := newTestApp(t)
	b := newBrowserTab(t, browser, app)
	b.navigate("/")
	if ran := b.js(`(() => { const s = document.createElement('script'); s.textContent = 'window.__inline = 1';
	  document.head.append(s); return window.__inline; })()`); ran != "" {
		t.Fatal("an inline script ran: the page has no CSP")
	}
	b.waitFor("the violation in window.__csp", `window.__csp.length === 1 && window.__csp[0].directive.startsWith('script-src')`)
	evalJS[chromedp.Void](b, `setTimeout(() => { throw new Error('recorder check') })`)
	deadline := time.Now().Add(browserWait)
	for {
		b.mu.Lock()
		got := len(b.csp) == 1 && len(b.exceptions) == 1 && strings.Contains(b.exceptions[0], "recorder check")
		if got || time.Now().After(deadline) {
			b.csp, b.exceptions = nil, nil
		}
		b.mu.Unlock()
		if got {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the test never heard of the CSP violation or the exception")
		}
		time.Sleep(20 * time.Millisecond)
	}
	evalJS[chromedp.Void](b, `window.__csp = []`)
}

func browserTradeInPlace(t *testing.T, browser context.Context) {
	app := newTestApp(t)
	b := newBrowserTab(t, browser, app)
	b.signUpWithForm("alice", false)
	b.audit("market, your items empty")
	phone, bike, sofa := browserItemID(app, "Phone"), browserItemID(app, "Road Bike"), browserItemID(app, "Sofa")
	market := b.rowsOf("item-rows")
	if len(market) < 20 || len(b.rowsOf("owned-rows")) != 0 {
		t.Fatalf("market shows %d items and %d owned, want the catalogue and none", len(market), len(b.rowsOf("owned-rows")))
	}
	if b.js(`getComputedStyle(document.querySelector('.empty-note')).display`) == "none" {
		t.Error(`"Your items" does not say it is empty`)
	}
	b.markPage()
	if role, name, desc := b.axNode("buy-" + phone); role != "button" || name != "Buy Phone" || desc != "$500" {
		t.Errorf("Buy Phone reaches screen readers as role %q, name %q, description %q; want button, Buy Phone, $500", role, name, desc)
	}

	// Cancel asks nothing of the server.
	b.run("click Buy Phone", chromedp.Click(chromedp.ID("buy-"+phone)))
	b.confirmDialog("Buy Phone?", "It costs $500. Your budget will be $500.", "Buy for $500")
	if role, name, desc := b.axNode("confirm"); role != "dialog" || name != "Buy Phone?" || desc != "It costs $500. Your budget will be $500." {
		t.Errorf("the confirmation reaches screen readers as role %q, name %q, description %q", role, name, desc)
	}
	b.run("click Cancel", chromedp.Click(chromedp.CSS("#confirm .js-cancel")))
	b.waitFor("the dialog to close", `!document.getElementById('confirm').open`)
	if f, n, budget := b.focused(), b.tradeRequests(), b.text("budget"); f != "buy-"+phone || n != 0 || budget != "$1,000" {
		t.Errorf("after Cancel: focus %s, %d trade requests, #budget %s; want buy-%s, 0, $1,000", f, n, budget, phone)
	}

	// Buy the phone with the mouse, holding the request to see the button while it is in flight.
	i := slices.Index(market, "item-"+phone)
	wantFocus := "buy-" + strings.TrimPrefix(market[i+1], "item-")
	b.run("click Buy Phone", chromedp.Click(chromedp.ID("buy-"+phone)))
	b.confirmDialog("Buy Phone?", "It costs $500. Your budget will be $500.", "Buy for $500")
	b.audit("confirm dialog open")
	inFlight := b.holdTrade(chromedp.Click(chromedp.ID("confirm-ok")), `(() => {
	  const btn = document.getElementById('buy-`+phone+`');
	  return [btn.classList.contains('htmx-request'), btn.getAttribute('aria-disabled'), btn.disabled,
	          getComputedStyle(btn, '::after').content !== 'none', getComputedStyle(btn).cursor,
	          document.getElementById('budget').textContent, document.getElementById('confirm').open].join(',');
	})()`)
	if want := "true,true,true,true,progress,$1,000,false"; inFlight != want {
		t.Errorf("while the purchase is in flight Buy Phone is (htmx-request,aria-disabled,disabled,spinner,cursor,budget,dialog open) %s, want %s", inFlight, want)
	}
	b.settled("the purchase message", `document.getElementById('flash').textContent.trim() === 'Purchased Phone!'`)
	b.samePage("after buying")
	if got := b.text("budget"); got != "$500" {
		t.Errorf("#budget after buying the phone is %q, want $500", got)
	}
	if got := b.rowsOf("item-rows"); fmt.Sprint(got) != fmt.Sprint(browserWithout(market, "item-"+phone)) {
		t.Errorf("#item-rows after buying the phone: %v", got)
	}
	if got := b.ids(`#owned-rows > tr`); fmt.Sprint(got) != "[item-"+phone+"]" {
		t.Errorf("#owned-rows after buying the phone: %v, want [item-%s]", got, phone)
	}
	if b.js(`document.querySelector('#owned-rows #sell-`+phone+`')?.textContent.replace(/\s+/g, ' ').trim()`) != "Sell Phone" {
		t.Error("the bought phone has no Sell Phone button in your items")
	}
	if got := b.text("flash-alert"); got != "" {
		t.Errorf("#flash-alert after a purchase says %q", got)
	}
	if f := b.focused(); f != wantFocus {
		t.Errorf("focus after buying is on %s, want the next item %s", f, wantFocus)
	}
	tradeBytes, pageBytes, tradeWire, pageWire := b.lastTradeBytes()
	t.Logf("htmx purchase response: %d bytes (%d sent); full market page: %d bytes (%d sent)", tradeBytes, tradeWire, pageBytes, pageWire)
	if tradeBytes <= 0 || tradeBytes >= 2048 {
		t.Errorf("htmx purchase response is %d bytes, want a fragment under 2 KB", tradeBytes)
	}
	b.audit("after a buy")

	// Sell it back.
	b.run("click Sell Phone", chromedp.Click(chromedp.ID("sell-"+phone)))
	b.confirmDialog("Sell Phone?", "You get $500 back. Your budget will be $1,000.", "Sell for $500")
	b.run("confirm the sale", chromedp.Click(chromedp.ID("confirm-ok")))
	b.settled("the sale message", `document.getElementById('flash').textContent.trim() === 'Sold Phone back to the market!'`)
	b.samePage("after selling")
	if got := b.text("budget"); got != "$1,000" {
		t.Errorf("#budget after selling the phone is %q, want $1,000", got)
	}
	if got := b.rowsOf("item-rows"); fmt.Sprint(got) != fmt.Sprint(market) {
		t.Errorf("#item-rows after selling the phone: %v, want the phone back in its place: %v", got, market)
	}
	if got := b.ids(`#owned-rows > tr`); len(got) != 0 {
		t.Errorf("#owned-rows after selling the phone: %v, want none", got)
	}
	if b.js(`getComputedStyle(document.querySelector('.empty-note')).display`) == "none" {
		t.Error(`"Your items" is empty but does not say so`)
	}
	if f := b.focused(); f != "q" {
		t.Errorf("focus after selling the only item is on %s, want the search box", f)
	}
	b.audit("after a sale, your items empty again")

	// Refused purchases: the message, and nothing else changes.
	for _, it := range []struct{ id, name, desc string }{
		{bike, "Road Bike", "It costs $1,450, more than your budget of $1,000."},
		{sofa, "Sofa", "It costs $2,200, more than your budget of $1,000."},
	} {
		before := b.rowsOf("item-rows")
		b.run("click Buy "+it.name, chromedp.Click(chromedp.ID("buy-"+it.id)))
		b.confirmDialog("Buy "+it.name+"?", it.desc, "Buy for "+map[string]string{bike: "$1,450", sofa: "$2,200"}[it.id])
		b.run("confirm", chromedp.Click(chromedp.ID("confirm-ok")))
		want := fmt.Sprintf("You don't have enough budget to purchase %s.", it.name)
		b.settled("the refusal", `document.getElementById('flash-alert').textContent.trim() === `+jsQuote(want))
		if got := b.text("flash"); got != "" {
			t.Errorf("#flash after a refused purchase says %q", got)
		}
		if got := b.text("budget"); got != "$1,000" {
			t.Errorf("#budget after a refused purchase is %q", got)
		}
		if got := b.rowsOf("item-rows"); fmt.Sprint(got) != fmt.Sprint(before) {
			t.Errorf("#item-rows changed after a refused purchase: %v", got)
		}
		if got := b.ids(`#owned-rows > tr`); len(got) != 0 {
			t.Errorf("#owned-rows changed after a refused purchase: %v", got)
		}
		if f := b.focused(); f != "buy-"+it.id {
			t.Errorf("focus after a refused purchase is on %s, want buy-%s", f, it.id)
		}
		if n := b.js(`document.getElementById('flash-alert').querySelectorAll('p').length`); n != "1" {
			t.Errorf("#flash-alert holds %s messages, want 1", n)
		}
	}
	b.samePage("after refused purchases")
	b.audit("after a refused buy")
}

// interception holds the page's requests to a URL pattern in the network until released.
type interception struct {
	b    *browserTab
	ctx  context.Context
	next func() (fetch.EventRequestPaused, error, bool)
	stop func()
}

// intercept starts holding the requests to pattern (a path under the app, * for any text).
// Fetch.enable can answer before the network intercepts (a busy machine shows it), so it first
// holds a request of its own to the pattern: after that, none can slip through.
func (b *browserTab) intercept(ctx context.Context, pattern string) *interception {
	b.t.Helper()
	next, stop := iter.Pull2(chromedp.Events(ctx, fetch.RequestPaused))
	in := &interception{b: b, ctx: ctx, next: next, stop: stop}
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{
		{URLPattern: b.base + pattern, RequestStage: fetch.RequestStageRequest},
	}}); err != nil {
		stop()
		b.t.Fatal(err)
	}
	probe := strings.ReplaceAll(pattern, "*", "probe")
	b.run("send a request to hold", chromedp.Evaluate[chromedp.Void](`void fetch(`+jsQuote(probe)+`, { headers: { 'X-Hold-Probe': '1' } })`))
	for held := false; !held; {
		ev, err := in.paused()
		if err != nil {
			in.end()
			b.t.Fatalf("the network held nothing: %v", err)
		}
		held = ev.Request.Headers["X-Hold-Probe"] == "1"
		in.release(ev)
	}
	return in
}

// paused waits for the next held request.
func (in *interception) paused() (fetch.EventRequestPaused, error) {
	ev, err, ok := in.next()
	if err == nil && !ok {
		err = errors.New("no more requests")
	}
	return ev, err
}

// release lets a held request go on. A request the page has cancelled meanwhile fails to, harmlessly.
func (in *interception) release(ev fetch.EventRequestPaused) {
	chromedp.Call(in.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
}

// end stops holding requests.
func (in *interception) end() {
	chromedp.Call(in.b.ctx, fetch.Disable, cdp.Empty{})
	in.stop()
}

// holdTrade runs trigger with trade posts paused in the network, evaluates probe while the
// request is in flight, then lets it go.
func (b *browserTab) holdTrade(trigger chromedp.Action[chromedp.Void], probe string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 3*browserWait)
	defer cancel()
	in := b.intercept(ctx, "/market")
	defer in.end()
	b.run("trigger the trade", trigger)
	for {
		ev, err := in.paused()
		if err != nil {
			b.t.Fatalf("the trade request never left: %v\n%s", err, b.state())
		}
		if ev.Request.Method != "POST" {
			in.release(ev)
			continue
		}
		got := b.js(probe)
		in.release(ev)
		return got
	}
}

func browserExpiredCSRFToken(t *testing.T, browser context.Context) {
	app := newTestApp(t)
	b := newBrowserTab(t, browser, app)
	b.signUpWithForm("carol", false)
	b.markPage()
	mouse := browserItemID(app, "Mouse")
	// The token's cookie is gone (expired, or cleared by the browser): the page's token no
	// longer matches anything the server can check.
	if _, err := chromedp.Call(b.ctx, network.DeleteCookies, network.DeleteCookiesParams{Name: "csrf_token", URL: b.base}); err != nil {
		t.Fatal(err)
	}
	before := b.rowsOf("item-rows")
	b.run("click Buy Mouse", chromedp.Click(chromedp.ID("buy-"+mouse)))
	b.confirmDialog("Buy Mouse?", "It costs $45. Your budget will be $955.", "Buy for $45")
	b.run("confirm", chromedp.Click(chromedp.ID("confirm-ok")))
	b.settled("a message about the expired page", `document.getElementById('flash-alert').textContent.trim() !== ''`)
	if got := b.text("flash-alert"); !strings.Contains(got, "Reload the page") {
		t.Errorf("#flash-alert after a refused token says %q, want it to ask to reload the page", got)
	}
	b.samePage("after the refused token")
	if got := b.text("budget"); got != "$1,000" {
		t.Errorf("#budget after a refused token is %q", got)
	}
	if got := b.rowsOf("item-rows"); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Error("#item-rows changed after a refused token")
	}
	if f := b.focused(); f != "buy-"+mouse {
		t.Errorf("focus after a refused token is on %s, want buy-%s", f, mouse)
	}
	b.axe("after a refused token")
	var budget int64
	if err := app.store.DB().QueryRow(`SELECT budget FROM users WHERE username = 'carol'`).Scan(&budget); err != nil || budget != 1000 {
		t.Errorf("carol's budget in the database is %d (%v) after a refused token, want 1000", budget, err)
	}

	// Reloading, as the message says, makes the next purchase work.
	b.navigate("/market")
	b.run("click Buy Mouse", chromedp.Click(chromedp.ID("buy-"+mouse)))
	b.confirmDialog("Buy Mouse?", "It costs $45. Your budget will be $955.", "Buy for $45")
	b.run("confirm", chromedp.Click(chromedp.ID("confirm-ok")))
	b.settled("the purchase after reloading", `document.getElementById('flash').textContent.trim() === 'Purchased Mouse!'`)
	if got := b.text("budget"); got != "$955" {
		t.Errorf("#budget after buying the mouse is %q, want $955", got)
	}
}

// expectResults waits until the market shows the search results of the URL's q, in the rows
// and in the search box.
func (b *browserTab) expectResults(what string) string {
	b.t.Helper()
	q := b.js(`new URLSearchParams(location.search).get('q')`)
	p, err := b.app.store.Market(context.Background(), store.MarketQuery{Q: q})
	if err != nil {
		b.t.Fatal(err)
	}
	want := []string{}
	for _, it := range p.Items {
		want = append(want, "item-"+strconv.FormatInt(it.ID, 10))
	}
	wantJSON, _ := json.Marshal(want)
	b.waitFor(what+": the results for q="+q, `JSON.stringify([...document.querySelectorAll('#item-rows > tr')].map((r) => r.id)) === `+
		jsQuote(string(wantJSON))+` && document.getElementById('q').value === `+jsQuote(q))
	return q
}

// pressUntilFocused presses a key (with modifiers) until the focus is on an element whose id
// starts with prefix, at most max times; it returns the focused id.
func (b *browserTab) pressUntilFocused(key, prefix string, max int, mods ...chromedp.Modifier) string {
	b.t.Helper()
	for range max {
		if f := b.focused(); strings.HasPrefix(f, prefix) {
			return f
		}
		b.key(key, mods...)
	}
	if f := b.focused(); strings.HasPrefix(f, prefix) {
		return f
	}
	b.t.Fatalf("%d presses of %q never focused %s…\n%s", max, key, prefix, b.state())
	return ""
}

// dispatchKey sends one raw key event, for what chromedp's KeyEvent cannot say (auto-repeat).
func (b *browserTab) dispatchKey(p input.DispatchKeyEventParams) {
	b.t.Helper()
	if _, err := chromedp.Call(b.ctx, input.DispatchKeyEvent, p); err != nil {
		b.t.Fatal(err)
	}
}

func browserKeyboardJourney(t *testing.T, browser context.Context) {
	app := newTestApp(t)
	b := newBrowserTab(t, browser, app)
	b.signUpWithForm("kim", true)
	buys := b.ids("#item-rows .js-item")

	// j/k and the arrows move between the items' buttons; no wrap at the ends.
	for _, step := range []struct{ key, want string }{
		{"j", buys[0]}, {"j", buys[1]}, {"k", buys[0]}, {"k", buys[0]},
		{kb.ArrowDown, buys[1]}, {kb.ArrowDown, buys[2]}, {kb.ArrowUp, buys[1]},
	} {
		b.key(step.key)
		if f := b.focused(); f != step.want {
			t.Fatalf("after %q focus is on %s, want %s", step.key, f, step.want)
		}
	}
	// s on a Buy button does nothing.
	b.key("s")
	if b.js(`document.querySelector('dialog[open]')?.id`) != "" || b.focused() != buys[1] {
		t.Errorf("s on a Buy button opened a dialog or moved focus to %s", b.focused())
	}

	// / focuses the search box without typing into it; there, shortcut keys are just text.
	b.key("/")
	if f, v := b.focused(), b.js(`document.getElementById('q').value`); f != "q" || v != "" {
		t.Fatalf("after / focus is on %s and the search box holds %q, want q and empty", f, v)
	}
	b.key("jk/?s")
	if f, v := b.focused(), b.js(`document.getElementById('q').value`); f != "q" || v != "jk/?s" {
		t.Errorf("typing jk/?s in the search box: focus %s, value %q", f, v)
	}
	if d := b.js(`document.querySelector('dialog[open]')?.id`); d != "" {
		t.Errorf("typing ? in the search box opened dialog %s", d)
	}
	b.settled("the search for jk/?s", `new URLSearchParams(location.search).get('q') === 'jk/?s'`)
	b.expectResults("search jk/?s")
	if got := b.text("result-count"); got != "No items match “jk/?s”." {
		t.Errorf("#result-count says %q", got)
	}
	b.markPage()
	searchesBefore := evalJS[int](b, `performance.getEntriesByType('resource').filter((e) => e.name.includes('/market?')).length`)
	b.key(strings.Repeat(kb.Backspace, 5) + "camera")
	b.waitFor("the URL to follow the search", `new URLSearchParams(location.search).get('q') === 'camera'`)
	b.expectResults("search camera")
	searches := evalJS[int](b, `performance.getEntriesByType('resource').filter((e) => e.name.includes('/market?')).length`) - searchesBefore
	if searches < 1 || searches > 3 {
		t.Errorf("typing 11 keys sent %d searches, want the debounce to send one or two", searches)
	}
	b.samePage("searching")
	if got := b.text("flash"); got != "3 items match “camera”." {
		t.Errorf("#flash announces %q after the search", got)
	}
	cameraRows := b.rowsOf("item-rows")
	b.audit("search results")

	// Back shows the previous search, forward this one, from the server (no history cache).
	b.run("back", chromedp.NavigateBack())
	b.waitFor("back to the previous search", `new URLSearchParams(location.search).get('q') !== 'camera'`)
	if q := b.expectResults("after back"); q == "camera" {
		t.Error("back did not leave the camera search")
	}
	b.run("forward", chromedp.NavigateForward())
	b.waitFor("forward to the camera search", `new URLSearchParams(location.search).get('q') === 'camera'`)
	b.expectResults("after forward")
	b.markPage() // the history restore replaced the body

	// A purchase from the keyboard, on the page history restored: Enter asks, Escape cancels,
	// a held Enter does nothing, Enter confirms.
	camera, drone, phone := browserItemID(app, "Camera"), browserItemID(app, "Drone"), browserItemID(app, "Phone")
	if want := fmt.Sprint([]string{"item-" + camera, "item-" + drone, "item-" + phone}); fmt.Sprint(cameraRows) != want {
		t.Fatalf("camera search shows %v, want %s", cameraRows, want)
	}
	b.run("focus nothing", chromedp.Evaluate[chromedp.Void](`document.activeElement?.blur()`))
	b.key("j")
	if f := b.focused(); f != "buy-"+camera {
		t.Fatalf("j after the history restore focused %s, want buy-%s", f, camera)
	}
	b.key(kb.Enter)
	b.confirmDialog("Buy Camera?", "It costs $1,100, more than your budget of $1,000.", "Buy for $1,100")
	b.key("j/k")
	if f, open := b.focused(), b.js(`document.getElementById('confirm').open`); f != "confirm-ok" || open != "true" {
		t.Errorf("j / k in the dialog moved focus to %s (dialog open %s)", f, open)
	}
	b.key(kb.Tab, chromedp.ModifierShift)
	if inside := b.js(`document.activeElement.classList.contains('js-cancel')`); inside != "true" {
		t.Errorf("Shift+Tab from confirm went to %s, want Cancel", b.focused())
	}
	b.key(kb.Tab)
	if f := b.focused(); f != "confirm-ok" {
		t.Errorf("Tab from Cancel went to %s, want confirm", f)
	}
	b.key(kb.Escape)
	b.waitFor("the dialog to close", `!document.getElementById('confirm').open`)
	if f := b.focused(); f != "buy-"+camera {
		t.Errorf("after Escape focus is on %s, want buy-%s", f, camera)
	}
	if n := b.tradeRequests(); n != 0 {
		t.Errorf("Escape sent %d trade requests", n)
	}
	b.key(kb.Enter)
	b.confirmDialog("Buy Camera?", "It costs $1,100, more than your budget of $1,000.", "Buy for $1,100")
	enter := input.DispatchKeyEventParams{Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13, AutoRepeat: new(true)}
	for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeChar, input.DispatchKeyEventTypeKeyUp} {
		enter.Type = typ
		if typ == input.DispatchKeyEventTypeChar {
			enter.Text, enter.UnmodifiedText = "\r", "\r"
		}
		b.dispatchKey(enter)
	}
	if open, n := b.js(`document.getElementById('confirm').open`), b.tradeRequests(); open != "true" || n != 0 {
		t.Errorf("a held (repeating) Enter closed the dialog (%s) or sent %d trades", open, n)
	}
	b.key(kb.Enter)
	b.settled("the refusal", `document.getElementById('flash-alert').textContent.trim() === "You don't have enough budget to purchase Camera."`)
	if f, budget := b.focused(), b.text("budget"); f != "buy-"+camera || budget != "$1,000" {
		t.Errorf("after the refusal focus is on %s and #budget %s, want buy-%s and $1,000", f, budget, camera)
	}
	if got := b.rowsOf("item-rows"); fmt.Sprint(got) != fmt.Sprint(cameraRows) {
		t.Errorf("rows changed after a refusal: %v", got)
	}

	// The last row: focus goes to the previous one.
	b.key("jj")
	if f := b.focused(); f != "buy-"+phone {
		t.Fatalf("focus on %s, want buy-%s", f, phone)
	}
	b.key(kb.Enter)
	b.confirmDialog("Buy Phone?", "It costs $500. Your budget will be $500.", "Buy for $500")
	b.key(kb.Enter)
	b.settled("the purchase", `document.getElementById('flash').textContent.trim() === 'Purchased Phone!'`)
	b.samePage("keyboard purchase")
	if f := b.focused(); f != "buy-"+drone {
		t.Errorf("after buying the last row focus is on %s, want the previous row's buy-%s", f, drone)
	}
	if got, budget := b.ids(`#owned-rows > tr`), b.text("budget"); fmt.Sprint(got) != "[item-"+phone+"]" || budget != "$500" {
		t.Errorf("after buying the phone: owned %v, #budget %s", got, budget)
	}

	// Reload shows the same search.
	b.run("reload", chromedp.Reload())
	b.waitFor("the reloaded page", `document.readyState === 'complete' && new URLSearchParams(location.search).get('q') === 'camera'`)
	b.expectResults("after reload")
	b.liveRegionsEmpty("after reload")

	// The whole market: buy a row in the middle, focus goes to the next one.
	b.navigate("/market")
	buys = b.ids("#item-rows .js-item")
	b.key("jj")
	speaker := buys[1]
	b.key(kb.Enter)
	b.confirmDialog("Buy Bluetooth Speaker?", "It costs $75. Your budget will be $425.", "Buy for $75")
	b.key(kb.Enter)
	b.settled("the purchase", `document.getElementById('flash').textContent.trim() === 'Purchased Bluetooth Speaker!'`)
	if f := b.focused(); f != buys[2] {
		t.Errorf("after buying %s focus is on %s, want the next row's %s", speaker, f, buys[2])
	}
	if got, budget := b.rowsOf("owned-rows"), b.text("budget"); len(got) != 2 || budget != "$425" {
		t.Errorf("after buying the speaker: owned %v, #budget %s", got, budget)
	}
	if slices.Contains(b.rowsOf("item-rows"), "item-"+strings.TrimPrefix(speaker, "buy-")) {
		t.Error("the speaker is still on the market")
	}

	// Down to your items: s sells the focused one.
	first := b.pressUntilFocused("j", "sell-", 40)
	owned := b.ids("#owned-rows .js-item")
	if want := fmt.Sprint([]string{"sell-" + phone, "sell-" + strings.TrimPrefix(speaker, "buy-")}); fmt.Sprint(owned) != want {
		t.Fatalf("your items are %v, want %s", owned, want)
	}
	if first != owned[0] {
		t.Errorf("j walked from the market to %s, want the first of your items %s", first, owned[0])
	}
	b.key("j")
	b.key("j")
	if f := b.focused(); f != owned[1] {
		t.Errorf("j past the last item moved focus to %s, want it to stay on %s", f, owned[1])
	}
	b.key("k")
	b.key("s")
	b.confirmDialog("Sell Phone?", "You get $500 back. Your budget will be $925.", "Sell for $500")
	b.key(kb.Enter)
	b.settled("the sale", `document.getElementById('flash').textContent.trim() === 'Sold Phone back to the market!'`)
	if f := b.focused(); f != owned[1] {
		t.Errorf("after selling the first of your items focus is on %s, want the next one %s", f, owned[1])
	}
	if got, budget := b.rowsOf("owned-rows"), b.text("budget"); fmt.Sprint(got) != "[item-"+strings.TrimPrefix(speaker, "buy-")+"]" || budget != "$925" {
		t.Errorf("after selling the phone: owned %v, #budget %s; want the speaker and $925", got, budget)
	}
	if !slices.Contains(b.rowsOf("item-rows"), "item-"+phone) {
		t.Error("the sold phone is not back on the market")
	}

	// ? lists the shortcuts; Escape closes the list and focus comes back.
	b.key("?")
	b.waitFor("the shortcuts dialog", `document.getElementById('shortcuts').matches(':modal')`)
	if inside := b.js(`document.getElementById('shortcuts').contains(document.activeElement)`); inside != "true" {
		t.Errorf("the shortcuts dialog opened with focus on %s", b.focused())
	}
	b.audit("shortcuts dialog open")
	b.key(kb.Escape)
	b.waitFor("the shortcuts dialog to close", `!document.getElementById('shortcuts').open`)
	if f := b.focused(); f != owned[1] {
		t.Errorf("after closing the shortcuts focus is on %s, want %s", f, owned[1])
	}

	// Sell the last one: with no row left, focus goes to the search box.
	b.key("s")
	b.confirmDialog("Sell Bluetooth Speaker?", "You get $75 back. Your budget will be $1,000.", "Sell for $75")
	b.key(kb.Enter)
	b.settled("the sale", `document.getElementById('flash').textContent.trim() === 'Sold Bluetooth Speaker back to the market!'`)
	if f := b.focused(); f != "q" {
		t.Errorf("after selling the last of your items focus is on %s, want the search box", f)
	}
	if got, budget := b.rowsOf("owned-rows"), b.text("budget"); len(got) != 0 || budget != "$1,000" {
		t.Errorf("after selling everything: owned %v, #budget %s", got, budget)
	}
	if got, all := b.rowsOf("item-rows"), browserMarketIDs(t, app, ""); len(got) != len(all) {
		t.Errorf("after selling everything the market shows %d items, want all %d", len(got), len(all))
	}
	b.audit("your items empty after selling")
}

// marketIDs are the row ids the market shows for a search.
func browserMarketIDs(t *testing.T, app *testApp, q string) []string {
	t.Helper()
	p, err := app.store.Market(context.Background(), store.MarketQuery{Q: q})
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, it := range p.Items {
		ids = append(ids, "item-"+strconv.FormatInt(it.ID, 10))
	}
	return ids
}

func browserSearchOrderAndHistory(t *testing.T, browser context.Context) {
	app := newTestApp(t)
	b := newBrowserTab(t, browser, app)
	b.signUpWithForm("sue", true)
	la, lamp := browserMarketIDs(t, app, "la"), browserMarketIDs(t, app, "lamp")
	if fmt.Sprint(la) == fmt.Sprint(lamp) {
		t.Fatal("the searches la and lamp show the same rows; pick others")
	}
	evalJS[chromedp.Void](b, `window.__searches = 0; document.addEventListener('htmx:afterRequest', (e) => {
	  if (e.detail.requestConfig?.verb === 'get') window.__searches++; })`)

	// The answer to "la" arrives after the answer to "lamp": the rows must still be lamp's.
	ctx, cancel := context.WithTimeout(b.ctx, 2*browserWait)
	defer cancel()
	in := b.intercept(ctx, "/market?*")
	paused := func(q string) fetch.EventRequestPaused {
		t.Helper()
		ev, err := in.paused()
		if err != nil {
			t.Fatalf("no search for %q was sent (a newer search must not wait for an older one still on its way): %v\n%s", q, err, b.state())
		}
		if !strings.Contains(ev.Request.URL, "q="+q+"&") && !strings.HasSuffix(ev.Request.URL, "q="+q) {
			t.Fatalf("the search sent is %s, want q=%s", ev.Request.URL, q)
		}
		return ev
	}
	b.key("/")
	b.key("la")
	first := paused("la")
	b.key("mp")
	second := paused("lamp")
	in.release(second)
	b.settled("the lamp results", `new URLSearchParams(location.search).get('q') === 'lamp'`)
	in.release(first) // the page may have cancelled it already
	in.end()
	b.settled("both searches to end", `window.__searches === 2`)
	if got := b.rowsOf("item-rows"); fmt.Sprint(got) != fmt.Sprint(lamp) {
		t.Errorf("after a late answer to the older search the rows are %v, want lamp's %v", got, lamp)
	}
	if q, v := b.js(`new URLSearchParams(location.search).get('q')`), b.js(`document.getElementById('q').value`); q != "lamp" || v != "lamp" {
		t.Errorf("after a late answer the URL says q=%s and the box %q, want lamp", q, v)
	}

	// Enter sends the search once, and Back leaves it at once.
	b.navigate("/market")
	before := evalJS[int](b, `history.length`)
	b.key("/")
	b.key("desk" + kb.Enter)
	b.settled("the desk results", `new URLSearchParams(location.search).get('q') === 'desk'`)
	evalJS[bool](b, `new Promise((ok) => setTimeout(() => ok(true), 400))`) // past the typing debounce
	b.settled("a late search, if any", `true`)
	if n := evalJS[int](b, `history.length`) - before; n != 1 {
		t.Errorf("one search with Enter added %d history entries, want 1", n)
	}
	b.expectResults("search desk")
	b.run("back", chromedp.NavigateBack())
	b.waitFor("back to the whole market", `location.search === ''`)
	b.expectResults("back from desk")
}

func browserShortcutsSwitch(t *testing.T, browser context.Context) {
	app := newTestApp(t)
	b := newBrowserTab(t, browser, app)
	b.signUpWithForm("sam", true)
	buys := b.ids("#item-rows .js-item")

	// Turn single-key shortcuts off from the ? dialog.
	b.key("?")
	b.waitFor("the shortcuts dialog", `document.getElementById('shortcuts').open`)
	if f := b.focused(); f != "char-keys" {
		t.Fatalf("the shortcuts dialog opened with focus on %s, want the switch", f)
	}
	b.key(" ")
	b.waitFor("the switch to turn off", `!document.getElementById('char-keys').checked`)
	if got := b.js(`[document.cookie.includes('kbd=off'), document.querySelector('meta[name="keyboard-shortcuts-preference"]').content,
	  document.getElementById('char-keys-off').checkVisibility()].join()`); got != "true,no_character_key,true" {
		t.Errorf("after turning shortcuts off (cookie,meta,note shown) = %s", got)
	}
	b.key(kb.Escape)
	b.waitFor("the dialog to close", `!document.getElementById('shortcuts').open`)

	checkOff := func(when string) {
		t.Helper()
		b.run("blur", chromedp.Evaluate[chromedp.Void](`document.activeElement?.blur()`))
		b.key("j/?")
		if f, d := b.focused(), b.js(`document.querySelector('dialog[open]')?.id`); f != "BODY" || d != "" {
			t.Errorf("%s: with shortcuts off j / ? moved focus to %s or opened %q", when, f, d)
		}
		// Tab reaches the items, and the arrows still move between them.
		b.pressUntilFocused(kb.Tab, "buy-", 40)
		start := b.focused()
		b.key(kb.ArrowDown)
		if f := b.focused(); f != buys[slices.Index(buys, start)+1] {
			t.Errorf("%s: ArrowDown from %s went to %s", when, start, f)
		}
		b.key("jk")
		if f := b.focused(); f != buys[slices.Index(buys, start)+1] {
			t.Errorf("%s: with shortcuts off j/k moved focus to %s", when, f)
		}
	}
	checkOff("after the switch")

	// Enter still buys; s does not sell.
	b.key(kb.Enter)
	b.waitFor("the confirm dialog", `document.getElementById('confirm').open`)
	b.key(kb.Enter)
	b.settled("the purchase", `document.getElementById('flash').textContent.startsWith('Purchased ')`)
	b.pressUntilFocused(kb.ArrowDown, "sell-", 40)
	b.key("s")
	if d := b.js(`document.querySelector('dialog[open]')?.id`); d != "" {
		t.Errorf("with shortcuts off s opened %s", d)
	}

	// The cookie keeps the choice; the server renders it.
	b.navigate("/market")
	got := b.js(`[document.querySelector('meta[name="keyboard-shortcuts-preference"]').content,
	  document.getElementById('char-keys').checked, document.getElementById('q').hasAttribute('aria-keyshortcuts'),
	  document.getElementById('char-keys-off').hidden].join()`)
	if got != "no_character_key,false,false,false" {
		t.Errorf("after reload with kbd=off (meta,switch,aria-keyshortcuts,note hidden) = %s", got)
	}
	buys = b.ids("#item-rows .js-item")
	checkOff("after reload")

	// The visible button opens the dialog, whose switch turns the shortcuts back on.
	b.pressUntilFocused(kb.Tab, "shortcuts-open", 40, chromedp.ModifierShift)
	b.key(kb.Enter)
	b.waitFor("the shortcuts dialog", `document.getElementById('shortcuts').open`)
	b.key(" ")
	b.waitFor("the switch to turn on", `document.getElementById('char-keys').checked`)
	b.key(kb.Escape)
	b.waitFor("the dialog to close", `!document.getElementById('shortcuts').open`)
	if f := b.focused(); f != "shortcuts-open" {
		t.Errorf("closing the shortcuts returned focus to %s, want the button that opened them", f)
	}
	b.key("j")
	if f := b.focused(); f != buys[0] {
		t.Errorf("with shortcuts back on j went to %s, want %s", f, buys[0])
	}
	if !strings.Contains(b.js(`document.cookie`), "kbd=on") {
		t.Error("the kbd cookie was not turned back on")
	}
	if got := b.js(`[document.getElementById('char-keys-off').hidden, document.getElementById('q').getAttribute('aria-keyshortcuts')].join()`); got != "true,/" {
		t.Errorf("with shortcuts back on (note hidden,aria-keyshortcuts) = %s", got)
	}
}

func browserItemDetails(t *testing.T, browser context.Context) {
	app := newTestApp(t)
	b := newBrowserTab(t, browser, app)
	b.signUpWithForm("dee", false)
	phone := app.item("Phone")
	id := strconv.FormatInt(phone.ID, 10)
	b.markPage()

	// From the keyboard: the name link sits before the Buy button.
	b.run("focus Buy Phone", chromedp.Focus(chromedp.ID("buy-"+id)))
	b.key(kb.Tab, chromedp.ModifierShift)
	if got := b.js(`document.activeElement.getAttribute('href')`); got != "/items/"+id {
		t.Fatalf("Shift+Tab from Buy Phone focused %s (href %q), want the name link", b.focused(), got)
	}
	b.key(kb.Enter)
	b.waitFor("the item dialog", `document.getElementById('item-dialog').matches(':modal')`)
	b.samePage("opening the details")
	if got := b.text("item-dialog-title"); got != "Phone" {
		t.Errorf("item dialog title %q, want Phone", got)
	}
	body := b.text("item-dialog-body")
	for _, want := range []string{"$500", phone.Barcode, "On sale", phone.Description} {
		if !strings.Contains(body, want) {
			t.Errorf("item dialog lacks %q: %q", want, body)
		}
	}
	if p := b.js(`location.pathname`); p != "/market" {
		t.Errorf("opening the details changed the URL to %s", p)
	}
	b.audit("item dialog open")
	b.key(kb.Escape)
	b.waitFor("the item dialog to close", `!document.getElementById('item-dialog').open`)
	if got := b.js(`document.activeElement.getAttribute('href')`); got != "/items/"+id {
		t.Errorf("after closing the details focus is on %s, want the name link", b.focused())
	}

	// With the mouse, and the Close button.
	b.run("click the Laptop link", chromedp.Click(chromedp.CSS(`#item-`+browserItemID(app, "Laptop")+` a`)))
	b.waitFor("the Laptop details", `document.getElementById('item-dialog').open && document.getElementById('item-dialog-title').textContent === 'Laptop'`)
	b.run("close", chromedp.Click(chromedp.CSS(`#item-dialog .js-close`)))
	b.waitFor("the item dialog to close", `!document.getElementById('item-dialog').open`)
	b.samePage("details in a dialog")

	// The item's own page is a whole page.
	b.navigate("/items/" + id)
	got := b.js(`[document.querySelector('h1')?.textContent.trim(), document.title, !!document.getElementById('budget'),
	  !!document.querySelector('nav[aria-label="Main"]'), document.querySelector('[data-testid="item-page"]')?.textContent.includes('$500')].join('|')`)
	if got != "Phone|Phone · Market|true|true|true" {
		t.Errorf("/items/%s (h1|title|budget|nav|price) = %s", id, got)
	}
	b.audit("item page")
}

func browserAxePages(t *testing.T, browser context.Context) {
	requireAxe(t)
	app := newTestApp(t)
	b := newBrowserTab(t, browser, app)
	for _, path := range []string{"/", "/register", "/login", "/no-such-page"} {
		b.navigate(path)
		b.liveRegionsEmpty(path)
		b.audit(path + " (anonymous)")
	}
	b.navigate("/register")
	b.run("submit an empty form", chromedp.Click(chromedp.CSS(`form[action="/register"] button[type="submit"]`)))
	b.waitFor("the errors", `document.querySelectorAll('.error-message').length === 4`)
	b.audit("register with errors")
	b.navigate("/login")
	b.run("log in wrongly", chromedp.SendKeys(chromedp.ID("username"), "nobody"),
		chromedp.SendKeys(chromedp.ID("password"), "wrong password\r"))
	b.waitFor("the login failure", `document.body.textContent.includes('Login failed. Check username and password.')`)
	b.audit("login failed")

	b.signUpWithForm("ann", false)
	b.audit("market after sign-up, with its message")
	b.navigate("/market")
	b.liveRegionsEmpty("/market")
	b.audit("market")
	kettle := browserItemID(app, "Kettle")
	b.run("buy", chromedp.Click(chromedp.ID("buy-"+kettle)))
	b.waitFor("the dialog", `document.getElementById('confirm').open`)
	b.run("confirm", chromedp.Click(chromedp.ID("confirm-ok")))
	b.settled("the purchase", `document.getElementById('flash').textContent.trim() === 'Purchased Kettle!'`)
	for _, path := range []string{"/market", "/items/" + kettle, "/trades", "/no-such-page", "/items/0"} {
		b.navigate(path)
		b.liveRegionsEmpty(path)
		b.audit(path)
	}
}

func browserReflow(t *testing.T, browser context.Context) {
	app := newTestApp(t)
	b := newBrowserTab(t, browser, app)
	b.signUpWithForm("rex", false)
	phone := browserItemID(app, "Phone")
	b.run("buy", chromedp.Click(chromedp.ID("buy-"+phone)))
	b.run("confirm", chromedp.Click(chromedp.ID("confirm-ok")))
	b.settled("the purchase", `document.getElementById('flash').textContent.trim() === 'Purchased Phone!'`)
	for _, vp := range []struct {
		name          string
		width, height int64
		scale         float64
		mobile        bool
	}{
		{"phone 375x740", 375, 740, 2, true},
		{"200% zoom of 1280x900", 640, 450, 2, false},
		{"400% zoom of 1280x1024 (WCAG 1.4.10)", 320, 256, 4, false},
	} {
		if _, err := chromedp.Call(b.ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
			Width: vp.width, Height: vp.height, DeviceScaleFactor: vp.scale, Mobile: vp.mobile,
		}); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/market", "/items/" + phone, "/trades", "/register"} {
			b.navigate(path)
			got := evalJS[reflowResult](b, reflowProbe)
			if got.Document > got.Viewport || got.Body > got.Viewport || len(got.Wide) > 0 {
				t.Errorf("%s %s overflows horizontally (document %d, body %d, viewport %d px): %v", vp.name, path, got.Document, got.Body, got.Viewport, got.Wide)
			}
		}
		// The confirmation dialog fits too.
		b.navigate("/market")
		b.run("sell", chromedp.Click(chromedp.ID("sell-"+phone)))
		b.waitFor("the dialog", `document.getElementById('confirm').open`)
		if fits := b.js(`(() => { const r = document.getElementById('confirm').getBoundingClientRect();
		  return r.left >= 0 && r.right <= document.documentElement.clientWidth; })()`); fits != "true" {
			t.Errorf("%s: the confirmation dialog does not fit the viewport", vp.name)
		}
		b.key(kb.Escape)
		b.waitFor("the dialog to close", `!document.getElementById('confirm').open`)
	}
}

// reflowProbe measures how wide a page is against its viewport, and which elements stick out.
const reflowProbe = `(() => {
  const w = document.documentElement.clientWidth;
  const wide = [...document.body.querySelectorAll('*')].filter((e) => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && (r.right > w + 1 || r.left < -1) && !e.closest('.visually-hidden, .skip-link, dialog:not([open])');
  }).slice(0, 5).map((e) => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className);
  return {document: document.documentElement.scrollWidth, body: document.body.scrollWidth, viewport: w, wide};
})()`

// reflowResult is how wide a page is against its viewport, and which elements stick out.
type reflowResult struct {
	Document int      `json:"document"`
	Body     int      `json:"body"`
	Viewport int      `json:"viewport"`
	Wide     []string `json:"wide"`
}

// chromedp's own KeyEvent delivers a character as a separate char event after the keydown:
// "/" must still only focus the search box, and typing then searches for what was typed.
func browserAutomationKeys(t *testing.T, browser context.Context) {
	app := newTestApp(t)
	b := newBrowserTab(t, browser, app)
	b.signUpWithForm("keys", false)
	b.run("press / as chromedp does", chromedp.KeyEvent("/"))
	if f, v := b.focused(), b.js(`document.getElementById('q').value`); f != "q" || v != "" {
		t.Fatalf("after /: focus %s, search box %q; want q and empty", f, v)
	}
	b.run("type chess", chromedp.KeyEvent("chess"))
	b.waitFor("the search results", `document.querySelectorAll('#item-rows tr').length === 1`)
	chess := browserItemID(app, "Chess Set")
	if got := b.rowsOf("item-rows"); len(got) != 1 || got[0] != "item-"+chess {
		t.Fatalf("searching chess shows %v", got)
	}
	// j, then Enter twice, as chromedp sends them: one purchase, confirmed in the dialog.
	b.settled("the search to settle", `true`)
	b.run("leave the search box", chromedp.KeyEvent(kb.Escape))
	b.run("press j", chromedp.KeyEvent("j"))
	if f := b.focused(); f != "buy-"+chess {
		t.Fatalf("after j focus is on %s, want buy-%s", f, chess)
	}
	b.run("press Enter", chromedp.KeyEvent(kb.Enter))
	b.waitFor("the confirmation", `document.getElementById('confirm').open`)
	if f := b.focused(); f != "confirm-ok" {
		t.Errorf("the confirmation opened with focus on %s, want confirm-ok", f)
	}
	b.run("press Enter", chromedp.KeyEvent(kb.Enter))
	b.settled("the purchase", `document.getElementById('flash').textContent.trim() === 'Purchased Chess Set!'`)
	if got := b.text("budget"); got != "$915" {
		t.Errorf("budget after buying the chess set: %s, want $915", got)
	}
	if b.tradeRequests() != 1 {
		t.Errorf("%d trade requests, want exactly 1", b.tradeRequests())
	}
}

// A button that a search has just put on the page works as soon as it can be pressed: it asks
// for confirmation, and never posts the plain form (a purchase nobody confirmed) because htmx
// had not yet taken it over.
func browserPressRightAfterSearch(t *testing.T, browser context.Context) {
	app := newTestApp(t)
	b := newBrowserTab(t, browser, app)
	b.signUpWithForm("quick", false)
	b.markPage()
	// The moment the results are in the page (a mutation observer runs right after the task
	// that swapped them in), click the buy button they bring.
	evalJS[bool](b, `(() => {
		const rows = document.getElementById('item-rows');
		window.__earlyClick = new Promise((done) => {
			new MutationObserver((_, observer) => {
				const buy = rows.querySelector('.js-item');
				if (rows.rows.length !== 1 || !buy) return;
				observer.disconnect();
				buy.click();
				done(document.getElementById('confirm').open);
			}).observe(rows, { childList: true });
		});
		return true;
	})()`)
	b.run("search chess", chromedp.SendKeys(chromedp.ID("q"), "chess"))
	if !evalJS[bool](b, `window.__earlyClick`) {
		t.Errorf("a click on a buy button right after the search swapped it in did not ask for confirmation\n%s", b.state())
	}
	b.samePage("a click right after a search")
	b.run("cancel", chromedp.KeyEvent(kb.Escape))
	b.waitFor("the dialog to close", `!document.getElementById('confirm').open`)
	if got := b.text("budget"); got != "$1,000" || b.tradeRequests() != 0 {
		t.Errorf("after cancelling: budget %s and %d trade requests, want $1,000 and none", got, b.tradeRequests())
	}
}

// A fast typist: "/", a search, Escape and j before the debounced search has answered. Escape
// leaves the box with the search kept; the results replace the row j focused, and focus moves to
// the first result rather than to <body>, so Enter asks to buy it.
func browserSearchThenKeys(t *testing.T, browser context.Context) {
	app := newTestApp(t)
	b := newBrowserTab(t, browser, app)
	b.signUpWithForm("swift", false)
	first := b.ids("#item-rows .js-item")[0]
	b.key("/")
	b.run("type chess, Escape, j", chromedp.KeyEvent("chess"), chromedp.KeyEvent(kb.Escape), chromedp.KeyEvent("j"))
	chess := "buy-" + browserItemID(app, "Chess Set")
	if first == chess {
		t.Fatal("the chess set is the market's first item: the test cannot tell the rows apart")
	}
	b.settled("the search results", `new URLSearchParams(location.search).get('q') === 'chess' && document.querySelectorAll('#item-rows tr').length === 1`)
	if v := b.js(`document.getElementById('q').value`); v != "chess" {
		t.Errorf("Escape left %q in the search box, want chess", v)
	}
	if f := b.focused(); f != chess {
		t.Fatalf("after the results replaced the rows focus is on %s, want %s", f, chess)
	}
	b.key(kb.Enter)
	b.confirmDialog("Buy Chess Set?", "It costs $85. Your budget will be $915.", "Buy for $85")
	b.key(kb.Escape)
	b.waitFor("the dialog to close", `!document.getElementById('confirm').open`)
	if f := b.focused(); f != chess || b.tradeRequests() != 0 {
		t.Errorf("after cancelling focus is on %s with %d trade requests, want %s and none", f, b.tradeRequests(), chess)
	}
}

// A sold item returns to the market in its place in the order shown, and only if the search
// on screen would show it.
func browserSoldItemInOrder(t *testing.T, browser context.Context) {
	app := newTestApp(t)
	b := newBrowserTab(t, browser, app)
	b.signUpWithForm("orderly", false)
	lamp, kettle := browserItemID(app, "Desk Lamp"), browserItemID(app, "Kettle")
	for _, id := range []string{lamp, kettle} {
		b.run("buy", chromedp.Click(chromedp.ID("buy-"+id)))
		b.run("confirm", chromedp.Click(chromedp.ID("confirm-ok")))
		b.waitFor("the item to be ours", `!!document.querySelector('#owned-rows #item-`+id+`')`)
	}
	b.navigate("/market?sort=-price")
	b.run("sell the lamp", chromedp.Click(chromedp.ID("sell-"+lamp)))
	b.run("confirm", chromedp.Click(chromedp.ID("confirm-ok")))
	b.waitFor("the lamp on the market", `!!document.querySelector('#item-rows #item-`+lamp+`')`)
	p, err := app.store.Market(context.Background(), store.MarketQuery{Sort: store.SortPriceDesc})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, it := range p.Items {
		want = append(want, "item-"+strconv.FormatInt(it.ID, 10))
	}
	if got := b.rowsOf("item-rows"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the sale the market shows %v, want the server's order by price %v", got, want)
	}
	// Searching for something else, the kettle's sale does not add it to the results shown.
	b.navigate("/market?q=camera")
	b.run("sell the kettle", chromedp.Click(chromedp.ID("sell-"+kettle)))
	b.run("confirm", chromedp.Click(chromedp.ID("confirm-ok")))
	b.settled("the sale", `document.getElementById('flash').textContent.includes('Sold Kettle')`)
	if b.js(`String(!!document.querySelector('#item-rows #item-`+kettle+`'))`) != "false" {
		t.Error("the kettle joined search results for camera")
	}
}

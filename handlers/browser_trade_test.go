// Browser trades swapped in place by htmx, requests held in the network, and an expired CSRF token.

package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// browserTradeInPlace buys and sells with the mouse: the rows and the budget change in place
// (no page load), the confirmation and the button in flight say what happens, and a refused
// purchase changes nothing but the message.
func browserTradeInPlace(t *testing.T, browser context.Context) {
	app := newTestApp(t)
	tr := &tradeInPlace{t: t, b: newBrowserTab(t, browser, app)}
	tr.start(app)
	tr.cancelAsksNothing()
	tr.buyPhone()
	tr.checkBought()
	tr.sellBack()
	tr.refusals()
}

// tradeInPlace is what browserTradeInPlace's steps share: the tab, the demo items' ids and
// the market's rows as first shown.
type tradeInPlace struct {
	t                 *testing.T
	b                 *browserTab
	phone, bike, sofa string
	market            []string
}

// start signs up and checks the market as a new user sees it.
func (tr *tradeInPlace) start(app *testApp) {
	t, b := tr.t, tr.b
	b.signUpWithForm("alice", false)
	b.audit("market, your items empty")
	tr.phone, tr.bike, tr.sofa = browserItemID(app, "Phone"), browserItemID(app, "Road Bike"), browserItemID(app, "Sofa")
	tr.market = b.rowsOf("item-rows")
	phone, market := tr.phone, tr.market
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
}

// cancelAsksNothing: Cancel asks nothing of the server.
func (tr *tradeInPlace) cancelAsksNothing() {
	t, b, phone := tr.t, tr.b, tr.phone
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
}

// buyPhone buys the phone with the mouse, holding the request to see the button while it is
// in flight.
func (tr *tradeInPlace) buyPhone() {
	t, b, phone := tr.t, tr.b, tr.phone
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
}

// checkBought: the page, not loaded again, shows the phone bought, focus on the next item,
// and the answer was a small fragment.
func (tr *tradeInPlace) checkBought() {
	t, b, phone, market := tr.t, tr.b, tr.phone, tr.market
	i := slices.Index(market, "item-"+phone)
	wantFocus := "buy-" + strings.TrimPrefix(market[i+1], "item-")
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
}

// sellBack sells the phone back: it returns to its place and "Your items" says it is empty.
func (tr *tradeInPlace) sellBack() {
	t, b, phone, market := tr.t, tr.b, tr.phone, tr.market
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
	if f := b.focused(); f != "own-h" {
		t.Errorf("focus after selling the only item is on %s, want the list's heading (not the search box, where ? would be typed)", f)
	}
	b.audit("after a sale, your items empty again")
}

// refusals: refused purchases show the message, and nothing else changes. The page is made to
// show a budget the server does not hold (as between a trade in another tab and its live
// update), or it would not offer these items at all.
func (tr *tradeInPlace) refusals() {
	t, b, bike, sofa := tr.t, tr.b, tr.bike, tr.sofa
	for _, it := range []struct{ id, name, desc string }{
		{bike, "Road Bike", "It costs $1,450. Your budget will be $8,549."},
		{sofa, "Sofa", "It costs $2,200. Your budget will be $7,799."},
	} {
		before := b.rowsOf("item-rows")
		b.pretendBudget("$9,999")
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
		if got := b.js(`document.getElementById('buy-` + it.id + `').getAttribute('aria-disabled')`); got != "true" {
			t.Errorf("after the refusal brought the true budget back, %s's Buy has aria-disabled=%q", it.name, got)
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

// Browser search: order and history, the shortcuts switch, and keys and trades racing a search.

package handlers_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"market/store"
)

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

package handlers_test

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp/kb"
)

// Two users in two tabs: what one buys leaves the other's page within a second, without a
// reload, with focus and an open confirmation taken care of, announced once, and axe clean.
func TestBrowserLive(t *testing.T) {
	browser := startBrowser(t)
	lt := &browserLiveTest{t: t, app: newTestApp(t)}
	lt.start(browser)
	lt.boughtElsewhere()
	lt.focusedRowLeaves()
	lt.confirmingGoneItem()
	lt.searchStream()
}

// browserLiveTest is what TestBrowserLive's steps share: Ann's and Bob's tabs on one app, and
// Carl, a third trader over plain HTTP.
type browserLiveTest struct {
	t        *testing.T
	app      *testApp
	ann, bob *browserTab
	carl     *client
}

// start signs Ann and Bob up in their tabs and waits for both pages' streams.
func (lt *browserLiveTest) start(browser context.Context) {
	t, app := lt.t, lt.app
	lt.ann = newBrowserTab(t, browser, app)
	lt.ann.signUpWithForm("ann", false)
	lt.bob = newBrowserTab(t, browser, app)
	lt.bob.signUpWithForm("bob", false)
	lt.carl = app.signUp("carl") // a third trader, over plain HTTP
	waitUntil(t, "both pages' streams", 5*time.Second, func() bool { return app.handler.OpenStreams() >= 2 })
	lt.ann.markPage()
}

// boughtElsewhere: Bob buys the mouse in his tab; it leaves Ann's page.
func (lt *browserLiveTest) boughtElsewhere() {
	t, app, ann, bob := lt.t, lt.app, lt.ann, lt.bob
	mouse := browserItemID(app, "Mouse")
	countBefore := ann.text("result-count")
	evalJS[bool](bob, `(document.getElementById('buy-`+mouse+`').focus(), true)`)
	bob.key(kb.Enter)
	bob.confirmDialog("Buy Mouse?", "It costs $45. Your budget will be $955.", "Buy for $45")
	start := time.Now()
	bob.key(kb.Enter)
	ann.waitFor("the mouse to leave Ann's page", `!document.getElementById('item-`+mouse+`')`)
	took := time.Since(start) // before the checks below, which take browser round trips of their own
	if n := len(ann.rowsOf("item-rows")); n != 25 {
		t.Fatalf("Ann's page shows %d rows, want the other 25", n)
	}
	t.Logf("Bob's purchase left Ann's page after %s", took)
	if took > time.Second {
		t.Errorf("the row left after %s, want within a second", took)
	}
	ann.waitFor("the announcement", `document.getElementById('flash').textContent.includes('Mouse was bought by someone else.')`)
	if got := ann.text("result-count"); got == countBefore || !strings.Contains(got, "items on sale") {
		t.Errorf("count %q after the purchase, was %q", got, countBefore)
	}
	if got := bob.text("budget"); got != "$955" {
		t.Errorf("Bob's budget %q", got)
	}
	ann.samePage("after Bob's purchase")
	ann.audit("after a live update")
}

// focusedRowLeaves: Ann's focus is on the kettle when Carl buys it: the next row takes it, and
// j still works.
func (lt *browserLiveTest) focusedRowLeaves() {
	t, app, ann, carl := lt.t, lt.app, lt.ann, lt.carl
	kettle := browserItemID(app, "Kettle")
	evalJS[bool](ann, `(document.getElementById('buy-`+kettle+`').focus(), true)`)
	next := ann.js(`document.getElementById('item-` + kettle + `').nextElementSibling.querySelector('.js-item').id`)
	after := ann.js(`document.getElementById('item-` + kettle + `').nextElementSibling.nextElementSibling.querySelector('.js-item').id`)
	carl.buy(app.item("Kettle").ID)
	ann.waitFor("the kettle to leave", `!document.getElementById('item-`+kettle+`')`)
	if f := ann.focused(); f != next {
		t.Errorf("focus on %s after the focused row left, want the next row's %s", f, next)
	}
	ann.key("j")
	if f := ann.focused(); f != after {
		t.Errorf("j after a live update: focus on %s, want %s", f, after)
	}
}

// confirmingGoneItem: Ann is confirming the tent when Carl buys it: the dialog says so at once
// and cannot trade.
func (lt *browserLiveTest) confirmingGoneItem() {
	t, app, ann, carl := lt.t, lt.app, lt.ann, lt.carl
	tent := browserItemID(app, "Tent")
	evalJS[bool](ann, `(document.getElementById('buy-`+tent+`').focus(), true)`)
	ann.key(kb.Enter)
	ann.confirmDialog("Buy Tent?", "It costs $310. Your budget will be $690.", "Buy for $310")
	trades := ann.tradeRequests()
	carl.htmx("/market", url.Values{"purchase_item": {tent}})
	ann.waitFor("the dialog to say the tent is gone", `document.getElementById('confirm-ok').disabled &&
	  document.getElementById('confirm-gone').textContent.includes('Tent was just bought by someone else.')`)
	if f := ann.focused(); f == "BODY" || f == "confirm-ok" {
		t.Errorf("focus on %s once the tent was gone, want the Cancel button", f)
	}
	ann.audit("the confirmation of an item someone else bought")
	evalJS[bool](ann, watchRequestsAndClose)
	evalJS[bool](ann, `(document.getElementById('confirm-ok').click(), true)`)
	ann.key(kb.Enter) // on Cancel
	ann.waitFor("the dialog to close, and any request it sent to end", `!document.getElementById('confirm').open &&
	  window.__watch.closed && window.__watch.sent === window.__watch.ended`)
	if n := ann.tradeRequests(); n != trades {
		t.Errorf("%d trade requests after confirming a gone item, want %d", n, trades)
	}
	if f := ann.focused(); !strings.HasPrefix(f, "buy-") {
		t.Errorf("focus on %s after closing the dialog, want an item", f)
	}
	if got := ann.text("budget"); got != "$1,000" {
		t.Errorf("Ann's budget %q, want $1,000: nothing was traded", got)
	}
	ann.samePage("after the live updates")
}

// searchStream: a search opens a stream for its own results: a purchase and a sale of a
// matching item take it out of the results and put it back, in its place.
func (lt *browserLiveTest) searchStream() {
	t, app, ann, carl := lt.t, lt.app, lt.ann, lt.carl
	evalJS[bool](ann, `(window.__sseOpens = 0, document.addEventListener('htmx:sseOpen', () => window.__sseOpens++), true)`)
	ann.key("/")
	ann.key("desk")
	// Keys are typed one by one: wait for the results of the whole word, not of a prefix the
	// debounce let through on a loaded machine.
	ann.settled("the search results", `document.getElementById('result-count').textContent.includes('match') &&
	  document.getElementById('result-count').textContent.includes('“desk”')`)
	desks := ann.rowsOf("item-rows")
	if len(desks) != 2 {
		t.Fatalf("search for desk shows %v, want the desk lamp and the standing desk", desks)
	}
	waitUntil(t, "the old stream to close", 2*time.Second, func() bool { return app.handler.OpenStreams() == 2 })
	ann.waitFor("the search's stream to connect", `window.__sseOpens > 0`)
	lamp := app.item("Desk Lamp").ID
	carl.buy(lamp)
	ann.waitFor("the desk lamp to leave the results", `!document.getElementById('`+desks[0]+`')`)
	carl.htmx("/market", url.Values{"sold_item": {strconv.FormatInt(lamp, 10)}})
	ann.waitFor("the desk lamp to come back", `document.getElementById('item-rows').rows.length === 2`)
	if got := ann.rowsOf("item-rows"); fmt.Sprint(got) != fmt.Sprint(desks) {
		t.Errorf("after the lamp came back the results are %v, want %v", got, desks)
	}
	ann.samePage("after the search")
}

// watchRequestsAndClose counts the page's requests as they are sent and as they end, wherever
// they come from (htmx tells no one of a request from a button no longer in the page), and
// marks the confirmation dialog's close handled once app.js has put focus back (its close
// handler looks again in a task after the event; this one's task comes after that).
const watchRequestsAndClose = `(() => {
  const w = (window.__watch = { sent: 0, ended: 0, closed: false });
  const send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.send = function (...args) {
    w.sent++;
    this.addEventListener('loadend', () => w.ended++);
    return send.apply(this, args);
  };
  document.getElementById('confirm').addEventListener('close', () => setTimeout(() => (w.closed = true)), { once: true });
  return true;
})()`

package handlers_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// Keys as fast as a keyboard sends them, racing the answers they cause: every confirmed trade is
// sent exactly once, nothing is traded unconfirmed, and focus never falls to <body>.

// fastStart signs a new user up and returns the tab, the Buy Kettle button's id and the id of
// the Buy button in the row after it.
func fastStart(t *testing.T, browser context.Context, user string) (*testApp, *browserTab, string, string) {
	app := newTestApp(t)
	b := newBrowserTab(t, browser, app)
	b.signUpWithForm(user, false)
	rows := b.ids("#item-rows .js-item")
	kettle := "buy-" + browserItemID(app, "Kettle")
	i := slices.Index(rows, kettle)
	if i < 0 || i+1 >= len(rows) {
		t.Fatalf("Buy Kettle is not followed by another item: %v", rows)
	}
	b.run("focus Buy Kettle", chromedp.Focus(chromedp.ID(kettle)))
	return app, b, kettle, rows[i+1]
}

// pause lets the page run for d, then waits for htmx to be idle.
func (b *browserTab) pause(d time.Duration) {
	b.t.Helper()
	evalJS[bool](b, fmt.Sprintf(`new Promise((ok) => setTimeout(() => ok(true), %d))`, d.Milliseconds()))
	b.settled("htmx to be idle", `true`)
}

// Enter, Enter, Enter in one burst: the kettle is bought once, confirmed, and the third Enter
// asks about the item focus moved on to. (The confirmation used to wait for the dialog's close
// event, which came after the third Enter had opened the dialog again, and the purchase was lost.)
func browserFastEnters(t *testing.T, browser context.Context) {
	_, b, _, next := fastStart(t, browser, "rapid")
	b.markPage()
	b.key(kb.Enter + kb.Enter + kb.Enter)
	b.settled("the purchase", `document.getElementById('flash').textContent.trim() === 'Purchased Kettle!'`)
	if n := b.tradeRequests(); n != 1 {
		t.Errorf("Enter ×3 sent %d trade requests, want 1", n)
	}
	name := b.js(`document.getElementById('` + next + `').dataset.name`)
	b.waitFor("the next item's confirmation", `document.getElementById('confirm').open`)
	if got := b.text("confirm-title"); got != "Buy "+name+"?" {
		t.Errorf("the third Enter asks %q, want %q", got, "Buy "+name+"?")
	}
	b.key(kb.Escape)
	b.waitFor("the dialog to close", `!document.getElementById('confirm').open`)
	if f, budget := b.focused(), b.text("budget"); f != next || budget != "$945" || b.tradeRequests() != 1 {
		t.Errorf("after Escape: focus %s, budget %s, %d trade requests; want %s, $945, 1", f, budget, b.tradeRequests(), next)
	}
	b.samePage("fast Enters")
}

// While a purchase is on its way its button is disabled, and focus waits on the next item
// (where it will be once the row has gone), not on <body>. A second purchase confirmed
// meanwhile counts on the budget the first will leave.
func browserFocusWhileInFlight(t *testing.T, browser context.Context) {
	_, b, _, next := fastStart(t, browser, "patient")
	b.key(kb.Enter)
	b.confirmDialog("Buy Kettle?", "It costs $55. Your budget will be $945.", "Buy for $55")
	price := b.js(`document.getElementById('` + next + `').dataset.price`)
	got := b.holdTrade(chromedp.KeyEvent(kb.Enter), `(() => {
		const focus = document.activeElement.id || document.activeElement.tagName;
		const next = document.getElementById('`+next+`');
		next.click();
		return focus + '|' + document.getElementById('confirm-desc').textContent;
	})()`)
	want := fmt.Sprintf("%s|It costs $%s. Your budget will be $%d.", next, price, 945-atoi(t, price))
	if got != want {
		t.Errorf("with the kettle's purchase in flight: %q, want %q (focus | the next confirmation)", got, want)
	}
	b.settled("the purchase", `document.getElementById('flash').textContent.trim() === 'Purchased Kettle!'`)
	if f := b.focused(); f != "confirm-ok" {
		t.Errorf("the second confirmation lost focus to %s", f)
	}
	b.key(kb.Escape)
	b.waitFor("the dialog to close", `!document.getElementById('confirm').open`)
	if f := b.focused(); f != next {
		t.Errorf("after the purchase and Escape focus is on %s, want %s", f, next)
	}
}

// A search typed just before a purchase answers after it: its rows land, but the purchase's
// message stays in #flash rather than being talked over by the result count.
func browserTradeBeforeSearchAnswers(t *testing.T, browser context.Context) {
	app, b, _, _ := fastStart(t, browser, "typist")
	first := b.ids("#item-rows .js-item")[0]
	name := b.js(`document.getElementById('` + first + `').dataset.name`)
	b.key("/")
	b.key("chess" + kb.Escape + kb.Enter + kb.Enter) // within the search's 300 ms debounce; Escape goes to the first item
	b.settled("the search results", `new URLSearchParams(location.search).get('q') === 'chess' && document.querySelectorAll('#item-rows tr').length === 1`)
	b.pause(100)
	if got, want := b.text("flash"), "Purchased "+name+"!"; got != want {
		t.Errorf("#flash says %q, want the purchase's %q", got, want)
	}
	if got := b.text("result-count"); got != "1 item matches “chess”." {
		t.Errorf("#result-count says %q", got)
	}
	if f, chess := b.focused(), "buy-"+browserItemID(app, "Chess Set"); f != chess {
		t.Errorf("focus is on %s, want the first result %s", f, chess)
	}
}

// Search results replace the rows while a confirmation is open. Escape returns focus to the
// results, not <body>; confirming an item the results no longer show trades nothing and says so.
func browserRowsReplacedBehindDialog(t *testing.T, browser context.Context) {
	app, b, _, _ := fastStart(t, browser, "behind")
	chess := "buy-" + browserItemID(app, "Chess Set")
	b.key("/")
	b.key("chess" + kb.Escape + "j" + kb.Enter)
	b.waitFor("the confirmation", `document.getElementById('confirm').open`)
	b.settled("the search results", `new URLSearchParams(location.search).get('q') === 'chess' && document.querySelectorAll('#item-rows tr').length === 1`)
	b.key(kb.Escape)
	b.waitFor("the dialog to close, and focus to leave it", `!document.getElementById('confirm').open && !document.activeElement.closest('dialog')`)
	if f := b.focused(); f != chess {
		t.Errorf("Escape from a confirmation whose row the search replaced: focus on %s, want %s", f, chess)
	}
	// Now Buy Chess Set is asked about, and a search for kettles replaces it.
	b.key(kb.Enter)
	b.waitFor("the confirmation", `document.getElementById('confirm').open`)
	evalJS[bool](b, `(() => {
		const q = document.getElementById('q');
		q.value = 'kettle';
		q.dispatchEvent(new Event('search'));
		return true;
	})()`)
	b.settled("the kettle results", `new URLSearchParams(location.search).get('q') === 'kettle'`)
	b.key(kb.Enter)
	b.waitFor("the dialog to close", `!document.getElementById('confirm').open`)
	b.pause(100)
	want := "The list changed before you confirmed: Chess Set was not traded. Try again."
	if got := b.text("flash-alert"); got != want || b.tradeRequests() != 0 || b.text("budget") != "$1,000" {
		t.Errorf("confirming a replaced row: alert %q, %d trade requests, budget %s; want %q, none, $1,000",
			got, b.tradeRequests(), b.text("budget"), want)
	}
	if f := b.focused(); f == "BODY" {
		t.Error("focus fell to <body>")
	}
}

// Item details asked for and dismissed with Escape before they arrive do not open afterwards.
func browserDetailsDismissedEarly(t *testing.T, browser context.Context) {
	_, b, _, _ := fastStart(t, browser, "browser")
	evalJS[bool](b, `(document.querySelector('#item-rows .js-details').focus(), true)`)
	// The details are held in the network until after Escape, so Escape surely comes first.
	ctx, cancel := context.WithTimeout(b.ctx, 2*browserWait)
	defer cancel()
	in := b.intercept(ctx, "/items/*")
	b.key(kb.Enter)
	details, err := in.paused()
	if err != nil {
		t.Fatalf("the details were not asked for: %v", err)
	}
	b.key(kb.Escape)
	in.release(details)
	in.end()
	b.pause(300)
	if open := b.js(`document.getElementById('item-dialog').open`); open != "false" {
		t.Error("item details opened after Escape dismissed them")
	}
	if got := b.text("item-dialog-title"); got == "Item details" {
		t.Errorf("the details never arrived (the dialog still says %q)", got)
	}
	if !evalJS[bool](b, `document.activeElement.classList.contains('js-details')`) {
		t.Errorf("focus moved to %s, want the item's link", b.focused())
	}
	b.key(kb.Enter)
	b.waitFor("the details", `document.getElementById('item-dialog').open`)
	b.key(kb.Escape)
	// j from the link moves to the next row's item.
	b.waitFor("the details to close", `!document.getElementById('item-dialog').open`)
	b.key("j")
	if f, second := b.focused(), b.ids("#item-rows .js-item")[1]; f != second {
		t.Errorf("j from the first row's link focused %s, want %s", f, second)
	}
}

// Back to a page the browser kept in its back/forward cache shows the budget and the items as
// they are now, not as they were when the page was left.
func browserBackForwardCache(t *testing.T, browser context.Context) {
	_, b, _, _ := fastStart(t, browser, "returning")
	b.navigate("/market?sort=name")
	evalJS[bool](b, `(window.__left = true)`)
	b.run("follow the Market link", chromedp.Click(chromedp.CSS(`nav a[href="/market"]:not(.brand)`)))
	b.waitFor("the new page", `!window.__left && document.readyState === 'complete' && !!document.getElementById('budget')`)
	first := b.ids("#item-rows .js-item")[0]
	b.run("focus the first item", chromedp.Focus(chromedp.ID(first)))
	b.key(kb.Enter + kb.Enter)
	b.settled("the purchase", `document.getElementById('flash').textContent.trim().startsWith('Purchased')`)
	budget := b.text("budget")
	b.run("back", chromedp.Evaluate[chromedp.Void](`history.back()`))
	// The page comes back from the cache with the mark set before it was left, and reloads
	// itself: the mark is gone once it has.
	waitOutsidePage(b, "the earlier page, loaded again",
		`!window.__left && location.search === '?sort=name' && document.readyState === 'complete' && !!document.getElementById('budget')`)
	if got, shown := b.text("budget"), b.js(`!!document.querySelector('#item-rows #`+first+`')`); got != budget || shown != "false" {
		t.Errorf("after Back the page shows budget %s and the bought item on sale: %s; want %s and false", got, shown, budget)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("%q is not a number", s)
	}
	return n
}

// A purchase whose row leaves the page before its answer (new search results) is still heard
// when the answer comes: the next confirmation counts on the budget that stands, not on the
// purchase a second time.
func browserAnswerAfterRowLeft(t *testing.T, browser context.Context) {
	_, b, kettle, next := fastStart(t, browser, "departed")
	b.key(kb.Enter)
	b.waitFor("the confirmation", `document.getElementById('confirm').open`)
	b.holdTrade(chromedp.KeyEvent(kb.Enter), `document.getElementById('`+kettle+`').closest('tr').remove()`)
	b.settled("the purchase", `document.getElementById('flash').textContent.trim() === 'Purchased Kettle!'`)
	price := b.js(`document.getElementById('` + next + `').dataset.price`)
	b.run("buy the next item", chromedp.Click(chromedp.ID(next)))
	b.waitFor("its confirmation", `document.getElementById('confirm').open`)
	if got, want := b.text("confirm-desc"), fmt.Sprintf("It costs $%s. Your budget will be $%d.", price, 945-atoi(t, price)); got != want {
		t.Errorf("with the kettle bought and its row gone, the next confirmation says %q, want %q", got, want)
	}
}

// A refusal that answers before a search typed just earlier keeps its alert.
func browserRefusalBeforeSearchAnswers(t *testing.T, browser context.Context) {
	app, b, _, _ := fastStart(t, browser, "refused")
	sofa := "buy-" + browserItemID(app, "Sofa")
	b.pretendBudget("$9,999")
	evalJS[bool](b, `(() => {
		const q = document.getElementById('q');
		q.focus();
		q.value = 'o';
		q.dispatchEvent(new Event('input', { bubbles: true }));
		document.getElementById('`+sofa+`').click();
		document.getElementById('confirm-ok').click();
		return true;
	})()`)
	want := "You don't have enough budget to purchase Sofa."
	b.waitFor("the refusal", `document.getElementById('flash-alert').textContent.trim() === `+jsQuote(want))
	b.settled("the search results", `new URLSearchParams(location.search).get('q') === 'o'`)
	b.pause(100)
	if got := b.text("flash-alert"); got != want {
		t.Errorf("after the search answered #flash-alert says %q, want %q", got, want)
	}
}

// A refused trade of the only item on screen: focus waits in the search box, then returns to
// the item; unless the user has started typing there meanwhile, when it stays with the typing.
func browserRefusedOnlyItem(t *testing.T, browser context.Context) {
	app, b, _, _ := fastStart(t, browser, "lonely")
	sofa := "buy-" + browserItemID(app, "Sofa")
	want := "You don't have enough budget to purchase Sofa."
	b.navigate("/market?q=sofa")
	b.pretendBudget("$9,999")
	b.run("focus Buy Sofa", chromedp.Focus(chromedp.ID(sofa)))
	b.key(kb.Enter + kb.Enter)
	b.settled("the refusal", `document.getElementById('flash-alert').textContent.trim() === `+jsQuote(want))
	if f := b.focused(); f != sofa {
		t.Errorf("after the refusal focus is on %s, want %s", f, sofa)
	}
	b.pretendBudget("$9,999")
	b.key(kb.Enter)
	b.confirmDialog("Buy Sofa?", "It costs $2,200. Your budget will be $7,799.", "Buy for $2,200")
	typing := b.holdTrade(chromedp.KeyEvent(kb.Enter), `(() => {
		const focus = document.activeElement.id;
		const q = document.getElementById('q');
		q.focus();
		q.value += ' bed';
		return focus;
	})()`)
	if typing != "sale-h" {
		t.Errorf("with the only item's trade in flight focus is on %s, want the list's heading", typing)
	}
	b.settled("the refusal", `document.getElementById('flash-alert').textContent.trim() === `+jsQuote(want))
	if f := b.focused(); f != "q" {
		t.Errorf("the refusal took focus to %s while the user typed in the search box", f)
	}
}

// Without JavaScript the page offers nothing that needs it: no "Keyboard shortcuts" button and
// no hint about ?, while the forms still work; with it, both are there.
func browserWithoutJavaScript(t *testing.T, browser context.Context) {
	app := newTestApp(t)
	b := newBrowserTab(t, browser, app)
	shown := `[document.getElementById('shortcuts-open').checkVisibility({visibilityProperty: true}),
	           document.querySelector('.site-footer kbd').checkVisibility({visibilityProperty: true})].join()`
	b.navigate("/")
	if got := b.js(shown); got != "true,true" {
		t.Errorf("with JavaScript the shortcuts button and hint are visible: %s, want true,true", got)
	}
	if _, err := chromedp.Call(b.ctx, emulation.SetScriptExecutionDisabled,
		emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	b.navigate("/")
	if got := b.js(shown); got != "false,false" {
		t.Errorf("without JavaScript the shortcuts button and hint are visible: %s, want false,false", got)
	}
	b.signUpWithForm("plain", false)
}

// A form sent back with errors says so first: the title starts with "Error: ", focus is on the
// summary of what went wrong, and each of its links leads to its field.
func browserFormErrors(t *testing.T, browser context.Context) {
	app := newTestApp(t)
	b := newBrowserTab(t, browser, app)
	b.navigate("/register")
	b.run("fill the form badly", chromedp.SendKeys(chromedp.ID("username"), "a"),
		chromedp.SendKeys(chromedp.ID("email"), "not-an-email"))
	b.key(kb.Enter)
	b.waitFor("the form with its errors", `!!document.querySelector('.error-summary')`)
	if got := b.js(`document.title`); got != "Error: Register · Market" {
		t.Errorf("title %q, want Error: Register · Market", got)
	}
	if !evalJS[bool](b, `document.activeElement.classList.contains('error-summary')`) {
		t.Errorf("focus is on %s, want the error summary", b.focused())
	}
	links := evalJS[[]string](b, `[...document.querySelectorAll('.error-summary a')].map((a) => a.getAttribute('href'))`)
	if want := []string{"#username", "#email", "#password", "#confirm_password"}; !slices.Equal(links, want) {
		t.Errorf("the summary links to %v, want %v", links, want)
	}
	b.key(kb.Tab)
	b.key(kb.Enter)
	if f := b.focused(); f != "username" {
		t.Errorf("the summary's first link took focus to %s, want the username field", f)
	}
	b.audit("register with errors")

	// A failed login: its alert takes focus, and the title says Error.
	b.navigate("/login")
	b.run("fill the login form", chromedp.SendKeys(chromedp.ID("username"), "nobody"),
		chromedp.SendKeys(chromedp.ID("password"), "wrong password"))
	b.key(kb.Enter)
	b.waitFor("the refusal", `document.getElementById('flash-alert').textContent.trim() !== ''`)
	if f, title := b.focused(), b.js(`document.title`); f != "flash-alert" || title != "Error: Log in · Market" {
		t.Errorf("after a failed login focus is on %s and the title is %q, want flash-alert and Error: Log in · Market", f, title)
	}
}

// waitOutsidePage waits for predicate with one short evaluation at a time, from the test: a
// poll inside the page (waitFor) would hang if it began in a page being frozen into the
// back/forward cache, while an evaluation that hangs here is abandoned and tried again.
func waitOutsidePage(b *browserTab, what, predicate string) {
	b.t.Helper()
	for deadline := time.Now().Add(browserWait); ; time.Sleep(20 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(b.ctx, 500*time.Millisecond)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!(`+predicate+`)`))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) || b.ctx.Err() != nil {
			b.t.Fatalf("waiting for %s (%s): %v\n%s", what, predicate, err, b.state())
		}
	}
}

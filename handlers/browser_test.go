package handlers_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
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

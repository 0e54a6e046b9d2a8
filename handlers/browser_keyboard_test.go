// Browser keyboard model: a whole journey from the keyboard, and the keys automation sends.

package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"market/store"
)

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

// browserKeyboardJourney trades and searches from the keyboard alone, one step after another
// on the same page and account.
func browserKeyboardJourney(t *testing.T, browser context.Context) {
	app := newTestApp(t)
	j := &keyboardJourney{t: t, app: app, b: newBrowserTab(t, browser, app)}
	j.b.signUpWithForm("kim", true)
	j.walkRows()
	j.searchFromKeyboard()
	j.backAndForward()
	j.dialogKeys()
	j.heldEnterThenRefusal()
	j.buyLastRow()
	j.reloadKeepsSearch()
	j.buyMiddleRow()
	j.sellFirstOwned()
	j.shortcutsDialog()
	j.sellLastOwned()
}

// keyboardJourney is what the journey's steps learn and hand on: the rows the camera search
// showed, the items' ids, the Buy and Sell buttons.
type keyboardJourney struct {
	t                    *testing.T
	app                  *testApp
	b                    *browserTab
	cameraRows           []string // the rows of the search for camera
	camera, drone, phone string   // the camera search's items' ids
	speaker              string   // the Buy button of the speaker, bought from the whole market
	owned                []string // the Sell buttons of your items
}

// walkRows: j/k and the arrows move between the items' buttons; no wrap at the ends.
func (j *keyboardJourney) walkRows() {
	t, b := j.t, j.b
	buys := b.ids("#item-rows .js-item")
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
}

// searchFromKeyboard: / focuses the search box without typing into it; there, shortcut keys
// are just text, and typing searches (debounced) without loading the page.
func (j *keyboardJourney) searchFromKeyboard() {
	t, b := j.t, j.b
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
	j.cameraRows = b.rowsOf("item-rows")
	b.audit("search results")
}

// backAndForward: back shows the previous search, forward this one, from the server (no
// history cache).
func (j *keyboardJourney) backAndForward() {
	t, b := j.t, j.b
	b.run("back", chromedp.NavigateBack())
	b.waitFor("back to the previous search", `new URLSearchParams(location.search).get('q') !== 'camera'`)
	if q := b.expectResults("after back"); q == "camera" {
		t.Error("back did not leave the camera search")
	}
	b.run("forward", chromedp.NavigateForward())
	b.waitFor("forward to the camera search", `new URLSearchParams(location.search).get('q') === 'camera'`)
	b.expectResults("after forward")
	b.markPage() // the history restore replaced the body
}

// dialogKeys starts a purchase from the keyboard, on the page history restored: Enter asks,
// focus stays in the dialog, Escape cancels.
func (j *keyboardJourney) dialogKeys() {
	t, b, app := j.t, j.b, j.app
	j.camera, j.drone, j.phone = browserItemID(app, "Camera"), browserItemID(app, "Drone"), browserItemID(app, "Phone")
	camera := j.camera
	if want := fmt.Sprint([]string{"item-" + camera, "item-" + j.drone, "item-" + j.phone}); fmt.Sprint(j.cameraRows) != want {
		t.Fatalf("camera search shows %v, want %s", j.cameraRows, want)
	}
	b.run("focus nothing", chromedp.Evaluate[chromedp.Void](`document.activeElement?.blur()`))
	b.key("j")
	if f := b.focused(); f != "buy-"+camera {
		t.Fatalf("j after the history restore focused %s, want buy-%s", f, camera)
	}
	// Above the budget, Enter explains instead of asking; on a page that shows a budget the
	// server does not hold (see pretendBudget), it asks.
	b.key(kb.Enter)
	b.waitFor("the explanation", `document.getElementById('flash-alert').textContent.includes('$100 more than you have')`)
	if open := b.js(`document.getElementById('confirm').open`); open != "false" {
		t.Errorf("Enter on an item above the budget opened the confirmation")
	}
	b.pretendBudget("$9,999")
	b.key(kb.Enter)
	b.confirmDialog("Buy Camera?", "It costs $1,100. Your budget will be $8,899.", "Buy for $1,100")
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
}

// heldEnterThenRefusal: Enter asks again, a held Enter does nothing, Enter confirms, and the
// refusal keeps focus, budget and rows.
func (j *keyboardJourney) heldEnterThenRefusal() {
	t, b, camera := j.t, j.b, j.camera
	b.key(kb.Enter)
	b.confirmDialog("Buy Camera?", "It costs $1,100. Your budget will be $8,899.", "Buy for $1,100")
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
	if got := b.rowsOf("item-rows"); fmt.Sprint(got) != fmt.Sprint(j.cameraRows) {
		t.Errorf("rows changed after a refusal: %v", got)
	}
}

// buyLastRow: buying the last row moves focus to the previous one.
func (j *keyboardJourney) buyLastRow() {
	t, b, phone := j.t, j.b, j.phone
	b.key("jj")
	if f := b.focused(); f != "buy-"+phone {
		t.Fatalf("focus on %s, want buy-%s", f, phone)
	}
	b.key(kb.Enter)
	b.confirmDialog("Buy Phone?", "It costs $500. Your budget will be $500.", "Buy for $500")
	b.key(kb.Enter)
	b.settled("the purchase", `document.getElementById('flash').textContent.trim() === 'Purchased Phone!'`)
	b.samePage("keyboard purchase")
	if f := b.focused(); f != "buy-"+j.drone {
		t.Errorf("after buying the last row focus is on %s, want the previous row's buy-%s", f, j.drone)
	}
	if got, budget := b.ids(`#owned-rows > tr`), b.text("budget"); fmt.Sprint(got) != "[item-"+phone+"]" || budget != "$500" {
		t.Errorf("after buying the phone: owned %v, #budget %s", got, budget)
	}
}

// reloadKeepsSearch: reload shows the same search.
func (j *keyboardJourney) reloadKeepsSearch() {
	b := j.b
	b.run("reload", chromedp.Reload())
	b.waitFor("the reloaded page", `document.readyState === 'complete' && new URLSearchParams(location.search).get('q') === 'camera'`)
	b.expectResults("after reload")
	b.liveRegionsEmpty("after reload")
}

// buyMiddleRow: on the whole market, buying a row in the middle moves focus to the next one.
func (j *keyboardJourney) buyMiddleRow() {
	t, b := j.t, j.b
	b.navigate("/market")
	buys := b.ids("#item-rows .js-item")
	b.key("jj")
	speaker := buys[1]
	j.speaker = speaker
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
}

// sellFirstOwned: down to your items, without wrapping; s sells the focused one and focus
// moves to the next.
func (j *keyboardJourney) sellFirstOwned() {
	t, b, phone, speaker := j.t, j.b, j.phone, j.speaker
	first := b.pressUntilFocused("j", "sell-", 40)
	j.owned = b.ids("#owned-rows .js-item")
	owned := j.owned
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
}

// shortcutsDialog: ? lists the shortcuts; Escape closes the list and focus comes back.
func (j *keyboardJourney) shortcutsDialog() {
	t, b := j.t, j.b
	b.key("?")
	b.waitFor("the shortcuts dialog", `document.getElementById('shortcuts').matches(':modal')`)
	if inside := b.js(`document.getElementById('shortcuts').contains(document.activeElement)`); inside != "true" {
		t.Errorf("the shortcuts dialog opened with focus on %s", b.focused())
	}
	b.audit("shortcuts dialog open")
	b.key(kb.Escape)
	b.waitFor("the shortcuts dialog to close", `!document.getElementById('shortcuts').open`)
	if f := b.focused(); f != j.owned[1] {
		t.Errorf("after closing the shortcuts focus is on %s, want %s", f, j.owned[1])
	}
}

// sellLastOwned: selling the last one leaves no row, so focus goes to the search box.
func (j *keyboardJourney) sellLastOwned() {
	t, b := j.t, j.b
	b.key("s")
	b.confirmDialog("Sell Bluetooth Speaker?", "You get $75 back. Your budget will be $1,000.", "Sell for $75")
	b.key(kb.Enter)
	b.settled("the sale", `document.getElementById('flash').textContent.trim() === 'Sold Bluetooth Speaker back to the market!'`)
	if f := b.focused(); f != "own-h" {
		t.Errorf("after selling the last of your items focus is on %s, want the list's heading", f)
	}
	if got, budget := b.rowsOf("owned-rows"), b.text("budget"); len(got) != 0 || budget != "$1,000" {
		t.Errorf("after selling everything: owned %v, #budget %s", got, budget)
	}
	if got, all := b.rowsOf("item-rows"), browserMarketIDs(t, j.app, ""); len(got) != len(all) {
		t.Errorf("after selling everything the market shows %d items, want all %d", len(got), len(all))
	}
	b.audit("your items empty after selling")
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

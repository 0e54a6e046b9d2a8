package handlers_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"market/store"
)

// The market as a shop, as a buyer uses it: what they cannot afford says why and cannot be
// confirmed (keyboard, mouse and screen reader alike), a grant lifts the cue live, the item page
// buys and sells back in place, focus stays sensible when a list empties, and the header keeps
// to two rows on a phone.
func TestBrowserShop(t *testing.T) {
	browser := startBrowser(t)
	app := newTestApp(t)
	b := newBrowserTab(t, browser, app)
	b.signUpWithForm("ann", false)
	waitUntil(t, "the buyer's stream", 5*time.Second, func() bool { return app.handler.OpenStreams() >= 1 })
	b.markPage()
	browserUnaffordable(t, b, browserItemID(app, "Camera"))
	browserGrantLiftsCue(t, b, browserItemID(app, "Camera"))
	browserItemPageTrade(t, b, browserItemID(app, "Kettle"))
	browserDialogTrade(t, b, browserItemID(app, "Kettle"))
	browserEmptiedList(t, b)
	browserSteadyHeader(t, b)
	browserDarkScheme(t, b, browserItemID(app, "Camera"))
}

// browserDarkScheme: the market and an item's page pass axe in the dark scheme too (its
// colours are checked again: contrast of text, controls and the unaffordable cue).
func browserDarkScheme(t *testing.T, b *browserTab, camera string) {
	media := emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}
	if _, err := chromedp.Call(b.ctx, emulation.SetEmulatedMedia, media); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/market", "/items/" + camera, "/trades"} {
		b.navigate(path)
		if bg := b.js(`getComputedStyle(document.body).backgroundColor`); bg != "rgb(17, 20, 25)" {
			t.Errorf("%s in the dark scheme has the background %s", path, bg)
		}
		b.audit(path + " in the dark scheme")
	}
}

// browserUnaffordable: Camera ($1,100) with $1,000: its Buy says "$100 more than you have",
// stays focusable, is aria-disabled and described by the reason; Enter and a click explain in
// #flash-alert and open no confirmation; the server was asked nothing.
func browserUnaffordable(t *testing.T, b *browserTab, camera string) {
	buy := "buy-" + camera
	if got := b.js(`document.getElementById('` + buy + `').getAttribute('aria-disabled')`); got != "true" {
		t.Fatalf("Camera's Buy: aria-disabled=%q, want true", got)
	}
	if got := b.text("short-" + camera); got != "$100 more than you have" {
		t.Errorf("Camera's cue says %q", got)
	}
	row := b.text("item-" + camera)
	if i, j := strings.Index(row, "$1,100"), strings.Index(row, "$100 more"); i < 0 || j < i {
		t.Errorf("Camera's row %q: the price must be its first amount", row)
	}
	role, name, desc := b.axNode(buy)
	if role != "button" || name != "Buy Camera" || !strings.Contains(desc, "$1,100") || !strings.Contains(desc, "$100 more than you have") {
		t.Errorf("a screen reader hears %s %q described %q", role, name, desc)
	}
	requests := b.tradeRequests()
	b.run("focus Camera's Buy", chromedp.Focus(chromedp.ID(buy)))
	b.key(kb.Enter)
	b.waitFor("the explanation", `document.getElementById('flash-alert').textContent.includes('$100 more than you have')`)
	if b.js(`document.querySelector('dialog[open]')?.id`) != "" || b.focused() != buy {
		t.Errorf("Enter on an unaffordable item: dialog %q open, focus on %s", b.js(`document.querySelector('dialog[open]')?.id`), b.focused())
	}
	b.run("click Camera's Buy", chromedp.Click(chromedp.ID(buy)))
	b.settled("the click's explanation", `!document.querySelector('dialog[open]')`)
	if got := b.tradeRequests(); got != requests {
		t.Errorf("an unaffordable item sent %d trade requests", got-requests)
	}
	if got := b.text("budget"); got != "$1,000" {
		t.Errorf("budget %s after refusing to confirm", got)
	}
	b.audit("an unaffordable item")
}

// browserGrantLiftsCue: an admin grants $200; the open page's cue goes without a reload, and
// Camera's Buy asks to confirm again.
func browserGrantLiftsCue(t *testing.T, b *browserTab, camera string) {
	if _, err := b.app.store.Grant(context.Background(), 0, userID(t, b.app, "ann"), 200); err != nil {
		t.Fatal(err)
	}
	b.waitFor("the grant to reach the page", `document.getElementById('budget').textContent === '$1,200'`)
	b.waitFor("the cue to go", `!document.getElementById('buy-`+camera+`').hasAttribute('aria-disabled') && document.getElementById('short-`+camera+`').textContent === ''`)
	if got := b.text("owned-budget"); got != "$1,200" {
		t.Errorf("the summary's budget says %q after the grant", got)
	}
	b.samePage("the grant")
	b.run("focus Camera's Buy", chromedp.Focus(chromedp.ID("buy-"+camera)))
	b.key(kb.Enter)
	b.waitFor("the confirmation", `document.getElementById('confirm').open`)
	b.key(kb.Escape)
	b.waitFor("the dialog to close", `!document.getElementById('confirm').open`)
}

// browserItemPageTrade buys Kettle from its page and sells it back, each in place.
func browserItemPageTrade(t *testing.T, b *browserTab, kettle string) {
	b.navigate("/items/" + kettle)
	b.markPage()
	for _, step := range []struct{ button, ok, status, after string }{
		{"buy-" + kettle, "Buy for", "Yours", "sell-" + kettle},
		{"sell-" + kettle, "Sell for", "On sale", "buy-" + kettle},
	} {
		b.run("press "+step.button, chromedp.Focus(chromedp.ID(step.button)))
		b.key(kb.Enter)
		b.waitFor("the confirmation", `document.getElementById('confirm').open`)
		if got := b.text("confirm-ok"); !strings.HasPrefix(got, step.ok) {
			t.Errorf("confirm button %q, want %s…", got, step.ok)
		}
		b.key(kb.Enter)
		b.settled("the trade in place", `document.getElementById('`+step.after+`')`)
		if got := b.js(`document.querySelector('[data-testid="item-status"]').textContent`); got != step.status {
			t.Errorf("after %s the status says %q", step.button, got)
		}
		if got := b.focused(); got != step.after {
			t.Errorf("after %s focus is on %s, want %s", step.button, got, step.after)
		}
	}
	b.samePage("trading from the item page")
	if got := b.text("budget"); got != "$1,200" {
		t.Errorf("budget %s after buying and selling back", got)
	}
	b.audit("the item page after a trade")
}

// browserDialogTrade: the item dialog's Buy hands over to the item's own button: the dialog
// closes, the confirmation opens, and Escape brings focus back to the item in the list.
func browserDialogTrade(t *testing.T, b *browserTab, kettle string) {
	b.navigate("/market")
	b.run("open Kettle's details", chromedp.Click(chromedp.CSS(`#item-`+kettle+` a.js-details`)))
	b.waitFor("the item dialog", `document.getElementById('item-dialog').open && document.querySelector('#item-dialog .js-via-row')`)
	b.run("press the dialog's Buy", chromedp.Click(chromedp.CSS(`#item-dialog .js-via-row`)))
	b.waitFor("the confirmation instead of the details", `document.getElementById('confirm').open && !document.getElementById('item-dialog').open`)
	if got := b.text("confirm-title"); got != "Buy Kettle?" {
		t.Errorf("the dialog's Buy asks %q", got)
	}
	b.key(kb.Escape)
	b.waitFor("the confirmation to close", `!document.getElementById('confirm').open`)
	if got := b.focused(); got != "buy-"+kettle {
		t.Errorf("after Escape focus is on %s, want Kettle's Buy", got)
	}
}

// browserEmptiedList: buy the only result of a search; focus goes to the list's heading, not
// the search box, so ? opens the shortcuts. Escape in the search box goes to the list.
func browserEmptiedList(t *testing.T, b *browserTab) {
	b.navigate("/market?q=kettle")
	b.run("focus the search box", chromedp.Focus(chromedp.ID("q")))
	b.key(kb.Escape)
	if got := b.focused(); !strings.HasPrefix(got, "buy-") {
		t.Errorf("Escape in the search box left focus on %s, want the first item", got)
	}
	b.key(kb.Enter)
	b.waitFor("the confirmation", `document.getElementById('confirm').open`)
	b.key(kb.Enter)
	b.settled("the purchase", `document.getElementById('flash').textContent.includes('Purchased Kettle!')`)
	if got := b.focused(); got != "sale-h" {
		t.Errorf("after the list emptied focus is on %s, want the list's heading", got)
	}
	b.key("?")
	b.waitFor("the shortcuts", `document.getElementById('shortcuts').open`)
	b.key(kb.Escape)
	b.waitFor("the shortcuts to close", `!document.getElementById('shortcuts').open`)
}

// browserSteadyHeader: 375 px wide, the header's items sit on two rows at most, and the page
// does not move when the script starts (the shortcuts button has its place from the start).
func browserSteadyHeader(t *testing.T, b *browserTab) {
	if _, err := chromedp.Call(b.ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
		Width: 375, Height: 800, DeviceScaleFactor: 1, Mobile: true,
	}); err != nil {
		t.Fatal(err)
	}
	defer chromedp.Call(b.ctx, emulation.ClearDeviceMetricsOverride, cdp.Empty{})
	b.navigate("/market")
	// Rows: the items' tops, a new row wherever one starts below the one before it ends.
	rows := evalJS[[]float64](b, `[...document.querySelectorAll('.site-header nav > a, .site-header li')]
	  .map((e) => e.getBoundingClientRect()).filter((r) => r.height > 0)
	  .sort((x, y) => x.top - y.top).reduce((rows, r) => (rows.length && r.top < rows.at(-1) ? rows : [...rows, r.bottom]), [])`)
	if len(rows) > 2 {
		t.Errorf("375 px: the header takes %d rows (ending at %v), want 2 at most\n%s", len(rows), rows,
			b.js(`[...document.querySelectorAll('.site-header nav > a, .site-header li')].map((e) => e.textContent.trim() + '@' + Math.round(e.getBoundingClientRect().top)).join(', ')`))
	}
	b.layoutShift("375 px")
	if _, err := chromedp.Call(b.ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
		Width: 1350, Height: 940, DeviceScaleFactor: 1,
	}); err != nil {
		t.Fatal(err)
	}
	b.navigate("/market")
	b.layoutShift("1350 px")
}

// layoutShift fails the test when the page loaded with a layout shift of 0.02 or more, naming
// what moved.
func (b *browserTab) layoutShift(what string) {
	b.t.Helper()
	got := evalJS[string](b, `new Promise((ok) => {
	  const report = (entries) => ok(entries.reduce((s, e) => s + e.value, 0).toFixed(3) + ' ' + entries.flatMap((e) => e.sources.map((x) =>
	    (x.node?.id || x.node?.className || x.node?.nodeName) + ':' + x.previousRect.y + '→' + x.currentRect.y + '/' + x.previousRect.height + '→' + x.currentRect.height)).join(', '));
	  new PerformanceObserver((l) => report(l.getEntries())).observe({type: 'layout-shift', buffered: true});
	  setTimeout(() => report([]), 1000);
	})`)
	if score, _, _ := strings.Cut(got, " "); score >= "0.020" {
		b.t.Errorf("%s: layout shift %s while the market loads, want under 0.02", what, got)
	}
}

// pretendBudget shows a budget on the page that the server does not hold, as a page does
// between a trade in another tab and its live update: items above the true budget are offered,
// and the server's refusal can be seen. The next answer with a budget puts the true one back.
func (b *browserTab) pretendBudget(amount string) {
	b.t.Helper()
	evalJS[bool](b, `(document.getElementById('budget').textContent = `+jsQuote(amount)+`, true)`)
	b.waitFor("the cues to follow the budget", `![...document.querySelectorAll('.js-item[data-action="buy"]')]
	  .some((e) => e.getAttribute('aria-disabled') === 'true' && !e.disabled)`)
}

// TestBrowserScreenshots writes the README's screenshots (the market, an item, /admin; desktop
// and phone; light and dark) into the directory MARKET_SCREENSHOTS names; without it, nothing.
func TestBrowserScreenshots(t *testing.T) {
	dir := os.Getenv("MARKET_SCREENSHOTS")
	if dir == "" {
		t.Skip("set MARKET_SCREENSHOTS to a directory to write the screenshots")
	}
	browser := startBrowser(t)
	app := newTestApp(t)
	dora := app.signUp("dora") // trades for the chart, an item that is someone else's
	for _, name := range []string{"Kettle", "Houseplant", "Chess Set"} {
		dora.buy(app.item(name).ID)
	}
	b := newBrowserTab(t, browser, app)
	b.signUpWithForm("ann", false)
	if _, err := app.store.SetRole(context.Background(), "ann", store.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	b.app.signUp("eve")
	// A picture drawn here (the demo catalogue ships none): the market's rows and an item's page
	// show pictures beside placeholders.
	camera := app.item("Camera")
	if res := app.signUpAdmin("zed").upload(camera.ID, "camera.png", testPNG(t, 640, 480)); res.StatusCode != 303 {
		t.Fatalf("upload for the screenshots: %d", res.StatusCode)
	}
	pages := []struct{ name, path string }{{"market", "/market"}, {"item", "/items/" + browserItemID(app, "Camera")}, {"admin", "/admin"}}
	sizes := []struct {
		name          string
		width, height int64
	}{{"desktop", 1280, 900}, {"phone", 375, 812}}
	for _, scheme := range []string{"light", "dark"} {
		media := emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}}
		if _, err := chromedp.Call(b.ctx, emulation.SetEmulatedMedia, media); err != nil {
			t.Fatal(err)
		}
		for _, size := range sizes {
			if _, err := chromedp.Call(b.ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
				Width: size.width, Height: size.height, DeviceScaleFactor: 1, Mobile: size.name == "phone",
			}); err != nil {
				t.Fatal(err)
			}
			for _, p := range pages {
				b.navigate(p.path)
				png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
				if err != nil {
					t.Fatal(err)
				}
				file := filepath.Join(dir, p.name+"-"+size.name+"-"+scheme+".png")
				if err := os.WriteFile(file, png, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

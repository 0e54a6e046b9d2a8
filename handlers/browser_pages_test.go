// Browser pages: item details, axe-core on every page, and reflow at narrow widths.

package handlers_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

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

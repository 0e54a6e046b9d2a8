package handlers_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"market/store"
)

// The operator adds an item with the form and a buyer's open market page shows it within a
// second; then the keyboard journey through /admin (search, j/k, the confirm dialogs of
// retire and grant) and /account, each page and dialog axe-clean, and usable 320 px wide.
func TestBrowserAdmin(t *testing.T) {
	browser := startBrowser(t)
	app := newTestApp(t)
	buyer := newBrowserTab(t, browser, app)
	buyer.signUpWithForm("ann", false)
	op := newBrowserTab(t, browser, app)
	op.signUpWithForm("boss", false)
	if _, err := app.store.SetRole(context.Background(), "boss", store.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the buyer's stream", 5*time.Second, func() bool { return app.handler.OpenStreams() >= 1 })
	op.navigate("/admin")
	op.waitFor("the glance", `document.querySelector('[data-testid="trades-chart"] rect.bar')`)
	op.audit("/admin")
	buyer.markPage()

	browserAdminAdd(t, op, buyer)
	browserAdminKeys(t, op)
	browserAdminRetire(t, op, buyer)
	browserAdminGrant(t, op)
	browserAdminEdit(t, op)
	browserAccount(t, buyer)
	browserAdminScreenshots(t, op)
	browserAdminReflow(t, op, browserItemID(app, "Kettle"))
}

// browserAdminAdd adds an item with the form (htmx, in place); the buyer's page shows it within
// a second.
func browserAdminAdd(t *testing.T, op, buyer *browserTab) {
	op.run("fill the add form",
		chromedp.SendKeys(chromedp.ID("name"), "Abacus"),
		chromedp.SendKeys(chromedp.ID("price"), "9"),
		chromedp.SendKeys(chromedp.ID("barcode"), "444444444444"),
		chromedp.SendKeys(chromedp.ID("description"), "Counts beads"))
	start := time.Now()
	op.run("add", chromedp.Click(chromedp.CSS(`#add-item button[type="submit"]`)))
	buyer.waitFor("the new item on the buyer's page", `[...document.querySelectorAll('#item-rows .js-item')].some((b) => b.dataset.name === 'Abacus')`)
	took := time.Since(start)
	t.Logf("the new item reached the buyer's page after %s", took)
	if took > time.Second {
		t.Errorf("the new item took %s, want within a second", took)
	}
	buyer.samePage("after the new item")
	op.settled("the flash", `document.getElementById('flash').textContent.trim() === 'Added Abacus.'`)
	if v := op.js(`document.getElementById('name').value`); v != "" {
		t.Errorf("the add form kept %q after a success", v)
	}
	if f := op.focused(); f == "BODY" {
		t.Error("focus fell to <body> after adding")
	}
	op.audit("/admin after adding")

}

// browserAdminKeys searches with "/" and walks the rows with j and k.
func browserAdminKeys(t *testing.T, op *browserTab) {
	evalJS[bool](op, `(document.activeElement.blur(), true)`)
	op.key("/")
	if f := op.focused(); f != "q" {
		t.Fatalf("/ focused %s, want the search box", f)
	}
	op.key("abacus")
	op.settled("the search", `document.querySelectorAll('#admin-item-rows tr').length === 1`)
	op.key(kb.Escape) // leaves the search box for the list
	if got := op.js(`document.activeElement.closest('tr')?.id`); !strings.HasPrefix(got, "admin-item-") {
		t.Errorf("Escape from the search: focus in %q, want the first item row", got)
	}
	first := op.js(`document.activeElement.closest('tr')?.id`)
	op.key("j")
	if got := op.js(`document.activeElement.id`); !strings.HasPrefix(got, "grant-") {
		t.Errorf("second j: focus on %q, want the first user's grant button", got)
	}
	op.key("k")
	if got := op.js(`document.activeElement.closest('tr')?.id`); got != first {
		t.Errorf("k: focus in %q, want back in %q", got, first)
	}

}

// browserAdminRetire retires the new item: the dialog asks first, Escape cancels and focus
// returns; Enter, Enter retires, and the item leaves the buyer's page.
func browserAdminRetire(t *testing.T, op, buyer *browserTab) {
	id := browserItemID(op.app, "Abacus")
	evalJS[bool](op, `(document.getElementById('retire-`+id+`').focus(), true)`)
	op.key(kb.Enter)
	op.actionDialog("Retire Abacus?", "Retire")
	op.audit("/admin with the retire dialog open")
	op.key(kb.Escape)
	op.waitFor("the dialog to close", `!document.getElementById('action-confirm').open`)
	if f := op.focused(); f != "retire-"+id {
		t.Errorf("focus on %s after Escape, want the retire button", f)
	}
	op.key(kb.Enter)
	op.actionDialog("Retire Abacus?", "Retire")
	op.key(kb.Enter)
	op.settled("the retirement", `document.getElementById('flash').textContent.trim() === 'Retired Abacus.'`)
	if f := op.focused(); f == "BODY" {
		t.Error("focus fell to <body> after retiring")
	}
	buyer.waitFor("the retired item to leave the buyer's page", `![...document.querySelectorAll('#item-rows .js-item')].some((b) => b.dataset.name === 'Abacus')`)

}

// browserAdminGrant grants from the keyboard (the amount, Tab to Grant, Enter, Enter); then the
// glance follows a trade through the live stream.
func browserAdminGrant(t *testing.T, op *browserTab) {
	op.navigate("/admin")
	ann := userIDString(t, op.app, "ann")
	evalJS[bool](op, `(document.getElementById('amount-`+ann+`').focus(), true)`)
	op.key("50")
	op.key(kb.Tab)
	op.key(kb.Enter)
	op.actionDialog("Grant $50 to ann?", "Grant")
	op.audit("/admin with the grant dialog open")
	op.key(kb.Enter)
	op.settled("the grant", `document.getElementById('flash').textContent.trim() === 'Granted $50 to ann.'`)
	if got := op.js(`document.querySelector('#user-` + ann + ` [data-testid="user-budget"]').textContent`); got != "$1,050" {
		t.Errorf("ann's budget on the page: %q", got)
	}
	if f := op.focused(); f != "grant-"+ann {
		t.Errorf("focus on %s after the grant, want the grant button", f)
	}
	// The glance follows the market's live stream: a trade elsewhere shows in its figures.
	op.app.signUp("carl").buy(op.app.item("Mouse").ID)
	op.waitFor("the glance to count the trade", `document.querySelector('#glance figcaption').textContent.includes(': 1 in all') &&
	  document.querySelector('[data-testid="money-table"]').textContent.includes('$45')`)
	op.navigate("/admin/log")
	op.audit("/admin/log")

}

// browserAdminEdit checks the edit page, and its form coming back in place with an error.
func browserAdminEdit(t *testing.T, op *browserTab) {
	op.navigate("/admin/items/" + browserItemID(op.app, "Kettle"))
	op.audit("the edit page")
	op.run("clear the price", chromedp.SetValue(chromedp.ID("price"), "0"))
	op.run("save", chromedp.Click(chromedp.CSS(`#edit-item button[type="submit"]`)))
	op.settled("the error", `document.getElementById('price-error')?.textContent.includes('Use a price from $1 to $1,000,000.')`)
	if f := op.focused(); f == "BODY" {
		t.Error("focus fell to <body> after the form came back")
	}
	op.audit("the edit page with an error")
}

func userIDString(t *testing.T, app *testApp, name string) string {
	t.Helper()
	return strconv.FormatInt(userID(t, app, name), 10)
}

// actionDialog checks the open operator's confirmation: its title, its confirm button's label,
// and that the confirm button has focus.
func (b *browserTab) actionDialog(title, ok string) {
	b.t.Helper()
	b.waitFor("the confirmation", `document.getElementById('action-confirm').matches(':modal')`)
	if got := [2]string{b.text("action-title"), b.text("action-ok")}; got != [2]string{title, ok} {
		b.t.Errorf("the dialog says %q, want %q", got, [2]string{title, ok})
	}
	if f := b.focused(); f != "action-ok" {
		b.t.Errorf("focus on %s with the dialog open, want its confirm button", f)
	}
}

// browserAccount changes the password from the keyboard, in place.
func browserAccount(t *testing.T, b *browserTab) {
	b.navigate("/account")
	b.audit("/account")
	evalJS[bool](b, `(document.getElementById('current_password').focus(), true)`)
	b.key("correct horse")
	b.key(kb.Tab)
	b.key("new password")
	b.key(kb.Tab)
	b.key("new password")
	b.key(kb.Enter)
	b.settled("the change", `document.getElementById('flash').textContent.trim() === 'Your password has been changed.'`)
	if v := b.js(`document.getElementById('current_password').value`); v != "" {
		t.Errorf("the form kept the password")
	}
	b.audit("/account after the change")
}

// browserAdminScreenshots saves the README's pictures when MARKET_SCREENSHOTS names a folder.
func browserAdminScreenshots(t *testing.T, b *browserTab) {
	dir := os.Getenv("MARKET_SCREENSHOTS")
	if dir == "" {
		return
	}
	dora := b.app.signUp("dora") // some trades, for a chart with something in it
	for _, name := range []string{"Kettle", "Houseplant", "Chess Set"} {
		dora.buy(b.app.item(name).ID)
	}
	for _, shot := range []struct{ path, file string }{{"/admin", "admin.png"}, {"/account", "account.png"}} {
		b.navigate(shot.path)
		png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, shot.file), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// browserAdminReflow checks the operator's and account pages 320 px wide (400% zoom).
func browserAdminReflow(t *testing.T, b *browserTab, item string) {
	if _, err := chromedp.Call(b.ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
		Width: 320, Height: 256, DeviceScaleFactor: 4,
	}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/admin", "/admin/log", "/account", "/admin/items/" + item} {
		b.navigate(path)
		got := evalJS[reflowResult](b, reflowProbe)
		if got.Document > got.Viewport || got.Body > got.Viewport || len(got.Wide) > 0 {
			t.Errorf("320 px %s overflows (document %d, body %d, viewport %d): %v", path, got.Document, got.Body, got.Viewport, got.Wide)
		}
	}
}

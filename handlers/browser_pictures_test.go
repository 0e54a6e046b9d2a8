package handlers_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"market/store"
)

// An admin uploads a picture on the item's edit page; a buyer's open market page shows it
// without a reload. Hostile files are refused with a message and change nothing: a text file
// named .jpg, an SVG, a PNG whose header declares 10 gigapixels, and (in the page, before it is
// sent) a file over 5 MB.
func TestBrowserPictures(t *testing.T) {
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
	buyer.markPage()
	kettle := browserItemID(app, "Kettle")
	dir := t.TempDir()
	files := map[string][]byte{
		"kettle.png": testPNG(t, 320, 240),
		"notes.jpg":  []byte("a shopping list, not a picture"),
		"logo.svg":   []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`),
		"bomb.png":   bombPNG(100000, 100000),
		"huge.png":   append(testPNG(t, 8, 8), make([]byte, 6<<20)...),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	op.navigate("/admin/items/" + kettle)
	for _, up := range []struct{ file, want string }{
		{"notes.jpg", "That file is not a JPEG, PNG or WebP picture."},
		{"logo.svg", "That file is not a JPEG, PNG or WebP picture."},
		{"bomb.png", "That picture is too large: up to 40 megapixels."},
	} {
		op.choosePicture(filepath.Join(dir, up.file))
		evalJS[bool](op, `window.__beforeUpload = true`) // gone with the page the answer loads
		op.run("upload "+up.file, chromedp.Click(chromedp.CSS(`#picture-form button[type="submit"]`)))
		op.waitFor("the refusal of "+up.file, `!window.__beforeUpload && document.readyState === 'complete' &&
		  document.getElementById('flash-alert').textContent.includes(`+jsQuote(up.want)+`)`)
	}
	op.choosePicture(filepath.Join(dir, "huge.png"))
	op.run("try to upload 6 MB", chromedp.Click(chromedp.CSS(`#picture-form button[type="submit"]`)))
	if got := op.js(`document.getElementById('picture').validationMessage`); got != "That picture is too large: up to 5 MB." {
		t.Errorf("6 MB: the field says %q", got)
	}
	if it := app.item("Kettle"); it.Picture != "" {
		t.Fatalf("refused uploads gave Kettle the picture %q", it.Picture)
	}
	op.choosePicture(filepath.Join(dir, "kettle.png"))
	op.run("upload the picture", chromedp.Click(chromedp.CSS(`#picture-form button[type="submit"]`)))
	op.waitFor("the saved picture", `document.getElementById('flash').textContent.includes('Saved the picture of Kettle.') &&
	  document.querySelector('#picture-form').closest('section').querySelector('img[alt="Kettle"]')?.complete`)
	buyer.waitFor("the picture on the buyer's open page", `(() => {
	  const img = document.querySelector('#item-`+kettle+` img');
	  return img && img.getAttribute('src').startsWith('/pictures/') && img.complete && img.naturalWidth === 160;
	})()`)
	buyer.samePage("the picture's arrival")
	buyer.audit("the market with a picture")
}

// choosePicture puts a file in the picture form's file field.
func (b *browserTab) choosePicture(path string) {
	b.t.Helper()
	b.run("choose "+filepath.Base(path), chromedp.SetUploadFiles(chromedp.ID("picture"), []string{path}))
}

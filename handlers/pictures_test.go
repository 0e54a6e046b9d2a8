package handlers_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// upload posts a file as the picture form does, with the CSRF token.
func (c *client) upload(itemID int64, filename string, data []byte) response {
	c.app.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("csrf_token", c.token())
	fw, err := mw.CreateFormFile("picture", filename)
	if err != nil {
		c.app.t.Fatal(err)
	}
	fw.Write(data)
	mw.Close()
	req, err := http.NewRequest(http.MethodPost, c.app.server.URL+"/admin/items/"+strconv.FormatInt(itemID, 10)+"/picture", &body)
	if err != nil {
		c.app.t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Origin", c.app.server.URL)
	res, err := c.hc.Do(req)
	if err != nil {
		c.app.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{Response: res, body: string(b)}
}

// testPNG is a w×h PNG, a gradient.
func testPNG(t testing.TB, w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 128, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// bombPNG is a small PNG whose header declares width×height pixels: decoding it whole would
// take gigabytes.
func bombPNG(width, height uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(kind string, data []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		b.WriteString(kind)
		b.Write(data)
		binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(kind), data...)))
	}
	ihdr := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, width), height)
	chunk("IHDR", append(ihdr, 8, 2, 0, 0, 0))
	chunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})
	chunk("IEND", nil)
	return b.Bytes()
}

// An admin gives an item a picture: its copies are served under content-hashed URLs, as JPEG,
// cached for good and never sniffed; the market and the item page show it; a non-admin cannot.
func TestPictureUpload(t *testing.T) {
	app := newTestApp(t)
	admin := app.signUpAdmin("boss")
	buyer := app.signUp("ann")
	kettle := app.item("Kettle")
	if res := buyer.upload(kettle.ID, "k.png", testPNG(t, 64, 48)); res.StatusCode != http.StatusNotFound {
		t.Errorf("a buyer's upload: %d, want 404", res.StatusCode)
	}
	res := admin.upload(kettle.ID, "kettle.png", testPNG(t, 400, 300))
	if res.StatusCode != http.StatusSeeOther || !strings.Contains(admin.nextMessages(res), "Saved the picture of Kettle.") {
		t.Fatalf("upload: %d %s", res.StatusCode, res.body)
	}
	doc := buyer.get("/market").doc(t)
	src, ok := doc.Find("#item-" + id(kettle) + ` img`).Attr("src")
	if !ok || !strings.HasPrefix(src, "/pictures/") || !strings.HasSuffix(src, "-s.jpg") {
		t.Fatalf("the market's Kettle shows picture %q", src)
	}
	// A trade's answer moves the row with its picture (on PostgreSQL too: its one-statement
	// trade reads it), not the placeholder until the live stream comes.
	hx := map[string]string{"HX-Request": "true", "X-CSRF-Token": buyer.token(), "HX-Current-URL": app.server.URL + "/market"}
	for _, field := range []string{"purchase_item", "sold_item"} {
		frag := buyer.do(http.MethodPost, "/market", url.Values{field: {id(kettle)}}, hx)
		if got := frag.doc(t).Find("#item-"+id(kettle)+` img`).AttrOr("src", ""); frag.StatusCode != http.StatusOK || got != src {
			t.Errorf("%s: %d, the moved row shows picture %q, want %q", field, frag.StatusCode, got, src)
		}
	}
	img := buyer.get("/items/" + id(kettle)).doc(t).Find(`main img`)
	if img.AttrOr("alt", "") != "Kettle" || !strings.HasSuffix(img.AttrOr("src", ""), "-l.jpg") {
		t.Errorf("the item page's picture: alt %q src %q", img.AttrOr("alt", ""), img.AttrOr("src", ""))
	}
	for path, size := range map[string]int{src: 160, img.AttrOr("src", ""): 960} {
		pic := app.client().get(path) // no session needed
		h := pic.Header
		if pic.StatusCode != http.StatusOK || h.Get("Content-Type") != "image/jpeg" || h.Get("X-Content-Type-Options") != "nosniff" ||
			!strings.Contains(h.Get("Cache-Control"), "immutable") {
			t.Errorf("GET %s: %d %v", path, pic.StatusCode, h)
		}
		if cfg, err := jpeg.DecodeConfig(strings.NewReader(pic.body)); err != nil || cfg.Width != size {
			t.Errorf("GET %s: %+v %v, want a JPEG %d wide", path, cfg, err, size)
		}
	}
	if res := app.client().get("/pictures/00000000000000000000-s.jpg"); res.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown picture: %d", res.StatusCode)
	}
	assertCheck(t, app)
}

// Uploads that are not pictures, or too large, are refused with a clear message, and change
// nothing.
func TestPictureUploadRefusals(t *testing.T) {
	app := newTestApp(t)
	admin := app.signUpAdmin("boss")
	kettle := app.item("Kettle")
	svg := `<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>`
	for _, up := range []struct{ name, file, want string }{
		{"text named .jpg", "kettle.jpg", "That file is not a JPEG, PNG or WebP picture."},
		{"SVG", "kettle.svg", "That file is not a JPEG, PNG or WebP picture."},
		{"PNG declaring 100,000 × 100,000 pixels", "bomb.png", "That picture is too large: up to 40 megapixels."},
	} {
		data := map[string][]byte{"kettle.jpg": []byte("just some text, not a picture"), "kettle.svg": []byte(svg),
			"bomb.png": bombPNG(100000, 100000)}[up.file]
		res := admin.upload(kettle.ID, up.file, data)
		if res.StatusCode != http.StatusSeeOther || !strings.Contains(admin.nextMessages(res), up.want) {
			t.Errorf("%s: %d, want a refusal saying %q", up.name, res.StatusCode, up.want)
		}
	}
	big := append(testPNG(t, 8, 8), make([]byte, 6<<20)...)
	if res := admin.upload(kettle.ID, "big.png", big); res.StatusCode != http.StatusRequestEntityTooLarge ||
		!strings.Contains(res.body, "That picture is too large: up to 5 MB.") {
		t.Errorf("6 MB: %d %.200s", res.StatusCode, res.body)
	}
	// Without a session cookie the normal cap holds: an anonymous client cannot make the server
	// read a picture's 5 MB before it is told to sign in.
	anon := app.client()
	body := append(testPNG(t, 8, 8), make([]byte, 1<<20)...)
	if res := anon.upload(kettle.ID, "big.png", body); res.StatusCode != http.StatusRequestEntityTooLarge ||
		!strings.Contains(res.body, "That request was too large.") || anon.hasCookie("session") {
		t.Errorf("an anonymous 1 MB upload: %d %.200s, want the normal cap's 413", res.StatusCode, res.body)
	}
	if it := app.item("Kettle"); it.Picture != "" {
		t.Errorf("a refused upload gave Kettle the picture %q", it.Picture)
	}
	assertCheck(t, app)
}

// hasCookie reports whether the client holds the cookie name for the app's server.
func (c *client) hasCookie(name string) bool {
	u, err := url.Parse(c.app.server.URL)
	if err != nil {
		c.app.t.Fatal(err)
	}
	for _, ck := range c.hc.Jar.Cookies(u) {
		if ck.Name == name {
			return true
		}
	}
	return false
}

// The item page's trade works without JavaScript (a plain form, back to the page) and in place
// with htmx (a small fragment: the message, the trade form as it stands, the budget).
func TestItemPageTrade(t *testing.T) {
	app := newTestApp(t)
	c := app.signUp("ann")
	kettle := app.item("Kettle")
	page := "/items/" + id(kettle)
	form := c.get(page).doc(t).Find("form#item-trade")
	if form.AttrOr("method", "") != "post" || form.AttrOr("action", "") != "/market" ||
		form.Find(`input[name="csrf_token"]`).Length() != 1 || form.Find(`button[name="purchase_item"]`).AttrOr("value", "") != id(kettle) {
		t.Fatalf("the item page has no plain Buy form: %s", text(form))
	}
	res := c.post("/market", url.Values{"purchase_item": {id(kettle)}, "back": {page}})
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != page {
		t.Fatalf("a plain Buy from the item page: %d → %s, want back to %s", res.StatusCode, res.Header.Get("Location"), page)
	}
	doc := c.get(page).doc(t)
	if !strings.Contains(messages(doc), "Purchased Kettle!") || doc.Find(`#item-trade button[name="sold_item"]`).Length() != 1 {
		t.Errorf("after the purchase the item page says %q and offers %q", messages(doc), text(doc.Find("#item-trade")))
	}
	if res := c.post("/market", url.Values{"sold_item": {id(kettle)}, "back": {"https://evil.example/"}}); res.Header.Get("Location") != "/market" {
		t.Errorf("back to elsewhere: %s, want /market", res.Header.Get("Location"))
	}
	frag := c.do(http.MethodPost, "/market", url.Values{"purchase_item": {id(kettle)}},
		map[string]string{"HX-Request": "true", "X-CSRF-Token": c.token(), "HX-Current-URL": app.server.URL + page})
	fd := frag.doc(t)
	if len(frag.body) > 2048 || strings.Contains(frag.body, "<html") || fd.Find(`form#item-trade[hx-swap-oob="true"] button[name="sold_item"]`).Length() != 1 ||
		text(fd.Find("#budget")) != "$945" || !strings.Contains(frag.body, "Purchased Kettle!") {
		t.Errorf("htmx Buy from the item page: %d bytes: %s", len(frag.body), frag.body)
	}
	assertCheck(t, app)
}

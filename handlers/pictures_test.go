package handlers_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"market/handlers"
	"market/store/storetest"
)

// upload posts a file as the picture form does, with the CSRF token.
func (c *client) upload(itemID int64, filename string, data []byte) response {
	c.app.t.Helper()
	return c.uploadTo(c.app.server.URL, itemID, filename, data)
}

// uploadTo posts the picture form to server, one that serves c's app.
func (c *client) uploadTo(server string, itemID int64, filename string, data []byte) response {
	c.app.t.Helper()
	body, contentType := pictureForm(c.app.t, c.token(), filename, data)
	res, err := c.send(context.Background(), server, itemID, bytes.NewReader(body), int64(len(body)), contentType)
	if err != nil {
		c.app.t.Fatal(err)
	}
	return res
}

// pictureForm is the body of the picture form as a browser sends it (the CSRF token, then the
// file), and its content type.
func pictureForm(t testing.TB, token, filename string, data []byte) ([]byte, string) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("csrf_token", token)
	fw, err := mw.CreateFormFile("picture", filename)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(data)
	mw.Close()
	return body.Bytes(), mw.FormDataContentType()
}

// send posts an upload's body of size bytes (-1: sent without a length) to server. Without an
// answer, its response is empty (status 0) beside the error.
func (c *client) send(ctx context.Context, server string, itemID int64, body io.Reader, size int64, contentType string) (response, error) {
	none := response{Response: &http.Response{}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, server+"/admin/items/"+strconv.FormatInt(itemID, 10)+"/picture", body)
	if err != nil {
		return none, err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Origin", server)
	res, err := c.hc.Do(req)
	if err != nil {
		return none, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return response{Response: res, body: string(b)}, err
}

// forgeSession gives c a session cookie the server never made.
func (c *client) forgeSession() {
	u, err := url.Parse(c.app.server.URL)
	if err != nil {
		c.app.t.Fatal(err)
	}
	c.hc.Jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: "Zm9yZ2VkLWJ5LWEtc3RyYW5nZXItMDEyMzQ1Njc4OQ", Path: "/"}})
}

// countingServer serves app's handler at another address (the same host, so clients' cookies
// go there too), and counts the bytes it reads from its clients.
func countingServer(t testing.TB, app *testApp) (*httptest.Server, *atomic.Int64) {
	read := &atomic.Int64{}
	srv := httptest.NewUnstartedServer(app.server.Config.Handler)
	srv.Listener = countingListener{srv.Listener, read}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, read
}

type countingListener struct {
	net.Listener
	read *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c, l.read}, nil
}

type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
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

// A picture's upload is read past the normal cap only once it is known to be an admin's. A
// stranger with a forged session cookie (and a real CSRF token: anyone can fetch one) and a
// signed-in buyer get their usual answers to a 1 MB upload, and the server reads no more of it
// than the normal cap; an admin's 1 MB picture is read and saved, and past the picture's cap
// (here sent without a length, so only reading finds it) it is 413.
func TestPictureUploadReadAfterAdminCheck(t *testing.T) {
	app := newTestApp(t)
	srv, read := countingServer(t, app)
	admin := app.signUpAdmin("boss")
	buyer := app.signUp("ann")
	stranger := app.client()
	stranger.forgeSession()
	kettle := app.item("Kettle")
	picture := append(testPNG(t, 64, 48), make([]byte, 1<<20)...)
	const normalCap = 64 << 10
	for _, up := range []struct {
		who    string
		c      *client
		status int
	}{
		{"a stranger with a forged session cookie", stranger, http.StatusFound},
		{"a buyer", buyer, http.StatusNotFound},
	} {
		before := read.Load()
		res := up.c.uploadTo(srv.URL, kettle.ID, "kettle.png", picture)
		// The request's headers and a read buffer's worth past the cap.
		if n := read.Load() - before; res.StatusCode != up.status || n > normalCap+16<<10 {
			t.Errorf("%s: %d after the server read %d bytes, want %d after at most %d", up.who, res.StatusCode, n, up.status, normalCap+16<<10)
		}
	}
	if it := app.item("Kettle"); it.Picture != "" {
		t.Fatalf("a refused upload gave Kettle the picture %q", it.Picture)
	}
	res := admin.uploadTo(srv.URL, kettle.ID, "kettle.png", picture)
	if res.StatusCode != http.StatusSeeOther || !strings.Contains(admin.nextMessages(res), "Saved the picture of Kettle.") {
		t.Fatalf("the admin's 1 MB upload: %d %.200s", res.StatusCode, res.body)
	}
	big, contentType := pictureForm(t, admin.token(), "big.png", append(testPNG(t, 8, 8), make([]byte, 6<<20)...))
	res, err := admin.send(context.Background(), srv.URL, kettle.ID, bytes.NewReader(big), -1, contentType)
	if err != nil || res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(res.body, "That picture is too large: up to 5 MB.") {
		t.Errorf("6 MB without a length: %v %d %.200s", err, res.StatusCode, res.body)
	}
	assertCheck(t, app)
}

// An upload for an item that does not exist, or is retired, is answered 404 before its file is
// looked at: with every decoding slot taken, at once (not 503 after a wait for a slot), and
// whatever the file.
func TestPictureUploadChecksItemFirst(t *testing.T) {
	app := newTestApp(t)
	admin := app.signUpAdmin("boss")
	kettle := app.item("Kettle")
	if _, err := app.store.RetireItem(context.Background(), 0, kettle.ID); err != nil {
		t.Fatal(err)
	}
	release := app.handler.HoldDecodingSlots()
	defer release()
	for _, id := range []int64{kettle.ID, 1 << 40} {
		for name, data := range map[string][]byte{"kettle.png": testPNG(t, 400, 300), "notes.jpg": []byte("not a picture")} {
			if res := admin.upload(id, name, data); res.StatusCode != http.StatusNotFound {
				t.Errorf("item %d, %s: %d, want 404", id, name, res.StatusCode)
			}
		}
	}
}

// slowLink is a body as a slow link sends it: a piece, then a pause before the next.
type slowLink struct {
	data    []byte
	piece   int
	pause   time.Duration
	started bool
	left    atomic.Int64 // bytes not sent yet
}

func newSlowLink(data []byte, pieces int, pause time.Duration) *slowLink {
	l := &slowLink{data: data, piece: len(data)/pieces + 1, pause: pause}
	l.left.Store(int64(len(data)))
	return l
}

func (l *slowLink) Read(p []byte) (int, error) {
	if len(l.data) == 0 {
		return 0, io.EOF
	}
	if l.started {
		time.Sleep(l.pause) // a slow link's pace, not a wait for something
	}
	l.started = true
	n := copy(p[:min(len(p), l.piece)], l.data)
	l.data = l.data[n:]
	l.left.Add(-int64(n))
	return n, nil
}

// An admin's upload may take longer to arrive than the server's read timeout (a phone on a slow
// link), and than its budget: the work that follows has the whole of it. A stranger's slow
// upload is answered without waiting for the rest of it.
func TestPictureUploadSlowLink(t *testing.T) {
	app := newTestApp(t, handlers.Config{RequestBudget: 250 * time.Millisecond}) // the work's: 1 s
	const readTimeout = time.Second
	srv := httptest.NewUnstartedServer(app.server.Config.Handler)
	srv.Config.ReadTimeout = readTimeout
	srv.Start()
	t.Cleanup(srv.Close)
	admin := app.signUpAdmin("boss")
	stranger := app.client()
	stranger.forgeSession()
	kettle := app.item("Kettle")
	picture := append(testPNG(t, 64, 48), make([]byte, 256<<10)...)

	body, contentType := pictureForm(t, admin.token(), "kettle.png", picture)
	link := newSlowLink(body, 25, readTimeout/10) // two and a half read timeouts
	start := time.Now()
	res, err := admin.send(context.Background(), srv.URL, kettle.ID, link, int64(len(body)), contentType)
	took := time.Since(start)
	if err != nil || res.StatusCode != http.StatusSeeOther || !strings.Contains(admin.nextMessages(res), "Saved the picture of Kettle.") {
		t.Fatalf("an upload over %v (read timeout %v): %v %d %.200s", took, readTimeout, err, res.StatusCode, res.body)
	}

	body, contentType = pictureForm(t, stranger.token(), "kettle.png", picture)
	link = newSlowLink(body, 25, readTimeout/10)
	res, err = stranger.send(context.Background(), srv.URL, kettle.ID, link, int64(len(body)), contentType)
	if err != nil || res.StatusCode != http.StatusFound || link.left.Load() == 0 {
		t.Errorf("a stranger's slow upload: %v %d with %d bytes still to send, want 302 before the end", err, res.StatusCode, link.left.Load())
	}
}

// loggedApp is a test app whose log the test reads.
func loggedApp(t *testing.T, cfg handlers.Config) (*testApp, *lockedBuffer) {
	t.Helper()
	st := storetest.Open(t)
	if _, err := st.Seed(context.Background()); err != nil {
		t.Fatal(err)
	}
	log := &lockedBuffer{}
	return serveAppLogging(t, st, log, cfg), log
}

// An upload whose client goes while it waits for a decoding slot, or while it is still being
// sent, is no server error: nothing about it is logged above Info, and nothing changes.
func TestPictureUploadClientGone(t *testing.T) {
	app, log := loggedApp(t, handlers.Config{})
	srv, read := countingServer(t, app)
	admin := app.signUpAdmin("boss")
	kettle := app.item("Kettle")
	body, contentType := pictureForm(t, admin.token(), "kettle.png", append(testPNG(t, 64, 48), make([]byte, 1<<20)...))
	cancelled := func(n int) func() bool {
		return func() bool { return strings.Count(log.String(), `msg="request cancelled"`) >= n }
	}
	// sendUntil sends the first sent bytes of body (then nothing more), waits for the server
	// to have read at least atLeast of them, and hangs up.
	sendUntil := func(sent, atLeast int) {
		t.Helper()
		rest, stall := io.Pipe()
		var up io.Reader = bytes.NewReader(body)
		if sent < len(body) {
			up = io.MultiReader(bytes.NewReader(body[:sent]), rest)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		before := read.Load()
		go func() {
			_, err := admin.send(ctx, srv.URL, kettle.ID, up, int64(len(body)), contentType)
			done <- err
		}()
		waitUntil(t, "the server reading the upload", 5*time.Second, func() bool { return read.Load()-before >= int64(atLeast) })
		cancel()
		stall.Close() // the client stops reading its body when it has hung up
		if err := <-done; err == nil {
			t.Error("a cancelled upload had an answer")
		}
	}

	release := app.handler.HoldDecodingSlots()
	sendUntil(len(body), len(body)) // all of it: it waits for a slot
	waitUntil(t, "the log of the upload waiting for a slot", 5*time.Second, cancelled(1))
	release()
	sendUntil(len(body)/2, len(body)/4) // half: the server is reading the file when it goes
	waitUntil(t, "the log of the upload cut off", 5*time.Second, cancelled(2))
	if strings.Contains(log.String(), "level=ERROR") {
		t.Errorf("a cancelled upload logged an error:\n%s", log.String())
	}
	if it := app.item("Kettle"); it.Picture != "" {
		t.Errorf("a cancelled upload gave Kettle the picture %q", it.Picture)
	}
}

// An upload that runs out of its budget waiting for a decoding slot is answered as any request
// over its budget: 503 with Retry-After, not a server error.
func TestPictureUploadOverBudget(t *testing.T) {
	app, log := loggedApp(t, handlers.Config{RequestBudget: 100 * time.Millisecond})
	admin := app.signUpAdmin("boss")
	kettle := app.item("Kettle")
	release := app.handler.HoldDecodingSlots()
	defer release()
	res := admin.upload(kettle.ID, "kettle.png", testPNG(t, 400, 300))
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") != "5" ||
		!strings.Contains(res.body, "The market is slow to answer right now.") {
		t.Errorf("over budget: %d Retry-After %q %.300s", res.StatusCode, res.Header.Get("Retry-After"), res.body)
	}
	if strings.Contains(log.String(), `msg="server error"`) || !strings.Contains(log.String(), `msg="over budget"`) {
		t.Errorf("over budget, the log says:\n%s", log.String())
	}
}

// On a database that hangs, a stranger's upload (with a forged session cookie) is answered
// within a page's budget, as any other request: the time an admin's upload may take to arrive
// is given only once the admin is known.
func TestPictureUploadStrangerBudget(t *testing.T) {
	storetest.RequirePostgres(t)
	st, proxy := storeBehindProxy(t)
	const budget = time.Second
	app := serveApp(t, st, handlers.Config{RequestBudget: budget})
	stranger := app.client()
	stranger.forgeSession()
	kettle := app.item("Kettle")
	body, contentType := pictureForm(t, stranger.token(), "kettle.png", testPNG(t, 64, 48))
	resume := proxy.hang()
	defer resume()
	start := time.Now()
	res, err := stranger.send(context.Background(), app.server.URL, kettle.ID, bytes.NewReader(body), int64(len(body)), contentType)
	// The budget, and a margin for a loaded machine.
	if took := time.Since(start); err != nil || res.StatusCode != http.StatusServiceUnavailable || took > budget+time.Second {
		t.Errorf("a stranger's upload with the database hung: %v %d after %v, want 503 within the budget of %v", err, res.StatusCode, took, budget)
	}
}

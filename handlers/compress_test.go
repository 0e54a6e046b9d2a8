package handlers_test

import (
	"compress/gzip"
	"io"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
)

// The first visit to the market costs the page and its three assets; gzipped, at most 30 KB.
func TestFirstVisitIsSmall(t *testing.T) {
	app := newTestApp(t)
	c := app.signUp("alice")
	gz := map[string]string{"Accept-Encoding": "gzip"}
	page := c.get("/market", gz)
	if page.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("market page not gzipped: %q", page.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(strings.NewReader(page.body))
	if err != nil {
		t.Fatal(err)
	}
	html, err := io.ReadAll(zr)
	if err != nil || !strings.Contains(string(html), `id="item-rows"`) {
		t.Fatalf("gzipped page does not decode to the market: %v", err)
	}
	total := len(page.body)
	t.Logf("market page: %d bytes, %d gzipped", len(html), len(page.body))
	doc := response{body: string(html)}.doc(t)
	for _, sel := range []string{`link[rel="stylesheet"]`, `script[src]`} {
		doc.Find(sel).Each(func(_ int, s *goquery.Selection) {
			url := s.AttrOr("href", s.AttrOr("src", ""))
			res := c.get(url, gz)
			if res.Header.Get("Content-Encoding") != "gzip" {
				t.Errorf("%s not gzipped", url)
			}
			t.Logf("%s: %d bytes gzipped", url, len(res.body))
			total += len(res.body)
		})
	}
	t.Logf("first visit: %d bytes gzipped in all", total)
	// 30 KB, 3 KB more for live updates (htmx's SSE extension and their part of app.js), 1 KB
	// for operating the market (edited rows replaced in place, the link to the account page),
	// and 3 KB for a shop (each item's description and picture, what it lacks, the summary of
	// what the user owns, a dark scheme).
	if total > 37*1024 {
		t.Errorf("first visit costs %d bytes gzipped, want at most 37 KB", total)
	}
	// Small responses are not worth compressing.
	if res := c.get("/healthz", gz); res.Header.Get("Content-Encoding") != "" {
		t.Error("health check gzipped")
	}
}

// An HTTP client for the server binary: a person with a cookie jar who signs up and posts forms.

package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
)

// browser is one person with a cookie jar, following no redirects.
type browser struct {
	name  string
	hc    *http.Client
	token string
}

func newBrowser(name string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{name: name, hc: &http.Client{
		Jar:           jar,
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// loadToken reads the CSRF token from a page's form, as a browser submits it.
func (b *browser) loadToken(base, path string) error {
	res, err := b.hc.Get(base + path)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	doc, err := goquery.NewDocumentFromReader(res.Body)
	if err != nil {
		return err
	}
	tok, ok := doc.Find(`input[name="csrf_token"]`).Attr("value")
	if !ok || tok == "" {
		return fmt.Errorf("no csrf_token on %s", path)
	}
	b.token = tok
	return nil
}

func (b *browser) post(base, path string, form url.Values, headers map[string]string) (*http.Response, string, error) {
	req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := b.hc.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res, string(body), err
}

func (b *browser) register(t *testing.T, base string) {
	t.Helper()
	if err := b.loadToken(base, "/register"); err != nil {
		t.Fatal(err)
	}
	res, _, err := b.post(base, "/register", url.Values{"username": {b.name}, "email": {b.name + "@example.com"},
		"password": {"correct horse"}, "confirm_password": {"correct horse"}, "csrf_token": {b.token}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/market" {
		t.Fatalf("sign up %s: %d → %q", b.name, res.StatusCode, res.Header.Get("Location"))
	}
	// The session cookie of the real server: HttpOnly, SameSite=Lax, and an absolute 12 hours.
	for _, c := range res.Cookies() {
		if c.Name != "session" {
			continue
		}
		if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.MaxAge < 43200-60 || c.MaxAge > 43201 {
			t.Errorf("session cookie HttpOnly=%v SameSite=%v Max-Age=%d, want HttpOnly, Lax and 12 hours",
				c.HttpOnly, c.SameSite, c.MaxAge)
		}
	}
}

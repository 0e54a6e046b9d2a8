package handlers_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"market/assets"
	"market/components"
	"market/handlers"
	"market/store"
)

// benchStack is the whole middleware stack, served in-process to a recorder: what one request
// costs the server, without sockets.
type benchStack struct {
	routes  http.Handler
	store   *store.Store
	cookies string
	token   string
}

func newBenchStack(b *testing.B) *benchStack {
	b.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(b.TempDir(), "market.db"), store.Options{BcryptCost: bcrypt.MinCost})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	st.Seed(ctx)
	as, _ := assets.New()
	sessions := handlers.NewSessionManager(st.Sessions(), false)
	h := handlers.New(slog.New(slog.NewTextHandler(io.Discard, nil)), st, sessions, as, handlers.Config{})
	s := &benchStack{routes: h.Routes(), store: st}

	// Sign up through the form, keeping the cookies as a browser would.
	jar := map[string]string{}
	do := func(req *http.Request) *httptest.ResponseRecorder {
		var parts []string
		for k, v := range jar {
			parts = append(parts, k+"="+v)
		}
		req.Header.Set("Cookie", strings.Join(parts, "; "))
		rec := httptest.NewRecorder()
		s.routes.ServeHTTP(rec, req)
		for _, c := range rec.Result().Cookies() {
			jar[c.Name] = c.Value
		}
		return rec
	}
	rec := do(httptest.NewRequest(http.MethodGet, "/register", nil))
	tok := tokenIn(rec.Body.String())
	form := url.Values{"username": {"bench"}, "email": {"bench@example.com"}, "password": {"long enough"},
		"confirm_password": {"long enough"}, "csrf_token": {tok}}
	req := httptest.NewRequest(http.MethodPost, "/register", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://example.com")
	if rec := do(req); rec.Code != http.StatusFound {
		b.Fatalf("sign up: %d", rec.Code)
	}
	rec = do(httptest.NewRequest(http.MethodGet, "/market", nil))
	s.token = tokenIn(rec.Body.String())
	var parts []string
	for k, v := range jar {
		parts = append(parts, k+"="+v)
	}
	s.cookies = strings.Join(parts, "; ")
	return s
}

func tokenIn(page string) string {
	_, rest, _ := strings.Cut(page, `name="csrf_token" value="`)
	tok, _, _ := strings.Cut(rest, `"`)
	return tok
}

func (s *benchStack) serve(b *testing.B, req *http.Request) *httptest.ResponseRecorder {
	req.Header.Set("Cookie", s.cookies)
	rec := httptest.NewRecorder()
	s.routes.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("%s %s: %d", req.Method, req.URL, rec.Code)
	}
	return rec
}

// BenchmarkMarketPage is GET /market for a logged-in user through every middleware.
func BenchmarkMarketPage(b *testing.B) {
	s := newBenchStack(b)
	b.ReportAllocs()
	for b.Loop() {
		s.serve(b, httptest.NewRequest(http.MethodGet, "/market", nil))
	}
}

// BenchmarkSearchFragment is an htmx search through every middleware.
func BenchmarkSearchFragment(b *testing.B) {
	s := newBenchStack(b)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, "/market?q=lamp", nil)
		req.Header.Set("HX-Request", "true")
		s.serve(b, req)
	}
}

// BenchmarkTradePair is an htmx purchase and sale of one item through every middleware.
func BenchmarkTradePair(b *testing.B) {
	s := newBenchStack(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		field := "purchase_item"
		if i%2 == 1 {
			field = "sold_item"
		}
		req := httptest.NewRequest(http.MethodPost, "/market", strings.NewReader(field+"=1"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "http://example.com")
		req.Header.Set("HX-Request", "true")
		req.Header.Set("X-CSRF-Token", s.token)
		s.serve(b, req)
	}
}

// BenchmarkSessionLoad is the cheapest request that loads the session: the home page.
func BenchmarkSessionLoad(b *testing.B) {
	s := newBenchStack(b)
	b.ReportAllocs()
	for b.Loop() {
		s.serve(b, httptest.NewRequest(http.MethodGet, "/", nil))
	}
}

// BenchmarkRenderMarketPage renders the market page component alone, rows included.
func BenchmarkRenderMarketPage(b *testing.B) {
	s := newBenchStack(b)
	page, err := s.store.Market(context.Background(), store.MarketQuery{})
	if err != nil {
		b.Fatal(err)
	}
	c := components.Chrome{Title: "Market", Username: "bench", Budget: 1000, CSRFToken: strings.Repeat("x", 88)}
	v := components.MarketView{Page: page, Rows: components.ItemRows(page.Items, components.NoBudget)}
	b.ReportAllocs()
	var n int64
	for b.Loop() {
		w := &countWriter{}
		if err := components.MarketPage(c, v).Render(context.Background(), w); err != nil {
			b.Fatal(err)
		}
		n = w.n
	}
	b.SetBytes(n)
	_ = time.Now
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

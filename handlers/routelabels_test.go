package handlers_test

import (
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"market/handlers/metrics"
)

// series are the lines of the request metrics' series in a scrape of m, sorted.
func series(t *testing.T, m *metrics.Metrics) []string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	var out []string
	for line := range strings.Lines(rec.Body.String()) {
		if strings.HasPrefix(line, "market_http_requests_total{") ||
			strings.HasPrefix(line, "market_http_request_duration_seconds_count{") {
			out = append(out, line[:strings.LastIndexByte(line, '}')+1])
		}
	}
	slices.Sort(out)
	return out
}

// junk is a made-up path segment or method: letters, digits and some punctuation.
func junk(rng *rand.Rand, n int, alphabet string) string {
	b := make([]byte, 1+rng.IntN(n))
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}

// Nothing a client sends becomes a metric label: after one request of each kind, 2,000 more of
// the same kinds with made-up methods and random paths add no series.
func TestMetricLabelsComeFromFixedSets(t *testing.T) {
	app := newTestApp(t)
	m := metrics.New(app.store, app.handler.OpenStreams)
	ts := httptest.NewServer(m.Instrument(app.handler.Routes()))
	t.Cleanup(ts.Close)
	rng := rand.New(rand.NewPCG(14, 4))
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	method := func() string { return "X" + junk(rng, 12, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") }
	path := func() string { return "/" + junk(rng, 40, letters+"-_~%") }
	kinds := []func() (method, path string){
		func() (string, string) { return "GET", path() + path() },
		func() (string, string) { return "GET", path() + "/" + path() + "/../" }, // the mux redirects it
		func() (string, string) { return "POST", path() },
		func() (string, string) { return method(), path() },
		func() (string, string) { return method(), "/market" },
		func() (string, string) { return "POST", "/market" }, // no token
		func() (string, string) { return "GET", "/items" + path() },
		func() (string, string) { return "GET", "/assets" + path() },
		func() (string, string) { return "HEAD", "/healthz" },
	}
	send := func(method, path string) {
		req, err := http.NewRequest(method, ts.URL+(&url.URL{Path: path}).EscapedPath(), nil)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		res, err := http.DefaultTransport.RoundTrip(req) // redirects not followed
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	for _, kind := range kinds {
		send(kind())
	}
	before := series(t, m)
	for i := range 2000 {
		send(kinds[i%len(kinds)]())
	}
	after := series(t, m)
	if !slices.Equal(before, after) {
		t.Errorf("2,000 made-up requests changed the series from\n%s\nto\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
	}
	for _, want := range []string{
		`market_http_requests_total{method="GET",route="unmatched",status="404"}`,
		`market_http_requests_total{method="OTHER",route="unmatched",status="403"}`,
		`market_http_requests_total{method="POST",route="POST /market",status="403"}`,
		`market_http_requests_total{method="HEAD",route="GET /healthz",status="200"}`,
		`market_http_requests_total{method="GET",route="GET /items/{id}",status="302"}`,
	} {
		if !slices.Contains(after, want) {
			t.Errorf("no series %s in\n%s", want, strings.Join(after, "\n"))
		}
	}
}

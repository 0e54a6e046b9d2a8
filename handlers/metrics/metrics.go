// Package metrics serves the market's Prometheus metrics: requests by route, method and status,
// latency, trades and refusals, the database's connections and commit times. It is served on
// an address of its own (market -metrics-addr), never on the public one.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"market/store"
)

// Metrics holds the registry and the HTTP metrics it fills.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// New registers the process's, the HTTP layer's and st's metrics, and the number of open live
// streams as streams reports it.
func New(st *store.Store, streams func() int) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "market_http_requests_total", Help: "HTTP requests answered, by route, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "market_http_request_duration_seconds", Help: "Time to answer an HTTP request, by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
	}
	commits := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "market_db_commit_seconds", Help: "Time of each commit of a write (on SQLite, of a group commit).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25},
	})
	st.OnCommit(func(d time.Duration) { commits.Observe(d.Seconds()) })
	reg.MustRegister(m.requests, m.latency, commits,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(st.DB(), "market"),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "market_trades_total", Help: "Purchases and sales committed by this instance.",
		}, func() float64 { return float64(st.Stats().Trades) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "market_live_streams", Help: "Live update streams (GET /market/events) open on this instance.",
		}, func() float64 { return float64(streams()) }))
	for _, reason := range []string{"unavailable", "funds", "not_owner", "not_found"} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "market_trade_refusals_total", Help: "Trades refused by this instance, by reason.",
			ConstLabels: prometheus.Labels{"reason": reason},
		}, func() float64 { return float64(st.Stats().Refusals[reason]) }))
	}
	for i := range st.PoolStats() { // pools beside DB (PostgreSQL: the sessions' pgx pool)
		pool := func() store.PoolStats { return st.PoolStats()[i] }
		gauge := func(name, help string, f func() float64) {
			reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
		}
		gauge("market_pgxpool_acquired_conns", "Connections of the sessions' pool in use.",
			func() float64 { return float64(pool().Acquired) })
		gauge("market_pgxpool_idle_conns", "Idle connections of the sessions' pool.",
			func() float64 { return float64(pool().Idle) })
		gauge("market_pgxpool_total_conns", "Connections of the sessions' pool.",
			func() float64 { return float64(pool().Total) })
		gauge("market_pgxpool_empty_acquire_total", "Acquires that waited for a connection.",
			func() float64 { return float64(pool().EmptyAcquires) })
		gauge("market_db_listening", "1 when this instance hears other instances' changes as they commit.",
			func() float64 {
				if st.Listening() {
					return 1
				}
				return 0
			})
	}
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Instrument counts and times every request next answers. Every label comes from a fixed set,
// so that no client can make up new series: the route is the pattern the handlers matched (as
// they report it with SetRoute), else "unmatched"; the method is a standard one, else "OTHER".
func (m *Metrics) Instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		slot := &routeSlot{pattern: unmatched}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), routeKey{}, slot)))
		m.requests.WithLabelValues(slot.pattern, method(r.Method), strconv.Itoa(sw.status)).Inc()
		if slot.pattern != "GET /market/events" { // a stream's time is its life, not an answer's latency
			m.latency.WithLabelValues(slot.pattern).Observe(time.Since(start).Seconds())
		}
	})
}

// unmatched is the route of a request that matched no pattern.
const unmatched = "unmatched"

type routeKey struct{}

type routeSlot struct{ pattern string }

// Counting reports whether Instrument counts r, so that a caller can skip working out its route
// when nobody would read it.
func Counting(r *http.Request) bool {
	_, ok := r.Context().Value(routeKey{}).(*routeSlot)
	return ok
}

// SetRoute records the pattern of the route r matched (as http.ServeMux.Handler returns it; ""
// for none), for Instrument's labels. Without Instrument it does nothing.
func SetRoute(r *http.Request, pattern string) {
	if slot, ok := r.Context().Value(routeKey{}).(*routeSlot); ok && pattern != "" {
		slot.pattern = pattern
	}
}

// method is r.Method when it is a standard method, else "OTHER".
func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flushes for streaming answers).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

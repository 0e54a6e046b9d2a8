package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"market/metrics"
	"market/store"
)

// serveMetrics serves /metrics on addr, a listener of its own (never the public one), until ctx
// ends, and returns the public handler instrumented. With no addr it returns public as it is.
func serveMetrics(ctx context.Context, addr string, st *store.Store, public http.Handler, logger *slog.Logger) http.Handler {
	if addr == "" {
		return public
	}
	m := metrics.New(st)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		logger.Error("metrics: not served", "addr", addr, "err", err)
		return public
	}
	logger.Info("metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	return m.Instrument(public)
}

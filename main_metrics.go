package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"market/handlers"
	"market/metrics"
	"market/store"
)

// serveMetrics serves /metrics on addr, a listener of its own (never the public one), until ctx
// ends, and returns h's routes instrumented. With no addr it returns the routes as they are.
func serveMetrics(ctx context.Context, addr string, st *store.Store, h *handlers.Handler, logger *slog.Logger) http.Handler {
	public := h.Routes()
	if addr == "" {
		return public
	}
	m := metrics.New(st, h.OpenStreams)
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

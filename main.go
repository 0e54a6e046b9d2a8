// Command market serves the marketplace, and administers its database:
//
//	market [-addr host:port] [-db path] [-secure]      serve (the default)
//	market [-db path] users | seed | reset --yes | check | role USERNAME admin|user | backup OUT
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/justinas/nosurf"

	"market/assets"
	"market/handlers"
	"market/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C ends the process at once, in-flight requests or not
	}()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "market:", err)
		os.Exit(1)
	}
}

// config is what the flags and the environment say; flags win.
type config struct {
	addr           string
	db             string
	secure         bool
	trustProxy     bool
	trustedOrigins []string
	logLevel       slog.Level
	metricsAddr    string
}

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (config, []string, error) {
	envOr := func(key, fallback string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return fallback
	}
	fs := flag.NewFlagSet("market", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: market [flags] [users | seed [-items N] [-users N -password P] | reset --yes | check | copy -to postgres://... [-sessions] | role USERNAME admin|user | backup OUT]")
		fs.PrintDefaults()
	}
	var c config
	fs.StringVar(&c.addr, "addr", envOr("ADDR", "127.0.0.1:5000"), "listen address (env ADDR)")
	fs.StringVar(&c.db, "db", envOr("DATABASE_URL", "instance/market.db"),
		"database file, or sqlite:///relative.db or sqlite:////absolute.db (env DATABASE_URL)")
	secure := getenv("SECURE")
	fs.BoolVar(&c.secure, "secure", secure == "1" || strings.EqualFold(secure, "true"),
		"users reach the server over HTTPS: Secure cookies and HSTS (env SECURE=1)")
	trust := getenv("TRUST_PROXY")
	fs.BoolVar(&c.trustProxy, "trust-proxy", trust == "1" || strings.EqualFold(trust, "true"),
		"behind a reverse proxy: rate-limit by the address it appends to X-Forwarded-For (env TRUST_PROXY=1)")
	fs.TextVar(&c.logLevel, "log-level", slog.LevelInfo,
		"least severe log level: debug, info (one line per request), warn or error (env LOG_LEVEL)")
	fs.StringVar(&c.metricsAddr, "metrics-addr", getenv("METRICS_ADDR"),
		"serve Prometheus /metrics on this address, apart from the public one; off when empty (env METRICS_ADDR)")
	if err := fs.Parse(args); err != nil {
		return config{}, nil, err
	}
	if lvl := getenv("LOG_LEVEL"); lvl != "" && !flagSet(fs, "log-level") {
		if err := c.logLevel.UnmarshalText([]byte(lvl)); err != nil {
			return config{}, nil, fmt.Errorf("LOG_LEVEL: %w", err)
		}
	}
	if origins := getenv("TRUSTED_ORIGINS"); origins != "" {
		c.trustedOrigins = strings.Split(origins, ",")
		if _, err := nosurf.StaticOrigins(c.trustedOrigins...); err != nil {
			return config{}, nil, fmt.Errorf("TRUSTED_ORIGINS: %w", err)
		}
	}
	path, err := store.PathFromURL(c.db)
	if err != nil {
		return config{}, nil, err
	}
	c.db = path
	return c, fs.Args(), nil
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, rest, err := parseFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	logOut := newBufferedLog(stderr)
	defer logOut.Close()
	logger := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: cfg.logLevel}))
	st, err := store.Open(ctx, cfg.db, store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	if len(rest) > 0 {
		return admin(ctx, st, rest, stdout)
	}
	return serve(ctx, cfg, st, logger)
}

func serve(ctx context.Context, cfg config, st *store.Store, logger *slog.Logger) error {
	tuneGC()
	go releaseWhenQuiet(ctx, 2*time.Second, 8<<20)
	if n, err := st.SeedIfEmpty(ctx); err != nil {
		return err
	} else if n > 0 {
		logger.Info("loaded the demo catalogue", "items", n)
	}
	as, err := assets.New()
	if err != nil {
		return err
	}
	sessionStore := st.Sessions(10 * time.Minute)
	defer sessionStore.StopCleanup()
	sessions := handlers.NewSessionManager(sessionStore, cfg.secure)
	sessions.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
		if r.Context().Err() != nil { // the client has gone: nobody to answer, nothing wrong here
			logger.Info("session not saved: request cancelled", "uri", r.URL.RequestURI(), "err", err)
			return
		}
		logger.Error("session", "uri", r.URL.RequestURI(), "err", err)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
	}

	h := handlers.New(logger, st, sessions, as, handlers.Config{
		Secure: cfg.secure, TrustProxy: cfg.trustProxy, TrustedOrigins: cfg.trustedOrigins,
	})
	srv := newServer(cfg.addr, serveMetrics(ctx, cfg.metricsAddr, st, h, logger), logger, defaultLimits)
	srv.RegisterOnShutdown(h.StopStreams) // live streams never finish on their own
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	logger.Info("serving", "url", "http://"+ln.Addr().String(), "db", st.Path(), "secure", cfg.secure)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing requests in flight")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// Requests still running past the deadline are cut off here, not by closing the
		// database under them.
		srv.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// limits are what http.Server allows a client before cutting it off; README.md states them.
type limits struct {
	readHeader time.Duration // the request line and headers, all of them (slow-header clients)
	read       time.Duration // the whole request, body included (bodies that never end)
	write      time.Duration // the answer, from the end of the request's headers
	idle       time.Duration // a keep-alive connection waiting for its next request
	headerSize int           // request line and headers; over it, 431
}

var defaultLimits = limits{
	readHeader: 5 * time.Second,
	read:       10 * time.Second,
	write:      30 * time.Second,
	idle:       time.Minute,
	headerSize: 64 << 10,
}

// newServer is the http.Server of the market, with every limit set: no client can hold a
// connection or a goroutine longer than they allow.
func newServer(addr string, h http.Handler, logger *slog.Logger, l limits) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: l.readHeader,
		ReadTimeout:       l.read,
		WriteTimeout:      l.write,
		IdleTimeout:       l.idle,
		MaxHeaderBytes:    l.headerSize,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

func admin(ctx context.Context, st *store.Store, args []string, stdout io.Writer) error {
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	switch cmd {
	case "users":
		users, err := st.Users(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tUSERNAME\tEMAIL\tBUDGET\tROLE")
		for _, u := range users {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\n", u.ID, u.Username, u.Email, u.Budget, u.Role)
		}
		return tw.Flush()
	case "seed":
		items := fs.Int("items", 0, "also add this many generated items (load tests)")
		users := fs.Int("users", 0, "also add this many generated users, user00001..., with -password")
		password := fs.String("password", "", "the password of the generated users")
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if *users > 0 && len(*password) < 8 {
			return errors.New("seed -users needs -password, of at least 8 characters")
		}
		n, err := st.Seed(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "demo catalogue: %d items added\n", n)
		if *items > 0 || *users > 0 {
			start := time.Now()
			if err := st.SeedScale(ctx, *items, *users, *password); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "generated: %d items and %d users in %s\n", *items, *users, time.Since(start).Round(time.Millisecond))
		}
		return nil
	case "reset":
		yes := fs.Bool("yes", false, "really delete every user, item, trade and session")
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if !*yes {
			return errors.New("reset deletes everything: run it as 'reset --yes'")
		}
		if err := st.Reset(ctx); err != nil {
			return err
		}
		n, err := st.Seed(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "database reset: %d demo items loaded\n", n)
		return nil
	case "check":
		problems, err := st.Check(ctx)
		if err != nil {
			return err
		}
		if len(problems) > 0 {
			for _, p := range problems {
				fmt.Fprintln(stdout, "FAIL", p)
			}
			return fmt.Errorf("check: %d problems", len(problems))
		}
		t, err := st.Totals(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "ok: integrity, ledgers and owners agree; budgets %d + owned items %d = granted %d\n",
			t.Budgets, t.Owned, t.Granted)
		return nil
	}
	switch cmd {
	case "copy":
		return adminCopy(ctx, st, fs, rest, stdout)
	case "role":
		return adminRole(ctx, st, rest, stdout)
	case "backup":
		return adminBackup(ctx, st, rest, stdout)
	}
	return fmt.Errorf("unknown command %q: want users, seed, reset, check, copy, role or backup", cmd)
}

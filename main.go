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
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/justinas/nosurf"

	"market/assets"
	"market/handlers"
	"market/handlers/mail"
	"market/handlers/metrics"
	"market/store"
	"market/store/commands"
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
	maxStreams     int
	baseURL        string // where every link in a mail starts
	smtpURL        string // "": mails go to the log
	mailFrom       string
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
		fmt.Fprintln(stderr, "usage: market [flags] ["+commands.Commands+"]")
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
	fs.StringVar(&c.baseURL, "base-url", getenv("BASE_URL"),
		"the public URL every link in a mail starts with (env BASE_URL; default http:// and the listen address)")
	c.smtpURL, c.mailFrom = getenv("SMTP_URL"), getenv("MAIL_FROM")
	maxStreams, err := strconv.Atoi(envOr("MAX_STREAMS", "10000"))
	if err != nil {
		return config{}, nil, fmt.Errorf("MAX_STREAMS: %w", err)
	}
	fs.IntVar(&c.maxStreams, "max-streams", maxStreams, "most live streams this instance serves; past it, 429 (env MAX_STREAMS)")
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
	if c.baseURL != "" { // else serve takes the address it listens on
		if c.baseURL, err = publicURL(c.baseURL, ""); err != nil {
			return config{}, nil, err
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
	logOut := handlers.NewBufferedLog(stderr)
	defer logOut.Close()
	logger := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: cfg.logLevel}))
	st, err := store.Open(ctx, cfg.db, store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	if len(rest) > 0 {
		return commands.Run(ctx, st, rest, stdout)
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
	ln, err := listen(&cfg, logger)
	if err != nil {
		return err
	}
	defer ln.Close()              // when serve fails before Serve takes it
	sessionStore := st.Sessions() // expired sessions are swept by h.Sweep, one instance at a time
	worker, stopMail, err := startMail(ctx, cfg, st, logger)
	if err != nil {
		return err
	}
	defer stopMail()
	h := handlers.New(logger, st, handlers.NewSessionManager(sessionStore, cfg.secure), as, handlers.Config{
		Secure: cfg.secure, TrustProxy: cfg.trustProxy, TrustedOrigins: cfg.trustedOrigins,
		MaxStreams: cfg.maxStreams, BaseURL: cfg.baseURL, MailQueued: worker.Wake,
	})
	go h.Sweep(ctx, time.Minute)
	routes := h.Routes()
	if m := serveMetrics(ctx, cfg.metricsAddr, st, h, logger); m != nil {
		routes = m.Instrument(routes)
	}
	srv := newServer(cfg.addr, routes, logger, defaultLimits)
	srv.RegisterOnShutdown(h.StopStreams) // live streams never finish on their own
	logger.Info("serving", "url", "http://"+ln.Addr().String(), "db", st.Path(), "secure", cfg.secure, "base_url", cfg.baseURL)

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
	err = srv.Shutdown(shutdownCtx)
	if err != nil {
		// Requests still running past the deadline are cut off here, not by closing the
		// database under them.
		srv.Close()
	}
	// The resets answered before, whose work runs after their answer, queue their mails.
	laterCtx, cancelLater := context.WithTimeout(context.Background(), laterWait)
	defer cancelLater()
	if !h.WaitLater(laterCtx) {
		logger.Warn("shutdown: reset requests still at work were left", "waited", laterWait)
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// laterWait bounds the wait at shutdown for the work requests leave after their answer (each
// piece has 10 s).
const laterWait = 10 * time.Second

// serveMetrics serves st's and h's metrics at /metrics on addr, a listener of its own (never
// the public one), until ctx ends. It returns them, to count the public requests, or nil when
// they are off (no addr) or could not be served.
func serveMetrics(ctx context.Context, addr string, st *store.Store, h *handlers.Handler, logger *slog.Logger) *metrics.Metrics {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		logger.Error("metrics: not served", "addr", addr, "err", err)
		return nil
	}
	m := metrics.New(st, h.OpenStreams)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	// Profiles of the running process, for the operator only: this listener is never public.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
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
	return m
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

// tuneGC trades a little memory for much less garbage collection: between bursts the live heap
// is a few MiB, so the default (collect each time it doubles) runs the collector dozens of
// times a second under load. The soft memory limit is three quarters of the memory the process
// may use (its cgroup's limit, a container's, else the machine's; none where neither is known):
// a limit is where the collector starts running more often to stay under it, and one below what
// the server holds turns into a collector that never rests (a fixed 256 MiB did, past 4,500 live
// streams), while one near the machine's memory only works harder where the alternative is
// running out. What the server holds is bounded elsewhere: live streams by their cap, each a few
// KiB (handlers/live). GOGC and GOMEMLIMIT, which the runtime reads from the process's
// environment, win when set.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(300)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		if m := memoryAvailable(); m > 0 {
			debug.SetMemoryLimit(m / 4 * 3)
		}
	}
}

// memoryAvailable is the memory this process may use, in bytes: the machine's, or its cgroup's
// limit when lower (Linux, cgroup v2 or v1 as a container sees it); 0 when unknown.
func memoryAvailable() int64 {
	var total int64
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				total = kb << 10
			}
		}
	}
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// "max", or v1's near 2^63 for none, leave the machine's.
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 && (total == 0 || n < total) {
			total = n
		}
	}
	return total
}

// releaseWhenQuiet gives memory back to the system once the server goes quiet after a burst
// (thousands of connections at once, say). What a burst allocated stays in the heap until the
// next collection, and a quiet server may not collect for two minutes (the runtime's forced
// collection): so, after a period in which no collection ran and less than slack bytes were
// allocated, if the heap holds more than slack bytes above what was live after the last
// collection, it collects and returns the free pages at once. A server at work, even at a
// modest pace, is left to the collector.
func releaseWhenQuiet(ctx context.Context, period time.Duration, slack uint64) {
	samples := []rtmetrics.Sample{
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/gc/heap/allocs:bytes"}, // allocated since the start
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"}, // live, and garbage not yet collected
		{Name: "/memory/classes/heap/free:bytes"},    // free, and not yet returned
	}
	type reading struct{ cycles, allocs, held uint64 }
	read := func() reading {
		rtmetrics.Read(samples)
		live, objects, free := samples[2].Value.Uint64(), samples[3].Value.Uint64(), samples[4].Value.Uint64()
		return reading{samples[0].Value.Uint64(), samples[1].Value.Uint64(), objects + free - min(live, objects+free)}
	}
	last := read()
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := read()
		if now.cycles == last.cycles && now.allocs-last.allocs < slack && now.held > slack {
			debug.FreeOSMemory()
			now = read()
		}
		last = now
	}
}

// listen opens the public listener, and makes the base URL of mails its address when BASE_URL
// is not set.
func listen(cfg *config, logger *slog.Logger) (net.Listener, error) {
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil || cfg.baseURL != "" {
		return ln, err
	}
	if cfg.baseURL, err = publicURL("", ln.Addr().String()); err != nil {
		ln.Close()
		return nil, err
	}
	if cfg.secure {
		logger.Warn("BASE_URL is not set: links in mails use " + cfg.baseURL + ", not the public HTTPS address")
	}
	return ln, nil
}

// publicURL is BASE_URL checked (an http or https URL with a host, no query), or, when it is
// not set, http:// and the listen address (localhost for every interface).
func publicURL(base, addr string) (string, error) {
	if base == "" {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return "", fmt.Errorf("listen address %q: %w", addr, err)
		}
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			host = "localhost"
		}
		return "http://" + net.JoinHostPort(host, port), nil
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("BASE_URL %q: want http(s)://host[:port][/path]", base)
	}
	return strings.TrimSuffix(base, "/"), nil
}

// mailStopWait bounds stopMail's wait: the worker, stopping since ctx ended, finishes the mail
// on its way (go-mail's 20 s at most) and records its batch (the worker's DBTimeout, 10 s).
const mailStopWait = 30 * time.Second

// startMail runs the instance's mail worker until ctx ends or stop, which returns once a batch
// being sent is finished and marked (before the store closes), or after mailStopWait: then the
// mails of that batch may be sent again, when its claim's lease ends.
func startMail(ctx context.Context, cfg config, st *store.Store, logger *slog.Logger) (w *mail.Worker, stop func(), err error) {
	if w, err = mailWorker(cfg, st, logger); err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	return w, func() {
		cancel()
		select {
		case <-done:
		case <-time.After(mailStopWait):
			logger.Warn("mail: the worker did not stop in time; its batch may be sent again", "waited", mailStopWait)
		}
	}, nil
}

// mailWorker is the instance's mail worker: through SMTP_URL, or to the log without it.
func mailWorker(cfg config, st *store.Store, logger *slog.Logger) (*mail.Worker, error) {
	if cfg.smtpURL == "" {
		logger.Info("mail: no SMTP_URL, mails are written to this log")
		return mail.NewWorker(st, mail.Log{Logger: logger}, logger, mail.Options{}), nil
	}
	fromText := cfg.mailFrom
	if fromText == "" {
		host := "localhost"
		if u, err := url.Parse(cfg.baseURL); err == nil && strings.Contains(u.Hostname(), ".") && net.ParseIP(u.Hostname()) == nil {
			host = u.Hostname()
		}
		fromText = "Market <market@" + host + ">"
	}
	from, err := mail.ParseFrom(fromText)
	if err != nil {
		return nil, err
	}
	sender, err := mail.NewSMTP(cfg.smtpURL, from)
	if err != nil {
		return nil, err
	}
	return mail.NewWorker(st, sender, logger, mail.Options{}), nil
}

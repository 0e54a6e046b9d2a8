// Package handlers is the market's HTTP layer: routes, middleware, forms, and the rule that
// decides whether a request gets a full page or an htmx fragment.
package handlers

import (
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/justinas/nosurf"

	"market/assets"
	"market/components"
	"market/handlers/live"
	"market/store"
)

// Config tunes the HTTP layer; New gives zero fields the defaults their comments name.
type Config struct {
	// Secure: users reach us over HTTPS, so cookies are Secure and HSTS is sent.
	Secure bool
	// TrustedOrigins are other origins (scheme://host) whose forms may post here, such as
	// templ's live-reload proxy in development.
	TrustedOrigins []string
	// TrustProxy: every request comes through one reverse proxy, which appends the client's
	// address to X-Forwarded-For; rate limits then count that address.
	TrustProxy bool
	// IdleTimeout logs a user out after this long without a request (default 1 hour).
	IdleTimeout time.Duration
	// MaxBodyBytes caps request bodies (default 64 KiB).
	MaxBodyBytes int64
	// LoginFailures is how many failed logins per username and address are allowed in
	// LoginWindow (default 5 in 15 minutes); an address alone gets twenty times as many.
	LoginFailures int
	LoginWindow   time.Duration
	// SignupsPerHour caps new accounts per address (default 100).
	SignupsPerHour int
	// Now is the clock (default time.Now), so tests can move time.
	Now func() time.Time
	// StreamPing is how often an idle live stream gets a ": ping" comment (default 15 s).
	StreamPing time.Duration
	// StreamsPerUser is how many live streams one user may have open (default 4); one more
	// closes the oldest a second later, unless one closes meanwhile.
	StreamsPerUser int
	// MaxStreams caps the live streams of this process (default 10,000), StreamsPerAddr those
	// from one address as the rate limits see it (default 100): past either, 429.
	MaxStreams     int
	StreamsPerAddr int
	// RequestBudget is how long a request may take before it is answered 503 with Retry-After
	// (default 5 s; twice that for a request that hashes a password). Live streams have none.
	RequestBudget time.Duration
	// BaseURL is the market's public URL, which every link in a mail starts with (default
	// http://127.0.0.1:5000); never the request's Host, which a client can forge.
	BaseURL string
	// MailQueued is called after a request queues a mail (it wakes this instance's mail worker).
	MailQueued func()
	// ResetsPerHour caps password reset requests per client address (default 20).
	ResetsPerHour int
}

// Handler serves every route; its fields are everything the HTTP layer needs.
type Handler struct {
	logger     *slog.Logger
	store      *store.Store
	sessions   *scs.SessionManager
	csrfTokens *nosurf.CSRFHandler // issues a new CSRF token at login and logout (newCSRF)
	assets     *assets.Server
	cfg        Config
	urls       components.Assets

	loginByUser *rateLimit    // failed logins per username and address
	loginByAddr *rateLimit    // failed logins per address
	signups     *rateLimit    // accounts created per address
	mailMinute  *rateLimit    // reset and confirmation mails per target address: 1 a minute
	mailHour    *rateLimit    // and 5 an hour
	resets      *rateLimit    // reset requests per client address
	background  chan struct{} // the slots of work done off the request path (later)

	laterWork sync.WaitGroup // that work, for WaitLater

	marketCache *versionCache[store.MarketQuery, cachedMarket] // pages of the market
	ownedCache  *versionCache[int64, []store.Item]             // each user's items
	userCache   *versionCache[int64, store.User]               // each user's name and budget

	live *live.Broker // the live streams (handlers/live; events.go connects them)

	pictureSlots chan struct{} // uploaded pictures being decoded (pictures.go)
}

// New builds the handler with its dependencies.
func New(logger *slog.Logger, st *store.Store, sessions *scs.SessionManager, as *assets.Server, cfg Config) *Handler {
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = time.Hour
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.LoginFailures == 0 {
		cfg.LoginFailures = 5
	}
	if cfg.LoginWindow == 0 {
		cfg.LoginWindow = 15 * time.Minute
	}
	if cfg.SignupsPerHour == 0 {
		cfg.SignupsPerHour = 100
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.StreamPing == 0 {
		cfg.StreamPing = 15 * time.Second
	}
	if cfg.StreamsPerUser == 0 {
		cfg.StreamsPerUser = 4
	}
	if cfg.MaxStreams == 0 {
		cfg.MaxStreams = 10000
	}
	if cfg.StreamsPerAddr == 0 {
		cfg.StreamsPerAddr = 100
	}
	if cfg.RequestBudget == 0 {
		cfg.RequestBudget = 5 * time.Second
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "http://127.0.0.1:5000"
	}
	if cfg.ResetsPerHour == 0 {
		cfg.ResetsPerHour = 20
	}
	h := &Handler{
		logger:   logger,
		store:    st,
		sessions: sessions,
		assets:   as,
		cfg:      cfg,
		urls: components.Assets{CSS: as.URL(assets.CSS), JS: as.URL(assets.JS), HTMX: as.URL(assets.HTMX), SSE: as.URL(assets.SSE),
			AdminCSS: as.URL(assets.AdminCSS), AdminJS: as.URL(assets.AdminJS), Icon: as.URL(assets.Icon)},
		pictureSlots: make(chan struct{}, 2),
		loginByUser:  newRateLimit(st, "login_user", cfg.LoginFailures, cfg.LoginWindow, logger),
		loginByAddr:  newRateLimit(st, "login_addr", 20*cfg.LoginFailures, cfg.LoginWindow, logger),
		signups:      newRateLimit(st, "signup", cfg.SignupsPerHour, time.Hour, logger),
		mailMinute:   newRateLimit(st, "mail_minute", 1, time.Minute, logger),
		mailHour:     newRateLimit(st, "mail_hour", 5, time.Hour, logger),
		resets:       newRateLimit(st, "reset", cfg.ResetsPerHour, time.Hour, logger),
		background:   make(chan struct{}, 64),
		marketCache:  newVersionCache[store.MarketQuery, cachedMarket](256, st.Exact), // ~20 KB a page
		ownedCache:   newVersionCache[int64, []store.Item](4096, st.Exact),
		userCache:    newVersionCache[int64, store.User](4096, st.Exact),
	}
	h.csrfTokens = h.newCSRF(http.NotFoundHandler())
	h.live = newBroker(h)
	return h
}

// Routes is the table of contents: every route, and the middleware every request goes through.
func (h *Handler) Routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", h.home)
	mux.HandleFunc("GET /home", h.home)
	mux.HandleFunc("GET /register", h.registerForm)
	mux.HandleFunc("POST /register", h.register)
	mux.HandleFunc("GET /login", h.loginForm)
	mux.HandleFunc("POST /login", h.login)
	mux.HandleFunc("GET /logout", h.logout)
	mux.HandleFunc("POST /logout", h.logout)
	mux.Handle("GET /market", h.requireUser(h.marketPage))
	mux.HandleFunc("GET /market/events", h.marketEvents)
	mux.Handle("POST /market", h.requireUser(h.trade))
	mux.Handle("GET /items/{id}", h.requireUser(h.itemPage))
	mux.Handle("GET /trades", h.requireUser(h.tradesPage))
	mux.Handle("GET /account", h.requireUser(h.accountPage))
	mux.Handle("POST /account/password", h.requireUser(h.changePassword))
	mux.Handle("POST /account/sessions", h.requireUser(h.endSessions))
	mux.Handle("POST /account/email", h.requireUser(h.changeEmail))
	mux.Handle("POST /account/email/confirm", h.requireUser(h.resendConfirm))
	mux.HandleFunc("GET /email/confirm/{token}", h.confirmEmail)
	mux.HandleFunc("GET /password/forgot", h.forgotForm)
	mux.HandleFunc("POST /password/forgot", h.forgotPassword)
	mux.HandleFunc("GET /password/reset/{token}", h.resetLink)
	mux.HandleFunc("GET /password/reset", h.resetForm)
	mux.HandleFunc("POST /password/reset", h.resetPassword)
	mux.Handle("GET /admin", h.requireAdmin(h.adminPage))
	mux.Handle("GET /admin/glance", h.requireAdmin(h.adminGlance))
	mux.Handle("POST /admin/items", h.requireAdmin(h.addItem))
	mux.Handle("GET /admin/items/{id}", h.requireAdmin(h.editItemForm))
	mux.Handle("POST /admin/items/{id}", h.requireAdmin(h.editItem))
	mux.Handle("POST /admin/items/{id}/retire", h.requireAdmin(h.retireItem))
	mux.Handle("POST /admin/items/{id}/picture", h.requireAdmin(h.uploadPicture))
	mux.Handle("POST /admin/users/{id}/grant", h.requireAdmin(h.grant))
	mux.Handle("GET /admin/log", h.requireAdmin(h.adminLog))
	mux.Handle("GET /admin/mail", h.requireAdmin(h.adminMail))
	mux.Handle("POST /admin/mail/{id}/retry", h.requireAdmin(h.retryMail))
	// Served from the outer mux below; here so that errorPages answers 405 to their other methods.
	mux.HandleFunc("GET /healthz", h.healthz)
	mux.HandleFunc("GET /readyz", h.readyz)
	mux.HandleFunc("GET /assets/", h.asset)
	mux.HandleFunc("GET /pictures/{file}", h.picture)
	app := h.budget(h.loadAndSave(h.csrf(h.takeNotice(h.authenticate(h.errorPages(mux))))))

	// Static files and the health check need no session: their GETs skip its database read.
	// Other methods go the long way, to meet the CSRF check and the 405 page.
	top := http.NewServeMux()
	top.HandleFunc("GET /assets/", h.asset)
	top.HandleFunc("GET /healthz", h.healthz)
	top.HandleFunc("GET /readyz", h.readyz)
	top.Handle("GET /pictures/{file}", h.budget(http.HandlerFunc(h.picture))) // a database read: within a budget
	top.Handle("/", app)
	return h.recoverPanic(h.logRequest(reportRoute(mux, h.secureHeaders(h.limitBody(top)))))
}

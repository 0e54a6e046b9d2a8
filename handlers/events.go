package handlers

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/a-h/templ"

	"market/handlers/live"
	"market/store"
)

// Live updates: GET /market/events is the live stream of one market page. The live package
// does the streaming; this side authenticates the viewer, reads the page's query, and lends the
// streams the market's caches.

// newBroker is the process's live broker: it follows the store's changes and renders through
// the market's caches.
func newBroker(h *Handler) *live.Broker {
	return live.NewBroker(h.store, liveViews{h}, h.logger, live.Config{
		Ping:       h.cfg.StreamPing,
		PerUser:    h.cfg.StreamsPerUser,
		MaxStreams: h.cfg.MaxStreams,
		PerAddr:    h.cfg.StreamsPerAddr,
		SignedIn:   h.streamsSignedIn,
	})
}

// streamsSignedIn reports, for each viewer, whether the session its stream was opened with
// still signs it in: it exists (no logout, here or on another instance) for the same user, has
// not been idle past the idle timeout, and is not older than its user's session generation (a
// password change or "sign out everywhere else", account.go). A stream is no sign of a person
// at the screen, so it reads the sessions without refreshing their timers, and writes nothing:
// two reads for up to streamChecks streams, however many are due. A failed read counts as
// signed in: it is no proof of a logout.
func (h *Handler) streamsSignedIn(ctx context.Context, who []live.Viewer) []bool {
	in := make([]bool, len(who))
	for start := 0; start < len(who); start += streamChecks {
		batch := who[start:min(start+streamChecks, len(who))]
		tokens, users := make([]string, len(batch)), make([]int64, len(batch))
		for i, v := range batch {
			tokens[i], users[i] = v.Session, v.User
		}
		sessions, gens, err := h.store.StreamSessions(ctx, tokens, users)
		for i, v := range batch {
			data, found := sessions[v.Session]
			gen, exists := gens[v.User]
			in[start+i] = err != nil || (found && exists && h.signsIn(data, v.User, gen))
		}
	}
	return in
}

// streamChecks is how many streams' sessions one read asks for.
const streamChecks = 500

// signsIn reports whether a session's data signs user in, whose session generation is gen.
func (h *Handler) signsIn(data []byte, user, gen int64) bool {
	_, values, err := h.sessions.Codec.Decode(data)
	if err != nil {
		return true
	}
	id, _ := values[keyUserID].(int64)
	seen, _ := values[keySeen].(int64)
	sessionGen, _ := values[keyGen].(int64)
	idle := h.cfg.Now().Unix()-seen > int64(h.cfg.IdleTimeout/time.Second)
	return id != 0 && id == user && !idle && sessionGen >= gen
}

// OpenStreams is the number of live streams open in this process.
func (h *Handler) OpenStreams() int { return h.live.Count() }

// LivePagesRead is how many pages of the market the live broker has read to follow the
// trades: it grows with the pages the trades can change, not with the searches open.
func (h *Handler) LivePagesRead() int64 { return h.live.PagesRead() }

// StopStreams ends every live stream at once and refuses new ones; register it with
// http.Server.RegisterOnShutdown, since Shutdown waits for requests, and a stream never ends.
func (h *Handler) StopStreams() { h.live.Stop() }

// marketEvents is GET /market/events: the live stream of one market page.
func (h *Handler) marketEvents(w http.ResponseWriter, r *http.Request) {
	user, ok := currentUser(r)
	if !ok {
		h.clientError(w, r, http.StatusUnauthorized, "Please log in to follow the market.")
		return
	}
	endBudget(r) // the stream stays open; its opening reads have a bound of their own (live.Serve)
	err := h.live.Serve(w, r, live.Viewer{User: user.ID, Addr: h.clientIP(r), Session: h.sessions.Token(r.Context())}, marketQuery(r.URL.Query()).Normalize())
	switch {
	case errors.Is(err, live.ErrTooManyStreams):
		w.Header().Set("Retry-After", "60")
		h.clientError(w, r, http.StatusTooManyRequests, "Too many live updates are open on this server. Reload the page in a minute.")
	case errors.Is(err, live.ErrTooManyFromAddr):
		w.Header().Set("Retry-After", "60")
		h.clientError(w, r, http.StatusTooManyRequests, "Too many live updates are open from your address. Close some tabs, then reload the page.")
	case errors.Is(err, live.ErrTooManyForUser):
		w.Header().Set("Retry-After", "10")
		h.clientError(w, r, http.StatusTooManyRequests, "Too many live updates are open for your account. Close some tabs, then reload the page.")
	case errors.Is(err, live.ErrStopped):
		h.clientError(w, r, http.StatusServiceUnavailable, "The server is restarting. Reload the page in a moment.")
	case err != nil:
		h.serverError(w, r, err)
	}
}

// liveURL is the address of a page's stream: its version and query.
func (h *Handler) liveURL(r *http.Request, q store.MarketQuery) (string, error) {
	version, err := h.requestVersion(r.Context())
	if err != nil {
		return "", err
	}
	v := url.Values{"since": {strconv.FormatInt(version, 10)}}
	if q.Q != "" {
		v.Set("q", q.Q)
	}
	if q.Sort != "" && q.Sort != store.SortName {
		v.Set("sort", q.Sort)
	}
	if q.Page > 1 {
		v.Set("page", strconv.Itoa(q.Page))
	}
	return "/market/events?" + v.Encode(), nil
}

// liveViews lends the live streams the market's caches: a stream's page, rows and account are
// those a request at the same version would see.
type liveViews struct{ h *Handler }

func (v liveViews) Market(ctx context.Context, version int64, q store.MarketQuery) (store.MarketPage, templ.Component, error) {
	return v.h.market(context.WithValue(ctx, versionKey, version), q)
}

func (v liveViews) Rows(ctx context.Context, page store.MarketPage) (templ.Component, error) {
	m, err := renderMarket(ctx, page)
	return templ.Raw(m.rows), err
}

func (v liveViews) Account(ctx context.Context, version, user int64) ([]store.Item, int64, error) {
	owned, err := v.h.ownedItems(context.WithValue(ctx, versionKey, version), user)
	if err != nil {
		return nil, 0, err
	}
	u, err := v.h.user(ctx, version, user)
	return owned, u.Budget, err
}

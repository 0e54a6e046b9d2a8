package live

import (
	"context"
	"errors"
	"net/http"
	"time"

	"market/store"
)

// ErrStopped is Serve's answer once Stop was called (the server is shutting down).
var ErrStopped = errors.New("live streams stopped")

// Serve streams the market as the viewer sees the page of q until the client hangs up, the
// broker stops, a newer stream of the same user takes its place, or the user's session ends.
// It resumes after the version of the request's Last-Event-ID, or else its since=. An error
// means nothing was written: ErrStopped, a cap's (ErrTooManyStreams, ErrTooManyFromAddr,
// ErrTooManyForUser), or a read that failed.
func (b *Broker) Serve(w http.ResponseWriter, r *http.Request, who Viewer, q store.MarketQuery) error {
	if b.stopped() {
		return ErrStopped
	}
	from, resume := since(r)
	ctx := r.Context()
	s, err := b.subscribe(ctx, who, q.Normalize())
	if err != nil {
		return err
	}
	sw := newWriter(w)
	defer b.unsubscribe(s)
	// After subscribing, so that no group between is lost: the version, what was missed since
	// the page's version, and the page now, in one snapshot.
	limit := 0
	if resume {
		limit = maxReplay
	}
	c, err := b.feed.ChangesSince(ctx, from, limit, []store.MarketQuery{s.query}, store.AllPages)
	if err != nil {
		return err
	}
	sw.begin()
	v := &view{b: b, s: s, cursor: c.Version}
	if resume && from < c.Version {
		v.cursor = from
		data, err := v.event(newGroup(from, c, nil), true)
		if err != nil {
			return nil
		}
		sw.buf.Write(data)
	} else if v.remember(newGroup(from, c, nil)) != nil {
		return nil
	}
	if sw.flush() != nil {
		return nil
	}
	b.follow(ctx, v, sw)
	return nil
}

// follow writes the stream's events as the broker hands them over, and a ping when idle.
func (b *Broker) follow(ctx context.Context, v *view, sw *writer) {
	ping := time.NewTicker(b.cfg.Ping)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.quit:
			return
		case <-v.s.evicted:
			// The user opened a newer stream: this one ends, and says so, so that the page
			// does not reconnect and take the newer one's place in turn.
			sw.close("another tab follows the market")
			sw.flush()
			return
		case <-ping.C:
			// A session ended meanwhile (logout, in another tab) ends the stream for good.
			if !b.cfg.SignedIn(ctx) {
				sw.close("signed out")
				sw.flush()
				return
			}
			sw.ping()
		case <-v.s.wake:
			for _, g := range v.s.take() {
				data, err := v.event(g, false)
				if err != nil {
					return
				}
				sw.buf.Write(data)
			}
		}
		if sw.flush() != nil {
			return
		}
	}
}

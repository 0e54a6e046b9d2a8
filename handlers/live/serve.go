package live

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"market/store"
)

// ErrStopped is Serve's answer once Stop was called (the server is shutting down).
var ErrStopped = errors.New("live streams stopped")

// openWait bounds the reads that open a stream: a database that does not answer ends the
// opening, not the stream's client's patience.
const openWait = 5 * time.Second

// Serve streams the market as the viewer sees the page of q until the client hangs up, the
// broker stops, a newer stream of the same user takes its place, or the user's session ends.
// It resumes after the version of the request's Last-Event-ID, or else its since=. It returns
// once the first event is out, the stream going on without the handler (wire.go), unless the
// connection cannot be taken over: then it returns when the stream ends. An error means
// nothing was written: ErrStopped, a cap's (ErrTooManyStreams, ErrTooManyFromAddr,
// ErrTooManyForUser), or a read that failed.
func (b *Broker) Serve(w http.ResponseWriter, r *http.Request, who Viewer, q store.MarketQuery) error {
	if b.stopped() {
		return ErrStopped
	}
	from, resume := since(r)
	ctx, cancel := context.WithTimeout(r.Context(), openWait)
	defer cancel()
	s, err := b.subscribe(ctx, who, q.Normalize())
	if err != nil {
		return err
	}
	// After subscribing, so that no group between is lost: the version, what was missed since
	// the page's version, and the page now, in one snapshot.
	limit := 0
	if resume {
		limit = maxReplay
	}
	c, err := b.feed.ChangesSince(ctx, from, limit, []store.MarketQuery{s.query}, store.AllPages)
	if err != nil {
		s.finish()
		return err
	}
	v := &view{b: b, s: s, cursor: c.Version}
	first, err := v.first(from, resume, c)
	if err != nil {
		s.finish()
		return nil
	}
	conn, took, err := takeOver(w, r)
	if err != nil {
		s.finish()
		return nil
	}
	if !took {
		b.keep(w, r, s, v, first)
		return nil
	}
	cw := newConnWire(conn)
	s.attach(v, cw, nil)
	go cw.watch(s)
	s.open(first)
	return nil
}

// first is the stream's first event after its opening: what the viewer missed since from
// when it resumes, else nothing (the view takes the page as it is now).
func (v *view) first(from int64, resume bool, c store.Changes) ([]byte, error) {
	if resume && from < c.Version {
		v.cursor = from
		return v.event(newGroup(from, c, nil), true)
	}
	return nil, v.remember(newGroup(from, c, nil))
}

// open writes the stream's opening and first event, and what came meanwhile, then lets the
// workers have the stream.
func (s *subscription) open(first []byte) {
	parts := net.Buffers{opening, first}
	if err := s.out.send(&parts); err != nil {
		s.finish()
		return
	}
	s.work(false)
}

// keep serves a stream whose connection stays with net/http: the handler's goroutine is its
// writer, until the client leaves or the stream ends.
func (b *Broker) keep(w http.ResponseWriter, r *http.Request, s *subscription, v *view, first []byte) {
	wake := make(chan struct{}, 1)
	rw := &responseWire{w: w, rc: http.NewResponseController(w), gone: make(chan struct{})}
	s.attach(v, rw, func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	s.open(first)
	for {
		select {
		case <-r.Context().Done():
			s.finish()
			return
		case <-rw.gone:
			return
		case <-wake:
			s.work(false)
		}
	}
}

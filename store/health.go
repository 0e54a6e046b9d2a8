package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"

	"market/store/driver"
)

// health remembers how the last write went, so that readiness can tell a load balancer that
// this instance cannot write (a full disk, a read-only database) without a write of its own
// for every question.
type health struct {
	probing sync.Mutex // one probe at a time
	mu      sync.Mutex // the fields below
	failed  error      // the last write's failure to write, nil once a write succeeds
	probed  time.Time  // when Writable last wrote
	probeOK error      // what that write said
}

// note records a write's outcome: a success or a refusal (the write worked: the item was
// sold, the budget too small) clears a failure to write, which a failure to write sets. Other
// errors (a request given up, a bug) say nothing about whether the database can write.
func (h *health) note(err error) {
	var refused bool
	for _, r := range refusals {
		refused = refused || errors.Is(err, r)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err == nil || refused:
		h.failed = nil
	case CannotWrite(err) || Unavailable(err):
		h.failed = err
	}
}

// refusals are the errors of writes that worked: the database refused the request, not the
// write.
var refusals = []error{ErrNotFound, ErrUnavailable, ErrInsufficientFunds, ErrNotOwner,
	ErrDuplicateUsername, ErrDuplicateEmail}

// watched is the engine with every write's outcome noted.
type watched struct {
	driver.Driver
	h *health
}

func (w watched) Run(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	err := w.Driver.Run(ctx, fn)
	w.h.note(err)
	return err
}

func (w watched) Trade(ctx context.Context, userID, itemID int64, buy bool, after *driver.AfterTrade) (Trade, error) {
	t, err := w.Driver.Trade(ctx, userID, itemID, buy, after)
	w.h.note(err)
	return t, err
}

// probeToken is the token of the readiness probe's session row. A cookie's value cannot hold
// a semicolon, so no request can name this row as its session.
const probeToken = "readiness;probe"

// probeEvery bounds how often Writable writes: readiness asked a thousand times a second
// costs one write a second.
const probeEvery = time.Second

// Writable reports whether the database takes writes now: the last write's trouble if it
// failed to write, else the outcome of a write of the readiness probe's own session row
// (made at most once a second; it expires in a minute and is swept like any session).
//
// While a probe is on its way (on a hung database, up to the asker's deadline), others are
// answered with what is known, at once: readiness asked often never queues behind itself.
func (s *Store) Writable(ctx context.Context) error {
	h := s.health
	h.mu.Lock()
	failed, probed, probeOK := h.failed, h.probed, h.probeOK
	h.mu.Unlock()
	known := cmp.Or(failed, probeOK)
	if time.Since(probed) < probeEvery || !h.probing.TryLock() {
		return known
	}
	defer h.probing.Unlock()
	now := time.Now()
	err := s.d.Sessions().CommitCtx(ctx, probeToken, []byte(now.UTC().Format(time.RFC3339Nano)), now.Add(time.Minute))
	if errors.Is(err, context.Canceled) { // the asker left: nothing learnt
		return known
	}
	h.mu.Lock()
	h.probed, h.probeOK = now, err
	h.mu.Unlock()
	h.note(err)
	return err
}

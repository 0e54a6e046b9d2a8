package store

import (
	"errors"
	"sync/atomic"
	"time"

	"market/store/driver"
)

// Stats counts what the store did since it opened, for /metrics.
type Stats struct {
	Trades   int64            // purchases and sales committed
	Refusals map[string]int64 // trades refused, by reason: unavailable, funds, not_owner, not_found
}

type stats struct {
	trades                                 atomic.Int64
	unavailable, funds, notOwner, notFound atomic.Int64
	commits                                driver.CommitClock
}

// Stats returns the store's counts so far.
func (s *Store) Stats() Stats {
	return Stats{Trades: s.stats.trades.Load(), Refusals: map[string]int64{
		"unavailable": s.stats.unavailable.Load(), "funds": s.stats.funds.Load(),
		"not_owner": s.stats.notOwner.Load(), "not_found": s.stats.notFound.Load(),
	}}
}

// OnCommit has fn called with the time of every commit of a write (on SQLite, of a group).
func (s *Store) OnCommit(fn func(time.Duration)) { s.stats.commits.Set(fn) }

// traded counts the outcome of one purchase or sale.
func (st *stats) traded(err error) {
	switch {
	case err == nil:
		st.trades.Add(1)
	case errors.Is(err, ErrUnavailable):
		st.unavailable.Add(1)
	case errors.Is(err, ErrInsufficientFunds):
		st.funds.Add(1)
	case errors.Is(err, ErrNotOwner):
		st.notOwner.Add(1)
	case errors.Is(err, ErrNotFound):
		st.notFound.Add(1)
	}
}

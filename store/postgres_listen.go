package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// startListener starts listening on a connection of its own, and waits (up to 5 s) until it
// is in place: a store that answers before its listener is would not hear the first trades.
// If the database cannot be reached for now, Changed polls until the listener is up.
func (e *postgresEngine) startListener(cfg *pgx.ConnConfig) {
	lctx, stop := context.WithCancel(context.Background())
	e.stop, e.done = stop, make(chan struct{})
	go e.listen(lctx, cfg)
	wait := time.NewTimer(5 * time.Second)
	defer wait.Stop()
	for !e.listening() {
		select {
		case <-e.changed():
		case <-wait.C:
			return
		}
	}
}

// committed: nothing to do, the commit's NOTIFY reaches the listener.
func (e *postgresEngine) committed() {}

// listen keeps a connection LISTENing to the version trigger's notifications and wakes Changed
// on each. When the connection is lost it says so (Changed wakes, so that waiters read the
// version again), and connects again after a second.
func (e *postgresEngine) listen(ctx context.Context, cfg *pgx.ConnConfig) {
	defer close(e.done)
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			if _, err = conn.Exec(ctx, `LISTEN market`); err == nil {
				e.wake(true) // what was missed while down: read the version again
				for err == nil {
					_, err = conn.WaitForNotification(ctx)
					if err == nil {
						e.wake(true)
					}
				}
			}
			conn.Close(context.Background())
		}
		e.wake(false)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// wake closes the current Changed channel and records whether the listener is up.
func (e *postgresEngine) wake(up bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !up && !e.listener {
		return
	}
	e.listener = up
	close(e.changes)
	e.changes = make(chan struct{})
}

func (e *postgresEngine) listening() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.listener
}

// changed is the listener's doorbell, or, while the listener is
// down, a poll: the channel closes after ChangePoll, and the waiter reads the version again.
func (e *postgresEngine) changed() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.listener {
		poll := make(chan struct{})
		time.AfterFunc(ChangePoll, func() { close(poll) })
		return poll
	}
	return e.changes
}

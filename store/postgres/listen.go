package postgres

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"market/store/driver"
)

// How the instances hear each other's changes. A trade does not notify inside its
// transaction (a notifying commit takes a cluster-wide lock, so commits would queue on it):
// after its commits each instance sends one NOTIFY of its own, at most one per notifyEvery,
// and every instance's listener wakes its streams. A notification can be lost (a listener
// reconnecting), so a poll of the feed's position every driver.ChangePoll is the fallback; and a
// reader that finds the newest change not yet final looks again a moment later (soon).

// notifyEvery is the shortest time between two notifications of one instance: a burst of
// trades is told once.
const notifyEvery = 2 * time.Millisecond

// soonAfter is how long a change that is committed but not yet below every reader's horizon
// (an older transaction still runs) waits before the streams look again.
const soonAfter = 5 * time.Millisecond

// startListener starts listening on a connection of its own, and waits (up to 5 s) until it
// is in place: a store that answers before its listener is would not hear the first trades.
// If the database cannot be reached for now, the poll rings Changed until the listener is up.
func (e *Engine) startListener(cfg *pgx.ConnConfig) {
	lctx, stop := context.WithCancel(context.Background())
	e.stop = stop
	e.run(func() { e.listen(lctx, cfg) })
	e.run(func() { e.notifier(lctx) })
	wait := time.NewTimer(5 * time.Second)
	defer wait.Stop()
	for !e.Listening() {
		select {
		case <-e.Changed():
		case <-time.After(driver.ChangePoll):
		case <-wait.C:
			return
		}
	}
}

// run runs fn in a goroutine that close waits for.
func (e *Engine) run(fn func()) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		fn()
	}()
}

// Start runs what needs the migrated schema: the claim of the feed's epoch, the poll and the
// pruning.
func (e *Engine) Start(ctx context.Context) error {
	if err := e.claim(ctx, 0); err != nil {
		return err
	}
	bg, stop := context.WithCancel(context.Background())
	e.stopBackground = stop
	e.run(func() { e.poll(bg) })
	e.run(func() { e.pruneLoop(bg) })
	return nil
}

// Committed rings: this instance's streams look at once, and the others hear of it by the next
// notification.
func (e *Engine) Committed() {
	e.ring()
	select {
	case e.kick <- struct{}{}:
	default: // one is on its way already: it covers this commit too
	}
}

// notifier sends one NOTIFY for whatever commits came since the last one, on a pooled
// connection and outside any trade's transaction.
func (e *Engine) notifier(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.kick:
		}
		// The notification says up to which version it tells, so that the polls know it was
		// heard (see poll).
		nctx, cancel := context.WithTimeout(ctx, time.Second)
		if v, err := e.ownPosition(nctx); err == nil {
			e.pgx.Exec(nctx, `SELECT pg_notify('market', $1)`, strconv.FormatInt(v, 10)) // lost, the poll covers it
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-time.After(notifyEvery):
		}
	}
}

// listen keeps a connection LISTENing to the instances' notifications and wakes Changed on
// each. When the connection is lost it says so (Changed wakes, so that waiters read the
// version again), and connects again after a second.
func (e *Engine) listen(ctx context.Context, cfg *pgx.ConnConfig) {
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			if _, err = conn.Exec(ctx, `LISTEN market`); err == nil {
				e.wake(true) // what was missed while down: read the version again
				for err == nil {
					err = e.await(ctx, conn)
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

// listenCheck is how long the listening connection may stay quiet before it is pinged, and
// listenPing how long the ping may take.
const (
	listenCheck = 30 * time.Second
	listenPing  = 5 * time.Second
)

// await waits for one notification. A connection quiet for listenCheck is pinged: one dropped
// without a word (a failover, a firewall's idle timeout) would otherwise be found out only by
// the kernel's keepalive, a quarter of an hour later, with the poll alone bringing the changes.
func (e *Engine) await(ctx context.Context, conn *pgx.Conn) error {
	wait, cancel := context.WithTimeout(ctx, listenCheck)
	n, err := conn.WaitForNotification(wait)
	cancel()
	switch {
	case err == nil:
		e.heard(n.Payload)
		e.wake(true)
		return nil
	case ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded): // quiet, not broken
		ping, cancel := context.WithTimeout(ctx, listenPing)
		defer cancel()
		return conn.Ping(ping)
	}
	return err
}

// heard records the version a notification told of.
func (e *Engine) heard(payload string) {
	v, err := strconv.ParseInt(payload, 10, 64)
	if err != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.told = max(e.told, v)
}

// poll reads the feed's position every driver.ChangePoll and rings when it moved past what the
// notifications told (a change whose notification was lost, an administrator's SQL, a change
// that became final when a transaction without one ended), or when it cannot be read.
func (e *Engine) poll(ctx context.Context) {
	t := time.NewTicker(driver.ChangePoll)
	defer t.Stop()
	last, _ := e.ownPosition(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, driver.ChangePoll)
		v, err := e.ownPosition(pctx)
		cancel()
		e.mu.Lock()
		told := e.told
		e.mu.Unlock()
		if err != nil || v != last && v > told {
			e.ring()
		}
		last = v
	}
}

// LookAgain rings Changed after soonAfter, once however often it is asked meanwhile.
func (e *Engine) LookAgain() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.soonArmed {
		return
	}
	e.soonArmed = true
	time.AfterFunc(soonAfter, func() {
		e.mu.Lock()
		e.soonArmed = false
		e.mu.Unlock()
		e.ring()
	})
}

// wake rings Changed and records whether the listener is up.
func (e *Engine) wake(up bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !up && !e.listener {
		return
	}
	e.listener = up
	e.ringLocked()
}

// ring closes the current Changed channel.
func (e *Engine) ring() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ringLocked()
}

func (e *Engine) ringLocked() {
	close(e.changes)
	e.changes = make(chan struct{})
}

func (e *Engine) Listening() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.listener
}

// Changed is the doorbell that the listener, this instance's commits and the poll ring.
func (e *Engine) Changed() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.changes
}

// pgEngineState is what the listener, the notifier and the poll share.
type pgEngineState struct {
	mu        sync.Mutex
	changes   chan struct{} // closed when the market may have changed; then replaced
	listener  bool          // LISTEN is in place: changes are heard
	soonArmed bool          // a soon ring is on its way
	told      int64         // the newest version a notification told of
	kick      chan struct{} // a commit to tell the others of (capacity 1)
	wg        sync.WaitGroup
}

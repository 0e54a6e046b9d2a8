package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"market/store/driver"
)

// The writer runs every use case that writes (purchases, sales, sign-ups) on the one writer
// connection, and commits them in groups: the operations waiting when a transaction starts run
// in it one after another, each inside its own savepoint, so a refusal or failure undoes only
// its own changes, and one COMMIT (one fsync at synchronous=FULL) makes them all durable. No
// caller hears back before the commit that holds its operation, so a confirmed purchase
// survives power loss; under load the cost of an fsync is shared instead of queued behind.
type writer struct {
	db      *sql.DB
	commits *driver.CommitClock
	ops     chan *writeOp
	quit    chan struct{}
	done    sync.WaitGroup
	once    sync.Once
}

type writeOp struct {
	ctx  context.Context
	fn   func(ctx context.Context, tx *sql.Tx) error
	err  error
	done chan struct{}
}

// maxGroup bounds how many operations share one commit.
const maxGroup = 128

func newWriter(db *sql.DB, commits *driver.CommitClock) *writer {
	w := &writer{db: db, commits: commits, ops: make(chan *writeOp), quit: make(chan struct{})}
	w.done.Add(1)
	go w.loop()
	return w
}

// run executes fn in the next group commit and returns once that commit is done: fn's error,
// or the commit's. fn must leave the transaction usable (no Commit or Rollback of its own).
func (w *writer) run(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	op := &writeOp{ctx: ctx, fn: fn, done: make(chan struct{})}
	select {
	case w.ops <- op:
	case <-ctx.Done():
		return ctx.Err()
	case <-w.quit:
		return driver.ErrClosed
	}
	<-op.done // once handed over, the operation's fate is the commit's: wait for it
	return op.err
}

func (w *writer) loop() {
	defer w.done.Done()
	group := make([]*writeOp, 0, maxGroup)
	for {
		select {
		case op := <-w.ops:
			group = append(group[:0], op)
		case <-w.quit:
			return
		}
	collect:
		for len(group) < maxGroup {
			select {
			case op := <-w.ops:
				group = append(group, op)
			default:
				break collect
			}
		}
		w.commit(group)
		for _, op := range group {
			close(op.done)
		}
	}
}

func (w *writer) commit(group []*writeOp) {
	fail := func(err error) {
		for _, op := range group {
			if op.err == nil {
				op.err = err
			}
		}
	}
	// Not the callers' contexts: one caller giving up must not roll back the others.
	ctx := context.Background()
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		fail(fmt.Errorf("begin: %w", err))
		return
	}
	defer tx.Rollback()
	for _, op := range group {
		if err := op.ctx.Err(); err != nil { // its caller gave up before it started
			op.err = err
			continue
		}
		if _, err := tx.ExecContext(ctx, `SAVEPOINT op`); err != nil {
			fail(fmt.Errorf("savepoint: %w", err))
			return
		}
		// fn gets ctx, not op.ctx: cancelling a statement interrupts the connection, and an
		// interrupted write rolls back the whole transaction, every operation of the group.
		if op.err = driver.RunOp(ctx, tx, op.fn); op.err != nil {
			if _, err := tx.ExecContext(ctx, `ROLLBACK TO op`); err != nil {
				fail(fmt.Errorf("rollback to savepoint: %w", err))
				return
			}
		}
		// If an error made SQLite roll back the whole transaction, the savepoint is gone and
		// this fails: then every operation of the group fails, none half-done.
		if _, err := tx.ExecContext(ctx, `RELEASE op`); err != nil {
			fail(fmt.Errorf("release savepoint: %w", err))
			return
		}
	}
	start := time.Now()
	if err := tx.Commit(); err != nil {
		fail(fmt.Errorf("commit: %w", err))
		return
	}
	w.commits.Committed(time.Since(start))
}

// close stops the writer after the group in progress; later writes get ErrClosed.
func (w *writer) close() {
	w.once.Do(func() { close(w.quit) })
	w.done.Wait()
}

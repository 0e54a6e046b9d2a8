package mail

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"time"

	"market/store"
)

// Options tune a Worker; zero fields take the defaults their comments name.
type Options struct {
	// Poll is how often the outbox is read when nothing rings (default 2 s): mails another
	// instance queued, and retries that came due.
	Poll time.Duration
	// Lease is how long a claim lasts (default 2 minutes): well past a send's timeouts.
	Lease time.Duration
	// Backoff is the wait before the second attempt (default 30 s); it doubles at each
	// attempt, up to an hour.
	Backoff time.Duration
	// Batch is how many mails one claim takes (default 20), sent over one connection.
	Batch int
	// SendTimeout bounds one batch's delivery (default 60 s, and at most half the lease): the
	// mails it leaves are not tried, and go back to the outbox for the next claim.
	SendTimeout time.Duration
	// DBTimeout bounds each of the worker's calls to the database (default 10 s, and at most a
	// quarter of the lease): its claim, and the record of its batch's fates.
	DBTimeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Worker sends the outbox's mails: one per instance.
type Worker struct {
	store  *store.Store
	sender Sender
	logger *slog.Logger
	opts   Options
	owner  string // this worker's name in the claims
	wake   chan struct{}
}

// NewWorker is a worker sending st's outbox through sender.
func NewWorker(st *store.Store, sender Sender, logger *slog.Logger, opts Options) *Worker {
	opts.Poll = cmp.Or(opts.Poll, 2*time.Second)
	opts.Lease = cmp.Or(opts.Lease, 2*time.Minute)
	opts.Backoff = cmp.Or(opts.Backoff, 30*time.Second)
	opts.Batch = cmp.Or(opts.Batch, 20)
	opts.SendTimeout = min(cmp.Or(opts.SendTimeout, time.Minute), opts.Lease/2)
	// A claim, its batch and its records fit in the lease: SendTimeout half of it, the two
	// database calls a quarter each at most.
	opts.DBTimeout = min(cmp.Or(opts.DBTimeout, 10*time.Second), opts.Lease/4)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	b := make([]byte, 8)
	rand.Read(b)
	return &Worker{store: st, sender: sender, logger: logger, opts: opts, owner: hex.EncodeToString(b), wake: make(chan struct{}, 1)}
}

// Wake tells the worker a mail was queued: it looks at once instead of at its next poll.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run sends mails until ctx ends. A batch being sent when it ends stops before its next mail:
// the mail on its way is finished, every fate recorded and the mails left given back, so that a
// shutdown sends nothing twice and waits for one mail at most.
func (w *Worker) Run(ctx context.Context) {
	tick := time.NewTicker(w.opts.Poll)
	defer tick.Stop()
	for {
		for ctx.Err() == nil {
			n, err := w.RunOnce(ctx)
			if err != nil {
				w.logger.Warn("mail outbox", "err", err)
				break
			}
			if n < w.opts.Batch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-w.wake:
		}
	}
}

// RunOnce claims one batch of due mails, sends it until its SendTimeout or ctx ends, and records
// each mail's fate. It returns how many mails it claimed.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	dbCtx, cancel := w.dbContext(ctx)
	mails, err := w.store.ClaimMails(dbCtx, w.owner, w.opts.Now(), w.opts.Lease, w.opts.Batch)
	cancel()
	if err != nil || len(mails) == 0 {
		return 0, err
	}
	sendCtx, cancel := context.WithTimeout(ctx, w.opts.SendTimeout)
	results := w.sender.Send(sendCtx, mails)
	cancel()
	now := w.opts.Now()
	dbCtx, cancel = w.dbContext(ctx)
	defer cancel()
	var errs []error
	for i, m := range mails {
		errs = append(errs, w.record(dbCtx, m, results[i], now))
	}
	return len(mails), errors.Join(errs...)
}

// dbContext is the context of one of the worker's database calls: it does not end with ctx
// (a claim is recorded, whatever happens to the batch), but within DBTimeout: on a hung
// database the call gives up (its transaction rolled back), and its claim is taken again when
// its lease ends, or its mail sent again.
func (w *Worker) dbContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), w.opts.DBTimeout)
}

// record marks m sent (fate nil), gives it back untried, or marks it due again after its
// backoff, or failed for good: after store.MailAttempts attempts, or at a permanent refusal.
func (w *Worker) record(ctx context.Context, m store.Mail, fate error, now time.Time) error {
	switch {
	case fate == nil:
		w.logger.Info("mail sent", "id", m.ID, "subject", m.Subject)
		return w.store.MailSent(ctx, m.ID, now)
	case errors.Is(fate, ErrNotTried):
		return w.store.ReleaseMail(ctx, m.ID, w.owner)
	}
	final := m.Attempts >= store.MailAttempts || errors.Is(fate, ErrPermanent)
	retry := now.Add(w.backoff(m.Attempts))
	if final {
		retry = now // when it failed
	}
	w.logger.Warn("mail not sent", "id", m.ID, "attempt", m.Attempts, "final", final, "err", fate)
	return w.store.MailNotSent(ctx, m.ID, w.owner, fate.Error(), retry, final)
}

// backoff is the wait after the given attempt: Backoff, doubled at each attempt, up to an hour.
func (w *Worker) backoff(attempt int) time.Duration {
	d := w.opts.Backoff
	for i := 1; i < attempt && d < time.Hour; i++ {
		d *= 2
	}
	return min(d, time.Hour)
}

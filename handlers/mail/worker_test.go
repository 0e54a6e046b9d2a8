package mail_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/mail"
	"strings"
	"testing"
	"time"

	sender "market/handlers/mail"
	"market/handlers/mail/mailtest"
	"market/store"
	"market/store/storetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fast are worker options for tests: a short poll and backoff.
var fast = sender.Options{Poll: 20 * time.Millisecond, Backoff: 20 * time.Millisecond, Lease: 5 * time.Second}

// newWorker is a worker sending st's outbox through the server; the test runs it.
func newWorker(t *testing.T, st *store.Store, srv *mailtest.Server, opts sender.Options) *sender.Worker {
	t.Helper()
	from, _ := mail.ParseAddress("Market <market@example.com>")
	smtp, err := sender.NewSMTP(srv.URL(), from)
	if err != nil {
		t.Fatal(err)
	}
	return sender.NewWorker(st, smtp, quiet, opts)
}

// startWorker runs a worker on st through the server until the test ends.
func startWorker(t *testing.T, st *store.Store, srv *mailtest.Server, opts sender.Options) *sender.Worker {
	t.Helper()
	w := newWorker(t, st, srv, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

// enqueue queues n mails to name-i@example.com, each carrying a secret in its link.
func enqueue(t *testing.T, st *store.Store, name string, n int) {
	t.Helper()
	for i := range n {
		secret := fmt.Sprintf("secret-%s-%d", name, i)
		m := store.Mail{To: fmt.Sprintf("%s-%d@example.com", name, i), Subject: "Hello " + name,
			Text: "Follow http://market.test/l/" + secret + "\n", HTML: `<p><a href="http://market.test/l/` + secret + `">go</a></p>`, Secret: secret}
		if err := st.EnqueueMail(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
}

// waitStates waits up to 10 s until ok holds of the outbox.
func waitStates(t *testing.T, st *store.Store, what string, ok func([]store.Mail) bool) []store.Mail {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mails, err := st.Mails(context.Background(), 1000)
		if err != nil {
			t.Fatal(err)
		}
		if ok(mails) {
			return mails
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox never %s: %+v", what, mails)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func allSent(mails []store.Mail) bool {
	for _, m := range mails {
		if m.State != store.MailSent {
			return false
		}
	}
	return len(mails) > 0
}

// onceEach checks that every mail arrived exactly once: one message per Message-ID and per
// recipient, n in all.
func onceEach(t *testing.T, got []mailtest.Message, n int) {
	t.Helper()
	ids, to := map[string]int{}, map[string]int{}
	for _, m := range got {
		ids[m.MessageID]++
		to[m.To]++
	}
	if len(got) != n || len(ids) != n || len(to) != n {
		t.Errorf("%d messages, %d Message-IDs, %d recipients; want %d of each", len(got), len(ids), len(to), n)
	}
}

func checkClean(t *testing.T, st *store.Store) {
	t.Helper()
	problems, err := st.Check(context.Background())
	if err != nil || len(problems) > 0 {
		t.Errorf("check: %v %v", problems, err)
	}
}

func TestWorkerDelivers(t *testing.T) {
	st := storetest.Open(t)
	srv := mailtest.Start(t)
	enqueue(t, st, "ann", 3)
	startWorker(t, st, srv, fast)
	got := srv.WaitTo(t, "ann-1@example.com", 1, 10*time.Second)[0]
	if !strings.Contains(got.Text, "http://market.test/l/secret-ann-1") || !strings.Contains(got.HTML, `href="http://market.test/l/secret-ann-1"`) {
		t.Errorf("text %q html %q: want the link in both", got.Text, got.HTML)
	}
	if got.Subject != "Hello ann" || got.FromHdr != `"Market" <market@example.com>` || got.Date == "" ||
		!strings.HasPrefix(got.MessageID, "<market-") || !strings.HasSuffix(got.MessageID, "@example.com>") {
		t.Errorf("headers: subject %q from %q date %q message-id %q", got.Subject, got.FromHdr, got.Date, got.MessageID)
	}
	mails := waitStates(t, st, "all sent", allSent)
	srvGot, _ := srv.Wait(time.Second, func(m []mailtest.Message) bool { return len(m) == 3 })
	onceEach(t, srvGot, 3)
	for _, m := range mails {
		if m.Attempts != 1 || m.Sent.IsZero() {
			t.Errorf("mail %d: %d attempts, sent %v", m.ID, m.Attempts, m.Sent)
		}
	}
	var kept int
	if err := st.DB().QueryRow(`SELECT count(*) FROM mails WHERE body_text LIKE '%secret-%' OR body_html LIKE '%secret-%' OR secret <> ''`).Scan(&kept); err != nil || kept != 0 {
		t.Errorf("%d sent mails still hold their token (%v)", kept, err)
	}
	checkClean(t, st)
}

// The server down for a while: the mails wait, are tried again with backoff, and arrive once
// each when it is back.
func TestWorkerServerDown(t *testing.T) {
	st := storetest.Open(t)
	srv := mailtest.Start(t)
	srv.Down()
	enqueue(t, st, "bob", 5)
	startWorker(t, st, srv, fast)
	waitStates(t, st, "tried twice", func(mails []store.Mail) bool {
		for _, m := range mails {
			if m.Attempts < 2 || m.State != store.MailQueued || m.LastError == "" {
				return false
			}
		}
		return len(mails) == 5
	})
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d messages while the server was down", n)
	}
	srv.Up()
	waitStates(t, st, "all sent", allSent)
	got, _ := srv.Wait(time.Second, func(m []mailtest.Message) bool { return len(m) == 5 })
	onceEach(t, got, 5)
	checkClean(t, st)
}

// A server that refuses (451) for a while: the mail is tried again until it is accepted.
func TestWorkerRefused(t *testing.T) {
	st := storetest.Open(t)
	srv := mailtest.Start(t)
	srv.Refuse(2)
	enqueue(t, st, "cat", 1)
	startWorker(t, st, srv, fast)
	mails := waitStates(t, st, "sent", allSent)
	if mails[0].Attempts != 3 || !strings.Contains(mails[0].LastError, "451") {
		t.Errorf("attempts %d, last error %q: want 3, a 451", mails[0].Attempts, mails[0].LastError)
	}
	onceEach(t, srv.Messages(), 1)
}

// After MailAttempts attempts a mail fails for good; an operator's retry queues it again.
func TestWorkerFailsThenRetry(t *testing.T) {
	st := storetest.Open(t)
	srv := mailtest.Start(t)
	srv.Down()
	enqueue(t, st, "dan", 1)
	opts := fast
	opts.Backoff = time.Millisecond
	w := startWorker(t, st, srv, opts)
	mails := waitStates(t, st, "failed", func(m []store.Mail) bool { return len(m) == 1 && m[0].State == store.MailFailed })
	if mails[0].Attempts != store.MailAttempts {
		t.Errorf("failed after %d attempts, want %d", mails[0].Attempts, store.MailAttempts)
	}
	checkClean(t, st)
	srv.Up()
	if _, err := st.RetryMail(context.Background(), mails[0].ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RetryMail(context.Background(), mails[0].ID, time.Now()); err != store.ErrNotFound {
		t.Errorf("retry of a queued mail: %v, want ErrNotFound", err)
	}
	w.Wake()
	waitStates(t, st, "sent", allSent)
	onceEach(t, srv.Messages(), 1)
}

// A mail that cannot be built (its address is not one) fails alone, for good, at its first
// attempt; the others of its batch are sent.
func TestWorkerUnbuildableMailFailsAlone(t *testing.T) {
	st := storetest.Open(t)
	srv := mailtest.Start(t)
	enqueue(t, st, "ida", 1)
	if err := st.EnqueueMail(context.Background(), store.Mail{To: "not an address", Subject: "s", Text: "t", HTML: "h"}); err != nil {
		t.Fatal(err)
	}
	enqueue(t, st, "joe", 1)
	startWorker(t, st, srv, fast)
	mails := waitStates(t, st, "settled", func(mails []store.Mail) bool {
		for _, m := range mails {
			if m.State == store.MailQueued {
				return false
			}
		}
		return true
	})
	for _, m := range mails {
		want := store.MailSent
		if m.To == "not an address" {
			want = store.MailFailed
		}
		if m.State != want || m.Attempts != 1 {
			t.Errorf("mail to %q: %s after %d attempts (%s), want %s after 1", m.To, m.State, m.Attempts, m.LastError, want)
		}
	}
	onceEach(t, srv.Messages(), 2)
	checkClean(t, st)
}

// The server hangs up at QUIT, or at the RSET after a mail: every mail it accepted counts as
// sent, at the attempt that sent it, and arrives once.
func TestWorkerAcceptedDespiteHangUp(t *testing.T) {
	for _, command := range []string{"QUIT", "RSET"} {
		t.Run(command, func(t *testing.T) {
			st := storetest.Open(t)
			srv := mailtest.Start(t)
			srv.HangUpAt(command)
			enqueue(t, st, "kim", 3)
			startWorker(t, st, srv, fast)
			mails := waitStates(t, st, "all sent", allSent)
			got, _ := srv.Wait(time.Second, func(m []mailtest.Message) bool { return len(m) > 3 })
			onceEach(t, got, 3)
			if command == "QUIT" {
				for _, m := range mails {
					if m.Attempts != 1 {
						t.Errorf("mail %d: sent after %d attempts, want 1", m.ID, m.Attempts)
					}
				}
			}
			checkClean(t, st)
		})
	}
}

// A batch on a slow server ends within its SendTimeout: the mails that did not get their turn
// go back to the outbox untried (no attempt counted, claimable at once), and are sent later.
func TestWorkerBatchEndsInTime(t *testing.T) {
	st := storetest.Open(t)
	srv := mailtest.Start(t)
	srv.Delay(200 * time.Millisecond)
	enqueue(t, st, "lee", 20)
	opts := fast
	opts.SendTimeout = time.Second
	w := newWorker(t, st, srv, opts)
	start := time.Now()
	if n, err := w.RunOnce(context.Background()); n != 20 || err != nil {
		t.Fatalf("one batch: %d mails, %v", n, err)
	}
	// 20 mails at 200 ms each would take 4 s.
	if took := time.Since(start); took > opts.SendTimeout+time.Second {
		t.Errorf("the batch took %v, over its SendTimeout of %v", took, opts.SendTimeout)
	}
	mails, err := st.Mails(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var sent, untried, cut int
	for _, m := range mails {
		switch {
		case m.State == store.MailSent && m.Attempts == 1:
			sent++
		case m.State == store.MailQueued && m.Attempts == 0 && m.LastError == "":
			untried++
		case m.State == store.MailQueued && m.Attempts == 1:
			cut++ // the one on its way at the deadline
		default:
			t.Errorf("mail %d: %s after %d attempts (%s)", m.ID, m.State, m.Attempts, m.LastError)
		}
	}
	if sent == 0 || untried < 10 || cut > 1 {
		t.Errorf("%d sent, %d untried, %d cut short: want some sent, most untried, at most one cut", sent, untried, cut)
	}
	claimed, err := st.ClaimMails(context.Background(), "next", time.Now(), time.Millisecond, 20)
	if err != nil || len(claimed) < untried {
		t.Errorf("the next claim took %d mails (%v), want the %d untried at least", len(claimed), err, untried)
	}
	srv.Delay(0)
	startWorker(t, st, srv, fast)
	waitStates(t, st, "all sent", func(m []store.Mail) bool { return len(m) == 20 && allSent(m) })
	checkClean(t, st)
}

// within reports whether fn returns within d; it is left running if not.
func within(d time.Duration, fn func()) bool {
	done := make(chan struct{})
	go func() { fn(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// A database that hangs (on PostgreSQL, the outbox locked by another transaction: its
// statements wait without end) holds the worker no longer than its DBTimeout: a claim gives
// up, and the worker stops when asked. Once the database answers, every mail is sent once.
func TestWorkerHungDatabase(t *testing.T) {
	st := storetest.OpenOn(t, storetest.PostgreSQL)
	srv := mailtest.Start(t)
	enqueue(t, st, "max", 2)
	ctx := context.Background()
	lock, err := st.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	for _, q := range []string{"BEGIN", "LOCK TABLE mails IN ACCESS EXCLUSIVE MODE"} {
		if _, err := lock.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	release := func() { lock.ExecContext(ctx, "ROLLBACK") }
	defer release()

	opts := fast
	opts.DBTimeout = 300 * time.Millisecond
	w := newWorker(t, st, srv, opts)
	bound := opts.DBTimeout + 2*time.Second // and a margin for a loaded machine
	// waiting counts the statements that wait for the lock.
	waiting := func() (n int) {
		st.DB().QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
		return n
	}
	var runErr error
	if !within(bound, func() { _, runErr = w.RunOnce(ctx) }) {
		t.Errorf("a batch on a hung database took over %v", bound)
	} else if runErr == nil {
		t.Error("a batch on a hung database: no error")
	}
	// A second batch gives up as the first did, and the statements given up end: a hung
	// database gathers no claims waiting for it.
	if !within(bound, func() { _, runErr = w.RunOnce(ctx) }) || runErr == nil {
		t.Errorf("a second batch on a hung database: %v, want an error within %v", runErr, bound)
	}
	storetest.WaitFor(t, func() bool { return waiting() == 0 })
	const before = 0

	// A worker stops while its claim waits for the lock.
	w = newWorker(t, st, srv, opts)
	runCtx, stop := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() { w.Run(runCtx); close(stopped) }()
	storetest.WaitFor(t, func() bool { return waiting() > before })
	if !within(bound, func() { stop(); <-stopped }) {
		t.Errorf("the worker on a hung database did not stop within %v", bound)
	}
	release()
	startWorker(t, st, srv, fast)
	waitStates(t, st, "all sent", allSent)
	onceEach(t, srv.Messages(), 2)
}

// A connection that drops after its first mail (the server hangs up at RSET): the mail after
// it meets the dropped connection and counts an attempt; the ones after that were never
// offered to the server, and count none.
func TestWorkerConnectionLostMidBatch(t *testing.T) {
	st := storetest.Open(t)
	srv := mailtest.Start(t)
	srv.HangUpAt("RSET")
	enqueue(t, st, "lea", 4)
	w := newWorker(t, st, srv, fast)
	if n, err := w.RunOnce(context.Background()); n != 4 {
		t.Fatalf("one batch claimed %d mails (%v), want 4", n, err)
	}
	mails, err := st.Mails(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	var sent, tried, untried int
	for _, m := range mails {
		switch {
		case m.State == store.MailSent:
			sent++
		case m.Attempts == 1:
			tried++
		case m.Attempts == 0 && m.State == store.MailQueued:
			untried++
		}
	}
	if sent != 1 || tried != 1 || untried != 2 {
		t.Errorf("after a connection lost after its first mail: %d sent, %d tried, %d untried; want 1, 1, 2", sent, tried, untried)
	}
}

package mail_test

import (
	"context"
	"testing"
	"time"

	"market/handlers/mail/mailtest"
	"market/store"
	"market/store/storetest"
)

// Two instances on one database, each with its worker: every mail is sent once (on each engine:
// PostgreSQL's claims skip the rows another instance holds, SQLite's writers take turns).
func TestTwoInstancesSendOnce(t *testing.T) { storetest.Each(t, testTwoInstancesSendOnce) }

func testTwoInstancesSendOnce(t *testing.T) {
	url := storetest.URL(t)
	a, b := storetest.OpenAt(t, url), storetest.OpenAt(t, url)
	srv := mailtest.Start(t)
	opts := fast
	opts.Batch = 3
	startWorker(t, a, srv, opts)
	startWorker(t, b, srv, opts)
	enqueue(t, a, "eve", 20)
	enqueue(t, b, "fay", 20)
	waitStates(t, a, "all sent", func(m []store.Mail) bool { return len(m) == 40 && allSent(m) })
	got, _ := srv.Wait(time.Second, func(m []mailtest.Message) bool { return len(m) >= 40 })
	onceEach(t, got, 40)
	checkClean(t, a)
}

// A restart with mails queued, two of them claimed by the instance that stopped (as if it died
// while sending): the new instance sends them all, the claimed ones once their lease is over.
func TestRestartWithQueued(t *testing.T) { storetest.Each(t, testRestartWithQueued) }

func testRestartWithQueued(t *testing.T) {
	url := storetest.URL(t)
	srv := mailtest.Start(t)
	old := storetest.OpenAt(t, url)
	enqueue(t, old, "gus", 4)
	claimed, err := old.ClaimMails(context.Background(), "dead", time.Now(), 300*time.Millisecond, 2)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claim: %d mails, %v", len(claimed), err)
	}
	old.Close()

	st := storetest.OpenAt(t, url)
	startWorker(t, st, srv, fast)
	mails := waitStates(t, st, "all sent", allSent)
	onceEach(t, srv.Messages(), 4)
	for _, m := range mails {
		want := 1
		if m.ID == claimed[0].ID || m.ID == claimed[1].ID {
			want = 2 // the dead instance's attempt counts
		}
		if m.Attempts != want {
			t.Errorf("mail %d: %d attempts, want %d", m.ID, m.Attempts, want)
		}
	}
	checkClean(t, st)
}

package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"market/store"
	"market/store/storetest"
)

// A confirm link that cannot be used (unknown, used, expired, or of another purpose) is found
// so by a read: it is answered while another holds the writer, and a thousand of them commit
// nothing. A live link still confirms.
func TestConfirmBadLinkWritesNothing(t *testing.T) {
	storetest.Each(t, testConfirmBadLinkWritesNothing)
}

func testConfirmBadLinkWritesNothing(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	u := storetest.CreateUser(t, st, "ann")
	now := time.Now()
	issue := func(secret, purpose string, expires time.Time) {
		t.Helper()
		tok := store.Token{Hash: store.TokenHash(secret), Purpose: purpose, Email: u.Email, Expires: expires}
		if err := st.IssueToken(ctx, u.ID, tok); err != nil {
			t.Fatal(err)
		}
	}
	issue("live", store.TokenConfirm, now.Add(time.Hour))
	issue("used", store.TokenConfirm, now.Add(time.Hour))
	issue("expired", store.TokenConfirm, now.Add(-time.Second))
	issue("reset", store.TokenReset, now.Add(time.Hour))
	if _, _, err := st.ConfirmEmail(ctx, store.TokenHash("used"), now); err != nil {
		t.Fatal(err)
	}
	bad := []string{"unknown", "used", "expired", "reset"}

	release := storetest.HoldWriter(t, st, "mail_tokens")
	for _, secret := range bad {
		done := make(chan error, 1)
		go func() {
			_, _, err := st.ConfirmEmail(ctx, store.TokenHash(secret), now)
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, store.ErrTokenInvalid) {
				t.Errorf("%s link: %v, want ErrTokenInvalid", secret, err)
			}
		case <-time.After(3 * time.Second):
			t.Errorf("%s link: no answer in 3 s while another holds the writer: it waits for a write", secret)
		}
	}
	release()

	var commits atomic.Int64
	st.OnCommit(func(time.Duration) { commits.Add(1) })
	for i := range 1000 {
		if _, _, err := st.ConfirmEmail(ctx, store.TokenHash(bad[i%len(bad)]), now); !errors.Is(err, store.ErrTokenInvalid) {
			t.Fatalf("%s link: %v", bad[i%len(bad)], err)
		}
	}
	if n := commits.Load(); n != 0 {
		t.Errorf("1,000 bad links committed %d writes, want none", n)
	}
	got, purpose, err := st.ConfirmEmail(ctx, store.TokenHash("live"), now)
	if err != nil || purpose != store.TokenConfirm || !got.EmailConfirmed || commits.Load() != 1 {
		t.Errorf("the live link: %+v %q %v, %d commits; want confirmed by one", got, purpose, err, commits.Load())
	}
}

// Every read of an account says whether its address is confirmed: logging in, the lists, the
// operator's writes.
func TestEveryUserReadKnowsTheAddressIsConfirmed(t *testing.T) {
	storetest.Each(t, testEveryUserReadKnowsTheAddressIsConfirmed)
}

func testEveryUserReadKnowsTheAddressIsConfirmed(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	u := storetest.CreateUser(t, st, "ann")
	now := time.Now()
	tok := store.Token{Hash: store.TokenHash("s"), Purpose: store.TokenConfirm, Email: u.Email, Expires: now.Add(time.Hour)}
	if err := st.IssueToken(ctx, u.ID, tok); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.ConfirmEmail(ctx, tok.Hash, now); err != nil {
		t.Fatal(err)
	}
	read := map[string]func() (store.User, error){
		"User": func() (store.User, error) { return st.User(ctx, u.ID) },
		"Authenticate": func() (store.User, error) {
			return st.Authenticate(ctx, "ann", "correct horse")
		},
		"Users": func() (store.User, error) {
			all, err := st.Users(ctx)
			if err != nil || len(all) != 1 {
				return store.User{}, fmt.Errorf("%d users: %w", len(all), err)
			}
			return all[0], nil
		},
	}
	for name, fn := range read {
		if got, err := fn(); err != nil || !got.EmailConfirmed {
			t.Errorf("%s: %+v %v, want the address confirmed", name, got, err)
		}
	}
}

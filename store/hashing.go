package store

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// ErrBusy says every password-hashing slot stayed taken for the whole wait. The caller answers
// 503 with Retry-After; nothing was changed.
var ErrBusy = errors.New("store: busy hashing passwords")

// hashSlots bounds the bcrypt work of one instance. A hash takes a core for a quarter of a
// second at cost 12, so more hashes at once than cores only make each of them slower, and a
// flood of sign-ups or logins would queue without bound and starve every other request.
type hashSlots struct {
	slots chan struct{}
	wait  time.Duration // how long a request waits for a slot before ErrBusy
	done  atomic.Int64  // hashes run, for tests and the abuse checks
}

func newHashSlots(n int, wait time.Duration) *hashSlots {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	if wait <= 0 {
		wait = 2 * time.Second
	}
	return &hashSlots{slots: make(chan struct{}, n), wait: wait}
}

// do runs fn in a slot, waiting for one at most h.wait (or until ctx ends).
func (h *hashSlots) do(ctx context.Context, fn func()) error {
	select {
	case h.slots <- struct{}{}:
	default:
		t := time.NewTimer(h.wait)
		defer t.Stop()
		select {
		case h.slots <- struct{}{}:
		case <-t.C:
			return ErrBusy
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer func() { <-h.slots }()
	fn()
	h.done.Add(1)
	return nil
}

// HashesInFlight is how many password hashes are running now.
func (s *Store) HashesInFlight() int { return len(s.hashes.slots) }

// HashesDone is how many password hashes (made or compared) the store has run.
func (s *Store) HashesDone() int64 { return s.hashes.done.Load() }

// hashPassword is bcrypt's hash of password, in a hashing slot.
func (s *Store) hashPassword(ctx context.Context, password string) ([]byte, error) {
	var (
		hash []byte
		err  error
	)
	if serr := s.hashes.do(ctx, func() { hash, err = bcrypt.GenerateFromPassword([]byte(password), s.cost) }); serr != nil {
		return nil, serr
	}
	return hash, err
}

// passwordMatches compares password with hash in a hashing slot; a slot not found in time is
// the error, a wrong password is false.
func (s *Store) passwordMatches(ctx context.Context, hash []byte, password string) (bool, error) {
	var err error
	if serr := s.hashes.do(ctx, func() { err = bcrypt.CompareHashAndPassword(hash, []byte(password)) }); serr != nil {
		return false, serr
	}
	return err == nil, nil
}

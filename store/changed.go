package store

import (
	"context"
	"sync"
	"time"
)

// Changed returns a channel that is closed when the market version moves, by a change made in
// this process or any other (on PostgreSQL, in any instance). Call it again after each wake-up
// for the next change, and read Version then: a wake-up may also mean that changes may have been
// missed (the listener reconnected), never that nothing changed when something did.
//
// Merge note: the SQLite side is a plain poll of the version here; issue 11 brings its own.
// Keep the PostgreSQL line first.
func (s *Store) Changed() <-chan struct{} {
	if s.pg != nil {
		return s.pg.changedChan()
	}
	return s.pollChanged()
}

var polls sync.Map // *Store -> *versionPoll

type versionPoll struct {
	once sync.Once
	mu   sync.Mutex
	ch   chan struct{}
}

// pollChanged watches the SQLite version every 100 ms, from the first call until Close.
func (s *Store) pollChanged() <-chan struct{} {
	v, _ := polls.LoadOrStore(s, &versionPoll{ch: make(chan struct{})})
	p := v.(*versionPoll)
	p.once.Do(func() {
		go func() {
			last, _ := s.Version(context.Background())
			for {
				time.Sleep(100 * time.Millisecond)
				now, err := s.Version(context.Background())
				if err != nil && s.writerClosed() {
					polls.Delete(s)
					return
				}
				if err == nil && now != last {
					last = now
					p.mu.Lock()
					close(p.ch)
					p.ch = make(chan struct{})
					p.mu.Unlock()
				}
			}
		}()
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ch
}

func (s *Store) writerClosed() bool {
	w, ok := s.writer.(*writer)
	if !ok {
		return true
	}
	select {
	case <-w.quit:
		return true
	default:
		return false
	}
}

package store

import (
	"context"
	"sync"
)

// names remembers the name of every item the store has read, so that an answer about an item
// can name it when the database cannot be asked: a trade whose commit was cut off is answered
// from here, never by asking the database that just failed. It holds one string per item of
// the catalogue at most.
type names struct{ m sync.Map }

func (n *names) remember(items ...Item) {
	for _, it := range items {
		if old, ok := n.m.Load(it.ID); !ok || old.(string) != it.Name {
			n.m.Store(it.ID, it.Name)
		}
	}
}

func (n *names) of(id int64) (string, bool) {
	v, ok := n.m.Load(id)
	if !ok {
		return "", false
	}
	return v.(string), true
}

// nameBeforeTrade makes sure the name of the item about to be traded is known, reading it
// when this process has not yet (a page rendered by another instance, or before a restart).
// A failure here is not the trade's: the trade goes on and meets the database itself.
func (s *Store) nameBeforeTrade(ctx context.Context, itemID int64) {
	if _, ok := s.names.of(itemID); !ok {
		s.Item(ctx, itemID) // remembers the name it reads
	}
}

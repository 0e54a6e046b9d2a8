package live

import (
	"context"
	"errors"
	"slices"
	"time"

	"market/store"
)

// The caps on streams: a process serves at most Config.MaxStreams, at most Config.PerAddr
// from one address (refused past either), and Config.PerUser of one user: past it, the user's
// oldest stream closes. A closed stream counts until it has ended (its last write can wait for
// a client that does not read), so a user who opens streams faster than the closed
// ones end is refused at twice PerUser.

var (
	// ErrTooManyStreams refuses a stream past the process's cap.
	ErrTooManyStreams = errors.New("too many live streams on this server")
	// ErrTooManyFromAddr refuses a stream past the cap of its address.
	ErrTooManyFromAddr = errors.New("too many live streams from this address")
	// ErrTooManyForUser refuses a stream of a user whose closed streams have not ended yet.
	ErrTooManyForUser = errors.New("too many live streams for this user")
)

// Viewer is who a stream is for: the signed-in user, the address the request came from (as
// the rate limits count it), and the token of the session the stream was opened with.
type Viewer struct {
	User    int64
	Addr    string
	Session string
}

// subscribe adds a stream, unless a cap refuses it. A user over the limit loses their oldest
// stream: at once beyond one over, else after evictGrace (a search opens its page's new stream
// before the old one is seen to close, and that one should go, not another tab's).
func (b *Broker) subscribe(ctx context.Context, who Viewer, q store.MarketQuery) (*subscription, error) {
	if err := b.start(ctx); err != nil {
		return nil, err
	}
	// Held by its opener (running) until its first event is out.
	s := &subscription{b: b, who: who, query: q, due: time.Now().Add(b.cfg.Ping), running: true}
	limit := b.cfg.PerUser
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.stopped(): // checked under mu: Stop ends every stream it finds there
		return nil, ErrStopped
	case b.cfg.MaxStreams > 0 && b.open >= b.cfg.MaxStreams:
		return nil, ErrTooManyStreams
	case b.cfg.PerAddr > 0 && b.byAddr[who.Addr] >= b.cfg.PerAddr:
		return nil, ErrTooManyFromAddr
	case b.byUser[who.User] >= 2*limit:
		return nil, ErrTooManyForUser
	}
	b.open++
	b.all[s] = true
	b.byAddr[who.Addr]++
	b.byUser[who.User]++
	b.byQuery[q]++
	b.streams[who.User] = append(b.streams[who.User], s)
	b.wheel.add(s)
	b.trim(who.User, limit+1)
	if len(b.streams[who.User]) > limit {
		time.AfterFunc(evictGrace, func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.trim(who.User, limit)
		})
	}
	return s, nil
}

// trim closes the user's oldest streams beyond keep; b.mu is held. They stay counted until
// they end (unsubscribe).
func (b *Broker) trim(user int64, keep int) {
	list := b.streams[user]
	for len(list) > keep {
		// The user opened a newer stream: this one ends, and says so, so that the page does
		// not reconnect and take the newer one's place in turn.
		list[0].end("another tab follows the market")
		b.wheel.remove(list[0])
		list = list[1:]
	}
	if len(list) > 0 {
		b.streams[user] = list
	}
}

func (b *Broker) unsubscribe(s *subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s.ended {
		return
	}
	s.ended = true
	b.open--
	b.wheel.remove(s)
	delete(b.all, s)
	addr, user := s.who.Addr, s.who.User
	if b.byAddr[addr]--; b.byAddr[addr] <= 0 {
		delete(b.byAddr, addr)
	}
	if b.byUser[user]--; b.byUser[user] <= 0 {
		delete(b.byUser, user)
	}
	if b.byQuery[s.query]--; b.byQuery[s.query] <= 0 {
		delete(b.byQuery, s.query)
	}
	list := slices.DeleteFunc(b.streams[user], func(o *subscription) bool { return o == s })
	if len(list) == 0 {
		delete(b.streams, user)
	} else {
		b.streams[user] = list
	}
}

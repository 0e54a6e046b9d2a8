package live

import (
	"context"
	"time"
)

// pings sends each stream a ping once it has gone Config.Ping without one, after asking in one
// call, for all the streams whose ping is due, whether their sessions still sign their viewers
// in: the streams due are looked for 16 times a ping, so a ping (and a logout's end) is at
// most a sixteenth of the interval late, and the checks of many streams share their reads.
func (b *Broker) pings() {
	tick := time.NewTicker(max(b.cfg.Ping/16, 5*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-b.quit:
			return
		case now := <-tick.C:
			b.pingDue(now)
		}
	}
}

// pingDue pings the streams whose ping is due at now, and ends those signed out.
func (b *Broker) pingDue(now time.Time) {
	due := b.due(now)
	if len(due) == 0 {
		return
	}
	who := make([]Viewer, len(due))
	for i, s := range due {
		who[i] = s.who
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	in := b.cfg.SignedIn(ctx, who)
	cancel()
	for i, s := range due {
		if in[i] {
			s.queuePing()
		} else {
			s.end("signed out")
		}
	}
}

// due is the streams whose ping is due at now; their next is one interval later.
func (b *Broker) due(now time.Time) []*subscription {
	b.mu.Lock()
	defer b.mu.Unlock()
	var due []*subscription
	for _, list := range b.streams {
		for _, s := range list {
			if !now.Before(s.due) {
				s.due = now.Add(b.cfg.Ping)
				due = append(due, s)
			}
		}
	}
	return due
}

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
	tick := time.NewTicker(b.wheel.slot)
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

// pingDue pings the streams whose ping is due at now, and ends those signed out. A check that
// answers for fewer streams than it was asked about (it failed) leaves the rest signed in.
func (b *Broker) pingDue(now time.Time) {
	b.mu.Lock()
	due := b.wheel.due(now, b.cfg.Ping)
	b.mu.Unlock()
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
		if i >= len(in) || in[i] {
			s.queuePing()
		} else {
			s.end("signed out")
		}
	}
}

// wheelSpokes is how many times a ping interval the pinger looks for the streams due.
const wheelSpokes = 16

// wheel holds the streams by when their next ping is due, so that finding the streams due
// costs what is due, not a visit of every stream 16 times an interval under the broker's lock
// (which every new stream and every trade's hand-out wait for). Time is cut into slots of a
// sixteenth of the interval, numbered from the epoch; a stream due at d waits on the spoke of
// the first slot that starts at or after d, and a spoke is looked at once its slot has begun.
// Its streams due a round later (new ones) stay on it. Guarded by the broker's mu.
type wheel struct {
	slot   time.Duration
	next   int64 // the number of the next slot to look at
	spokes [wheelSpokes][]*subscription
}

func newWheel(ping time.Duration) wheel {
	return wheel{slot: max(ping/wheelSpokes, 5*time.Millisecond)}
}

// add puts s on the spoke of its due time.
func (w *wheel) add(s *subscription) {
	s.spoke = w.spokeOf(s.due)
	w.spokes[s.spoke] = append(w.spokes[s.spoke], s)
	s.at = len(w.spokes[s.spoke])
}

// spokeOf is the spoke of the first slot that starts at or after t.
func (w *wheel) spokeOf(t time.Time) int {
	d, slot := t.UnixNano(), int64(w.slot)
	return int(((d + slot - 1) / slot) % wheelSpokes)
}

// remove takes s off the wheel, if it is on it.
func (w *wheel) remove(s *subscription) {
	if s.at == 0 {
		return
	}
	list := w.spokes[s.spoke]
	last := list[len(list)-1]
	list[s.at-1], last.at = last, s.at
	list[len(list)-1] = nil
	w.spokes[s.spoke] = list[:len(list)-1]
	s.at = 0
}

// due is the streams whose ping is due at now; their next is one interval later. It looks at
// every slot begun since the last call, the last round's at most (the pinger fell behind).
func (w *wheel) due(now time.Time, ping time.Duration) []*subscription {
	current := now.UnixNano() / int64(w.slot)
	var due, moved []*subscription
	for n := max(w.next, current-wheelSpokes+1); n <= current; n++ {
		i := int(n % wheelSpokes)
		list := w.spokes[i]
		if due == nil {
			due = make([]*subscription, 0, len(list))
		}
		// The streams that stay on the spoke keep its array, in the places already read.
		stay := list[:0]
		for _, s := range list {
			if !now.Before(s.due) {
				s.due = now.Add(ping)
				due = append(due, s)
			}
			if w.spokeOf(s.due) != i {
				moved = append(moved, s)
				continue
			}
			stay = append(stay, s)
			s.at = len(stay)
		}
		clear(list[len(stay):])
		w.spokes[i] = stay
	}
	for _, s := range moved {
		w.add(s)
	}
	w.next = current + 1
	return due
}

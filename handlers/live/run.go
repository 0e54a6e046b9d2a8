package live

import (
	"net"
	"runtime"
	"sync"
	"time"

	"market/store"
)

// subscription is one open stream: who it is for, what its page shows, what it has to write,
// and where (wire.go). Its writer is whichever goroutine holds running: a worker, the stream's
// own goroutine for a slow client, or the handler's where the connection stayed with net/http.
type subscription struct {
	b     *Broker
	who   Viewer
	query store.MarketQuery // normalized
	ended bool              // unsubscribed (guarded by the broker's mu)
	due   time.Time         // of the next ping (guarded by the broker's mu, as are spoke and at)
	spoke int               // of the ping wheel (ping.go) it waits on
	at    int               // its place on the spoke, plus one; 0: not on the wheel

	mu      sync.Mutex
	pending []*group // groups to write, oldest first
	ping    bool     // a ping to write
	bye     string   // why the stream ends, for the close event still to write
	leaving bool     // a close event was asked for: no other
	running bool     // a writer has the stream, or will
	done    bool     // ended: nothing more is written
	view    *view
	out     wire
	wakeUp  func() // wakes the stream's own writer, never blocking; nil: the broker's workers write
}

// maxPending is how many groups a stream may have waiting for its writer. A client that reads
// so slowly that more queue up would hold every group since (and their pages) for as long as
// it keeps its connection: its groups collapse instead into the newest as a refresh, which
// takes its page's rows whole, as a reconnect's replay would.
const maxPending = 64

// give queues a group for the stream, and reports whether the stream now waits for one of the
// broker's workers: the caller pushes it on the run queue (handOut pushes many at once).
func (s *subscription) give(g *group) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return false
	}
	if len(s.pending) >= maxPending {
		clear(s.pending)
		s.pending = append(s.pending[:0], g.asRefresh())
	} else {
		s.pending = append(s.pending, g)
	}
	return s.wake()
}

// queuePing asks for a ping.
func (s *subscription) queuePing() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ping = true
	s.kick()
}

// end asks the stream to say why it ends, then to end.
func (s *subscription) end(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.leaving {
		s.leaving, s.bye = true, reason
		s.kick()
	}
}

// kick hands the stream to a writer, unless one has it; s.mu is held.
func (s *subscription) kick() {
	if s.wake() {
		s.b.run.push(s)
	}
}

// wake marks the stream as taken by a writer, unless one has it, and reports whether it waits
// for one of the broker's workers; a stream with a writer of its own (wakeUp) is woken at once.
// s.mu is held.
func (s *subscription) wake() bool {
	if s.running || s.done {
		return false
	}
	s.running = true
	if s.wakeUp != nil {
		s.wakeUp()
		return false
	}
	return true
}

// batch is what a stream has to write at one time, in order.
type batch struct {
	groups []*group
	ping   bool
	bye    string // its close event's reason, when the stream ends after the batch
}

// next takes everything the stream has to write; ok is false when there is nothing, and the
// writer lets the stream go. Groups that queued while the stream waited for a writer go out
// together, in one write.
func (s *subscription) next() (b batch, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.done && (len(s.pending) > 0 || s.ping || s.bye != "") {
		b = batch{groups: s.pending, ping: s.ping, bye: s.bye}
		s.pending, s.ping, s.bye = nil, false, ""
		return b, true
	}
	s.running = false
	return batch{}, false
}

// work writes what the stream has to write until there is nothing left. A worker's (fast) takes
// what the socket takes at once, and a write that does not go out whole goes on in a goroutine
// of the stream's own; the others wait up to writeTimeout.
func (s *subscription) work(fast bool) {
	for {
		b, ok := s.next()
		if !ok {
			return
		}
		parts := make(net.Buffers, 0, len(b.groups)+2)
		for _, g := range b.groups {
			data, err := s.view.event(g, false)
			if err != nil {
				s.finish()
				return
			}
			if len(data) > 0 {
				parts = append(parts, data)
			}
		}
		if b.ping {
			parts = append(parts, pingLine)
		}
		last := b.bye != ""
		if last {
			parts = append(parts, closing(b.bye))
		}
		if len(parts) > 0 {
			var err error
			if fast {
				err = s.out.try(&parts)
			} else {
				err = s.out.send(&parts)
			}
			if err != nil {
				s.finish()
				return
			}
			if len(parts) > 0 {
				go s.slow(parts, last)
				return
			}
		}
		if last {
			s.finish()
			return
		}
	}
}

// slow finishes a write that a worker could not, then writes what came meanwhile.
func (s *subscription) slow(rest net.Buffers, last bool) {
	if err := s.out.send(&rest); err != nil || last {
		s.finish()
		return
	}
	s.work(false)
}

// finish ends the stream: its connection, and its place in the broker.
func (s *subscription) finish() {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return
	}
	s.done, s.pending = true, nil
	out := s.out
	s.mu.Unlock()
	if out != nil {
		out.hangUp()
	}
	s.b.unsubscribe(s)
}

// attach gives the stream its view and connection, and the way to wake its own writer (nil: it
// has none, the broker's workers write); the opener holds the stream (running) until it calls
// work.
func (s *subscription) attach(v *view, out wire, wakeUp func()) {
	s.mu.Lock()
	s.view, s.out, s.wakeUp = v, out, wakeUp
	done := s.done
	s.mu.Unlock()
	if done { // ended while it opened: finish found no connection to close
		out.hangUp()
	}
}

// runQueue is the streams waiting for a worker.
type runQueue struct {
	mu   sync.Mutex
	cond *sync.Cond
	list []*subscription
	quit bool
}

func newRunQueue() *runQueue {
	q := &runQueue{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *runQueue) push(s *subscription) {
	q.mu.Lock()
	q.list = append(q.list, s)
	q.mu.Unlock()
	q.cond.Signal()
}

// pushAll queues many streams at once, with one wake-up of the workers.
func (q *runQueue) pushAll(ss []*subscription) {
	if len(ss) == 0 {
		return
	}
	q.mu.Lock()
	q.list = append(q.list, ss...)
	q.mu.Unlock()
	q.cond.Broadcast()
}

// pop waits for a stream; nil once the queue is closed.
func (q *runQueue) pop() *subscription {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.list) == 0 && !q.quit {
		q.cond.Wait()
	}
	if q.quit {
		return nil
	}
	s := q.list[0]
	q.list[0] = nil
	if q.list = q.list[1:]; len(q.list) == 0 {
		q.list = nil
	}
	return s
}

func (q *runQueue) close() {
	q.mu.Lock()
	q.quit = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

// workers is how many goroutines write the streams' events: rendering is shared, and a write
// to a socket that takes it is a few microseconds, so a few per core.
func workers() int { return max(4, 2*runtime.GOMAXPROCS(0)) }

// yieldEvery is how many streams a worker writes before it lets the other goroutines run: the
// workers of a trade's hand-out to thousands of streams would otherwise hold every core for
// the scheduler's time slices (10 ms each), and the requests meanwhile (the trader's answer,
// pages) would wait for them.
const yieldEvery = 32

// work is one worker.
func (q *runQueue) work() {
	for n := 1; ; n++ {
		s := q.pop()
		if s == nil {
			return
		}
		s.work(true)
		if n%yieldEvery == 0 {
			runtime.Gosched()
		}
	}
}

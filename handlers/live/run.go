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
	kickTo  func(*subscription) // hands the stream to a writer; never blocks
}

// maxPending is how many groups a stream may have waiting for its writer. A client that reads
// so slowly that more queue up would hold every group since (and their pages) for as long as
// it keeps its connection: its groups collapse instead into the newest as a refresh, which
// takes its page's rows whole, as a reconnect's replay would.
const maxPending = 64

// give queues a group for the stream.
func (s *subscription) give(g *group) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	if len(s.pending) >= maxPending {
		clear(s.pending)
		s.pending = append(s.pending[:0], g.asRefresh())
	} else {
		s.pending = append(s.pending, g)
	}
	s.kick()
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
	if s.running || s.done {
		return
	}
	s.running = true
	s.kickTo(s)
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

// work writes what the stream has to write, each write waiting at most wait, until there is
// nothing left; a write that runs out of time goes on in a goroutine of the stream's own.
func (s *subscription) work(wait time.Duration) {
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
			err := s.out.send(&parts, wait)
			if err != nil && timedOut(err) && wait < writeTimeout {
				go s.slow(parts, last)
				return
			}
			if err != nil {
				s.finish()
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
	if err := s.out.send(&rest, writeTimeout); err != nil || last {
		s.finish()
		return
	}
	s.work(writeTimeout)
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

// attach gives the stream its view and connection, and the way to its writers; the opener
// holds the stream (running) until it calls work.
func (s *subscription) attach(v *view, out wire, kickTo func(*subscription)) {
	s.mu.Lock()
	s.view, s.out, s.kickTo = v, out, kickTo
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

// work is one worker.
func (q *runQueue) work() {
	for s := q.pop(); s != nil; s = q.pop() {
		s.work(fastWrite)
	}
}

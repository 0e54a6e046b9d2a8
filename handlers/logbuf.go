package handlers

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// logFlushEvery bounds how long a log line waits in memory: what a crash can lose.
const logFlushEvery = 100 * time.Millisecond

// BufferedLog batches log lines into few writes. One write(2) per request line cost almost half
// of a cached page's throughput under load; batched, the request log is nearly free. Lines are
// written out every logFlushEvery, when 64 KiB have gathered, and at Close.
type BufferedLog struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

// NewBufferedLog writes to w through the buffer; Close it to write out the rest.
func NewBufferedLog(w io.Writer) *BufferedLog {
	b := &BufferedLog{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go b.loop()
	return b
}

// Write adds p to the buffer; it reaches the writer within logFlushEvery.
func (b *BufferedLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Write(p)
}

func (b *BufferedLog) flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.w.Flush() // a log that cannot be written has nowhere to say so
}

func (b *BufferedLog) loop() {
	defer close(b.done)
	t := time.NewTicker(logFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			b.flush()
		case <-b.stop:
			b.flush()
			return
		}
	}
}

// Close writes out what is left and stops the flushing.
func (b *BufferedLog) Close() {
	close(b.stop)
	<-b.done
}

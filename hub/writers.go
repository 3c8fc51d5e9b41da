package hub

import (
	"runtime"
	"sync"
	"time"
)

// writers writes for every session of a hub. A few goroutines take the
// outboxes that have something queued, answers to requests before events,
// and write each one's queue with one write that never waits (internal/sock).
// A goroutine per busy session would make thousands runnable at each
// broadcast, and an answer would wait behind all of them; a few goroutines
// that fall behind instead put more events into each write.
//
// A writer that has worked for a round without running out of sessions,
// writing few events per write, pauses for as long: the events that arrive
// meanwhile go into the same writes as those already queued (fewer system
// calls per event, on both ends of the connection), and the CPU it leaves
// reads requests, which Go's scheduler polls for only when a CPU has nothing
// else to run. Under a heavy run of broadcasts this takes a third or more
// off the CPU per event and keeps answers within milliseconds, while events
// wait up to twice as long for their turn (bench/BENCHMARKS.md). Under light
// load a writer runs out of sessions within a round and never pauses; nor
// does it when its writes are full already.
type writers struct {
	mu      sync.Mutex
	urgent  fifo
	normal  fifo
	running int
	max     int
	opts    *Options // the send queues' limits
	// active counts the writers, the sockets' flushers and the error
	// reports they make: Shutdown waits for them. Not a sync.WaitGroup:
	// a flusher may requeue its session, starting a writer, while
	// Shutdown waits.
	active counter
}

func newWriters(opts *Options) *writers {
	n := opts.Writers
	if n <= 0 {
		n = max(1, runtime.GOMAXPROCS(0)-1)
	}
	return &writers{max: n, opts: opts}
}

// push queues o for a turn, starting a writer goroutine if fewer than max
// run. The caller holds o.mu.
func (w *writers) push(o *outbox, urgent bool) {
	w.mu.Lock()
	if urgent {
		w.urgent.push(o)
	} else {
		w.normal.push(o)
	}
	start := w.running < w.max
	if start {
		w.running++
		w.active.add(1)
	}
	w.mu.Unlock()
	if start {
		go w.run()
	}
}

// run gives outboxes their turns until none is queued.
func (w *writers) run() {
	defer w.active.add(-1)
	start := time.Now()
	var turns, msgs int
	for {
		o := w.next()
		if o == nil {
			return
		}
		msgs += o.turn()
		turns++
		if time.Since(start) > writeRound {
			if msgs < fullWrite*turns && w.idleAnswers() {
				time.Sleep(writeRound)
			}
			start, turns, msgs = time.Now(), 0, 0
		}
	}
}

const (
	// writeRound is how long a busy writer works before it pauses, and
	// how long it pauses.
	writeRound = time.Millisecond
	// fullWrite is the number of frames per write from which a pause
	// would save little.
	fullWrite = 16
)

// idleAnswers reports whether no answer waits for a writer.
func (w *writers) idleAnswers() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.urgent.len() == 0
}

// next returns the outbox whose turn is next, answers first, or nil when
// none is queued: the calling writer then stops.
func (w *writers) next() *outbox {
	w.mu.Lock()
	defer w.mu.Unlock()
	o := w.urgent.pop()
	if o == nil {
		o = w.normal.pop()
	}
	if o == nil {
		w.running--
	}
	return o
}

// fifo is a queue of outboxes that reuses its array.
type fifo struct {
	items []*outbox
	head  int
}

func (q *fifo) push(o *outbox) {
	if q.head > 64 && q.head*2 > len(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	q.items = append(q.items, o)
}

func (q *fifo) len() int { return len(q.items) - q.head }

func (q *fifo) pop() *outbox {
	if q.head == len(q.items) {
		return nil
	}
	o := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
	return o
}

package hub

import (
	"context"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ginws/ginws/internal/sock"
)

// outgoing is one message queued for the peer: an event, an answer, or a
// control frame.
type outgoing struct {
	data   []byte
	offset uint64
	binary bool
	// raw messages (the plain-text pong) are never merged into an array.
	raw bool
	// control is the opcode of a control frame (a Pong), else 0.
	control byte
	// urgent messages (answers) move the outbox's turn ahead of events.
	urgent bool
	// shared is what the recipients of an event share beside its bytes;
	// nil for other messages.
	shared *shared
}

// shared is what the recipients of one event share beside its bytes.
type shared struct {
	// key marks a replaceable event (Target.Latest).
	key string
	// deflated is the event's compressed form (internal/deflate), made
	// once, by the first writer that needs it, for all its recipients.
	once     sync.Once
	deflated []byte
}

// key is the message's replacement key, "" when it has none.
func (m *outgoing) key() string {
	if m.shared == nil {
		return ""
	}
	return m.shared.key
}

// outbox is a session's send side: what is queued for the peer, what it is
// charged, and the session's turns with the hub's writers. It has a lock of
// its own, so that a broadcast queueing to a session never waits for the
// session's reader or handler.
//
// Its session locks it only while holding its own lock or none; the outbox
// calls its session (owner) only with its lock released.
type outbox struct {
	mu    sync.Mutex
	msgs  []outgoing // queued, not yet taken by a writer
	spare []outgoing // the previous batch, reused
	// bytes is what is queued, being written and in the socket's backlog;
	// 32 bits, as SendQueueBytes is at most 1 GiB.
	bytes   int32
	count   int32
	backlog int32 // bytes of the last batch, charged until the socket's backlog drains
	pongAt  int32 // 1 + the index in msgs of the Pong not yet taken, or 0
	// latest holds the index in msgs of each replaceable event's key
	// (Target.Latest) once the queue is too long to search (see find).
	latest  map[string]int32
	writing bool // a turn is coming, running or waits for the socket
	queued  bool // a turn is coming (see writers)
	urgent  bool // ... ahead of the outboxes with only events
	answers bool // msgs holds an urgent message
	deflate bool // the session negotiated permessage-deflate
	// shut: nothing more is queued (the queue was discarded, or the close
	// frame was decided on).
	shut bool
	// closing is the close frame to write once the queue is empty.
	closing *CloseError
	// space is signalled when a batch has been written, for enqueueWait,
	// which makes it: most sessions never need it.
	space chan struct{}

	writers *writers
	socket  *sock.Conn
	owner   owner
}

// owner is what an outbox tells its session.
type owner interface {
	// overflowed: the queue was full, and was discarded.
	overflowed()
	// sendClose: the queue is empty and the close frame may go.
	sendClose(CloseError)
	// writeFailed: the socket could not be written.
	writeFailed(error)
}

// newOutbox returns an outbox held until open: whatever is queued before
// then (the welcome) goes out first, as PROTOCOL.md says.
func newOutbox(h *Hub, socket *sock.Conn, owner owner) outbox {
	return outbox{writers: h.writers, socket: socket, owner: owner, writing: true}
}

// open ends the hold and writes what is queued from the calling goroutine:
// the welcome answers the connection.
func (o *outbox) open() {
	o.mu.Lock()
	o.queued = true
	o.mu.Unlock()
	o.turn()
}

// enqueue adds a message to the queue, starting a writer if needed. A full
// queue is discarded and the owner told: nothing is dropped silently, the
// session is closed with 1013, and the client learns of the gap and resumes.
func (o *outbox) enqueue(m outgoing) error {
	o.mu.Lock()
	if o.shut {
		o.mu.Unlock()
		return ErrSessionClosed
	}
	if m.control == websocket.PongMessage && o.pongAt > 0 {
		// Only the newest Ping needs an answer (RFC 6455 section 5.5.3):
		// a Ping flood costs one queued Pong.
		p := &o.msgs[o.pongAt-1]
		o.bytes += int32(len(m.data) - len(p.data))
		p.data = m.data
		o.mu.Unlock()
		return nil
	}
	key := m.key()
	if i := o.find(key); i >= 0 {
		p := &o.msgs[i]
		if int(o.bytes)+len(m.data)-len(p.data) > o.writers.opts.SendQueueBytes {
			o.overflow()
			return ErrSessionClosed
		}
		o.bytes += int32(len(m.data) - len(p.data))
		*p = m
		o.mu.Unlock()
		return nil
	}
	if int(o.count)+1 > o.writers.opts.SendQueueFrames || int(o.bytes)+len(m.data) > o.writers.opts.SendQueueBytes {
		o.overflow()
		return ErrSessionClosed
	}
	if key != "" && o.latest != nil {
		o.latest[key] = int32(len(o.msgs))
	}
	if m.control == websocket.PongMessage {
		o.pongAt = int32(len(o.msgs)) + 1
	}
	o.msgs = append(o.msgs, m)
	o.bytes += int32(len(m.data))
	o.count++
	o.answers = o.answers || m.urgent
	o.kickLocked(m.urgent)
	o.mu.Unlock()
	return nil
}

// searchable is the length of queue searched for a replaceable event's key
// without an index: a session that keeps up has a short queue, and an index
// would cost every delivery to it a map update.
const searchable = 16

// find returns the index in msgs of the queued event with key, or -1. The
// caller holds o.mu.
func (o *outbox) find(key string) int {
	if key == "" || len(o.msgs) == 0 {
		return -1
	}
	if o.latest == nil {
		if len(o.msgs) <= searchable {
			for i := len(o.msgs) - 1; i >= 0; i-- {
				if o.msgs[i].key() == key {
					return i
				}
			}
			return -1
		}
		o.latest = make(map[string]int32)
		for i := range o.msgs {
			if k := o.msgs[i].key(); k != "" {
				o.latest[k] = int32(i)
			}
		}
	}
	if i, ok := o.latest[key]; ok {
		return int(i)
	}
	return -1
}

// overflow discards the queue and tells the owner. It is called with o.mu
// held and releases it.
func (o *outbox) overflow() {
	first := !o.shut
	o.discardLocked()
	o.mu.Unlock()
	if first {
		o.owner.overflowed()
	}
}

// queueReply queues an answer (ack, error, pong) ahead of the events.
func (o *outbox) queueReply(reply []byte) {
	_ = o.enqueue(outgoing{data: reply, urgent: true})
}

// enqueueWait queues a message like enqueue but, instead of overflowing,
// waits while the queue is more than half full: a long replay of missed
// events, or a large answer, is paced by what the peer reads. A peer that
// reads nothing for WriteTimeout overflows.
func (o *outbox) enqueueWait(ctx context.Context, m outgoing) error {
	for {
		o.mu.Lock()
		if o.shut {
			o.mu.Unlock()
			return ErrSessionClosed
		}
		if int(o.count) < o.writers.opts.SendQueueFrames/2 && int(o.bytes)+len(m.data) <= o.writers.opts.SendQueueBytes/2 || o.count == 0 {
			o.mu.Unlock()
			return o.enqueue(m)
		}
		if o.space == nil {
			o.space = make(chan struct{}, 1)
		}
		space := o.space
		o.mu.Unlock()
		t := time.NewTimer(o.writers.opts.WriteTimeout)
		select {
		case <-space:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
			o.mu.Lock()
			o.overflow()
			return ErrSessionClosed
		}
	}
}

// closeAfter writes the close frame after what is queued.
func (o *outbox) closeAfter(ce CloseError) {
	o.mu.Lock()
	o.shut = true // nothing more goes before the close frame
	o.closing = &ce
	o.kickLocked(true)
	o.mu.Unlock()
}

// closeNow discards what is queued and writes the close frame next.
func (o *outbox) closeNow(ce CloseError) {
	o.mu.Lock()
	o.discardLocked()
	o.closing = &ce
	o.kickLocked(true)
	o.mu.Unlock()
}

// discard forgets what is queued and takes no more: the peer's close frame
// came, or the connection ended.
func (o *outbox) discard() {
	o.mu.Lock()
	o.discardLocked()
	o.closing = nil
	o.mu.Unlock()
}

func (o *outbox) discardLocked() {
	o.shut = true
	for _, m := range o.msgs {
		o.bytes -= int32(len(m.data))
	}
	o.count -= int32(len(o.msgs))
	clear(o.msgs)
	o.msgs = o.msgs[:0]
	o.answers = false
	o.pongAt = 0
	o.latest = nil
}

// kickLocked gives the outbox a turn with the hub's writers, unless it has
// one coming, is in one or waits for its socket; an urgent message (an
// answer) moves a coming turn ahead of the outboxes that only have events.
func (o *outbox) kickLocked(urgent bool) {
	switch {
	case !o.writing:
		o.writing, o.queued, o.urgent = true, true, urgent
		o.writers.push(o, urgent)
	case urgent && o.queued && !o.urgent:
		// The earlier entry is skipped when its turn comes (see turn).
		o.urgent = true
		o.writers.push(o, true)
	}
}

// turn writes everything queued, or the close frame, with one write that
// does not wait for the peer. The hub's writers call it; one turn runs at a
// time per outbox.
func (o *outbox) turn() (messages int) {
	o.mu.Lock()
	if !o.queued {
		// This turn was taken already: an entry moved ahead, or the
		// handler's goroutine (writeAnswers).
		o.mu.Unlock()
		return 0
	}
	o.queued, o.urgent = false, false
	if len(o.msgs) == 0 {
		if ce := o.closing; ce != nil {
			// writing stays true: no turn comes after the close frame.
			o.closing, o.shut = nil, true
			o.mu.Unlock()
			o.owner.sendClose(*ce)
			return 0
		}
		o.writing = false
		o.mu.Unlock()
		return 0
	}
	batch := o.msgs
	o.msgs = o.spare[:0]
	o.answers = false
	o.pongAt = 0
	o.latest = nil
	o.mu.Unlock()

	var z *Compression
	if o.deflate {
		z = &o.writers.opts.Compression
	}
	err := writeBatch(o.socket, batch, z)

	var n int32
	for _, m := range batch {
		n += int32(len(m.data))
	}
	clear(batch)
	o.mu.Lock()
	o.count -= int32(len(batch))
	o.spare = batch[:0]
	// What waits in the socket's backlog stays charged to the session
	// until the peer has taken it; requeue releases it.
	parked := err == nil && o.socket.Park()
	if parked {
		o.backlog = n
	} else {
		o.bytes -= n
	}
	space := o.space
	o.mu.Unlock()
	if !parked {
		signal(space)
	}
	if err != nil {
		// writing stays true: nothing more is written.
		o.owner.writeFailed(err)
		return len(batch)
	}
	if !parked { // else the socket's flusher calls requeue once the peer has caught up
		o.requeue()
	}
	return len(batch)
}

// requeue ends a turn: the next one comes if more was queued meanwhile or
// the close frame waits.
func (o *outbox) requeue() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.backlog > 0 {
		o.bytes -= o.backlog
		o.backlog = 0
		signal(o.space)
	}
	if len(o.msgs) == 0 && o.closing == nil {
		o.writing = false
		return
	}
	o.queued, o.urgent = true, o.answers || o.closing != nil
	o.writers.push(o, o.urgent)
}

// signal tells enqueueWait, if it waits, that the queue has room.
func signal(space chan struct{}) {
	if space == nil {
		return
	}
	select {
	case space <- struct{}{}:
	default:
	}
}

// writeAnswers writes the queue at once if it holds an answer and no turn
// runs, from the goroutine that made the answer (which holds no lock),
// instead of waiting for a writer: with the writers busy with a broadcast,
// a request's answer would wait for the scheduler to run one.
func (o *outbox) writeAnswers() {
	o.mu.Lock()
	if !o.answers || !o.queued {
		o.mu.Unlock()
		return
	}
	// The pool's entry is skipped when its turn comes.
	o.mu.Unlock()
	o.turn()
}

package hub

import (
	"io"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/ginws/ginws/internal/wsframe"
)

// maxBatch bounds how many queued events go into one array frame.
const maxBatch = 64

var batchPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// writeChunk is the most a write carries, unless one frame is larger: the
// pooled buffers stay small however long the queue (a burst of 10,000
// events to one session made a megabyte of garbage per turn).
const writeChunk = 64 << 10

// writeBatch writes the messages, consecutive events as JSON array frames
// (PROTOCOL.md section 2), in writes of up to writeChunk: under load one
// system call carries many events.
func writeBatch(w io.Writer, batch []outgoing) error {
	bp := batchPool.Get().(*[]byte)
	b := (*bp)[:0]
	var err error
	for i := 0; i < len(batch) && err == nil; {
		n := 1
		if batch[i].mergeable() {
			for n < maxBatch && i+n < len(batch) && batch[i+n].mergeable() {
				n++
			}
		}
		b = appendFrame(b, batch[i:i+n])
		i += n
		if len(b) >= writeChunk || i == len(batch) {
			_, err = w.Write(b)
			b = b[:0]
		}
	}
	if cap(b) <= 2*writeChunk {
		*bp = b
		batchPool.Put(bp)
	}
	return err
}

// mergeable reports whether the message is an event or answer that may go
// into a JSON array frame with its neighbours.
func (m *outgoing) mergeable() bool { return !m.binary && !m.raw && m.control == 0 }

// appendFrame appends one unmasked server frame (RFC 6455 section 5.2)
// holding msgs[0], or the messages as one JSON array. The hub frames data
// itself: gorilla would write through a buffer of its own and set a
// deadline per frame.
func appendFrame(b []byte, msgs []outgoing) []byte {
	op := byte(websocket.TextMessage)
	switch {
	case msgs[0].control != 0:
		op = msgs[0].control
	case msgs[0].binary:
		op = websocket.BinaryMessage
	}
	n := len(msgs[0].data)
	if len(msgs) > 1 {
		n = 1 // [ ... ] and the commas
		for _, m := range msgs {
			n += len(m.data) + 1
		}
	}
	b = wsframe.AppendHeader(b, op, n)
	if len(msgs) == 1 {
		return append(b, msgs[0].data...)
	}
	for i, m := range msgs {
		if i == 0 {
			b = append(b, '[')
		} else {
			b = append(b, ',')
		}
		b = append(b, m.data...)
	}
	return append(b, ']')
}

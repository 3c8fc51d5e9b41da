package hub

import (
	"io"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/ginws/ginws/internal/deflate"
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
// system call carries many events. z is the session's compression, nil when
// it negotiated none.
func writeBatch(w io.Writer, batch []outgoing, z *Compression) error {
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
		if z != nil && worthCompressing(batch[i:i+n], z.MinSize) {
			b = appendDeflated(b, batch[i:i+n], z)
		} else {
			b = appendFrame(b, batch[i:i+n])
		}
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

// compressed returns the message's compressed form, ending with the sync
// flush's tail.
func (m *outgoing) compressed(level int) []byte {
	if m.shared == nil {
		m.shared = new(shared)
	}
	z := m.shared
	z.once.Do(func() { z.deflated = deflate.Compress(nil, m.data, level) })
	return z.deflated
}

// worthCompressing reports whether a frame of msgs holds a message of at
// least minSize bytes; control frames are never compressed.
func worthCompressing(msgs []outgoing, minSize int) bool {
	if msgs[0].control != 0 {
		return false
	}
	for _, m := range msgs {
		if len(m.data) >= minSize {
			return true
		}
	}
	return false
}

// appendDeflated appends msgs[0], or the messages as one JSON array, as a
// compressed frame (RSV1 set). An array is the compressed forms of its
// messages of at least MinSize bytes, with the brackets, commas and smaller
// messages between them in stored blocks: an event the hub sends to many
// sessions is compressed once, whatever the number of sessions and batches
// it goes out in. Messages that do not shrink (an image, say) go as they
// are; a frame where none does goes plain.
func appendDeflated(b []byte, msgs []outgoing, z *Compression) []byte {
	op := byte(websocket.TextMessage)
	if msgs[0].binary {
		op = websocket.BinaryMessage
	}
	op |= wsframe.RSV1
	big := func(m *outgoing) bool {
		return len(m.data) >= z.MinSize && len(m.compressed(z.Level)) < len(m.data)
	}
	if len(msgs) == 1 {
		if !big(&msgs[0]) {
			return appendFrame(b, msgs)
		}
		p := msgs[0].shared.deflated
		p = p[:len(p)-len(deflate.Tail)]
		return append(wsframe.AppendHeader(b, op, len(p)), p...)
	}
	n, run, shrunk := 0, 1, false // run: the bytes of the stored block under way, "[" first
	for i := range msgs {
		if i > 0 {
			run++ // ","
		}
		if m := &msgs[i]; big(m) {
			n += deflate.StoredLen(run) + len(m.shared.deflated)
			run, shrunk = 0, true
		} else {
			run += len(m.data)
		}
	}
	if !shrunk {
		return appendFrame(b, msgs)
	}
	n += deflate.StoredLen(run+1) + 1 // "]" and AppendEnd
	b = wsframe.AppendHeader(b, op, n)

	rp := batchPool.Get().(*[]byte)
	raw := append((*rp)[:0], '[')
	for i := range msgs {
		if i > 0 {
			raw = append(raw, ',')
		}
		if m := &msgs[i]; big(m) {
			b = deflate.AppendStored(b, raw)
			b = append(b, m.shared.deflated...)
			raw = raw[:0]
		} else {
			raw = append(raw, m.data...)
		}
	}
	b = deflate.AppendEnd(deflate.AppendStored(b, append(raw, ']')))
	if cap(raw) <= 2*writeChunk {
		*rp = raw
		batchPool.Put(rp)
	}
	return b
}

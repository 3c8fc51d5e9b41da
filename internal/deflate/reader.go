package deflate

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"sync"

	"github.com/ginws/ginws/internal/wsframe"
)

// ErrRefused is what a Reader returns after it stopped a connection: a
// message inflated past the limit, or a frame the extension does not allow.
var ErrRefused = errors.New("deflate: frame refused")

// Reader sits under gorilla/websocket on the read side of a connection that
// negotiated the extension. Frames that are not compressed pass through as
// they are; a compressed message is gathered and inflated into one plain
// frame (RSV1 clear, masked with a zero key), so that gorilla never
// inflates anything itself. gorilla bounds a message by its compressed size
// only: a 64 KiB frame can inflate to some 64 MiB. Here a message that
// inflates past the limit becomes the header of a frame one byte longer
// than the limit, which gorilla refuses as it does any frame too large:
// Close 1009. A frame the extension does not allow becomes one with a
// reserved opcode, which gorilla refuses with Close 1002.
//
// A Reader keeps no buffer while no compressed message is under way; the
// buffers of one in progress (its compressed and inflated bytes, each at
// most the limit) come from pools.
type Reader struct {
	src   io.Reader
	limit int

	// Input read but not processed yet: what followed the end of a
	// compressed message in the same read.
	stash    []byte
	stashPos int
	srcErr   error // from src, returned once the stash is processed

	out    []byte  // a made frame, still to be returned
	outBuf *[]byte // its pooled buffer
	failed bool    // out is the last frame: ErrRefused follows

	// The frame being read.
	hdr     [14]byte
	hn      int  // header bytes seen
	hneed   int  // the header's length, once its first two bytes are known
	inBody  bool // the header is complete: remaining payload bytes follow
	pass    bool // the frame passes through
	remain  uint64
	mask    [4]byte
	maskPos int

	// plain: a message that is not compressed has frames still to come;
	// a compressed one may not start before it ends (RFC 6455 section 5.4).
	plain bool

	// The compressed message being gathered.
	collecting bool
	opcode     byte
	coll       *[]byte
}

// MaxLimit is the most a Reader lets a message inflate to, whatever the
// limit it was given.
const MaxLimit = 1 << 30

// NewReader returns a Reader of src that lets a message inflate to at most
// limit bytes (MaxLimit when limit is not positive or larger).
func NewReader(src io.Reader, limit int) *Reader {
	if limit <= 0 || limit > MaxLimit {
		limit = MaxLimit
	}
	return &Reader{src: src, limit: limit}
}

// Read returns the frames of src with every compressed message inflated.
func (r *Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if len(r.out) > 0 {
			n := copy(p, r.out)
			r.out = r.out[n:]
			if len(r.out) == 0 {
				putBuf(r.outBuf)
				r.outBuf, r.out = nil, nil
			}
			return n, nil
		}
		if r.failed {
			return 0, ErrRefused
		}
		var n int
		fromStash := r.stashPos < len(r.stash)
		if fromStash {
			n = copy(p, r.stash[r.stashPos:])
			r.stashPos += n
		} else {
			if r.srcErr != nil {
				return 0, r.srcErr
			}
			n, r.srcErr = r.src.Read(p)
		}
		w, rest := r.process(p[:n])
		// The rest comes after the frame just made. process changed
		// nothing in it: what came from the stash is there still.
		switch {
		case len(rest) > 0 && fromStash:
			r.stashPos -= len(rest)
		case len(rest) > 0:
			r.stash, r.stashPos = append([]byte(nil), rest...), 0
		case r.stashPos == len(r.stash):
			r.stash, r.stashPos = nil, 0
		}
		if w > 0 {
			return w, nil
		}
	}
}

// process reads the frames in p, moving the bytes that pass through to the
// front of p (w of them) and gathering compressed frames. It stops after a
// compressed message ends, or at a frame it refuses, returning what it did
// not read.
func (r *Reader) process(p []byte) (w int, rest []byte) {
	i := 0
	for i < len(p) {
		if !r.inBody {
			if r.hn == 0 && !r.start(p[i]) {
				return w, nil
			}
			c := p[i]
			i++
			r.hdr[r.hn] = c
			r.hn++
			if r.pass {
				p[w] = c
				w++
			}
			if r.hn == 2 {
				r.hneed = wsframe.HeaderLen(r.hdr[1])
			}
			if r.hn < 2 || r.hn < r.hneed {
				continue
			}
			if !r.header() {
				return w, nil
			}
		} else {
			k := int(min(uint64(len(p)-i), r.remain))
			if r.pass {
				w += copy(p[w:], p[i:i+k])
			} else {
				r.gather(p[i : i+k])
			}
			i += k
			r.remain -= uint64(k)
		}
		if r.remain == 0 {
			r.inBody, r.hn, r.hneed = false, 0, 0
			if !r.pass && r.hdr[0]&0x80 != 0 { // the message's final frame
				r.inflate()
				return w, p[i:]
			}
		}
	}
	return w, nil
}

// start decides, from a frame's first byte, whether the frame passes
// through or is gathered; it reports false when it refuses the frame.
func (r *Reader) start(b0 byte) bool {
	op, rsv1 := b0&0x0f, b0&0x40 != 0
	fin := b0&0x80 != 0
	switch {
	case op >= 8: // control frames may come between a message's frames
		r.pass = true
		if rsv1 {
			return r.refuse()
		}
	case r.collecting:
		r.pass = false
		if op != 0 || b0&0x70 != 0 {
			return r.refuse()
		}
	case rsv1:
		r.pass = false
		if op != 1 && op != 2 || b0&0x30 != 0 || r.plain {
			return r.refuse()
		}
		r.collecting, r.opcode = true, op
		r.coll = getBuf()
	default:
		// gorilla checks the order of what passes through; the Reader
		// only tracks whether a plain message is under way.
		r.pass = true
		switch op {
		case 1, 2:
			r.plain = !fin
		case 0:
			r.plain = r.plain && !fin
		}
	}
	return true
}

// header takes in a complete header; it reports false when it refuses the
// frame.
func (r *Reader) header() bool {
	n := wsframe.PayloadLen(r.hdr[:r.hneed])
	r.remain, r.inBody = n, true
	if r.pass {
		return true
	}
	if r.hdr[1]&0x80 == 0 { // clients mask every frame
		return r.refuse()
	}
	if n > uint64(r.limit-len(*r.coll)) {
		return r.tooLarge()
	}
	r.mask = wsframe.MaskKey(r.hdr[:r.hneed])
	r.maskPos = 0
	return true
}

// gather appends unmasked payload to the compressed message.
func (r *Reader) gather(b []byte) {
	c := *r.coll
	base := len(c)
	c = append(c, b...)
	r.maskPos = wsframe.Mask(c[base:], r.mask, r.maskPos)
	*r.coll = c
}

// End is what a receiver appends to a message before inflating it: the
// sync flush's tail, and an empty final block, so that the inflater ends
// with io.EOF.
const End = Tail + "\x01\x00\x00\xff\xff"

var inflaters sync.Pool

// inflate makes the plain frame of the gathered message, masked with a zero
// key (which leaves the payload as it is), as gorilla wants client frames.
func (r *Reader) inflate() {
	coll := r.coll
	r.coll, r.collecting = nil, false
	defer putBuf(coll)
	src := bytes.NewReader(append(*coll, End...))
	fr, _ := inflaters.Get().(io.ReadCloser)
	if fr == nil {
		fr = flate.NewReader(src)
	} else {
		_ = fr.(flate.Resetter).Reset(src, nil)
	}
	defer inflaters.Put(fr)

	const room = 14 // the longest header of a masked frame
	bp := getBuf()
	b := append((*bp)[:0], make([]byte, room)...)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := fr.Read(b[len(b):min(cap(b), room+r.limit+1)])
		b = b[:len(b)+n]
		if len(b)-room > r.limit {
			*bp = b
			putBuf(bp)
			r.tooLarge()
			return
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			*bp = b
			putBuf(bp)
			r.refuse()
			return
		}
	}
	h := wsframe.AppendMaskedHeader(make([]byte, 0, room), 0x80|r.opcode, len(b)-room, [4]byte{})
	start := room - len(h)
	copy(b[start:], h)
	*bp = b
	r.outBuf, r.out = bp, b[start:]
}

// tooLarge ends the stream with the header of a frame longer than the
// limit, which gorilla refuses with 1009; it returns false.
func (r *Reader) tooLarge() bool {
	op := r.opcode
	if op == 0 {
		op = 1
	}
	return r.fail(wsframe.AppendMaskedHeader(nil, 0x80|op, r.limit+1, [4]byte{}))
}

// refuse ends the stream with a frame of a reserved opcode, which gorilla
// refuses with 1002; it returns false.
func (r *Reader) refuse() bool {
	return r.fail([]byte{0x83, 0x80, 0, 0, 0, 0})
}

func (r *Reader) fail(frame []byte) bool {
	if r.coll != nil {
		putBuf(r.coll)
		r.coll = nil
	}
	r.out, r.failed = frame, true
	return false
}

var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func getBuf() *[]byte { return bufs.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if b == nil {
		return
	}
	*b = (*b)[:0]
	bufs.Put(b)
}

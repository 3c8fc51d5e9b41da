// Package deflate is permessage-deflate (RFC 7692) as the hub speaks it,
// without context takeover in either direction: every message is compressed
// on its own, so that one compressed event serves every session that
// negotiated the extension, and a session keeps no compressor state between
// messages (gorilla users measured some ten times the memory per connection
// with context takeover).
//
// Compressed pieces end with a sync flush and start on a byte boundary, so
// pieces compressed apart can be joined into one message: an array frame of
// events (PROTOCOL.md section 2) is the events' own compressed forms with
// the brackets and commas between them in stored blocks, made without
// compressing anything again. A message ends with a piece without its Tail,
// or with AppendEnd after a stored block.
package deflate

import (
	"compress/flate"
	"runtime"
	"strings"
	"sync"
)

// Tail is the end of a sync flush, which a sender removes from the end of
// a message and a receiver appends before inflating it (RFC 7692 section
// 7.2.1).
const Tail = "\x00\x00\xff\xff"

// Negotiate reports whether a client's Sec-WebSocket-Extensions header
// values offer permessage-deflate with parameters the hub can accept. The
// hub always answers "server_no_context_takeover;
// client_no_context_takeover"; its 32 KiB window fits any
// client_max_window_bits, but an offer with server_max_window_bits (which
// the answer would have to repeat, RFC 7692 section 7.1.2.1) or with
// parameters it does not know is declined.
func Negotiate(values []string) bool {
	for _, v := range values {
		for offer := range strings.SplitSeq(v, ",") {
			if acceptable(offer) {
				return true
			}
		}
	}
	return false
}

func acceptable(offer string) bool {
	params := strings.Split(offer, ";")
	if strings.TrimSpace(params[0]) != "permessage-deflate" {
		return false
	}
	seen := map[string]bool{}
	for _, p := range params[1:] {
		name, value, hasValue := strings.Cut(strings.TrimSpace(p), "=")
		name = strings.TrimSpace(name)
		value = strings.Trim(strings.TrimSpace(value), `"`)
		if seen[name] {
			return false
		}
		seen[name] = true
		switch name {
		case "server_no_context_takeover", "client_no_context_takeover":
			if hasValue {
				return false
			}
		case "client_max_window_bits":
			if hasValue && !windowBits(value) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func windowBits(v string) bool {
	switch v {
	case "8", "9", "10", "11", "12", "13", "14", "15":
		return true
	}
	return false
}

// Compress appends src compressed at level (flate's levels, 1 to 9),
// ending with a sync flush: Tail included. At most GOMAXPROCS compressions
// run at once; more callers wait their turn.
func Compress(dst, src []byte, level int) []byte {
	level = min(max(level, flate.BestSpeed), flate.BestCompression)
	busy <- struct{}{}
	defer func() { <-busy }()
	p := &writers[level]
	w, _ := p.Get().(*writer)
	if w == nil {
		w = &writer{}
		w.fw, _ = flate.NewWriter(w, level)
	} else {
		w.fw.Reset(w)
	}
	w.b = dst
	_, _ = w.fw.Write(src)
	_ = w.fw.Flush()
	dst, w.b = w.b, nil
	p.Put(w)
	return dst
}

// writers pools flate's compressors, one pool per level. Each holds about
// a MiB, and compression is work for a CPU: busy bounds those in use to
// one per CPU, whatever the number of goroutines that write answers.
var (
	writers [flate.BestCompression + 1]sync.Pool
	busy    = make(chan struct{}, runtime.GOMAXPROCS(0))
)

// writer is a compressor with the slice it appends to.
type writer struct {
	fw *flate.Writer
	b  []byte
}

func (w *writer) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// maxStored is the most one stored block holds.
const maxStored = 0xffff

// AppendStored appends src as stored (uncompressed) blocks, none of them
// final: what is too small to gain from compression costs 5 bytes a block.
func AppendStored(dst, src []byte) []byte {
	for {
		n := min(len(src), maxStored)
		dst = append(dst, 0, byte(n), byte(n>>8), ^byte(n), ^byte(n>>8))
		dst = append(dst, src[:n]...)
		src = src[n:]
		if len(src) == 0 {
			return dst
		}
	}
}

// StoredLen is the length AppendStored appends for n bytes.
func StoredLen(n int) int {
	return n + 5*max(1, (n+maxStored-1)/maxStored)
}

// AppendEnd ends a message whose last piece is a stored block: the
// receiver appends Tail, the last four bytes of an empty stored block
// whose first byte, appended here, holds the block's header.
func AppendEnd(b []byte) []byte { return append(b, 0) }

//go:build linux

package main

import (
	"strings"
	"testing"

	"github.com/ginws/ginws/internal/wsframe"
)

func frame(op byte, payload string) []byte {
	return append(wsframe.AppendHeader(nil, op, len(payload)), payload...)
}

// The count must not depend on where the reads split the stream.
func TestFeedCountsTicksAcrossReads(t *testing.T) {
	tick := `{"type":"tick","data":"xx"}`
	var stream []byte
	stream = append(stream, frame(1, tick)...)
	stream = append(stream, frame(1, "["+tick+","+tick+","+tick+"]")...)
	stream = append(stream, frame(9, "")...)
	stream = append(stream, frame(1, `{"type":"welcome"}`)...)
	stream = append(stream, frame(1, tick+strings.Repeat(" ", 300))...)
	stream = append(stream, frame(9, "ping data")...)
	stream = append(stream, frame(1, "["+strings.Repeat(tick+",", 3000)+tick+"]")...)
	stream = append(stream, frame(2, tick)...) // binary: not an event
	const want = 1 + 3 + 1 + 3001
	for _, size := range []int{1, 2, 7, 13, 14, 100, 4096, len(stream)} {
		c := &rconn{fd: -1}
		var got int64
		for b := stream; len(b) > 0; {
			k := min(size, len(b))
			got += c.feed(b[:k])
			b = b[k:]
		}
		if got != want {
			t.Errorf("reads of %d bytes: counted %d ticks, want %d", size, got, want)
		}
		if c.inPayload || len(c.hdr) > 0 {
			t.Errorf("reads of %d bytes: the stream ended inside a frame", size)
		}
	}
}

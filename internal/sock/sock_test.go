package sock

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// flushers counts the flusher goroutines, as the hub does.
type flushers struct{ n atomic.Int32 }

func (f *flushers) track(delta int) { f.n.Add(int32(delta)) }

// wait waits until no flusher runs.
func (f *flushers) wait(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool { return f.n.Load() == 0 }, 30*time.Second, time.Millisecond, "the flusher stops")
}

// tcpPair returns both ends of a loopback TCP connection; the server's
// send buffer is small so that its writes soon find the socket full.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	server = <-accepted
	require.NotNil(t, server)
	require.NoError(t, server.(*net.TCPConn).SetWriteBuffer(16<<10))
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// chunk is a length-prefixed, numbered record whose bytes all say its
// number: a reader sees at once whether records were cut, mixed or lost.
func chunk(n, size int) []byte {
	b := make([]byte, 8, 8+size)
	binary.BigEndian.PutUint32(b, uint32(size))
	binary.BigEndian.PutUint32(b[4:], uint32(n))
	for range size {
		b = append(b, byte(n))
	}
	return b
}

func readChunk(r io.Reader) (int, error) {
	var h [8]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, err
	}
	n := int(binary.BigEndian.Uint32(h[4:]))
	body := make([]byte, binary.BigEndian.Uint32(h[:4]))
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, err
	}
	for _, c := range body {
		if c != byte(n) {
			return 0, fmt.Errorf("record %d holds bytes of another", n)
		}
	}
	return n, nil
}

// writeWithin runs the writes and fails the test if they wait for the peer.
func writeWithin(t *testing.T, d time.Duration, writes func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		writes()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatal("Write waited for a peer that does not read")
	}
}

func TestSockNeverWaitsAndKeepsOrder(t *testing.T) {
	for _, tc := range []struct {
		name string
		pair func(t *testing.T) (net.Conn, net.Conn)
	}{
		{"tcp", tcpPair},
		// net.Pipe has no descriptor, like a TLS connection: every write
		// goes through the flusher.
		{"no descriptor", func(t *testing.T) (net.Conn, net.Conn) {
			a, b := net.Pipe()
			t.Cleanup(func() { a.Close(); b.Close() })
			return a, b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server, client := tc.pair(t)
			var active flushers
			k := New(server, 5*time.Second, active.track)
			// 4 MiB, far more than the socket buffers hold, while the
			// client reads nothing.
			const records = 512
			writeWithin(t, 10*time.Second, func() {
				for i := range records {
					n, err := k.Write(chunk(i, 8<<10))
					assert.NoError(t, err)
					assert.Equal(t, 8+8<<10, n)
				}
			})
			assert.True(t, k.Pending(), "the rest waits in the backlog")
			for i := range records {
				n, err := readChunk(client)
				require.NoError(t, err)
				require.Equal(t, i, n, "records arrive whole and in order")
			}
			active.wait(t) // the flusher stops once the backlog is written
			assert.False(t, k.Pending())
			assert.Zero(t, cap(k.backlog)+cap(k.spare), "a drained socket keeps no buffer")
		})
	}
}

func TestSockWritersDoNotInterleave(t *testing.T) {
	server, client := tcpPair(t)
	var active flushers
	k := New(server, 5*time.Second, active.track)
	// Data frames from a writer and control frames from other goroutines
	// share the connection; each Write is whole records.
	const each = 200
	var writers sync.WaitGroup
	for g := range 4 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := range each {
				_, err := k.Write(chunk(g*each+i, 1000+g*3000))
				assert.NoError(t, err)
			}
		}()
	}
	seen := make(map[int]bool)
	last := map[int]int{0: -1, 1: -1, 2: -1, 3: -1}
	for range 4 * each {
		n, err := readChunk(client)
		require.NoError(t, err)
		g := n / each
		assert.Greater(t, n, last[g], "each goroutine's records stay in order")
		last[g] = n
		seen[n] = true
	}
	assert.Len(t, seen, 4*each)
	writers.Wait()
	active.wait(t)
}

func TestSockFailsAPeerThatTakesNothing(t *testing.T) {
	server, client := tcpPair(t)
	var active flushers
	k := New(server, 200*time.Millisecond, active.track)
	// 4 MiB, more than the socket buffers hold: the rest waits in a
	// backlog whose flusher fails the peer 200 ms after it took nothing.
	// On a busy machine that can happen before the last of these writes:
	// then that write and every later one fails with net.ErrClosed.
	writeWithin(t, 10*time.Second, func() {
		for i := range 512 {
			if _, err := k.Write(chunk(i, 8<<10)); err != nil {
				assert.ErrorIs(t, err, net.ErrClosed, "write %d", i)
				return
			}
		}
	})
	// The flusher gives up after the time-out without progress and, with
	// no owner yet, closes the connection.
	active.wait(t)
	_, err := k.Write([]byte("x"))
	assert.ErrorIs(t, err, net.ErrClosed, "later writes fail")
	_ = client.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = io.Copy(io.Discard, client)
	var ne net.Error
	assert.False(t, errors.As(err, &ne) && ne.Timeout(), "the peer sees the connection end")
}

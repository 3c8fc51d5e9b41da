package hub

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
			var active counter
			k := newSock(server, 5*time.Second, &active)
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
			assert.True(t, k.pending(), "the rest waits in the backlog")
			for i := range records {
				n, err := readChunk(client)
				require.NoError(t, err)
				require.Equal(t, i, n, "records arrive whole and in order")
			}
			require.NoError(t, active.wait(context.Background())) // the flusher stops once the backlog is written
			assert.False(t, k.pending())
			assert.Zero(t, cap(k.backlog)+cap(k.spare), "a drained socket keeps no buffer")
		})
	}
}

func TestSockWritersDoNotInterleave(t *testing.T) {
	server, client := tcpPair(t)
	var active counter
	k := newSock(server, 5*time.Second, &active)
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
	require.NoError(t, active.wait(context.Background()))
}

func TestSockFailsAPeerThatTakesNothing(t *testing.T) {
	server, client := tcpPair(t)
	var active counter
	k := newSock(server, 200*time.Millisecond, &active)
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
	// no session yet, closes the connection.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, active.wait(ctx), "the flusher gives up")
	_, err := k.Write([]byte("x"))
	assert.ErrorIs(t, err, net.ErrClosed, "later writes fail")
	_ = client.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = io.Copy(io.Discard, client)
	var ne net.Error
	assert.False(t, errors.As(err, &ne) && ne.Timeout(), "the peer sees the connection end")
}

func TestWritersTakeAnswersFirst(t *testing.T) {
	w := newWriters(1)
	w.running = 1 // as if a writer ran: push starts none
	a, b, c := &Session{id: "a"}, &Session{id: "b"}, &Session{id: "c"}
	w.push(a, false)
	w.push(b, false)
	w.push(c, true)
	var order []string
	for s := w.next(); s != nil; s = w.next() {
		order = append(order, s.id)
	}
	assert.Equal(t, []string{"c", "a", "b"}, order)
	assert.Equal(t, 0, w.running, "the writer stops when nothing is queued")
}

func TestFifoReusesItsArray(t *testing.T) {
	var q fifo
	next := 0
	// Never empty, so the array is reused by moving the rest down.
	for i := range 10000 {
		q.push(&Session{id: fmt.Sprint(i)})
		if i%2 == 1 {
			assert.Equal(t, fmt.Sprint(next), q.pop().id)
			next++
		}
	}
	assert.LessOrEqual(t, cap(q.items), 16384, "the queue does not keep what it handed out")
	for s := q.pop(); s != nil; s = q.pop() {
		assert.Equal(t, fmt.Sprint(next), s.id)
		next++
	}
	assert.Equal(t, 10000, next)
}

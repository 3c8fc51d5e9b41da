package hub

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

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

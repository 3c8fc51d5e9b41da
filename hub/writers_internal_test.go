package hub

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestWritersTakeAnswersFirst(t *testing.T) {
	w := newWriters(&Options{Writers: 1})
	w.running = 1 // as if a writer ran: push starts none
	a, b, c := &outbox{}, &outbox{}, &outbox{}
	w.push(a, false)
	w.push(b, false)
	w.push(c, true)
	var order []*outbox
	for o := w.next(); o != nil; o = w.next() {
		order = append(order, o)
	}
	assert.True(t, len(order) == 3 && order[0] == c && order[1] == a && order[2] == b, "answers first, then events in order")
	assert.Equal(t, 0, w.running, "the writer stops when nothing is queued")
}

func TestFifoReusesItsArray(t *testing.T) {
	var q fifo
	boxes := make([]outbox, 10000)
	next := 0
	// Never empty, so the array is reused by moving the rest down.
	for i := range boxes {
		q.push(&boxes[i])
		if i%2 == 1 {
			assert.Same(t, &boxes[next], q.pop(), "entry %d", next)
			next++
		}
	}
	assert.LessOrEqual(t, cap(q.items), 16384, "the queue does not keep what it handed out")
	for o := q.pop(); o != nil; o = q.pop() {
		assert.Same(t, &boxes[next], o, "entry %d", next)
		next++
	}
	assert.Equal(t, 10000, next)
}

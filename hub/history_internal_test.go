package hub

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMemoryHistoryStaysWithinItsBudget(t *testing.T) {
	const budget = 64 << 10
	opts := HistoryOptions{Size: 100}
	for _, tc := range []struct {
		name string
		use  func(h *memoryHistory, room string)
	}{
		// Joined and left, never written to: each room costs its ring.
		{"rooms without events", func(h *memoryHistory, room string) {
			_, _, err := h.Latest(context.Background(), room, 0, opts)
			require.NoError(t, err)
		}},
		{"rooms with events", func(h *memoryHistory, room string) {
			require.NoError(t, h.PublishHistory(context.Background(), Message{Kind: TargetRoom, Room: room, Payload: []byte(`{"type":"x","data":"0123456789"}`)}, opts))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newMemoryHistory(func(Message) {}, budget)
			for i := range 10_000 {
				tc.use(h, fmt.Sprint("room-", i))
				require.LessOrEqual(t, h.size.Load(), int64(budget+ringOverhead), "after room %d", i)
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			assert.Less(t, len(h.rooms), 10_000, "the least recently used rooms were forgotten")
			assert.Equal(t, len(h.rooms), h.lru.Len())
		})
	}
}

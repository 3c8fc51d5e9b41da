package hub

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// DefaultHistoryTTL bounds the age of history entries when
// HistoryOptions.TTL is zero.
const DefaultHistoryTTL = 10 * time.Minute

// HistoryOptions switches history on for a room (RoomOptions.History):
// every event published to it gets the next offset and is kept, so that a
// client that reconnects gets what it missed (PROTOCOL.md section 5).
type HistoryOptions struct {
	// Size is how many recent events are kept; 0 switches history off.
	Size int
	// TTL is how long an event is kept; by default 10 minutes. A room's
	// history (and its offsets) is forgotten once its newest event is
	// older, or, when it never had one, once it was made that long ago.
	TTL time.Duration
}

// Position is a place in a room's history: the offset of an event within an
// epoch, which changes whenever the history was lost.
type Position struct {
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
}

// HistoryStore keeps the recent events of rooms with history and publishes them
// in offset order. A Broker that implements it (the Redis broker) keeps one
// history for all nodes; otherwise the hub keeps its own in memory, which
// suits one node.
type HistoryStore interface {
	// PublishHistory assigns the next offset of m.Room to m, whose Payload is
	// an encoded event without offset, keeps it, and has it delivered on
	// every node, this one included, in offset order.
	PublishHistory(ctx context.Context, m Message, opts HistoryOptions) error
	// Since returns the events after since, oldest first, and the room's
	// current position. ok is false, with no events, when since's epoch is
	// not the room's or events after it were already dropped.
	Since(ctx context.Context, room string, since Position, opts HistoryOptions) (events [][]byte, now Position, ok bool, err error)
	// Latest returns up to n of the newest events, oldest first, and the
	// room's current position; none when n is 0.
	Latest(ctx context.Context, room string, n int, opts HistoryOptions) (events [][]byte, now Position, err error)
}

// WithOffset returns an event encoded as the hub encodes it ({...}) with
// "offset":n added: the frame a HistoryStore keeps and delivers for the
// event it was given. It runs once per event, not per recipient.
func WithOffset[E string | []byte](event E, n uint64) []byte {
	out := make([]byte, 0, len(event)+32)
	out = append(out, event[:len(event)-1]...)
	out = append(out, `,"offset":`...)
	out = strconv.AppendUint(out, n, 10)
	return append(out, '}')
}

func newEpoch() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func ttlOf(o HistoryOptions) time.Duration {
	if o.TTL > 0 {
		return o.TTL
	}
	return DefaultHistoryTTL
}

// History returns up to n of a room's newest events, oldest first, with the
// room's current position, for applications that show recent messages on
// join. The room must have history (RoomOptions.History).
func (h *Hub) History(ctx context.Context, room string, n int) ([]json.RawMessage, Position, error) {
	opts := h.roomOptions(room).History
	if opts.Size <= 0 {
		return nil, Position{}, fmt.Errorf("%w: room %q keeps no history", ErrNoHistory, room)
	}
	events, pos, err := h.history.Latest(ctx, room, max(n, 0), opts)
	if err != nil {
		return nil, Position{}, fmt.Errorf("hub: history of %q: %w", room, err)
	}
	out := make([]json.RawMessage, len(events))
	for i, f := range events {
		out[i] = f
	}
	return out, pos, nil
}

package redis

import (
	"errors"

	"github.com/ginws/ginws/hub"
)

// ChannelRoom and ChannelUser name a room's and a user's channels for tests.
func (b *Broker) ChannelRoom(room string) string { return b.channelRoom(room) }
func (b *Broker) ChannelUser(user string) string { return b.channelUser(user) }

// KeyPresence names a room's presence set for tests.
func (b *Broker) KeyPresence(room string) string { return b.keyPresence(room) }

// RunPayloads returns the events of a stream entry's field f.
func RunPayloads(f string) ([]string, error) { return splitPayloads(f, true) }

// KeyMeta names a room's history meta for tests.
func (b *Broker) KeyMeta(room string) string { return b.historyKeys(room)[0] }

// KeyEvents names the stream of a room's history for tests.
func (b *Broker) KeyEvents(room string) string { return b.historyKeys(room)[1] }

// Pending counts the messages queued or in a round trip on every lane.
func (b *Broker) Pending() int {
	n := 0
	for _, l := range b.allLanes() {
		l.mu.Lock()
		n += len(l.queue) + l.sent
		l.mu.Unlock()
	}
	return n
}

// Sending counts the messages in a round trip on every lane.
func (b *Broker) Sending() int {
	n := 0
	for _, l := range b.allLanes() {
		l.mu.Lock()
		n += l.sent
		l.mu.Unlock()
	}
	return n
}

func (b *Broker) allLanes() []*lane {
	if b.masters == nil {
		return []*lane{b.single} // the global lane too
	}
	b.lanesMu.Lock()
	defer b.lanesMu.Unlock()
	lanes := []*lane{b.global}
	for _, l := range b.masters {
		lanes = append(lanes, l)
	}
	return lanes
}

// PublishTogether publishes messages to rooms in one round trip of the
// first one's lane, as messages queued behind a round trip in flight go,
// and returns their errors: with history when hist has a size.
func (b *Broker) PublishTogether(ms []hub.Message, hist hub.HistoryOptions) error {
	var batch []*publication
	for _, m := range ms {
		p := &publication{keys: []string{b.channelRoom(m.Room)}, head: header(b.node, m), payload: m.Payload,
			partition: b.partition(m.Room)}
		if hist.Size > 0 {
			p.history, p.hist, p.keys = true, hist, append(b.historyKeys(m.Room), p.keys...)
		}
		batch = append(batch, p)
	}
	l := b.laneFor(b.ctx, batch[0].partition)
	for _, p := range batch[1:] {
		b.laneFor(b.ctx, p.partition) // what release gives back
	}
	b.flush(l, batch)
	b.release(batch...)
	var errs []error
	for _, p := range batch {
		errs = append(errs, p.err)
	}
	return errors.Join(errs...)
}

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

// PublishTogether publishes plain messages to rooms in one round trip of
// the first one's lane, as messages queued behind a round trip in flight
// go, and returns their errors.
func (b *Broker) PublishTogether(ms []hub.Message) error {
	var batch []*publication
	for _, m := range ms {
		batch = append(batch, &publication{keys: []string{b.channelRoom(m.Room)}, args: []any{encode(b.node, m)},
			partition: b.partition(m.Room)})
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

package redis

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
	if len(b.lanes) == 1 {
		return b.lanes // the global lane too
	}
	return append(b.lanes, b.global)
}

package redis

// ChannelRoom and ChannelUser name a room's and a user's channels for tests.
func (b *Broker) ChannelRoom(room string) string { return b.channelRoom(room) }
func (b *Broker) ChannelUser(user string) string { return b.channelUser(user) }

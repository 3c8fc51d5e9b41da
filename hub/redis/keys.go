package redis

import (
	"hash/fnv"
	"strconv"
)

// partition returns the partition of a room or user name.
func (b *Broker) partition(name string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return int(h.Sum32() % uint32(b.opts.Partitions))
}

// partitionTag is the hash tag of partition p: the part of a key or channel
// name that Redis Cluster hashes to choose its slot.
func partitionTag(p int) string { return "{" + strconv.Itoa(p) + "}" }

// named returns prefix{partition}kind:name.
func (b *Broker) named(kind, name string) string {
	return b.opts.Prefix + partitionTag(b.partition(name)) + kind + ":" + name
}

func (b *Broker) channelAll() string             { return b.opts.Prefix + "all" }
func (b *Broker) channelRoom(room string) string { return b.named("room", room) }
func (b *Broker) channelUser(user string) string { return b.named("user", user) }
func (b *Broker) keyPresence(room string) string { return b.named("presence", room) }
func (b *Broker) keySessions(user string) string { return b.named("sessions", user) }

// historyKeys are a room's history: its meta ("epoch replid offset": the
// epoch, the replication id of the master that wrote it, the newest
// offset) and the stream of its runs of events (see publishBatch). Both
// expire together, TTL after the last event, so a lost history always
// gets a new epoch. Their names differ from those of earlier versions
// (:offset, :epoch, :events; then :meta, :log, a stream of single events
// by time), which kept their events apart: nodes of two versions side by
// side keep two histories rather than mix their offsets in one.
func (b *Broker) historyKeys(room string) []string {
	p := b.named("history", room)
	return []string{p + ":pos", p + ":runs"}
}

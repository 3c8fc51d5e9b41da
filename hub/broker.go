package hub

import (
	"context"
	"sync"
)

// TargetKind says who a Message is for.
type TargetKind uint8

// The kinds of delivery that cross nodes.
const (
	ToRoom TargetKind = iota + 1
	ToUser
	ToAll
)

// Message is one encoded frame on its way to the sessions of other nodes.
type Message struct {
	Kind TargetKind
	// Room or User names the recipients for ToRoom and ToUser.
	Room, User string
	// Except is the id of a session that must not receive it.
	Except string
	// Binary sends Payload as a binary frame instead of a text frame.
	Binary bool
	// Payload is the frame, encoded once.
	Payload []byte
}

// Broker carries messages between the hubs (nodes) of one application. A
// hub always delivers to its own sessions itself; the broker's job is the
// other nodes. Implementations must be safe for concurrent use.
type Broker interface {
	// Start is called once by the hub with the function that delivers a
	// message from another node to this node's sessions.
	Start(deliver func(Message)) error
	// Publish sends m to every other node that needs it. It must not block
	// for long when other nodes are unreachable: fail fast instead.
	Publish(ctx context.Context, m Message) error
	// Subscribe and Unsubscribe tell the broker that this node has its
	// first local member of a room, or lost its last.
	Subscribe(ctx context.Context, room string) error
	Unsubscribe(ctx context.Context, room string) error
	// Close stops the broker; the hub calls it at the end of Shutdown.
	Close() error
}

// MemoryBus connects hubs in one process: each hub built with a broker from
// the same bus receives the others' room, user and global deliveries. A hub
// whose Options.Broker is nil gets a bus of its own. Useful for tests of a
// multi-node setup without Redis.
type MemoryBus struct {
	mu    sync.RWMutex
	nodes map[*memoryBroker]struct{}
}

// NewMemoryBus returns an empty bus.
func NewMemoryBus() *MemoryBus { return &MemoryBus{nodes: make(map[*memoryBroker]struct{})} }

// Broker returns a new broker attached to the bus, for one hub.
func (b *MemoryBus) Broker() Broker { return &memoryBroker{bus: b, rooms: make(map[string]struct{})} }

type memoryBroker struct {
	bus     *MemoryBus
	deliver func(Message)
	mu      sync.RWMutex
	rooms   map[string]struct{}
}

var _ Broker = (*memoryBroker)(nil)

func (m *memoryBroker) Start(deliver func(Message)) error {
	m.deliver = deliver
	m.bus.mu.Lock()
	m.bus.nodes[m] = struct{}{}
	m.bus.mu.Unlock()
	return nil
}

func (m *memoryBroker) Publish(_ context.Context, msg Message) error {
	m.bus.mu.RLock()
	defer m.bus.mu.RUnlock()
	for n := range m.bus.nodes {
		if n != m && n.wants(msg) {
			n.deliver(msg)
		}
	}
	return nil
}

func (m *memoryBroker) wants(msg Message) bool {
	if msg.Kind != ToRoom {
		return true
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, ok := m.rooms[msg.Room]
	return ok
}

func (m *memoryBroker) Subscribe(_ context.Context, room string) error {
	m.mu.Lock()
	m.rooms[room] = struct{}{}
	m.mu.Unlock()
	return nil
}

func (m *memoryBroker) Unsubscribe(_ context.Context, room string) error {
	m.mu.Lock()
	delete(m.rooms, room)
	m.mu.Unlock()
	return nil
}

func (m *memoryBroker) Close() error {
	m.bus.mu.Lock()
	delete(m.bus.nodes, m)
	m.bus.mu.Unlock()
	return nil
}

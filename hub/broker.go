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
	// Offset is the event's place in its room's history; 0 for rooms
	// without history and for ephemeral events.
	Offset uint64
}

// Broker carries messages between the hubs (nodes) of one application. A
// hub always delivers to its own sessions itself; the broker's job is the
// other nodes. Implementations must be safe for concurrent use.
type Broker interface {
	// Start is called once by the hub with the function that delivers a
	// message from another node to this node's sessions, and the one that
	// reports errors no caller sees (a lost connection to Redis, say) to the
	// hub's error hook.
	Start(deliver func(Message), report func(error)) error
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

// PresenceStore is implemented by brokers that know the members of a room
// on every node. Without it, presence lists this node's members only.
type PresenceStore interface {
	AddMember(ctx context.Context, room string, m Member) error
	RemoveMember(ctx context.Context, room string, m Member) error
	Members(ctx context.Context, room string) ([]Member, error)
}

// SessionCounter is implemented by brokers that count a user's sessions on
// every node, so that MaxSessionsPerUser holds across nodes. Acquire
// returns ErrTooManySessions when the user is at max; release frees the slot.
type SessionCounter interface {
	AcquireSession(ctx context.Context, user string, max int) (release func(), err error)
}

// HealthChecker is implemented by brokers that can fail (Redis): Health
// returns nil while other nodes are reachable.
type HealthChecker interface {
	Health(ctx context.Context) error
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

func (m *memoryBroker) Start(deliver func(Message), _ func(error)) error {
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
	if len(m.rooms) == 0 {
		m.rooms = make(map[string]struct{}) // a map keeps its peak size
	}
	m.mu.Unlock()
	return nil
}

func (m *memoryBroker) Close() error {
	m.bus.mu.Lock()
	delete(m.bus.nodes, m)
	m.bus.mu.Unlock()
	return nil
}

package hub

import (
	"context"
	"sync"
)

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
	if msg.Kind != TargetRoom {
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

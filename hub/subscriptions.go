package hub

import (
	"context"
	"hash/maphash"
	"sync"
)

// subscriptions keeps the broker's subscriptions in step with what this node
// needs: a room while it has a member here, a user while they have a session
// here. The changes for one name are made one at a time, under a lock of a
// few shared by all names: a leave's unsubscribe cannot overtake the next
// join's subscribe, and a second joiner waits until the first joiner's
// subscription is confirmed, so that both read history after it.
type subscriptions struct {
	seed  maphash.Seed
	locks [64]sync.Mutex
	mu    sync.Mutex
	on    map[string]struct{} // "r" + room, "u" + user
}

func newSubscriptions() *subscriptions {
	return &subscriptions{seed: maphash.MakeSeed(), on: make(map[string]struct{})}
}

// sync subscribes key, or unsubscribes it, as want says now.
func (s *subscriptions) sync(key string, want func() bool, subscribe, unsubscribe func(context.Context, string) error) error {
	l := &s.locks[maphash.String(s.seed, key)%uint64(len(s.locks))]
	l.Lock()
	defer l.Unlock()
	s.mu.Lock()
	_, on := s.on[key]
	s.mu.Unlock()
	w := want()
	if w == on {
		return nil
	}
	var err error
	if w {
		err = subscribe(context.Background(), key[1:])
	} else {
		err = unsubscribe(context.Background(), key[1:])
	}
	// Recorded even when the broker failed: it retries a subscription
	// when it reconnects (and tells the members what they may have
	// missed), and must be told when the name is no longer wanted.
	s.mu.Lock()
	if w {
		s.on[key] = struct{}{}
	} else if delete(s.on, key); len(s.on) == 0 {
		s.on = make(map[string]struct{}) // a map keeps its peak size
	}
	s.mu.Unlock()
	return err
}

// syncRoom subscribes to room while this node has a member there.
func (h *Hub) syncRoom(room string) error {
	return h.subs.sync("r"+room, func() bool {
		h.mu.RLock()
		defer h.mu.RUnlock()
		return h.rooms[room] != nil
	}, h.broker.Subscribe, h.broker.Unsubscribe)
}

// syncUser subscribes to user while this node has a session of theirs, when
// the broker routes users (a UserRouter).
func (h *Hub) syncUser(user string) error {
	ur, ok := h.broker.(UserRouter)
	if !ok {
		return nil
	}
	return h.subs.sync("u"+user, func() bool {
		h.mu.RLock()
		defer h.mu.RUnlock()
		return h.slots[user] > 0
	}, ur.SubscribeUser, ur.UnsubscribeUser)
}

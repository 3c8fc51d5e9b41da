package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ginws/ginws/hub"
)

// conn is one subscription connection, with the goroutine that receives
// from it, and what it carries for this node.
type conn struct {
	sharded bool
	// anchor is the first channel subscribed, never unsubscribed: on a
	// cluster it pins a sharded connection to its partition's slot (see
	// newConn); its confirmations tell a new connection from the first.
	anchor string

	// Guarded by the broker's mu.
	ps *goredis.PubSub // replaced when the server drops the partition (see replace)
	// confirmed: the anchor was confirmed once; every later confirmation
	// is a new connection, which may have missed messages.
	confirmed bool
	broken    bool                // the subscription is lost
	rooms     map[string]struct{} // rooms and users subscribed here, whose
	users     map[string]struct{} // sessions are told when messages may be lost
	waiters   map[string][]*waiter
	// unsubscribing counts the unsubscribe commands sent per channel and
	// not yet confirmed.
	unsubscribing map[string]int
}

// waiter is a Subscribe call waiting for Redis to confirm its channel.
// Redis answers a connection's commands in order, so a confirmation
// that comes before those of the unsubscribes sent ahead of the call is
// the answer to an older subscribe: the channel may still be dropped.
type waiter struct {
	confirmed    chan struct{}
	unsubscribes int // confirmations of unsubscribes still to come first
}

// reset forgets the unsubscribes pending on c's connection: a new one
// subscribes every recorded channel afresh and confirms each.
func (c *conn) reset() {
	clear(c.unsubscribing)
	for _, ws := range c.waiters {
		for _, w := range ws {
			w.unsubscribes = 0
		}
	}
}

// newConn makes a subscription connection, subscribed to anchor, and starts
// its receiver, which Close stops. go-redis dials on the first subscribe
// (or the receiver's first read); on a cluster a sharded connection goes to
// the master of its first channel's slot, so the anchor comes first. The
// channel is recorded even if Redis is down: it is subscribed on the first
// successful (re)connection.
func (b *Broker) newConn(ctx context.Context, sharded bool, anchor string) (*conn, error) {
	c := &conn{sharded: sharded, anchor: anchor, rooms: make(map[string]struct{}), users: make(map[string]struct{}),
		waiters: make(map[string][]*waiter), unsubscribing: make(map[string]int)}
	if sharded {
		c.ps = b.client.SSubscribe(b.ctx)
	} else {
		c.ps = b.client.Subscribe(b.ctx)
	}
	err := c.subscribe(ctx, c.ps, anchor)
	b.wg.Add(1)
	go b.receive(c, c.ps)
	return c, err
}

// connFor returns the connection that carries name's channel.
func (b *Broker) connFor(name string) *conn {
	if b.shards == nil {
		return b.all
	}
	return b.shards[b.partition(name)]
}

func (c *conn) subscribe(ctx context.Context, ps *goredis.PubSub, channels ...string) error {
	if c.sharded {
		return ps.SSubscribe(ctx, channels...)
	}
	return ps.Subscribe(ctx, channels...)
}

func (c *conn) unsubscribe(ctx context.Context, ps *goredis.PubSub, channel string) error {
	if c.sharded {
		return ps.SUnsubscribe(ctx, channel)
	}
	return ps.Unsubscribe(ctx, channel)
}

// Subscribe starts receiving a room's messages and returns once Redis has
// confirmed it: every message published afterwards reaches this node, which
// a join that reads the room's history next relies on. On error the room
// stays recorded: go-redis subscribes it on the next connection, and its
// members are told that they may have missed messages.
func (b *Broker) Subscribe(ctx context.Context, room string) error {
	return b.subscribeName(ctx, room, b.channelRoom(room), func(c *conn) map[string]struct{} { return c.rooms })
}

// Unsubscribe stops receiving a room's messages.
func (b *Broker) Unsubscribe(ctx context.Context, room string) error {
	return b.unsubscribeName(ctx, room, b.channelRoom(room), func(c *conn) *map[string]struct{} { return &c.rooms })
}

// SubscribeUser starts receiving the messages for a user, and returns once
// Redis has confirmed it; on error it stays recorded, as Subscribe's rooms.
func (b *Broker) SubscribeUser(ctx context.Context, user string) error {
	return b.subscribeName(ctx, user, b.channelUser(user), func(c *conn) map[string]struct{} { return c.users })
}

// UnsubscribeUser stops receiving the messages for a user.
func (b *Broker) UnsubscribeUser(ctx context.Context, user string) error {
	return b.unsubscribeName(ctx, user, b.channelUser(user), func(c *conn) *map[string]struct{} { return &c.users })
}

func (b *Broker) subscribeName(ctx context.Context, name, channel string, set func(*conn) map[string]struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, b.opts.PublishTimeout)
	defer cancel()
	c := b.connFor(name)
	w := &waiter{confirmed: make(chan struct{})}
	b.mu.Lock()
	// Recorded first: a connection replaced meanwhile subscribes it too.
	set(c)[name] = struct{}{}
	w.unsubscribes = c.unsubscribing[channel]
	c.waiters[channel] = append(c.waiters[channel], w)
	ps := c.ps
	b.mu.Unlock()
	err := c.subscribe(ctx, ps, channel)
	if err == nil {
		select {
		case <-w.confirmed:
			return nil
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	b.mu.Lock()
	ws := c.waiters[channel]
	for i := range ws {
		if ws[i] == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(c.waiters, channel)
	} else {
		c.waiters[channel] = ws
	}
	b.mu.Unlock()
	return fmt.Errorf("redis broker: subscribe to %s (retried on reconnect): %w", channel, err)
}

func (b *Broker) unsubscribeName(ctx context.Context, name, channel string, set func(*conn) *map[string]struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, b.opts.PublishTimeout)
	defer cancel()
	c := b.connFor(name)
	b.mu.Lock()
	m := set(c)
	delete(*m, name)
	if len(*m) == 0 {
		*m = make(map[string]struct{}) // a map keeps its peak size
	}
	ps := c.ps
	c.unsubscribing[channel]++
	b.mu.Unlock()
	if err := c.unsubscribe(ctx, ps, channel); err != nil {
		b.mu.Lock()
		if c.unsubscribing[channel]--; c.unsubscribing[channel] <= 0 {
			delete(c.unsubscribing, channel)
		}
		b.mu.Unlock()
		return fmt.Errorf("redis broker: unsubscribe from %s: %w", channel, err)
	}
	return nil
}

// receive delivers the messages of other nodes that arrive on ps until
// Close, or until ps is replaced. go-redis reconnects and subscribes again
// to every channel after a failure (on a cluster, to the master that serves
// the slot now); receive waits with back-off meanwhile, and the outage is
// reported once however many connections it breaks.
func (b *Broker) receive(c *conn, ps *goredis.PubSub) {
	defer b.wg.Done()
	delay := 50 * time.Millisecond
	for {
		msg, err := ps.Receive(b.ctx)
		if b.ctx.Err() != nil || b.replaced(c, ps) {
			return
		}
		if err != nil {
			b.lost(c, err)
			select {
			case <-time.After(delay):
			case <-b.ctx.Done():
				return
			}
			delay = min(2*delay, 2*time.Second)
			if rerr := goredis.Error(nil); c.sharded && errors.As(err, &rerr) {
				// MOVED and the like: the connection leads to a
				// node that does not serve the slot, and go-redis
				// keeps a connection that answers.
				b.replace(c)
				return
			}
			continue
		}
		delay = 50 * time.Millisecond
		switch m := msg.(type) {
		case *goredis.Subscription:
			b.subscription(c, m)
		case *goredis.Message:
			err := eachMessage(m.Payload, func(node string, hm hub.Message) {
				// Our own messages were delivered locally, except events
				// with history: those come back through Redis, in offset
				// order.
				if node != b.node || hm.Offset > 0 {
					b.deliver(hm)
				}
			})
			if err != nil {
				b.report(fmt.Errorf("redis broker: message on %s: %w", m.Channel, err))
			}
		}
	}
}

// subscription handles Redis's confirmations and notices on c.
func (b *Broker) subscription(c *conn, m *goredis.Subscription) {
	switch m.Kind {
	case "subscribe", "ssubscribe":
		b.mu.Lock()
		again := m.Channel == c.anchor && (c.confirmed || c.broken)
		if m.Channel == c.anchor {
			c.confirmed = true
		}
		if again {
			c.reset()
		}
		ws := c.waiters[m.Channel][:0]
		for _, w := range c.waiters[m.Channel] {
			if w.unsubscribes == 0 {
				close(w.confirmed)
			} else {
				ws = append(ws, w)
			}
		}
		if len(ws) == 0 {
			delete(c.waiters, m.Channel)
		} else {
			c.waiters[m.Channel] = ws
		}
		b.mu.Unlock()
		if m.Channel == c.anchor && b.setBroken(c, false) {
			b.log.Info("ginws redis broker: subscribed again")
		}
		if again {
			// A new connection, maybe made inside a Subscribe call
			// without Receive ever failing: what was published
			// meanwhile did not reach this node.
			b.missed(c)
		}
	case "unsubscribe", "sunsubscribe":
		b.mu.Lock()
		if c.unsubscribing[m.Channel]--; c.unsubscribing[m.Channel] <= 0 {
			delete(c.unsubscribing, m.Channel)
		}
		for _, w := range c.waiters[m.Channel] {
			w.unsubscribes = max(0, w.unsubscribes-1)
		}
		b.mu.Unlock()
		if m.Kind == "sunsubscribe" && m.Channel == c.anchor {
			// The server dropped the partition's subscriptions: its
			// slot moved (a manual failover, resharding), and the
			// connection now leads to a node that no longer serves it.
			b.lost(c, fmt.Errorf("redis broker: the slot of %s moved", m.Channel))
			b.replace(c)
		}
	}
}

// lost records that c's subscription is lost, reporting it once for the
// broker, and, on a cluster, has go-redis learn the new masters.
func (b *Broker) lost(c *conn, err error) {
	if b.setBroken(c, true) {
		b.report(fmt.Errorf("redis broker: subscription lost, retrying: %w", err))
	}
	if cc, ok := b.client.(*goredis.ClusterClient); ok {
		cc.ReloadState(b.ctx)
	}
}

// replace gives a sharded connection a new PubSub, subscribed to everything
// it carries: go-redis reconnects a PubSub only after a network error, and
// a moved slot leaves the old one connected to a node that no longer
// serves it. The new one's first confirmation of the anchor runs missed.
func (b *Broker) replace(c *conn) {
	if b.ctx.Err() != nil {
		return // Close closes the PubSub
	}
	b.awaitMaster(c.anchor)
	ps := b.client.SSubscribe(b.ctx)
	b.mu.Lock()
	old := c.ps
	c.ps = ps
	c.reset()
	channels := []string{c.anchor}
	for r := range c.rooms {
		channels = append(channels, b.channelRoom(r))
	}
	for u := range c.users {
		channels = append(channels, b.channelUser(u))
	}
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(b.ctx, b.opts.PublishTimeout)
	// One command: the channels share the partition's slot. On error they
	// stay recorded, and the receiver's reconnection subscribes them.
	_ = c.subscribe(ctx, ps, channels...)
	cancel()
	_ = old.Close()
	b.wg.Add(1)
	go b.receive(c, ps)
}

// awaitMaster waits, up to PublishTimeout, until go-redis's view of the
// cluster names a master for channel's slot that says it is one: a PubSub
// made sooner may go to the demoted node, which takes the subscription as a
// replica and passes nothing on.
func (b *Broker) awaitMaster(channel string) {
	cc, ok := b.client.(*goredis.ClusterClient)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, b.opts.PublishTimeout)
	defer cancel()
	for {
		if m, err := cc.MasterForKey(ctx, channel); err == nil {
			if role, err := m.Do(ctx, "ROLE").Slice(); err == nil && len(role) > 0 && role[0] == "master" {
				return
			}
		}
		cc.ReloadState(ctx)
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return
		}
	}
}

// replaced reports whether ps is no longer c's PubSub.
func (b *Broker) replaced(c *conn, ps *goredis.PubSub) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return c.ps != ps
}

// setBroken records a connection's state and reports whether the broker's
// health changed: the first connection lost, or the last one back.
func (b *Broker) setBroken(c *conn, broken bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.broken == broken {
		return false
	}
	c.broken = broken
	before := b.broken
	if broken {
		b.broken++
	} else {
		b.broken--
	}
	return before == 0 || b.broken == 0
}

// missed tells this node's hub, once c is subscribed again, that messages
// for the rooms and users it carries (and, on the connection of the global
// channel, for everyone) may have been lost meanwhile: their sessions are
// closed with 1013 and resume, and learn of any gap, rather than miss
// messages silently. A message published meanwhile may also never have
// been kept: Redis replicates asynchronously, and a failed-over master
// loses what its replica had not yet received.
func (b *Broker) missed(c *conn) {
	if !c.sharded {
		// The global channel: everyone, which covers a single Redis's
		// rooms and users too.
		b.deliver(hub.Message{Kind: hub.TargetAll, Action: hub.ActionMissed})
		return
	}
	b.mu.Lock()
	var ms []hub.Message
	for r := range c.rooms {
		ms = append(ms, hub.Message{Kind: hub.TargetRoom, Room: r, Action: hub.ActionMissed})
	}
	for u := range c.users {
		ms = append(ms, hub.Message{Kind: hub.TargetUser, User: u, Action: hub.ActionMissed})
	}
	b.mu.Unlock()
	for _, m := range ms {
		b.deliver(m)
	}
}

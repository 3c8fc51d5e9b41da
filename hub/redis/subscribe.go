package redis

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ginws/ginws/hub"
)

// conn is one subscription connection, with the goroutine that receives
// from it.
type conn struct {
	ps      *goredis.PubSub
	sharded bool
	// Guarded by the broker's mu: whether the subscription is lost, and
	// the rooms subscribed here (whose members are told when it was).
	broken bool
	missed bool // back from broken; missed has yet to tell the rooms
	rooms  map[string]struct{}
}

// newConn makes a subscription connection, subscribed to first, and starts
// its receiver, which Close stops. go-redis dials on the first subscribe
// (or the receiver's first read); on a cluster a sharded connection goes to
// the master of its first channel's slot, so first comes before anything.
// The channel is recorded even if Redis is down: it is subscribed on the
// first successful (re)connection.
func (b *Broker) newConn(ctx context.Context, sharded bool, first string) (*conn, error) {
	c := &conn{sharded: sharded, rooms: make(map[string]struct{})}
	var err error
	if sharded {
		c.ps = b.client.SSubscribe(b.ctx)
	} else {
		c.ps = b.client.Subscribe(b.ctx)
	}
	err = c.subscribe(ctx, first)
	b.wg.Add(1)
	go b.receive(c)
	return c, err
}

// connFor returns the connection that carries name's channel.
func (b *Broker) connFor(name string) *conn {
	if b.shards == nil {
		return b.all
	}
	return b.shards[b.partition(name)]
}

func (c *conn) subscribe(ctx context.Context, channel string) error {
	if c.sharded {
		return c.ps.SSubscribe(ctx, channel)
	}
	return c.ps.Subscribe(ctx, channel)
}

func (c *conn) unsubscribe(ctx context.Context, channel string) error {
	if c.sharded {
		return c.ps.SUnsubscribe(ctx, channel)
	}
	return c.ps.Unsubscribe(ctx, channel)
}

// Subscribe starts receiving a room's messages and returns once Redis has
// confirmed it: every message published afterwards reaches this node, which
// a join that reads the room's history next relies on.
func (b *Broker) Subscribe(ctx context.Context, room string) error {
	if err := b.subscribe(ctx, room, b.channelRoom(room)); err != nil {
		return err
	}
	b.mu.Lock()
	b.connFor(room).rooms[room] = struct{}{}
	b.mu.Unlock()
	return nil
}

// Unsubscribe stops receiving a room's messages.
func (b *Broker) Unsubscribe(ctx context.Context, room string) error {
	c := b.connFor(room)
	b.mu.Lock()
	delete(c.rooms, room)
	if len(c.rooms) == 0 {
		c.rooms = make(map[string]struct{}) // a map keeps its peak size
	}
	b.mu.Unlock()
	return b.unsubscribe(ctx, room, b.channelRoom(room))
}

// SubscribeUser starts receiving the messages for a user, and returns once
// Redis has confirmed it.
func (b *Broker) SubscribeUser(ctx context.Context, user string) error {
	return b.subscribe(ctx, user, b.channelUser(user))
}

// UnsubscribeUser stops receiving the messages for a user.
func (b *Broker) UnsubscribeUser(ctx context.Context, user string) error {
	return b.unsubscribe(ctx, user, b.channelUser(user))
}

func (b *Broker) subscribe(ctx context.Context, name, channel string) error {
	ctx, cancel := context.WithTimeout(ctx, b.opts.PublishTimeout)
	defer cancel()
	confirmed := make(chan struct{})
	b.mu.Lock()
	b.waiters[channel] = append(b.waiters[channel], confirmed)
	b.mu.Unlock()
	err := b.connFor(name).subscribe(ctx, channel)
	if err == nil {
		select {
		case <-confirmed:
			return nil
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	b.mu.Lock()
	ws := b.waiters[channel]
	for i, w := range ws {
		if w == confirmed {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(b.waiters, channel)
	} else {
		b.waiters[channel] = ws
	}
	b.mu.Unlock()
	return fmt.Errorf("redis broker: subscribe to %s (retried on reconnect): %w", channel, err)
}

func (b *Broker) unsubscribe(ctx context.Context, name, channel string) error {
	ctx, cancel := context.WithTimeout(ctx, b.opts.PublishTimeout)
	defer cancel()
	if err := b.connFor(name).unsubscribe(ctx, channel); err != nil {
		return fmt.Errorf("redis broker: unsubscribe from %s: %w", channel, err)
	}
	return nil
}

// receive delivers messages of other nodes until Close. go-redis reconnects
// and subscribes again to every channel after a failure (on a cluster, to
// the master that serves the slot now); receive waits with back-off
// meanwhile, and the outage is reported once however many connections it
// breaks.
func (b *Broker) receive(c *conn) {
	defer b.wg.Done()
	delay := 50 * time.Millisecond
	for {
		msg, err := c.ps.Receive(b.ctx)
		if b.ctx.Err() != nil {
			return
		}
		if err != nil {
			if b.setBroken(c, true) {
				b.report(fmt.Errorf("redis broker: subscription lost, retrying: %w", err))
			}
			if cc, ok := b.client.(*goredis.ClusterClient); ok {
				// A failed-over master: learn the new one before
				// reconnecting.
				cc.ReloadState(b.ctx)
			}
			select {
			case <-time.After(delay):
			case <-b.ctx.Done():
				return
			}
			delay = min(2*delay, 2*time.Second)
			continue
		}
		delay = 50 * time.Millisecond
		switch m := msg.(type) {
		case *goredis.Subscription:
			if b.setBroken(c, false) {
				b.log.Info("ginws redis broker: subscribed again", "channel", m.Channel)
			}
			b.missed(c)
			if m.Kind == "subscribe" || m.Kind == "ssubscribe" {
				b.mu.Lock()
				for _, w := range b.waiters[m.Channel] {
					close(w)
				}
				delete(b.waiters, m.Channel)
				b.mu.Unlock()
			}
		case *goredis.Message:
			node, hm, err := decode([]byte(m.Payload))
			if err != nil {
				b.report(fmt.Errorf("redis broker: message on %s: %w", m.Channel, err))
				continue
			}
			// Our own messages were delivered locally, except events
			// with history: those come back through Redis, in offset order.
			if node != b.node || hm.Offset > 0 {
				b.deliver(hm)
			}
		}
	}
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
	c.missed = !broken
	before := b.broken
	if broken {
		b.broken++
	} else {
		b.broken--
	}
	return before == 0 || b.broken == 0
}

// missed tells this node's hub, once a lost subscription is back, that its
// rooms on the connection may have missed events meanwhile (ActionMissed):
// their members resume, and learn of any gap, rather than miss events
// silently. A message published meanwhile may also never have been kept:
// Redis replicates asynchronously, and a failed-over master loses what its
// replica had not yet received.
func (b *Broker) missed(c *conn) {
	b.mu.Lock()
	if !c.missed {
		b.mu.Unlock()
		return
	}
	c.missed = false
	rooms := make([]string, 0, len(c.rooms))
	for r := range c.rooms {
		rooms = append(rooms, r)
	}
	b.mu.Unlock()
	for _, r := range rooms {
		b.deliver(hub.Message{Kind: hub.TargetRoom, Room: r, Action: hub.ActionMissed})
	}
}

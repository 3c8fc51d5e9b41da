package redis

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ginws/ginws/hub"
)

// Defaults for the Options fields left at zero.
const (
	DefaultPrefix         = "ginws:"
	DefaultPublishTimeout = time.Second
	DefaultPresenceTTL    = 30 * time.Second
)

// Options configures a Broker. Either URL or Client is required.
type Options struct {
	// URL is a redis:// or rediss:// (TLS) URL, e.g.
	// "redis://:password@127.0.0.1:6379/0". Ignored when Client is set.
	URL string
	// Client is an existing client: a *goredis.Client, or a
	// goredis.UniversalClient for Sentinel or Cluster. The broker does not
	// close a client it did not create.
	Client goredis.UniversalClient
	// Prefix starts every key and channel, so that several applications
	// can share one Redis. By default "ginws:".
	Prefix string
	// PublishTimeout bounds a publish: with Redis unreachable, Emit fails
	// after at most this long instead of hanging. By default 1 s.
	PublishTimeout time.Duration
	// PresenceTTL is how long a node's presence entries and session counts
	// outlive it when it dies without cleaning up; a live node refreshes
	// them every third of it. By default 30 s.
	PresenceTTL time.Duration
	// NodeID names this node; by default a random id.
	NodeID string
	// Logger receives the broker's logs. By default slog.Default().
	Logger *slog.Logger
}

// Broker is a hub.Broker on Redis pub/sub: room messages travel on one
// channel per room, subscribed while this node has a member in it; user and
// global messages on one channel every node subscribes to. It also keeps
// presence and per-user session counts across nodes in sorted sets whose
// entries expire unless their node refreshes them.
type Broker struct {
	opts   Options
	client goredis.UniversalClient
	owned  bool
	node   string
	log    *slog.Logger

	deliver func(hub.Message)
	report  func(error)
	ps      *goredis.PubSub
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	mu       sync.Mutex
	waiters  map[string][]chan struct{}     // channel -> Subscribe calls waiting for Redis to confirm
	healthy  error                          // nil while the subscription works
	members  map[string]map[string]struct{} // room -> presence entries of this node
	sessions map[string]string              // reservation id -> user
}

var (
	_ hub.Broker         = (*Broker)(nil)
	_ hub.PresenceStore  = (*Broker)(nil)
	_ hub.SessionCounter = (*Broker)(nil)
	_ hub.HealthChecker  = (*Broker)(nil)
)

// New returns a Broker for opts. It does not connect yet: a Redis that is
// down at start is retried in the background like any outage.
func New(opts Options) (*Broker, error) {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.PublishTimeout == 0 {
		opts.PublishTimeout = DefaultPublishTimeout
	}
	if opts.PresenceTTL == 0 {
		opts.PresenceTTL = DefaultPresenceTTL
	}
	if opts.NodeID == "" {
		var b [9]byte
		_, _ = rand.Read(b[:])
		opts.NodeID = base64.RawURLEncoding.EncodeToString(b[:])
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	b := &Broker{opts: opts, client: opts.Client, node: opts.NodeID, log: opts.Logger,
		members: make(map[string]map[string]struct{}), sessions: make(map[string]string),
		waiters: make(map[string][]chan struct{})}
	if b.client == nil {
		if opts.URL == "" {
			return nil, errors.New("redis broker: Options.URL or Options.Client is required")
		}
		o, err := goredis.ParseURL(opts.URL)
		if err != nil {
			return nil, fmt.Errorf("redis broker: %w", err)
		}
		// Fail fast while Redis is away; the hub keeps serving locally.
		o.DialTimeout = opts.PublishTimeout
		o.ReadTimeout = opts.PublishTimeout
		o.WriteTimeout = opts.PublishTimeout
		o.MaxRetries = 1
		b.client, b.owned = goredis.NewClient(o), true
	}
	return b, nil
}

func (b *Broker) channelAll() string             { return b.opts.Prefix + "all" }
func (b *Broker) channelRoom(room string) string { return b.opts.Prefix + "room:" + room }
func (b *Broker) keyPresence(room string) string { return b.opts.Prefix + "presence:" + room }
func (b *Broker) keySessions(user string) string { return b.opts.Prefix + "sessions:" + user }

// Start subscribes to the node-wide channel and starts the receiving and
// refreshing goroutines, which Close stops.
func (b *Broker) Start(deliver func(hub.Message), report func(error)) error {
	b.deliver, b.report = deliver, report
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.ps = b.client.Subscribe(b.ctx)
	ctx, cancel := context.WithTimeout(b.ctx, b.opts.PublishTimeout)
	defer cancel()
	// The channel is recorded even if Redis is down: it is subscribed on
	// the first successful (re)connection.
	err := b.ps.Subscribe(ctx, b.channelAll())
	b.wg.Add(2)
	go b.receive()
	go b.refresh()
	if err != nil {
		return fmt.Errorf("redis broker: subscribe: %w", err)
	}
	return nil
}

// receive delivers messages of other nodes until Close. go-redis reconnects
// and subscribes again to every channel after a failure; receive waits with
// back-off meanwhile and reports the outage once.
func (b *Broker) receive() {
	defer b.wg.Done()
	delay := 50 * time.Millisecond
	for {
		msg, err := b.ps.Receive(b.ctx)
		if b.ctx.Err() != nil {
			return
		}
		if err != nil {
			if b.setHealth(err) {
				b.report(fmt.Errorf("redis broker: subscription lost, retrying: %w", err))
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
			if b.setHealth(nil) {
				b.log.Info("ginws redis broker: subscribed again", "channel", m.Channel)
			}
			if m.Kind == "subscribe" {
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

// setHealth records the subscription's state and reports whether it changed.
func (b *Broker) setHealth(err error) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	changed := (b.healthy == nil) != (err == nil)
	b.healthy = err
	return changed
}

// Health returns nil while Redis answers and the subscription works.
func (b *Broker) Health(ctx context.Context) error {
	b.mu.Lock()
	err := b.healthy
	b.mu.Unlock()
	if err != nil {
		return fmt.Errorf("redis broker: subscription: %w", err)
	}
	if err := b.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis broker: %w", err)
	}
	return nil
}

// Publish sends m to the other nodes, failing within PublishTimeout.
func (b *Broker) Publish(ctx context.Context, m hub.Message) error {
	ch := b.channelAll()
	if m.Kind == hub.TargetRoom {
		ch = b.channelRoom(m.Room)
	}
	ctx, cancel := context.WithTimeout(ctx, b.opts.PublishTimeout)
	defer cancel()
	if err := b.client.Publish(ctx, ch, encode(b.node, m)).Err(); err != nil {
		return fmt.Errorf("redis broker: publish: %w", err)
	}
	return nil
}

// Subscribe starts receiving a room's messages and returns once Redis has
// confirmed it: every message published afterwards reaches this node, which
// a join that reads the room's history next relies on.
func (b *Broker) Subscribe(ctx context.Context, room string) error {
	ctx, cancel := context.WithTimeout(ctx, b.opts.PublishTimeout)
	defer cancel()
	ch := b.channelRoom(room)
	confirmed := make(chan struct{})
	b.mu.Lock()
	b.waiters[ch] = append(b.waiters[ch], confirmed)
	b.mu.Unlock()
	if err := b.ps.Subscribe(ctx, ch); err != nil {
		return fmt.Errorf("redis broker: subscribe to %q (retried on reconnect): %w", room, err)
	}
	select {
	case <-confirmed:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("redis broker: subscribe to %q not confirmed: %w", room, ctx.Err())
	}
}

// Unsubscribe stops receiving a room's messages.
func (b *Broker) Unsubscribe(ctx context.Context, room string) error {
	ctx, cancel := context.WithTimeout(ctx, b.opts.PublishTimeout)
	defer cancel()
	if err := b.ps.Unsubscribe(ctx, b.channelRoom(room)); err != nil {
		return fmt.Errorf("redis broker: unsubscribe from %q: %w", room, err)
	}
	return nil
}

// Close stops the goroutines and the subscription. It leaves this node's
// presence entries and session counts to expire (hub.Shutdown removes
// them first on a clean stop), as they would if the node died.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		if b.cancel != nil {
			b.cancel()
			b.closeErr = b.ps.Close()
			b.wg.Wait()
		}
		if b.owned {
			b.closeErr = errors.Join(b.closeErr, b.client.Close())
		}
	})
	return b.closeErr
}

func memberKey(m hub.Member) string { return m.Session + "|" + m.User }

func (b *Broker) expiry() float64 {
	return float64(time.Now().Add(b.opts.PresenceTTL).UnixMilli())
}

// AddMember records m in room for every node to see.
func (b *Broker) AddMember(ctx context.Context, room string, m hub.Member) error {
	b.mu.Lock()
	if b.members[room] == nil {
		b.members[room] = make(map[string]struct{})
	}
	b.members[room][memberKey(m)] = struct{}{}
	b.mu.Unlock()
	return b.touch(ctx, b.keyPresence(room), memberKey(m))
}

// touch sets a sorted-set entry's expiry and keeps the key itself from
// outliving its entries.
func (b *Broker) touch(ctx context.Context, key, member string) error {
	ctx, cancel := context.WithTimeout(ctx, b.opts.PublishTimeout)
	defer cancel()
	_, err := b.client.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.ZAdd(ctx, key, goredis.Z{Score: b.expiry(), Member: member})
		p.PExpire(ctx, key, 2*b.opts.PresenceTTL)
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis broker: %w", err)
	}
	return nil
}

// RemoveMember removes m from room.
func (b *Broker) RemoveMember(ctx context.Context, room string, m hub.Member) error {
	b.mu.Lock()
	if set := b.members[room]; set != nil {
		delete(set, memberKey(m))
		if len(set) == 0 {
			delete(b.members, room)
		}
	}
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, b.opts.PublishTimeout)
	defer cancel()
	if err := b.client.ZRem(ctx, b.keyPresence(room), memberKey(m)).Err(); err != nil {
		return fmt.Errorf("redis broker: %w", err)
	}
	return nil
}

// Members lists room's members on every node whose entries have not expired.
func (b *Broker) Members(ctx context.Context, room string) ([]hub.Member, error) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.PublishTimeout)
	defer cancel()
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	entries, err := b.client.ZRangeByScore(ctx, b.keyPresence(room), &goredis.ZRangeBy{Min: "(" + now, Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("redis broker: %w", err)
	}
	out := make([]hub.Member, 0, len(entries))
	for _, e := range entries {
		session, user, _ := strings.Cut(e, "|")
		out = append(out, hub.Member{User: user, Session: session})
	}
	return out, nil
}

// acquire atomically drops expired reservations, checks the count and adds one.
var acquire = goredis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1`)

// AcquireSession takes one of user's max session slots across all nodes.
func (b *Broker) AcquireSession(ctx context.Context, user string, max int) (func(), error) {
	var raw [9]byte
	_, _ = rand.Read(raw[:])
	id := base64.RawURLEncoding.EncodeToString(raw[:])
	key := b.keySessions(user)
	ctx, cancel := context.WithTimeout(ctx, b.opts.PublishTimeout)
	defer cancel()
	ok, err := acquire.Run(ctx, b.client, []string{key},
		time.Now().UnixMilli(), max, int64(b.expiry()), id, (2 * b.opts.PresenceTTL).Milliseconds()).Int()
	if err != nil {
		return nil, fmt.Errorf("redis broker: %w", err)
	}
	if ok == 0 {
		return nil, hub.ErrTooManySessions
	}
	b.mu.Lock()
	b.sessions[id] = user
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		delete(b.sessions, id)
		b.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), b.opts.PublishTimeout)
		defer cancel()
		if err := b.client.ZRem(ctx, key, id).Err(); err != nil {
			b.report(fmt.Errorf("redis broker: release session slot of %q: %w", user, err))
		}
	}, nil
}

// refresh renews this node's presence entries and session slots every
// third of PresenceTTL, so they expire only when the node is gone.
func (b *Broker) refresh() {
	defer b.wg.Done()
	t := time.NewTicker(b.opts.PresenceTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		b.mu.Lock()
		var keys, members []string
		for room, set := range b.members {
			for m := range set {
				keys, members = append(keys, b.keyPresence(room)), append(members, m)
			}
		}
		for id, user := range b.sessions {
			keys, members = append(keys, b.keySessions(user)), append(members, id)
		}
		b.mu.Unlock()
		if len(keys) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(b.ctx, b.opts.PublishTimeout)
		_, err := b.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			exp := b.expiry()
			for i := range keys {
				p.ZAdd(ctx, keys[i], goredis.Z{Score: exp, Member: members[i]})
				p.PExpire(ctx, keys[i], 2*b.opts.PresenceTTL)
			}
			return nil
		})
		cancel()
		if err != nil && b.ctx.Err() == nil {
			b.report(fmt.Errorf("redis broker: refresh presence: %w", err))
		}
	}
}

package redis

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
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
	DefaultPartitions     = 16
	DefaultPoolSize       = 100
)

// Options configures a Broker. One of URL, Addrs and Client is required.
type Options struct {
	// URL is a redis:// or rediss:// (TLS) URL of a single Redis, e.g.
	// "redis://:password@127.0.0.1:6379/0".
	URL string
	// Addrs are host:port addresses of some nodes of a Redis Cluster; the
	// broker finds the others.
	Addrs []string
	// Client is an existing client: a *goredis.Client, a
	// *goredis.ClusterClient, or another goredis.UniversalClient (Sentinel).
	// The broker does not close a client it did not create.
	Client goredis.UniversalClient
	// Prefix starts every key and channel, so that several applications
	// can share one Redis. By default "ginws:".
	Prefix string
	// Partitions is how many hash slots the rooms and users are spread
	// over, by a hash of their names: every key and channel of one room
	// (or user) carries its partition as a hash tag, so that they share a
	// slot on a cluster, and a node keeps one sharded subscription per
	// partition. Changing it renames every key, as a new Prefix would.
	// By default 16.
	Partitions int
	// PublishTimeout bounds a publish: with Redis unreachable, Emit fails
	// after at most this long instead of hanging. It bounds the other
	// round trips too, waiting for a pooled connection included. By
	// default 1 s.
	PublishTimeout time.Duration
	// PoolSize is how many connections the broker keeps to Redis (to each
	// master on a cluster) besides its subscriptions. A join makes three
	// or four round trips (presence, its count, the history), so a crowd
	// reconnecting after a deploy needs more than go-redis's default of
	// ten per CPU: with 20 on two cores, bench/'s rolling deploy timed out
	// history reads and clients lost their recovery. By default 100; a
	// pool_size in URL wins. Ignored with Client.
	PoolSize int
	// PresenceTTL is how long a node's presence entries and session counts
	// outlive it when it dies without cleaning up; a live node refreshes
	// them every third of it. By default 30 s.
	PresenceTTL time.Duration
	// AsyncPublish makes Publish and PublishHistory (and so Emit) return
	// once the message is queued for its round trip, in order, rather than
	// once Redis has it. A publisher that emits one event after another (a
	// feed, a ticker) is then not held to a round trip per event, and its
	// events go to Redis in batches. A message Redis did not take is
	// reported to the hub's error hook, with the number lost (at most once
	// a second), instead of returned; an event of a room with history then
	// reaches no one, this node's members included, since they get it from
	// Redis in offset order.
	// Up to 4,096 messages or 16 MiB wait per lane (one on a single Redis,
	// one per master on a cluster); beyond that a publisher waits for
	// room, up to its context and PublishTimeout.
	AsyncPublish bool
	// NodeID names this node; by default a random id.
	NodeID string
	// Logger receives the broker's logs. By default slog.Default().
	Logger *slog.Logger
}

// Broker is a hub.Broker on Redis pub/sub. Room messages travel on one
// channel per room and user-directed messages on one channel per user, each
// subscribed while this node has a member in the room or a session of the
// user; global messages on one channel every node subscribes to. On a Redis
// Cluster the room and user channels are sharded (SPUBLISH, SSUBSCRIBE,
// Redis 7), so that a message travels only to the shard that owns its
// channel and to the nodes subscribed there. The broker also keeps presence
// and per-user session counts across nodes in sorted sets whose entries
// expire unless their node refreshes them.
type Broker struct {
	opts   Options
	client goredis.UniversalClient
	owned  bool
	node   string
	log    *slog.Logger

	deliver func(hub.Message)
	report  func(error)
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	// all carries the global channel, and on a single Redis every channel;
	// on a cluster, shards[p] carries partition p's channels.
	all    *conn
	shards []*conn
	// On a single Redis one lane publishes every message. On a cluster
	// global publishes the global channel's, and masters[addr] those of
	// the partitions that the master at addr serves: one round trip per
	// master carries all of them, and a master failing over holds up
	// only its own. Its size is the number of masters seen.
	single  *lane
	global  *lane
	lanesMu sync.Mutex
	masters map[string]*lane
	// partitions holds, on a cluster, the lane of each partition that has
	// messages pending (see laneFor).
	partitions map[int]stuck
	closeOnce  sync.Once
	closeErr   error

	mu        sync.Mutex
	closed    bool  // Close has begun: no new drainer starts
	unsent    int   // messages AsyncPublish lost and has not reported yet
	unsentErr error // the last error among them
	// unsentTimer reports them when they were held back.
	unsentTimer *time.Timer
	reported    time.Time                      // when AsyncPublish last reported lost messages
	broken      int                            // connections whose subscription is lost
	members     map[string]map[string]struct{} // room -> presence entries of this node
	sessions    map[string]string              // reservation id -> user
}

var (
	_ hub.Broker         = (*Broker)(nil)
	_ hub.UserRouter     = (*Broker)(nil)
	_ hub.PresenceStore  = (*Broker)(nil)
	_ hub.MemberCounter  = (*Broker)(nil)
	_ hub.SessionCounter = (*Broker)(nil)
	_ hub.HealthChecker  = (*Broker)(nil)
)

// New returns a Broker for opts. It does not connect yet: a Redis that is
// down at start is retried in the background like any outage.
func New(opts Options) (*Broker, error) {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Partitions <= 0 {
		opts.Partitions = DefaultPartitions
	}
	if opts.PublishTimeout == 0 {
		opts.PublishTimeout = DefaultPublishTimeout
	}
	if opts.PoolSize <= 0 {
		opts.PoolSize = DefaultPoolSize
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
		members: make(map[string]map[string]struct{}), sessions: make(map[string]string)}
	if b.client != nil {
		return b, nil
	}
	switch {
	case opts.URL != "" && len(opts.Addrs) > 0:
		return nil, errors.New("redis broker: set Options.URL or Options.Addrs, not both")
	case opts.URL != "":
		o, err := goredis.ParseURL(opts.URL)
		if err != nil {
			return nil, fmt.Errorf("redis broker: %w", err)
		}
		// Fail fast while Redis is away; the hub keeps serving locally.
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = opts.PublishTimeout, opts.PublishTimeout, opts.PublishTimeout
		o.MaxRetries = 1
		if o.PoolSize == 0 { // the URL's pool_size wins
			o.PoolSize = opts.PoolSize
		}
		b.client = goredis.NewClient(o)
	case len(opts.Addrs) > 0:
		b.client = goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: opts.Addrs,
			DialTimeout: opts.PublishTimeout, ReadTimeout: opts.PublishTimeout, WriteTimeout: opts.PublishTimeout,
			MaxRetries: 1, PoolSize: opts.PoolSize})
	default:
		return nil, errors.New("redis broker: Options.URL, Options.Addrs or Options.Client is required")
	}
	b.owned = true
	return b, nil
}

// Start subscribes to the global channel and starts the receiving and
// refreshing goroutines, which Close stops.
func (b *Broker) Start(deliver func(hub.Message), report func(error)) error {
	b.deliver, b.report = deliver, report
	b.ctx, b.cancel = context.WithCancel(context.Background())
	ctx, cancel := context.WithTimeout(b.ctx, b.opts.PublishTimeout)
	defer cancel()
	var err error
	b.all, err = b.newConn(ctx, false, b.channelAll())
	if _, ok := b.client.(*goredis.ClusterClient); ok {
		b.shards = make([]*conn, b.opts.Partitions)
		for p := range b.shards {
			// This channel keeps the connection on its partition's
			// slot even while the partition has no room or user here.
			var e error
			b.shards[p], e = b.newConn(ctx, true, b.opts.Prefix+partitionTag(p)+"node")
			err = errors.Join(err, e)
		}
	}
	if b.shards == nil {
		// One Redis runs one script at a time whatever the lane: one
		// lane for everything makes fewer, larger round trips. With 300
		// rooms and 32 publishers that halved the CPU per event of the
		// publishing node and took a third off Redis's.
		b.single = &lane{}
		b.global = b.single
	} else {
		b.global = &lane{global: true}
		b.masters = make(map[string]*lane)
		b.partitions = make(map[int]stuck)
	}
	b.wg.Add(1)
	go b.refresh()
	if err != nil {
		return fmt.Errorf("redis broker: subscribe: %w", err)
	}
	return nil
}

// Health returns nil while Redis answers and every subscription works.
func (b *Broker) Health(ctx context.Context) error {
	b.mu.Lock()
	broken := b.broken
	b.mu.Unlock()
	if broken > 0 {
		return fmt.Errorf("redis broker: %d subscription connections lost, reconnecting", broken)
	}
	if err := b.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis broker: %w", err)
	}
	return nil
}

// Publish sends m to the other nodes, failing within PublishTimeout. It
// goes in the next round trip of its room's or user's partition (see lane).
func (b *Broker) Publish(ctx context.Context, m hub.Message) error {
	h := header(b.node, m)
	p := &publication{head: h, payload: m.Payload, action: m.Action != hub.ActionDeliver, size: len(h) + len(m.Payload)}
	switch m.Kind {
	case hub.TargetRoom:
		p.keys, p.partition = []string{b.channelRoom(m.Room)}, b.partition(m.Room)
	case hub.TargetUser:
		p.keys, p.partition = []string{b.channelUser(m.User)}, b.partition(m.User)
	default:
		p.keys, p.partition = []string{b.channelAll()}, -1
	}
	if err := b.send(ctx, p); err != nil {
		return fmt.Errorf("redis broker: publish: %w", err)
	}
	return nil
}

// Close stops the goroutines and the subscriptions. It leaves this node's
// presence entries and session counts to expire (hub.Shutdown removes
// them first on a clean stop), as they would if the node died.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		if b.unsentTimer != nil {
			b.unsentTimer.Stop()
		}
		b.mu.Unlock()
		if b.cancel != nil {
			b.cancel()
			b.mu.Lock()
			pss := []*goredis.PubSub{b.all.ps}
			for _, c := range b.shards {
				pss = append(pss, c.ps)
			}
			b.mu.Unlock()
			for _, ps := range pss {
				// A connection go-redis closed already (that of a
				// node it dropped from the cluster) is no error.
				if err := ps.Close(); !errors.Is(err, goredis.ErrClosed) {
					b.closeErr = errors.Join(b.closeErr, err)
				}
			}
			b.wg.Wait()
		}
		b.unsentReport(0, nil) // what was lost last
		if b.owned {
			b.closeErr = errors.Join(b.closeErr, b.client.Close())
		}
	})
	return b.closeErr
}

// Package redis is the hub.Broker for applications that run on many nodes:
// a message sent on node A reaches the room members, users and everyone
// connected to nodes B and C, through Redis pub/sub
// (github.com/redis/go-redis/v9), on a single Redis or a Redis Cluster.
//
//	b, err := redis.New(redis.Options{URL: os.Getenv("REDIS_URL")})
//	// or redis.Options{Addrs: []string{"10.0.0.1:7000", "10.0.0.2:7000"}} on a cluster
//	h := hub.New(hub.Options{Broker: b})
//
// A node delivers its own messages to its own sessions directly and ignores
// their echo from Redis, so every recipient gets a message once. A node
// subscribes to a room's channel only while it has a member there, and to a
// user's channel only while it has a session of that user. Messages of one
// publisher to one room, or to one user, keep their order.
//
// On a cluster, room and user channels are sharded (SPUBLISH, SSUBSCRIBE;
// Redis 7): rooms and users are spread over Options.Partitions hash slots,
// every key and the channel of one room carry its partition as a hash tag,
// and each node keeps one subscription connection per partition, which
// go-redis moves to the new master after a failover.
//
// Publishing is batched without a timer: the messages published while a
// round trip is in flight (on a cluster, a round trip for the same
// master) go together in the next one, one script call that keeps their
// order and gives the events of rooms with history gap-free offsets. The
// messages of a batch to one room or user in a row travel as one run: one
// PUBLISH, one stream entry, one read and one wake-up for each node, and a
// node adds each event's offset itself. Under load, Redis and the nodes pay
// a round trip per batch and a message per run rather than per event; a
// lone message goes at once. Emit returns once Redis has the message (or
// its error), after at most the round trip in flight and its own; with
// Options.AsyncPublish, once it is queued.
//
// A room's history is a Redis stream of runs whose IDs are their last
// offsets, with its TTL: it keeps the run that holds the Size-th newest
// event and those after it, and is trimmed each time a quarter of the size
// was added (trimming on every event made XADD three times as costly).
// Clients are served exactly the last Size events, none older than the
// TTL.
//
// Nodes exchange messages in a form of this package's own, with a version
// byte, which changed when runs came in. A node drops a message of another
// version and reports it to the hub's error hook, and nodes of two versions
// keep apart histories: during a rolling upgrade across such a change,
// messages between old and new nodes are lost (clients that rejoin on a
// new node get recovered:false). Run one version on all the nodes that
// share a Redis.
//
// Presence (Hub.Members and the presence built-in) and MaxSessionsPerUser
// count sessions on every node; the entries of a node that dies without
// cleaning up expire after Options.PresenceTTL.
//
// When Redis is unreachable, local delivery goes on, Emit returns the
// publish error within Options.PublishTimeout, the outage reaches the hub's
// error hook once and Hub.Health reports it; go-redis reconnects and
// subscribes again to every channel the node needs. Messages published
// during the outage do not reach the other nodes: once a subscription is
// back (or was moved by a failover or resharding, which Redis announces),
// the node closes with 1013 (missed_events) every session that may have
// missed a message on it (the members of its rooms and the sessions of its
// users; for the global channel, every session), and their clients resume.
// A room's history gets a new epoch when a different master (a promoted
// replica, or a restarted Redis) took it over, since the newest events may
// not have been replicated: a client resuming from one of them gets
// recovered:false, never a gap.
//
// Every publish to a room or user goes through a script (EVALSHA, EVAL on
// a cold script cache) whose keys include the channel, and the history
// scripts read the master's replication id with INFO: an ACL user needs
// @scripting, +info (in @dangerous; else the epoch is not renewed on a
// failover) and key and channel patterns that cover Options.Prefix.
//
// Tested against a single redis-server 7 and a cluster of six (Debian's
// package), including a master killed with SIGKILL and a manual failover;
// Sentinel goes through a
// goredis.UniversalClient passed as Options.Client and is not covered by
// the tests.
package redis

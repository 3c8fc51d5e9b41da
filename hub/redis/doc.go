// Package redis is the hub.Broker for applications that run on many nodes:
// a message sent on node A reaches the room members, users and everyone
// connected to nodes B and C, through Redis pub/sub (github.com/redis/go-redis/v9).
//
//	b, err := redis.New(redis.Options{URL: os.Getenv("REDIS_URL")})
//	h := hub.New(hub.Options{Broker: b})
//
// A node delivers its own messages to its own sessions directly and ignores
// their echo from Redis, so every recipient gets a message once. A node
// subscribes to a room's channel only while it has a member there. Messages
// of one publisher to one room keep their order.
//
// Presence (Hub.Members and the presence built-in) and MaxSessionsPerUser
// count sessions on every node; the entries of a node that dies without
// cleaning up expire after Options.PresenceTTL.
//
// When Redis is unreachable, local delivery goes on, Emit returns the
// publish error within Options.PublishTimeout, the outage reaches the hub's
// error hook once and Hub.Health reports it; go-redis reconnects and
// subscribes again to every channel the node needs. Messages published
// during the outage do not reach the other nodes.
//
// Tested against a single redis-server 7 (Debian's package); Sentinel and
// Cluster go through a goredis.UniversalClient passed as Options.Client, and
// are not covered by the tests.
package redis

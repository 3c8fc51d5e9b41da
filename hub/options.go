package hub

import (
	"compress/flate"
	"log/slog"
	"path"
	"strconv"
	"time"

	"github.com/ginws/ginws/validate"
)

// Defaults for the Options fields left at zero.
const (
	DefaultMaxFrameBytes      = 64 << 10
	DefaultMaxDepth           = 32
	DefaultSendQueueBytes     = 1 << 20
	DefaultSendQueueFrames    = 4096
	DefaultPingInterval       = 25 * time.Second
	DefaultHeartbeatTimeout   = 60 * time.Second
	DefaultWriteTimeout       = 10 * time.Second
	DefaultCloseTimeout       = 2 * time.Second
	DefaultRateLimit          = 50
	DefaultRateBurst          = 100
	DefaultRateLimitStrikes   = 20
	DefaultMaxInvalidFrames   = 20
	DefaultMaxSessionsPerUser = 64
	DefaultMaxPending         = 256
	DefaultMaxPendingBytes    = 256 << 10
	DefaultSocketSendBuffer   = 64 << 10
	DefaultMaxSessions        = 100_000
	DefaultMaxRooms           = 128
	DefaultJoinRate           = 10
	DefaultHistoryBytes       = 64 << 20
	DefaultPresenceInterval   = 100 * time.Millisecond
	DefaultPresenceBatch      = 16
	DefaultCompressMinSize    = 256
)

// Options configures a Hub. The zero value gives the defaults of the design
// document; every field says what zero means.
type Options struct {
	// MaxFrameBytes is the largest frame read; a larger one closes the
	// connection with 1009; with Compression, a compressed message counts
	// inflated. By default 65536 (accepted; 65537 is not).
	MaxFrameBytes int64
	// MaxDepth limits the JSON nesting of a frame. By default 32.
	MaxDepth int
	// SendQueueBytes and SendQueueFrames bound what may wait to be written
	// to one session: queued events, answers, Pongs, a join's replay, and
	// what was written but still waits for the peer in the hub's socket
	// backlog. A session that overflows either is closed with 1013
	// (slow_consumer): nothing is dropped silently. By default 1 MiB and
	// 4096 frames; at most 1 GiB and 2^30 frames. Queued events are
	// written as one array frame when the peer falls behind.
	SendQueueBytes  int
	SendQueueFrames int
	// SocketSendBuffer is the kernel's send buffer of each connection
	// (SO_SNDBUF; Linux reserves twice the value), so that a peer that
	// reads nothing parks a bounded amount in the kernel, outside the Go
	// heap. By default 64 KiB; negative leaves the kernel's default, which
	// grows to several MiB per connection.
	SocketSendBuffer int
	// PingInterval is how often the server sends a Ping control frame; the
	// welcome frame tells clients this interval. By default 25 s.
	PingInterval time.Duration
	// HeartbeatTimeout closes a session that sent no frame and no Pong for
	// this long. By default 60 s.
	HeartbeatTimeout time.Duration
	// WriteTimeout closes a connection whose peer takes none of what is
	// written to it, the close frame included, for this long. By default
	// 10 s.
	WriteTimeout time.Duration
	// Writers is the number of goroutines that write events to all the
	// hub's connections. Their writes never wait for a peer (one that does
	// not keep up gets a goroutine of its own until it has caught up), and
	// when they fall behind they put more events into each write. By
	// default one less than runtime.GOMAXPROCS(0), at least one: the CPU
	// left over reads requests, which are answered by the goroutine that
	// handled them, so answers do not wait behind a broadcast.
	Writers int
	// DrainWindow spreads Shutdown's closes: the sessions are closed with
	// 1001 one after the other, in random order, over this long (or over
	// half the time Shutdown's context leaves, when that is shorter), so
	// that their clients do not all reconnect elsewhere at the same
	// instant. New upgrades are refused from its start, and Health reports
	// it at once, so that a load balancer stops routing here. By default 0:
	// every session is closed at once.
	DrainWindow time.Duration
	// CloseTimeout is how long the server waits for the peer's close frame
	// after sending its own, reading and discarding meanwhile. By default 2 s.
	CloseTimeout time.Duration
	// RateLimit is the sustained number of frames per second a session may
	// send, RateBurst the bucket size. Every frame counts, Ping and Pong
	// control frames included. Answers have a bucket of the same size of
	// their own, from which one costs a token for each 16 KiB it holds (a
	// join's replay, a history or presence list): while it is empty, requests
	// other than join and leave get rate_limited, so a small request cannot
	// ask for an unbounded stream of output. By default 50/s with a burst of
	// 100; a negative RateLimit disables both.
	RateLimit float64
	RateBurst int
	// RateLimitStrikes is the number of rate_limited replies within one
	// second after which the session is closed with 4429. By default 20.
	RateLimitStrikes int
	// MaxInvalidFrames closes a session with 1008 after that many invalid
	// frames in a row (each also gets an error reply): bad_request,
	// unknown_type, validation_failed, too_large or unsupported. Refusals of
	// valid frames (forbidden, not_member, too_many_rooms, an application's
	// own codes) do not count. By default 20.
	MaxInvalidFrames int
	// MaxSessionsPerUser limits concurrent sessions of one user id; Accept
	// returns ErrTooManySessions beyond it. By default 64; negative: no limit.
	MaxSessionsPerUser int
	// MaxSessions limits the sessions of this hub; Accept returns ErrHubFull
	// beyond it (the middleware answers 503). By default 100,000; negative:
	// no limit. Size it to the node's memory (README, "Memory bounds").
	MaxSessions int
	// MaxPending and MaxPendingBytes bound the frames of one session
	// waiting for its handlers (handlers run one at a time per session, in
	// order), in number and in bytes. A frame beyond either gets
	// rate_limited; one frame is always taken. By default 256 frames and
	// 256 KiB.
	MaxPending      int
	MaxPendingBytes int
	// MaxRooms limits the rooms one session is in; a join beyond it gets
	// too_many_rooms. By default 128; negative: no limit.
	MaxRooms int
	// JoinRate is the sustained number of joins and leaves per second of
	// one session; beyond it they get rate_limited. The burst is twice
	// MaxRooms, so that a client can leave and join all its rooms at once.
	// By default 10/s; negative: no limit.
	JoinRate float64
	// HistoryBytes bounds the memory of all rooms' history on this hub
	// when the hub keeps it (without a broker that keeps history, such as
	// the Redis broker): beyond it the history of the least recently used
	// rooms is forgotten, and a client resuming there gets
	// "recovered":false. By default 64 MiB; negative: no limit.
	HistoryBytes int64
	// PresenceInterval and PresenceBatch coalesce presence events of a
	// room: the first change is sent at once, later ones within the
	// interval are gathered (a join and a leave of one session cancel
	// out) and sent at its end, one event each when there are at most
	// PresenceBatch of them, else as one presence.changed summary
	// (PROTOCOL.md section 3). So neither churn nor a crowd joining at once
	// floods the members. By default 100 ms and 16.
	PresenceInterval time.Duration
	PresenceBatch    int
	// Compression negotiates permessage-deflate with the clients that
	// offer it (browsers do). Off by default.
	Compression Compression

	// Rooms returns the options of a room (MatchRooms builds one from
	// patterns). It is called when a room is created and when an event is
	// sent to it, so it must be cheap and stable. By default rooms have no
	// presence events and no history.
	Rooms func(room string) RoomOptions
	// JoinPolicy decides whether a session may join a room: nil allows, an
	// error refuses (an *Error is sent as is, anything else as forbidden).
	// By default every join is allowed.
	JoinPolicy func(c *Context, room string) error
	// OnConnect runs after the upgrade, before the welcome frame; an error
	// refuses the session, which is closed with 4403.
	OnConnect func(s *Session) error
	// OnDisconnect runs once per session after it left every room.
	OnDisconnect func(s *Session)
	// OnJoin and OnLeave run after a session joined or left a room
	// (leaving on disconnect included).
	OnJoin, OnLeave func(s *Session, room string)
	// OnError receives errors that no caller sees: handler failures,
	// panics, write failures, broker errors. s may be nil.
	OnError func(s *Session, err error)

	// Broker carries deliveries to other nodes. By default a MemoryBroker
	// of this hub alone.
	Broker Broker
	// Validator decodes and validates handler input. By default
	// validate.New with MaxBytes = MaxFrameBytes and MaxDepth.
	Validator *validate.Validator
	// Observer receives events for metrics (see package metrics). By
	// default none.
	Observer Observer
	// Logger receives structured logs (never tokens or message bodies). By
	// default slog.Default().
	Logger *slog.Logger
}

// Compression configures permessage-deflate (RFC 7692), without context
// takeover in either direction: each message is compressed on its own, so
// an event sent to a room, a user or everyone is compressed once for all
// the sessions that take it, and a session keeps no compressor between
// messages. Array frames are made of their events' compressed forms;
// messages that do not shrink go as they are. A compressed message a
// client sends is inflated to at most MaxFrameBytes (1 GiB when it is
// negative); one that inflates past it closes the session with 1009, as a
// frame too large does.
type Compression struct {
	// Enabled negotiates the extension with clients that offer it.
	Enabled bool
	// MinSize is the size below which events and answers go
	// uncompressed: small JSON gains little and costs CPU. By default 256
	// bytes; negative compresses every frame.
	MinSize int
	// Level is flate's compression level, from 1 (fastest, the default)
	// to 9.
	Level int
}

// RoomOptions configures one room.
type RoomOptions struct {
	// Presence sends presence.join and presence.leave to the room's other
	// members when a session joins or leaves.
	Presence bool
	// History keeps the room's recent events for recovery after a
	// reconnect; off unless History.Size > 0.
	History HistoryOptions
}

const maxSendQueue = 1 << 30

func (o Options) withDefaults() Options {
	setDefault(&o.MaxFrameBytes, DefaultMaxFrameBytes)
	setDefault(&o.MaxDepth, DefaultMaxDepth)
	setDefault(&o.SendQueueBytes, DefaultSendQueueBytes)
	setDefault(&o.SendQueueFrames, DefaultSendQueueFrames)
	// A session's counts are 32-bit: a few bytes less for every session.
	o.SendQueueBytes, o.SendQueueFrames = min(o.SendQueueBytes, maxSendQueue), min(o.SendQueueFrames, maxSendQueue)
	setDefault(&o.PingInterval, DefaultPingInterval)
	setDefault(&o.HeartbeatTimeout, DefaultHeartbeatTimeout)
	setDefault(&o.WriteTimeout, DefaultWriteTimeout)
	setDefault(&o.CloseTimeout, DefaultCloseTimeout)
	setDefault(&o.RateLimit, DefaultRateLimit)
	setDefault(&o.RateBurst, DefaultRateBurst)
	setDefault(&o.RateLimitStrikes, DefaultRateLimitStrikes)
	setDefault(&o.MaxInvalidFrames, DefaultMaxInvalidFrames)
	setDefault(&o.MaxSessionsPerUser, DefaultMaxSessionsPerUser)
	setDefault(&o.MaxPending, DefaultMaxPending)
	setDefault(&o.MaxPendingBytes, DefaultMaxPendingBytes)
	setDefault(&o.SocketSendBuffer, DefaultSocketSendBuffer)
	setDefault(&o.MaxSessions, DefaultMaxSessions)
	setDefault(&o.MaxRooms, DefaultMaxRooms)
	setDefault(&o.JoinRate, DefaultJoinRate)
	setDefault(&o.HistoryBytes, DefaultHistoryBytes)
	setDefault(&o.PresenceInterval, DefaultPresenceInterval)
	setDefault(&o.PresenceBatch, DefaultPresenceBatch)
	setDefault(&o.Compression.MinSize, DefaultCompressMinSize)
	o.Compression.MinSize = max(o.Compression.MinSize, 0)
	o.Compression.Level = min(max(o.Compression.Level, flate.BestSpeed), flate.BestCompression)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Validator == nil {
		o.Validator = validate.New(validate.Options{MaxBytes: int(o.MaxFrameBytes), MaxDepth: o.MaxDepth})
	}
	return o
}

func setDefault[T int | int64 | float64 | time.Duration](p *T, def T) {
	if *p == 0 {
		*p = def
	}
}

// MatchRooms returns a Rooms function for Options that gives each room the
// options of the first pattern (path.Match syntax: "chat/*", "lobby") it
// matches, in the order of patterns; other rooms get none.
func MatchRooms(patterns []string, opts map[string]RoomOptions) func(room string) RoomOptions {
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil {
			panic("hub: MatchRooms: bad pattern " + strconv.Quote(p))
		}
	}
	return func(room string) RoomOptions {
		for _, p := range patterns {
			if ok, _ := path.Match(p, room); ok {
				return opts[p]
			}
		}
		return RoomOptions{}
	}
}

// roomOptions returns the application's options for a room.
func (h *Hub) roomOptions(room string) RoomOptions {
	if h.opts.Rooms == nil {
		return RoomOptions{}
	}
	return h.opts.Rooms(room)
}

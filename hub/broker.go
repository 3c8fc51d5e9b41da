package hub

import "context"

// TargetKind says who a Message is for.
type TargetKind uint8

// The kinds of delivery that cross nodes.
const (
	TargetRoom TargetKind = iota + 1
	TargetUser
	TargetAll
)

// Message is one encoded frame on its way to the sessions of other nodes.
type Message struct {
	Kind TargetKind
	// Room or User names the recipients for TargetRoom and TargetUser.
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

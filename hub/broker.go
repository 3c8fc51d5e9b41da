package hub

import (
	"context"

	"github.com/ginws/ginws/wire"
)

// TargetKind says who a Message is for.
type TargetKind uint8

// The kinds of delivery that cross nodes.
const (
	TargetRoom TargetKind = iota + 1
	TargetUser
	TargetAll
)

// Message is one encoded event on its way to the sessions of other nodes, or
// an action on those sessions.
type Message struct {
	Kind TargetKind
	// Room or User names the recipients for TargetRoom and TargetUser;
	// Room is the room to join for ActionJoin.
	Room, User string
	// Except is the id of a session that must not receive it.
	Except string
	// Binary sends Payload as a binary frame instead of a text frame.
	Binary bool
	// Payload is the event, encoded once.
	Payload []byte
	// Offset is the event's place in its room's history; 0 for rooms
	// without history and for ephemeral events.
	Offset uint64
	// Epoch is the epoch of the room's history that Offset belongs to
	// (see Position); empty when Offset is 0.
	Epoch string
	// Key marks a replaceable event (Target.Latest): a newer one with the
	// same key replaces it in a session's queue while it waits there.
	// Replaceable events carry no Offset.
	Key string
	// Action is what the receiving nodes do: deliver Payload (the zero
	// value), or act on the recipients' sessions.
	Action Action
	// Code is the close code of ActionDisconnect.
	Code wire.StatusCode
}

// Action is what a Message asks of the nodes that receive it.
type Action uint8

// The actions of a Message.
const (
	// ActionDeliver delivers Payload.
	ActionDeliver Action = iota
	// ActionDisconnect closes the recipients' sessions with Code
	// (Hub.DisconnectUser).
	ActionDisconnect
	// ActionJoin joins the sessions of User to Room (Hub.JoinUser).
	ActionJoin
	// ActionMissed tells this node's hub that messages for the recipients
	// may have been lost on their way from the broker (its subscription
	// broke): their sessions are closed with 1013 and resume. Brokers
	// deliver it to their own hub only.
	ActionMissed
)

// Broker carries messages between the hubs (nodes) of one application. A
// hub always delivers to its own sessions itself; the broker's job is the
// other nodes. Implementations must be safe for concurrent use.
type Broker interface {
	// Start is called once by the hub with the function that delivers a
	// message from another node to this node's sessions, and the one that
	// reports errors no caller sees (a lost connection to Redis, say) to the
	// hub's error hook.
	Start(deliver func(Message), report func(error)) error
	// Publish sends m, every field of it (Action and Code too), to every
	// other node that needs it. It must not block for long when other
	// nodes are unreachable: fail fast instead.
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

// MemberCounter is implemented by presence stores that count a room's
// members without listing them; a join's ack says how many there are, and
// a crowd joining one room would otherwise read it whole once per join.
type MemberCounter interface {
	CountMembers(ctx context.Context, room string) (int, error)
}

// SessionCounter is implemented by brokers that count a user's sessions on
// every node, so that MaxSessionsPerUser holds across nodes. Acquire
// returns ErrTooManySessions when the user is at max; release frees the slot.
type SessionCounter interface {
	AcquireSession(ctx context.Context, user string, max int) (release func(), err error)
}

// UserRouter is implemented by brokers that carry a user's messages only to
// the nodes where that user has a session, instead of to every node. The hub
// subscribes a user while this node has a session of theirs, as it does a
// room while it has a member there.
type UserRouter interface {
	SubscribeUser(ctx context.Context, user string) error
	UnsubscribeUser(ctx context.Context, user string) error
}

// HealthChecker is implemented by brokers that can fail (Redis): Health
// returns nil while other nodes are reachable.
type HealthChecker interface {
	Health(ctx context.Context) error
}

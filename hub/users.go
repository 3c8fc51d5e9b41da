package hub

import (
	"context"
	"fmt"

	"github.com/ginws/ginws/wire"
)

// DisconnectUser closes every session of user, on every node, with code:
// wire.CloseForbidden to kick them for good, wire.CloseTokenExpired to make
// their clients fetch a new token first. Sessions on this node are closed
// before it returns; the broker's error, if other nodes could not be
// reached, is returned.
func (h *Hub) DisconnectUser(ctx context.Context, user string, code wire.StatusCode) error {
	if code < 1000 || code > 4999 {
		return fmt.Errorf("hub: %d is not a close code", code)
	}
	return h.publish(ctx, Message{Kind: TargetUser, User: user, Action: ActionDisconnect, Code: code})
}

// JoinUser joins every session of user, on every node, to room, as if each
// had sent a join without since; JoinPolicy is not asked, the application
// decided. Each session gets a room.joined event (docs/PROTOCOL.md) instead
// of an ack, and its client joins the room again after a reconnect. A join
// that fails for a session (MaxRooms, say) reaches the error hook.
func (h *Hub) JoinUser(ctx context.Context, user, room string) error {
	if !validName(room, 128, true) {
		return fmt.Errorf("%w: room %q", ErrBadName, room)
	}
	return h.publish(ctx, Message{Kind: TargetUser, User: user, Room: room, Action: ActionJoin})
}

// deliverAction applies an action to this node's recipients.
func (h *Hub) deliverAction(m Message) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	switch m.Kind {
	case TargetRoom:
		if r := h.rooms[m.Room]; r != nil {
			for s := range r.members {
				h.actOn(s, m)
			}
		}
	case TargetUser:
		for s := range h.users[m.User] {
			h.actOn(s, m)
		}
	case TargetAll:
		for s := range h.sessions {
			h.actOn(s, m)
		}
	}
}

// actOn applies an action to a session. It runs under the hub's read lock,
// so it only queues.
func (h *Hub) actOn(s *Session, m Message) {
	switch m.Action {
	case ActionDisconnect:
		reason := m.Code.Reason()
		if reason == "" {
			reason = "disconnected"
		}
		s.Close(m.Code, reason)
	case ActionJoin:
		// On the session's handler goroutine, in order with its own
		// requests, as if it had sent the join.
		if !s.dispatch(incoming{env: envelope{Type: "join", Room: m.Room}, server: true}) {
			s.reportLater(fmt.Errorf("hub: join %q for the application: too many requests waiting", m.Room))
		}
	case ActionMissed:
		// The client learns of the gap when it resumes (PROTOCOL.md 4).
		s.Close(wire.CloseSlowConsumer, "missed_events")
	}
}

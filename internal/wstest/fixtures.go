package wstest

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
)

// Quiet discards a logger's output: expected errors (a panicking handler,
// say) stay out of the test's.
var Quiet = slog.New(slog.DiscardHandler)

// SendChat is the data of chat.send, the request most tests make.
type SendChat struct {
	Room string `json:"room" validate:"required,max=128"`
	Text string `json:"text" validate:"required,min=1,max=500"`
}

// NewHub returns a hub (its Logger Quiet unless opts sets one) with the
// events the tests of several packages send:
//
//   - chat.send (SendChat): a member of the room emits chat.message (a
//     ChatMessage) to it and is acked {"len": the text's length}; anyone
//     else gets not_member.
//   - admin.announce ({"text"}, role admin): emits announcement to everyone.
//   - whoami: acked with the principal's {"user", "roles"}.
//   - count ({"n"} >= 0): acked with n.
//   - block ({"ms"}): acked "done" after ms milliseconds, or at once when
//     the session ends.
//   - boom panics; fail returns an error whose text must not reach the
//     client.
func NewHub(opts hub.Options) *hub.Hub {
	if opts.Logger == nil {
		opts.Logger = Quiet
	}
	h := hub.New(opts)
	hub.Handle(h, "chat.send", func(c *hub.Context, in SendChat) (any, error) {
		if !c.Session().InRoom(in.Room) {
			return nil, hub.ErrNotMember
		}
		return map[string]int{"len": len(in.Text)}, c.Hub().To(in.Room).Emit("chat.message", ChatMessage{User: c.User().UserID, Text: in.Text})
	})
	hub.Handle(h, "admin.announce", func(c *hub.Context, in struct {
		Text string `json:"text" validate:"required"`
	}) (any, error) {
		return nil, c.Hub().All().Emit("announcement", in)
	}, hub.RequireRole("admin"))
	hub.Handle(h, "whoami", func(c *hub.Context, _ struct{}) (any, error) {
		return map[string]any{"user": c.User().UserID, "roles": c.User().Roles}, nil
	})
	hub.Handle(h, "count", func(_ *hub.Context, in struct {
		N int `json:"n" validate:"gte=0"`
	}) (any, error) {
		return in.N, nil
	})
	hub.Handle(h, "block", func(c *hub.Context, in struct {
		MS int `json:"ms"`
	}) (any, error) {
		select {
		case <-time.After(time.Duration(in.MS) * time.Millisecond):
		case <-c.Done():
		}
		return "done", nil
	})
	hub.Handle(h, "boom", func(*hub.Context, struct{}) (any, error) { panic("kaboom") })
	hub.Handle(h, "fail", func(*hub.Context, struct{}) (any, error) { return nil, errors.New("secret database detail") })
	return h
}

// ChatMessage is the data of chat.message, the event chat.send emits.
type ChatMessage struct {
	User string `json:"user"`
	Text string `json:"text"`
}

// Secret signs the tokens of Token; an App without Auth checks them.
var Secret = []byte("test-secret-of-at-least-32-bytes!")

// Claims are a token's claims for user, valid for an hour; roles, when
// given, are its "roles" claim.
func Claims(user string, roles ...string) jwt.MapClaims {
	c := jwt.MapClaims{"sub": user, "exp": time.Now().Add(time.Hour).Unix()}
	if len(roles) > 0 {
		c["roles"] = roles
	}
	return c
}

// Token signs claims with Secret (HS256).
func Token(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(Secret)
	require.NoError(t, err)
	return s
}

// Bearer is the Authorization header carrying tok.
func Bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// AuthHeader is the Authorization header of a valid token for user.
func AuthHeader(t testing.TB, user string, roles ...string) http.Header {
	t.Helper()
	return Bearer(Token(t, Claims(user, roles...)))
}

// PingOfSize returns a JSON ping frame of exactly n bytes (n >= 34).
func PingOfSize(n int) string {
	head := `{"type":"ping","id":"m","data":"`
	return head + strings.Repeat("x", n-len(head)-2) + `"}`
}

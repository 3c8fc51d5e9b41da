package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/internal/wstest"
)

func TestWelcome(t *testing.T) {
	_, url := chatHub(t, hub.Options{PingInterval: 3 * time.Second})
	c := dial(t, url, "user=alice")
	var w struct {
		Session   string `json:"session"`
		User      string `json:"user"`
		Heartbeat int    `json:"heartbeat"`
	}
	require.NoError(t, json.Unmarshal(c.Welcome.Data, &w))
	assert.Equal(t, "alice", w.User)
	assert.Equal(t, 3000, w.Heartbeat)
	assert.NotEmpty(t, w.Session)
}

func TestRequestReplies(t *testing.T) {
	_, url := chatHub(t, hub.Options{})
	c := dial(t, url, "user=alice&roles=member")
	c.Request("join", "j", "lobby", nil)

	t.Run("ack with result", func(t *testing.T) {
		f := c.Request("chat.send", "1", "", wstest.SendChat{Room: "lobby", Text: "hi"})
		assert.Equal(t, "ack", f.Type)
		assert.JSONEq(t, `{"len":2}`, string(f.Data))
	})
	t.Run("validation_failed lists fields", func(t *testing.T) {
		f := c.Request("chat.send", "2", "", map[string]any{"room": "lobby", "text": strings.Repeat("x", 501)})
		require.Equal(t, "error", f.Type)
		assert.Equal(t, "validation_failed", f.Error.Code)
		require.Len(t, f.Error.Fields, 1)
		assert.Equal(t, "text", f.Error.Fields[0].Field)
		assert.Equal(t, "max", f.Error.Fields[0].Rule)
		assert.Equal(t, "500", f.Error.Fields[0].Param)
		assert.Equal(t, "text must be at most 500 characters long", f.Error.Fields[0].Message)
	})
	t.Run("wrong data type is bad_request", func(t *testing.T) {
		f := c.Request("chat.send", "3", "", map[string]any{"room": 5, "text": "x"})
		assert.Equal(t, "bad_request", f.Error.Code)
	})
	t.Run("unknown type", func(t *testing.T) {
		f := c.Request("nope", "4", "", nil)
		assert.Equal(t, "unknown_type", f.Error.Code)
	})
	t.Run("not a member", func(t *testing.T) {
		f := c.Request("chat.send", "5", "", wstest.SendChat{Room: "elsewhere", Text: "hi"})
		assert.Equal(t, "not_member", f.Error.Code)
	})
	t.Run("forbidden by role", func(t *testing.T) {
		f := c.Request("admin.announce", "6", "", map[string]string{"text": "x"})
		assert.Equal(t, "forbidden", f.Error.Code)
	})
	t.Run("panic answers internal and the connection survives", func(t *testing.T) {
		f := c.Request("boom", "7", "", nil)
		assert.Equal(t, "internal", f.Error.Code)
		f = c.Request("fail", "8", "", nil)
		assert.Equal(t, "internal", f.Error.Code)
		assert.NotContains(t, f.Error.Message, "secret")
		assert.Equal(t, "ack", c.Request("chat.send", "9", "", wstest.SendChat{Room: "lobby", Text: "still here"}).Type)
	})
	t.Run("json ping", func(t *testing.T) {
		f := c.Request("ping", "p1", "", nil)
		assert.Equal(t, "pong", f.Type)
	})
	t.Run("plain text ping", func(t *testing.T) {
		c.Send("ping")
		typ, data := c.ReadRaw()
		assert.Equal(t, websocket.TextMessage, typ)
		assert.Equal(t, "pong", string(data))
	})
}

func TestBadFrames(t *testing.T) {
	_, url := chatHub(t, hub.Options{})
	c := dial(t, url, "user=alice")
	for _, tc := range []struct {
		name, frame, id, code string
	}{
		{"not JSON", `hello`, "", "bad_request"},
		{"array", `[{"type":"ping"}]`, "", "bad_request"},
		{"scalar", `42`, "", "bad_request"},
		{"bad type chars", `{"type":"a b","id":"x1"}`, "x1", "bad_request"},
		{"missing type", `{"id":"x2"}`, "x2", "bad_request"},
		{"long id", `{"type":"ping","id":"` + strings.Repeat("i", 65) + `"}`, "", "bad_request"},
		{"bad room", `{"type":"join","id":"x3","room":"a room"}`, "x3", "bad_request"},
		{"join without room", `{"type":"join","id":"x4"}`, "x4", "bad_request"},
		{"deep", `{"type":"ping","data":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, "", "bad_request"},
		{"huge number", `{"type":"chat.send","id":"x5","data":{"room":1e999,"text":"x"}}`, "x5", "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.Send(tc.frame)
			f := c.Read()
			require.Equal(t, "error", f.Type, "frame %s", tc.frame)
			assert.Equal(t, tc.code, f.Error.Code)
			assert.Equal(t, tc.id, f.ID)
			// The connection stays usable.
			assert.Equal(t, "pong", c.Request("ping", "ok", "", nil).Type)
		})
	}
	t.Run("duplicate keys: last wins, as in encoding/json", func(t *testing.T) {
		c.Send(`{"type":"nope","type":"ping","id":"d"}`)
		assert.Equal(t, "pong", c.Read().Type)
	})
}

func TestBinary(t *testing.T) {
	h, url := chatHub(t, hub.Options{})
	c := dial(t, url, "user=alice")
	require.NoError(t, c.Conn.WriteMessage(websocket.BinaryMessage, []byte{1, 2}))
	f := c.Read()
	assert.Equal(t, "unsupported", f.Error.Code)

	// The handler answers n bytes to a frame that says n: the hub frames
	// payloads of every length encoding (7, 16 and 64 bits) itself.
	h.HandleBinary(func(c *hub.Context, data []byte) error {
		n := int(data[0])<<16 | int(data[1])<<8 | int(data[2])
		out := make([]byte, n)
		for i := range out {
			out[i] = byte(i)
		}
		return c.Hub().ToUser(c.User().UserID).EmitBinary(out)
	})
	for _, n := range []int{3, 125, 126, 300, 65535, 65536, 70000} {
		require.NoError(t, c.Conn.WriteMessage(websocket.BinaryMessage, []byte{byte(n >> 16), byte(n >> 8), byte(n)}))
		typ, data := c.ReadRaw()
		assert.Equal(t, websocket.BinaryMessage, typ)
		require.Len(t, data, n)
		for i, b := range data {
			if b != byte(i) {
				t.Fatalf("%d bytes: byte %d is %d", n, i, b)
			}
		}
	}
}

func TestRoomsAndPresence(t *testing.T) {
	var joins, leaves atomic.Int32
	h, url := chatHub(t, hub.Options{
		Rooms:   func(string) hub.RoomOptions { return hub.RoomOptions{Presence: true} },
		OnJoin:  func(*hub.Session, string) { joins.Add(1) },
		OnLeave: func(*hub.Session, string) { leaves.Add(1) },
		JoinPolicy: func(c *hub.Context, room string) error {
			if room == "vip" {
				return errors.New("members only")
			}
			return nil
		},
	})
	a := dial(t, url, "user=alice")
	b := dial(t, url, "user=bob")
	outsider := dial(t, url, "user=carol")

	ack := a.Request("join", "1", "lobby", nil)
	assert.JSONEq(t, `{"room":"lobby","members":1,"epoch":"","offset":0,"recovered":false}`, string(ack.Data))
	ack = b.Request("join", "1", "lobby", nil)
	assert.JSONEq(t, `{"room":"lobby","members":2,"epoch":"","offset":0,"recovered":false}`, string(ack.Data))

	pj := a.ReadUntil("presence.join")
	assert.Equal(t, "lobby", pj.Room)
	assert.JSONEq(t, `{"user":"bob","session":"`+b.SessionID()+`"}`, string(pj.Data))

	assert.Equal(t, "forbidden", a.Request("join", "2", "vip", nil).Error.Code)

	pres := a.Request("presence", "3", "lobby", nil)
	var p struct {
		Room    string       `json:"room"`
		Members []hub.Member `json:"members"`
	}
	require.NoError(t, json.Unmarshal(pres.Data, &p))
	assert.ElementsMatch(t, []string{"alice", "bob"}, []string{p.Members[0].User, p.Members[1].User})
	assert.Equal(t, "not_member", outsider.Request("presence", "1", "lobby", nil).Error.Code)

	// Room delivery carries the room and reaches members only.
	a.Request("chat.send", "4", "", wstest.SendChat{Room: "lobby", Text: "hello"})
	for _, c := range []*wstest.Client{a, b} {
		m := c.ReadUntil("chat.message")
		assert.Equal(t, "lobby", m.Room)
		assert.JSONEq(t, `{"user":"alice","text":"hello"}`, string(m.Data))
	}
	assert.Equal(t, "pong", outsider.Request("ping", "x", "", nil).Type, "the outsider got nothing before its pong")

	// A disconnect is a leave: presence.leave reaches the others.
	b.Conn.Close()
	pl := a.ReadUntil("presence.leave")
	assert.JSONEq(t, `{"user":"bob","session":"`+b.SessionID()+`"}`, string(pl.Data))

	assert.Equal(t, "ack", a.Request("leave", "5", "lobby", nil).Type)
	assert.Equal(t, "not_member", a.Request("leave", "6", "lobby", nil).Error.Code)
	eventually(t, func() bool { return h.Rooms() == 0 }, "empty rooms are deleted")
	assert.Equal(t, int32(2), joins.Load())
	assert.Equal(t, int32(2), leaves.Load())
}

func TestUserAndGlobalDelivery(t *testing.T) {
	h, url := chatHub(t, hub.Options{})
	tab1 := dial(t, url, "user=alice")
	tab2 := dial(t, url, "user=alice")
	bob := dial(t, url, "user=bob&roles=admin")
	require.Equal(t, 2, h.UserSessions("alice"))

	require.NoError(t, h.ToUser("alice").Emit("notice", map[string]string{"n": "1"}))
	for _, c := range []*wstest.Client{tab1, tab2} {
		f := c.Read()
		assert.Equal(t, "notice", f.Type)
		assert.Empty(t, f.Room)
	}
	assert.Equal(t, "ack", bob.Request("admin.announce", "1", "", map[string]string{"text": "hi all"}).Type)
	for _, c := range []*wstest.Client{tab1, tab2, bob} {
		assert.JSONEq(t, `{"text":"hi all"}`, string(c.ReadUntil("announcement").Data))
	}
	assert.ErrorIs(t, h.All().Emit("bad name", nil), hub.ErrBadName)
	for _, room := range []string{"", "no spaces", strings.Repeat("r", 129)} {
		_, err := h.Members(context.Background(), room)
		assert.ErrorIs(t, err, hub.ErrBadName, "%q", room)
	}
}

func TestMemoryBusAcrossHubs(t *testing.T) {
	bus := hub.NewMemoryBus()
	var nodes []wstest.Node
	for range 3 {
		h, url := chatHub(t, hub.Options{Broker: bus.Broker()})
		nodes = append(nodes, wstest.Node{Hub: h, URL: url})
	}
	wstest.DeliveryAcrossNodes(t, nodes)
}

func TestDisconnectCleanupOnce(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	h, url := chatHub(t, hub.Options{OnDisconnect: func(s *hub.Session) {
		mu.Lock()
		seen[s.ID()]++
		mu.Unlock()
	}})
	clean := dial(t, url, "user=a")
	reset := dial(t, url, "user=b")
	clean.Request("join", "1", "r", nil)
	reset.Request("join", "1", "r", nil)
	require.NoError(t, clean.Conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "")))
	assert.Equal(t, 1000, clean.ExpectClose(), "the server answers the client's close with the same code")
	reset.Reset()
	eventually(t, func() bool { return h.Len() == 0 && h.Rooms() == 0 }, "sessions and rooms are gone")
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, map[string]int{clean.SessionID(): 1, reset.SessionID(): 1}, seen)
}

func TestWelcomeComesFirstDuringABroadcast(t *testing.T) {
	h, url := chatHub(t, hub.Options{})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				_ = h.All().Emit("tick", 1)
			}
		}
	}()
	// Dial checks that the first frame is the welcome (PROTOCOL.md).
	for i := range 50 {
		dial(t, url, fmt.Sprintf("user=u%d", i))
	}
	close(stop)
	<-done
}

package redis

import (
	"bytes"
	"testing"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/wire"
)

func TestCodecRoundTrip(t *testing.T) {
	for _, m := range []hub.Message{
		{Kind: hub.TargetRoom, Room: "lobby", Except: "s1", Payload: []byte(`{"type":"x"}`)},
		{Kind: hub.TargetUser, User: "alice", Binary: true, Payload: []byte{0, 1, 2}},
		{Kind: hub.TargetAll, Payload: nil},
		{Kind: hub.TargetRoom, Room: "h", Offset: 1234567, Epoch: "e1", Payload: []byte(`{"offset":1234567}`)},
		{Kind: hub.TargetUser, User: "alice", Action: hub.ActionJoin, Room: "lobby"},
		{Kind: hub.TargetUser, User: "bob", Action: hub.ActionDisconnect, Code: wire.CloseForbidden},
		{Kind: hub.TargetRoom, Room: "prices", Key: "price:BTC", Payload: []byte(`{"type":"price"}`)},
	} {
		node, got, err := decode(encode("n1", m))
		if err != nil || node != "n1" || got.Kind != m.Kind || got.Room != m.Room || got.User != m.User ||
			got.Except != m.Except || got.Binary != m.Binary || got.Offset != m.Offset || !bytes.Equal(got.Payload, m.Payload) ||
			got.Action != m.Action || got.Code != m.Code || got.Epoch != m.Epoch || got.Key != m.Key {
			t.Fatalf("round trip of %+v gave %q %+v %v", m, node, got, err)
		}
	}
}

func TestCodecRefusesWhatNoNodeSends(t *testing.T) {
	for name, m := range map[string]hub.Message{
		"an action for this node only":   {Kind: hub.TargetRoom, Room: "r", Action: hub.ActionMissed},
		"a join without a room":          {Kind: hub.TargetUser, User: "u", Action: hub.ActionJoin},
		"a join of a room's members":     {Kind: hub.TargetRoom, Room: "r", Action: hub.ActionJoin},
		"a close code out of range":      {Kind: hub.TargetUser, User: "u", Action: hub.ActionDisconnect, Code: 999},
		"a disconnect of a room":         {Kind: hub.TargetRoom, Room: "r", Action: hub.ActionDisconnect, Code: 4403},
		"an action with a payload":       {Kind: hub.TargetUser, User: "u", Action: hub.ActionDisconnect, Code: 4403, Payload: []byte("x")},
		"an action with an offset":       {Kind: hub.TargetUser, User: "u", Action: hub.ActionJoin, Room: "r", Offset: 3, Epoch: "e"},
		"an offset without an epoch":     {Kind: hub.TargetRoom, Room: "r", Offset: 3},
		"an epoch without an offset":     {Kind: hub.TargetRoom, Room: "r", Epoch: "e"},
		"a replaceable event in history": {Kind: hub.TargetRoom, Room: "r", Key: "k", Offset: 3, Epoch: "e"},
	} {
		if _, _, err := decode(encode("n", m)); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encode("node", hub.Message{Kind: hub.TargetRoom, Room: "r", Payload: []byte(`{}`)}))
	f.Add(encode("node", hub.Message{Kind: hub.TargetUser, User: "u", Binary: true}))
	f.Add(encode("node", hub.Message{Kind: hub.TargetUser, User: "u", Action: hub.ActionJoin, Room: "r"}))
	f.Add(encode("node", hub.Message{Kind: hub.TargetUser, User: "u", Action: hub.ActionDisconnect, Code: 4401}))
	f.Add(encode("node", hub.Message{Kind: hub.TargetRoom, Room: "r", Offset: 7, Epoch: "ep", Payload: []byte(`{}`)}))
	f.Add(encode("node", hub.Message{Kind: hub.TargetAll, Key: "gauge", Payload: []byte(`{}`)}))
	f.Add([]byte{2, 3, 0, 0, 200, 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		node, m, err := decode(data)
		if err != nil {
			return
		}
		// Whatever decodes encodes back to the same bytes.
		if again := encode(node, m); !bytes.Equal(again, data) {
			t.Fatalf("decode/encode changed %q into %q", data, again)
		}
	})
}

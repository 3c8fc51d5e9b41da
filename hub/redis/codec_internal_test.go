package redis

import (
	"bytes"
	"encoding/binary"
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

// burst packs encoded messages as publishBatch does.
func burst(msgs ...[]byte) []byte {
	b := []byte{burstVersion}
	for _, m := range msgs {
		b = binary.AppendUvarint(b, uint64(len(m)))
		b = append(b, m...)
	}
	return b
}

func TestBurstsDeliverEachMessageInOrder(t *testing.T) {
	one := encode("n1", hub.Message{Kind: hub.TargetRoom, Room: "r", Offset: 1, Epoch: "e", Payload: []byte(`{"offset":1}`)})
	two := encode("n2", hub.Message{Kind: hub.TargetRoom, Room: "r", Offset: 2, Epoch: "e", Payload: bytes.Repeat([]byte("x"), 300)})
	var got []uint64
	err := eachMessage(string(burst(one, two)), func(node string, m hub.Message) { got = append(got, m.Offset) })
	if err != nil || len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("got offsets %v, %v", got, err)
	}
	for name, b := range map[string][]byte{
		"an empty burst":          {burstVersion},
		"a length past its end":   append(burst(one), 5, 'x'),
		"a length in a long form": append([]byte{burstVersion, 0x80 | byte(len(one)), 0}, one...),
		"a malformed message":     burst(one, []byte{2, 0}),
	} {
		if err := eachMessage(string(b), func(string, hub.Message) {}); err == nil {
			t.Errorf("%s: no error", name)
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
	f.Add(burst(encode("a", hub.Message{Kind: hub.TargetAll}), encode("b", hub.Message{Kind: hub.TargetRoom, Room: "r"})))
	f.Add([]byte{2, 3, 0, 0, 200, 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var msgs [][]byte
		err := eachMessage(string(data), func(node string, m hub.Message) { msgs = append(msgs, encode(node, m)) })
		if err != nil {
			return
		}
		// Whatever decodes encodes back to the same bytes.
		again := msgs[0]
		if len(data) > 0 && data[0] == burstVersion {
			again = burst(msgs...)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("decode/encode changed %q into %q", data, again)
		}
	})
}

package redis

import (
	"bytes"
	"testing"

	"github.com/ginws/ginws/hub"
)

func TestCodecRoundTrip(t *testing.T) {
	for _, m := range []hub.Message{
		{Kind: hub.TargetRoom, Room: "lobby", Except: "s1", Payload: []byte(`{"type":"x"}`)},
		{Kind: hub.TargetUser, User: "alice", Binary: true, Payload: []byte{0, 1, 2}},
		{Kind: hub.TargetAll, Payload: nil},
		{Kind: hub.TargetRoom, Room: "h", Offset: 1234567, Payload: []byte(`{"offset":1234567}`)},
	} {
		node, got, err := decode(encode("n1", m))
		if err != nil || node != "n1" || got.Kind != m.Kind || got.Room != m.Room || got.User != m.User ||
			got.Except != m.Except || got.Binary != m.Binary || got.Offset != m.Offset || !bytes.Equal(got.Payload, m.Payload) {
			t.Fatalf("round trip of %+v gave %q %+v %v", m, node, got, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encode("node", hub.Message{Kind: hub.TargetRoom, Room: "r", Payload: []byte(`{}`)}))
	f.Add(encode("node", hub.Message{Kind: hub.TargetUser, User: "u", Binary: true}))
	f.Add([]byte{1, 3, 0, 200, 1})
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

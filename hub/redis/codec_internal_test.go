package redis

import (
	"bytes"
	"math"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/wire"
)

// run encodes a run of m's header, epoch and offset, as the nodes and the
// history script publish them.
func run(node string, m hub.Message, payloads ...[]byte) []byte {
	off := ""
	if m.Offset > 0 {
		off = strconv.FormatUint(m.Offset, 10)
	}
	b := appendField(appendField(header(node, m), m.Epoch), off)
	if m.Action != hub.ActionDeliver {
		return b
	}
	return append(b, pack(payloads...)...)
}

// decodeAll returns what eachMessage delivers from b.
func decodeAll(b []byte) (nodes []string, msgs []hub.Message, err error) {
	err = eachMessage(string(b), func(node string, m hub.Message) {
		nodes, msgs = append(nodes, node), append(msgs, m)
	})
	return nodes, msgs, err
}

func TestCodecRoundTrip(t *testing.T) {
	for _, m := range []hub.Message{
		{Kind: hub.TargetRoom, Room: "lobby", Except: "s1", Payload: []byte(`{"type":"x"}`)},
		{Kind: hub.TargetUser, User: "alice", Binary: true, Payload: []byte{0, 1, 2}},
		{Kind: hub.TargetAll, Payload: nil},
		{Kind: hub.TargetRoom, Room: "h", Offset: 1234567, Epoch: "e1", Payload: []byte(`{"type":"h"}`)},
		{Kind: hub.TargetUser, User: "alice", Action: hub.ActionJoin, Room: "lobby"},
		{Kind: hub.TargetUser, User: "bob", Action: hub.ActionDisconnect, Code: wire.CloseForbidden},
		{Kind: hub.TargetRoom, Room: "prices", Key: "price:BTC", Payload: []byte(`{"type":"price"}`)},
	} {
		nodes, got, err := decodeAll(run("n1", m, m.Payload))
		require.NoError(t, err, "%+v", m)
		require.Len(t, got, 1)
		want := m
		if m.Offset > 0 {
			want.Payload = hub.WithOffset(m.Payload, m.Offset)
		}
		if len(want.Payload) == 0 {
			want.Payload = got[0].Payload
		}
		assert.Equal(t, "n1", nodes[0])
		assert.Equal(t, want, got[0])
	}
}

func TestARunDeliversEachEventWithItsOffset(t *testing.T) {
	m := hub.Message{Kind: hub.TargetRoom, Room: "r", Except: "s", Epoch: "e", Offset: 41}
	_, got, err := decodeAll(run("n", m, []byte(`{"a":1}`), []byte(`{"b":2}`), []byte(`{"c":3}`)))
	require.NoError(t, err)
	require.Len(t, got, 3)
	for i, want := range []string{`{"a":1,"offset":41}`, `{"b":2,"offset":42}`, `{"c":3,"offset":43}`} {
		assert.Equal(t, want, string(got[i].Payload))
		assert.Equal(t, uint64(41+i), got[i].Offset)
		assert.Equal(t, "r", got[i].Room)
		assert.Equal(t, "s", got[i].Except)
	}
	ephemeral := hub.Message{Kind: hub.TargetUser, User: "u", Binary: true}
	_, got, err = decodeAll(run("n", ephemeral, []byte{1}, []byte{2}))
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, []byte{2}, got[1].Payload)
	assert.Zero(t, got[1].Offset)
}

func TestCodecRefusesWhatNoNodeSends(t *testing.T) {
	for name, b := range map[string][]byte{
		"an action for this node only":   run("n", hub.Message{Kind: hub.TargetRoom, Room: "r", Action: hub.ActionMissed}),
		"a join without a room":          run("n", hub.Message{Kind: hub.TargetUser, User: "u", Action: hub.ActionJoin}),
		"a join of a room's members":     run("n", hub.Message{Kind: hub.TargetRoom, Room: "r", Action: hub.ActionJoin}),
		"a close code out of range":      run("n", hub.Message{Kind: hub.TargetUser, User: "u", Action: hub.ActionDisconnect, Code: 999}),
		"a disconnect of a room":         run("n", hub.Message{Kind: hub.TargetRoom, Room: "r", Action: hub.ActionDisconnect, Code: 4403}),
		"an action with a payload":       append(run("n", hub.Message{Kind: hub.TargetUser, User: "u", Action: hub.ActionDisconnect, Code: 4403}), 1, 'x'),
		"an action with an offset":       run("n", hub.Message{Kind: hub.TargetUser, User: "u", Action: hub.ActionJoin, Room: "r", Offset: 3, Epoch: "e"}),
		"an offset without an epoch":     run("n", hub.Message{Kind: hub.TargetRoom, Room: "r", Offset: 3}, []byte(`{}`)),
		"an epoch without an offset":     run("n", hub.Message{Kind: hub.TargetRoom, Room: "r", Epoch: "e"}, []byte(`{}`)),
		"a replaceable event in history": run("n", hub.Message{Kind: hub.TargetRoom, Room: "r", Key: "k", Offset: 3, Epoch: "e"}, []byte(`{}`)),
		"an event with no payload":       run("n", hub.Message{Kind: hub.TargetRoom, Room: "r"}),
		"history that is not an event":   run("n", hub.Message{Kind: hub.TargetRoom, Room: "r", Offset: 3, Epoch: "e"}, []byte(`{}`), []byte(`x`)),
		"a length past its end":          append(run("n", hub.Message{Kind: hub.TargetAll}, []byte("a")), 5, 'x'),
		"a length in a long form":        append(run("n", hub.Message{Kind: hub.TargetAll}), 0x81, 0, 'x'),
		"another version":                append([]byte{2}, run("n", hub.Message{Kind: hub.TargetAll}, nil)[1:]...),
		"offsets that wrap":              run("n", hub.Message{Kind: hub.TargetRoom, Room: "r", Offset: math.MaxUint64, Epoch: "e"}, []byte(`{}`), []byte(`{}`)),
	} {
		_, got, err := decodeAll(b)
		assert.Error(t, err, name)
		assert.Empty(t, got, "%s: nothing delivered from a malformed run", name)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(run("node", hub.Message{Kind: hub.TargetRoom, Room: "r"}, []byte(`{}`)))
	f.Add(run("node", hub.Message{Kind: hub.TargetUser, User: "u", Binary: true}, nil, []byte{0}))
	f.Add(run("node", hub.Message{Kind: hub.TargetUser, User: "u", Action: hub.ActionJoin, Room: "r"}))
	f.Add(run("node", hub.Message{Kind: hub.TargetUser, User: "u", Action: hub.ActionDisconnect, Code: 4401}))
	f.Add(run("node", hub.Message{Kind: hub.TargetRoom, Room: "r", Offset: 7, Epoch: "ep"}, []byte(`{}`), []byte(`{"a":1}`)))
	f.Add(run("node", hub.Message{Kind: hub.TargetAll, Key: "gauge"}, []byte(`{}`)))
	f.Add([]byte{3, 3, 0, 0, 200, 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		node, m, payloads, err := decode(string(data))
		_, msgs, eachErr := decodeAll(data)
		if err != nil {
			require.Error(t, eachErr)
			return
		}
		require.NoError(t, eachErr)
		if m.Action == hub.ActionDeliver {
			require.Len(t, msgs, len(payloads), "one message per payload")
		}
		// Whatever decodes encodes back to the same bytes.
		raw := make([][]byte, len(payloads))
		for i, p := range payloads {
			raw[i] = []byte(p)
		}
		if again := run(node, m, raw...); !bytes.Equal(again, data) {
			t.Fatalf("decode/encode changed %q into %q", data, again)
		}
	})
}

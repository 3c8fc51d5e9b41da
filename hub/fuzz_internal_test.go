package hub

import (
	"encoding/json"
	"testing"

	"github.com/ginws/ginws/wire"
)

func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"type":"chat.send","id":"1","data":{"room":"lobby","text":"hi"}}`,
		`{"type":"join","room":"a/b:c"}`, `{"type":5}`, `{"type":"x","id":7}`, `[1]`, `"s"`, ` {"type":"ping"}`,
		`{"type":"a b"}`, `{"type":"ok","room":""}`, `{"type":"ok","data":` + "\xff" + `}`, `{}`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		env, e := decodeEnvelope(data)
		if e != nil {
			if e.Code != wire.CodeBadRequest || e.Message == "" {
				t.Fatalf("unexpected error %+v", e)
			}
			if len(env.ID) > 64 {
				t.Fatalf("an error reply would echo an over-long id")
			}
			return
		}
		if !validName(env.Type, 64, false) || len(env.ID) > 64 || (env.Room != "" && !validName(env.Room, 128, true)) {
			t.Fatalf("accepted a bad envelope %+v", env)
		}
		// What the hub echoes back must encode.
		if _, err := encodeReply("error", env.ID, nil, &Error{Code: wire.CodeInternal, Message: "x"}); err != nil {
			t.Fatal(err)
		}
		if env.Data != nil && !json.Valid(env.Data) {
			t.Fatalf("data is not JSON: %q", env.Data)
		}
	})
}

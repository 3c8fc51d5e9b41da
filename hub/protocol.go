package hub

import (
	"encoding/json"
	"fmt"

	"github.com/ginws/ginws/wire"
)

// envelope is a client frame (PROTOCOL.md section 2).
type envelope struct {
	Type string          `json:"type"`
	ID   string          `json:"id"`
	Room string          `json:"room"`
	Data json.RawMessage `json:"data"`
}

// decodeEnvelope parses one client frame. On error it returns the id when
// it was readable, so the error reply can carry it.
func decodeEnvelope(data []byte) (envelope, *Error) {
	var env envelope
	if len(data) == 0 || data[0] != '{' {
		// Arrays and scalars are valid JSON but never a client frame.
		trimmed := skipSpace(data)
		if len(trimmed) == 0 || trimmed[0] != '{' {
			return env, &Error{Code: wire.CodeBadRequest, Message: "frame must be a JSON object"}
		}
	}
	if err := json.Unmarshal(data, &env); err != nil {
		// A field of the wrong type (say "id":5) leaves the others readable.
		if _, ok := err.(*json.UnmarshalTypeError); ok {
			return envelope{ID: readableID(env.ID)}, &Error{Code: wire.CodeBadRequest, Message: "type, id and room must be strings"}
		}
		return envelope{}, &Error{Code: wire.CodeBadRequest, Message: "frame is not valid JSON"}
	}
	if !validName(env.Type, 64, false) {
		return envelope{ID: readableID(env.ID)}, &Error{Code: wire.CodeBadRequest, Message: "type must be 1-64 characters of A-Z a-z 0-9 . _ : -"}
	}
	if len(env.ID) > 64 {
		return envelope{}, &Error{Code: wire.CodeBadRequest, Message: "id must be at most 64 characters"}
	}
	if env.Room != "" && !validName(env.Room, 128, true) {
		return envelope{ID: env.ID}, &Error{Code: wire.CodeBadRequest, Message: "room must be 1-128 characters of A-Z a-z 0-9 . _ : / -"}
	}
	return env, nil
}

func readableID(id string) string {
	if len(id) > 64 {
		return ""
	}
	return id
}

func skipSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}

// validName checks an event type (1-64 of [A-Za-z0-9._:-]) or a room name
// (1-128, '/' allowed too).
func validName(s string, max int, slash bool) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '.', c == '_', c == ':', c == '-':
		case c == '/' && slash:
		default:
			return false
		}
	}
	return true
}

// encodeEvent encodes {"type":..,"room":..,"data":..} once for every
// recipient. typ and room are checked names, so they need no escaping.
func encodeEvent(typ, room string, data any) ([]byte, error) {
	if !validName(typ, 64, false) || (room != "" && !validName(room, 128, true)) {
		return nil, fmt.Errorf("%w: %q in room %q", ErrBadName, typ, room)
	}
	payload, err := marshalData(data)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(typ)+len(room)+len(payload)+32)
	b = append(b, `{"type":"`...)
	b = append(b, typ...)
	if room != "" {
		b = append(b, `","room":"`...)
		b = append(b, room...)
	}
	b = append(b, '"')
	if payload != nil {
		b = append(b, `,"data":`...)
		b = append(b, payload...)
	}
	return append(b, '}'), nil
}

func marshalData(data any) ([]byte, error) {
	switch d := data.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		return d, nil
	}
	payload, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("hub: encode event data: %w", err)
	}
	return payload, nil
}

// encodeReply encodes an ack, pong or error for request id.
func encodeReply(typ, id string, data any, e *Error) ([]byte, error) {
	type reply struct {
		Type  string          `json:"type"`
		ID    string          `json:"id,omitempty"`
		Data  json.RawMessage `json:"data,omitempty"`
		Error *Error          `json:"error,omitempty"`
	}
	r := reply{Type: typ, ID: id, Error: e}
	if typ == "ack" {
		payload, err := marshalData(data)
		if err != nil {
			return nil, err
		}
		if payload == nil {
			payload = json.RawMessage("null")
		}
		r.Data = payload
	}
	return json.Marshal(r)
}

// encodeError encodes an error reply for request id.
func encodeError(id string, e *Error) []byte {
	b, _ := encodeReply("error", id, nil, e)
	return b
}

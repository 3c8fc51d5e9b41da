package schema

import (
	"encoding/json"
	"strings"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/wire"
)

// Info titles an AsyncAPI document.
type Info struct {
	Title       string
	Version     string
	Description string
	// Path is the WebSocket route, e.g. "/ws".
	Path string
}

// AsyncAPI returns an AsyncAPI 3.0 document of h's WebSocket channel: a
// "receive" operation per handler (the request, replied to with ack or
// error) and a "send" operation per declared event, each message's payload
// the protocol envelope around the data's JSON Schema. Events declared
// Replaceable are marked "x-ginws-replaceable": true and have no offset.
func AsyncAPI(h *hub.Hub, info Info) ([]byte, error) {
	tag := h.Validator().TagName()
	messages := map[string]any{}
	channelMessages := map[string]any{}
	operations := map[string]any{}
	ref := func(name string) map[string]any {
		return map[string]any{"$ref": "#/channels/ws/messages/" + name}
	}
	add := func(name string, payload map[string]any, summary string) map[string]any {
		m := map[string]any{"name": name, "summary": summary, "payload": payload}
		messages[name] = m
		channelMessages[name] = map[string]any{"$ref": "#/components/messages/" + name}
		return m
	}
	add("ack", envelope("ack", map[string]any{}, true, false), "Answer to a request with an id: the handler's result.")
	add("error", errorPayload(), "Answer to a request that failed, with a stable code.")
	for _, hd := range h.Handlers() {
		name := "request." + hd.Type
		data := JSONSchema(hd.Input, tag)
		delete(data, "$schema")
		summary := "Request " + hd.Type
		if len(hd.Roles) > 0 {
			summary += " (roles: " + strings.Join(hd.Roles, ", ") + ")"
		}
		add(name, envelope(hd.Type, data, true, false), summary)
		operations[name] = map[string]any{
			"action":   "receive",
			"channel":  map[string]any{"$ref": "#/channels/ws"},
			"messages": []any{ref(name)},
			"reply": map[string]any{
				"channel":  map[string]any{"$ref": "#/channels/ws"},
				"messages": []any{ref("ack"), ref("error")},
			},
		}
	}
	for _, ev := range h.Events() {
		name := "event." + ev.Type
		data := EventSchema(ev.Data)
		delete(data, "$schema")
		payload := envelope(ev.Type, data, false, true)
		if !ev.Replaceable {
			add(name, payload, "Event "+ev.Type)
		} else {
			delete(payload["properties"].(map[string]any), "offset")
			m := add(name, payload, "Event "+ev.Type+" (replaceable: a slow client gets the newest value of each key, not every value)")
			m["x-ginws-replaceable"] = true
		}
		operations[name] = map[string]any{
			"action":   "send",
			"channel":  map[string]any{"$ref": "#/channels/ws"},
			"messages": []any{ref(name)},
		}
	}
	doc := map[string]any{
		"asyncapi": "3.0.0",
		"info": map[string]any{
			"title":       info.Title,
			"version":     info.Version,
			"description": info.Description + "\n\nWire protocol: ginws.v1 (docs/PROTOCOL.md). Several server frames may arrive as one JSON array.",
		},
		"defaultContentType": "application/json",
		"channels": map[string]any{"ws": map[string]any{
			"address":  info.Path,
			"title":    "ginws WebSocket (subprotocol ginws.v1)",
			"messages": channelMessages,
		}},
		"operations": operations,
		"components": map[string]any{"messages": messages},
	}
	return json.MarshalIndent(doc, "", "  ")
}

// envelope is the payload of a frame of type typ around data.
func envelope(typ string, data map[string]any, withID, withRoom bool) map[string]any {
	props := map[string]any{
		"type": map[string]any{"const": typ},
		"data": data,
	}
	if withID {
		props["id"] = map[string]any{"type": "string", "maxLength": 64}
	}
	if withRoom {
		props["room"] = map[string]any{"type": "string", "maxLength": 128}
		props["offset"] = map[string]any{"type": "integer", "minimum": 1}
	}
	return map[string]any{"type": "object", "properties": props, "required": []any{"type"}}
}

func errorPayload() map[string]any {
	field := map[string]any{"type": "object", "properties": map[string]any{
		"field": map[string]any{"type": "string"}, "rule": map[string]any{"type": "string"},
		"param": map[string]any{"type": "string"}, "message": map[string]any{"type": "string"},
	}, "required": []any{"field", "rule", "message"}}
	return map[string]any{"type": "object", "required": []any{"type", "error"}, "properties": map[string]any{
		"type": map[string]any{"const": "error"},
		"id":   map[string]any{"type": "string"},
		"error": map[string]any{"type": "object", "required": []any{"code", "message"}, "properties": map[string]any{
			"code": map[string]any{"enum": []any{wire.CodeBadRequest, wire.CodeUnknownType, wire.CodeValidationFailed, wire.CodeForbidden,
				wire.CodeNotMember, wire.CodeRateLimited, wire.CodeTooLarge, wire.CodeUnsupported, wire.CodeInternal, wire.CodeTooManyRooms}},
			"message": map[string]any{"type": "string"},
			"fields":  map[string]any{"type": "array", "items": field},
		}},
	}}
}

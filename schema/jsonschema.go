// Package schema describes a hub's events from the same struct tags that
// validate them: a JSON Schema for every event's data, an AsyncAPI 3
// document of the WebSocket channel, and TypeScript types for the
// JavaScript client. Handlers registered with hub.Handle are the requests;
// events the application sends are declared with hub.DeclareEvent.
package schema

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Draft is the JSON Schema dialect of the schemas this package writes.
const Draft = "https://json-schema.org/draft/2020-12/schema"

var (
	timeType = reflect.TypeFor[time.Time]()
	rawType  = reflect.TypeFor[json.RawMessage]()
)

// JSONSchema returns the JSON Schema of data a client sends, decoded into
// t: the constraints of the validation rules under tag ("validate" or
// "binding") that JSON Schema can express: required fields, lengths,
// ranges, enums (oneof), formats (email, uuid, uri, hostname, ipv4,
// ipv6) and notblank (validator's non-standard NotBlank registered under
// that name). Rules it cannot express (other custom rules, cross-field
// rules) are left to the server.
func JSONSchema(t reflect.Type, tag string) map[string]any {
	s := (&builder{tag: tag, seen: map[reflect.Type]bool{}}).schema(t, "")
	s["$schema"] = Draft
	return s
}

// EventSchema returns the JSON Schema of event data the server sends,
// encoded from t: every field is present unless its json tag says
// omitempty.
func EventSchema(t reflect.Type) map[string]any {
	s := (&builder{seen: map[reflect.Type]bool{}}).schema(t, "")
	s["$schema"] = Draft
	return s
}

type builder struct {
	tag  string                // the rules' tag; empty for data the server encodes
	seen map[reflect.Type]bool // guards recursive types
}

// schema returns the schema of t with the rules of one field applied.
func (b *builder) schema(t reflect.Type, rules string) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	own, elem := splitDive(rules)
	s := map[string]any{}
	switch {
	case t == timeType:
		s["type"], s["format"] = "string", "date-time"
	case t == rawType || t.Kind() == reflect.Interface:
		// any JSON value
	case t.Kind() == reflect.String:
		s["type"] = "string"
	case t.Kind() == reflect.Bool:
		s["type"] = "boolean"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		s["type"] = "integer"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		s["type"] = "number"
	case (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && t.Elem().Kind() == reflect.Uint8:
		s["type"], s["contentEncoding"] = "string", "base64"
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		s["type"] = "array"
		s["items"] = b.schema(t.Elem(), elem)
	case t.Kind() == reflect.Map:
		s["type"] = "object"
		s["additionalProperties"] = b.schema(t.Elem(), elem)
	case t.Kind() == reflect.Struct:
		if b.seen[t] {
			return map[string]any{} // a recursive type: described once
		}
		b.seen[t] = true
		b.object(t, s)
		delete(b.seen, t)
	}
	applyRules(s, own)
	return s
}

func (b *builder) object(t reflect.Type, s map[string]any) {
	props := map[string]any{}
	var required []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := jsonName(f)
			if name == "-" || (!f.IsExported() && !f.Anonymous) {
				continue
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if f.Anonymous && f.Tag.Get("json") == "" && ft.Kind() == reflect.Struct {
				walk(ft) // embedded fields are promoted, as encoding/json does
				continue
			}
			var rules string
			if b.tag != "" {
				rules = f.Tag.Get(b.tag)
			}
			props[name] = b.schema(f.Type, rules)
			if b.tag == "" && !strings.Contains(f.Tag.Get("json"), ",omitempty") || hasRule(rules, "required") {
				required = append(required, name)
			}
		}
	}
	walk(t)
	s["type"] = "object"
	s["properties"] = props
	if len(required) > 0 {
		s["required"] = required
	}
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

// splitDive separates a field's own rules from those after "dive", which
// apply to its elements.
func splitDive(rules string) (own, elem string) {
	own, elem, _ = strings.Cut(rules, ",dive")
	if strings.HasPrefix(rules, "dive") {
		own, elem = "", strings.TrimPrefix(rules, "dive")
	}
	return own, strings.TrimPrefix(elem, ",")
}

func hasRule(rules, name string) bool {
	own, _ := splitDive(rules)
	for _, r := range strings.Split(own, ",") {
		if r == name {
			return true
		}
	}
	return false
}

// applyRules adds the constraints of validator rules to s.
func applyRules(s map[string]any, rules string) {
	if rules == "" {
		return
	}
	kind, ok := s["type"].(string)
	if !ok {
		return // any JSON value: nothing to bound
	}
	if kind == "integer" {
		kind = "number"
	}
	bounds := map[string][2]string{
		"string":  {"minLength", "maxLength"},
		"array":   {"minItems", "maxItems"},
		"object":  {"minProperties", "maxProperties"},
		"number":  {"minimum", "maximum"},
		"boolean": {"", ""},
	}[kind]
	minKey, maxKey := bounds[0], bounds[1]
	if minKey == "" {
		return
	}
	for _, r := range strings.Split(rules, ",") {
		name, param, _ := strings.Cut(r, "=")
		n, numErr := strconv.ParseFloat(param, 64)
		switch name {
		case "required":
			if kind == "string" {
				setMin(s, "minLength", 1)
			}
		case "min", "gte":
			if numErr == nil {
				setMin(s, minKey, n)
			}
		case "max", "lte":
			if numErr == nil {
				setMax(s, maxKey, n)
			}
		case "len":
			if numErr == nil {
				setMin(s, minKey, n)
				setMax(s, maxKey, n)
			}
		case "gt":
			if numErr == nil {
				if kind == "number" {
					s["exclusiveMinimum"] = n
				} else {
					setMin(s, minKey, n+1)
				}
			}
		case "lt":
			if numErr == nil {
				if kind == "number" {
					s["exclusiveMaximum"] = n
				} else {
					setMax(s, maxKey, n-1)
				}
			}
		case "oneof":
			var enum []any
			for _, v := range strings.Fields(param) {
				if kind == "number" {
					if f, err := strconv.ParseFloat(v, 64); err == nil {
						enum = append(enum, f)
					}
					continue
				}
				enum = append(enum, v)
			}
			s["enum"] = enum
		case "email":
			s["format"] = "email"
		case "uuid", "uuid4":
			s["format"] = "uuid"
		case "url", "uri", "http_url":
			s["format"] = "uri"
		case "hostname", "fqdn":
			s["format"] = "hostname"
		case "ipv4":
			s["format"] = "ipv4"
		case "ipv6":
			s["format"] = "ipv6"
		case "alpha":
			s["pattern"] = "^[a-zA-Z]+$"
		case "alphanum":
			s["pattern"] = "^[a-zA-Z0-9]+$"
		case "numeric":
			s["pattern"] = `^[-+]?[0-9]+(\.[0-9]+)?$`
		case "notblank":
			// validator's non-standard NotBlank, under the name its
			// documentation registers it with: not only white space.
			s["pattern"] = `\S`
		}
	}
}

// setMin and setMax keep the strictest bound; lengths and counts are
// integers in JSON Schema.
func setMin(s map[string]any, key string, n float64) {
	if cur, ok := s[key].(float64); !ok || n > cur {
		s[key] = n
	}
}

func setMax(s map[string]any, key string, n float64) {
	if cur, ok := s[key].(float64); !ok || n < cur {
		s[key] = n
	}
}

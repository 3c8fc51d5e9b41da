package schema_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/go-playground/validator/v10/non-standard/validators"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/schema"
	"github.com/ginws/ginws/validate"
)

type Item struct {
	SKU string `json:"sku" validate:"required,alphanum,max=12"`
	Qty int    `json:"qty" validate:"gte=1,lte=99"`
}

type Order struct {
	Room  string            `json:"room" validate:"required,max=128"`
	Text  string            `json:"text" validate:"required,notblank,min=1,max=500"`
	Email string            `json:"email,omitempty" validate:"omitempty,email"`
	Kind  string            `json:"kind,omitempty" validate:"omitempty,oneof=a b"`
	Items []Item            `json:"items" validate:"max=3,dive"`
	Tags  map[string]string `json:"tags" validate:"dive,max=5"`
	Score float64           `json:"score" validate:"gt=0,lt=10"`
	ID    string            `json:"id" validate:"omitempty,uuid"`
	Extra json.RawMessage   `json:"extra"`
}

type ChatMessage struct {
	User string `json:"user"`
	Text string `json:"text"`
}

const tools = "../tools/schemacheck/node_modules"

func compile(t *testing.T, doc any, url string) *jsonschema.Schema {
	t.Helper()
	raw, err := json.Marshal(doc)
	require.NoError(t, err)
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	require.NoError(t, c.AddResource(url, v))
	s, err := c.Compile(url)
	require.NoError(t, err, "the schema is valid against its meta-schema")
	return s
}

func TestJSONSchemaFromTags(t *testing.T) {
	s := schema.JSONSchema(reflect.TypeFor[Order](), "validate")
	props := s["properties"].(map[string]any)
	assert.Equal(t, schema.Draft, s["$schema"])
	assert.Equal(t, []string{"room", "text"}, s["required"])
	assert.Equal(t, map[string]any{"type": "string", "minLength": 1.0, "maxLength": 500.0, "pattern": `\S`}, props["text"])
	assert.Equal(t, map[string]any{"type": "string", "format": "email"}, props["email"])
	assert.Equal(t, map[string]any{"type": "string", "enum": []any{"a", "b"}}, props["kind"])
	assert.Equal(t, map[string]any{"type": "number", "exclusiveMinimum": 0.0, "exclusiveMaximum": 10.0}, props["score"])
	items := props["items"].(map[string]any)
	assert.Equal(t, 3.0, items["maxItems"])
	item := items["items"].(map[string]any)["properties"].(map[string]any)
	assert.Equal(t, map[string]any{"type": "integer", "minimum": 1.0, "maximum": 99.0}, item["qty"])
	assert.Equal(t, map[string]any{"type": "string", "maxLength": 5.0}, props["tags"].(map[string]any)["additionalProperties"])
	assert.Equal(t, map[string]any{}, props["extra"])

	// The schema and the validator agree on what they accept.
	compiled := compile(t, s, "order.json")
	v := validate.New(validate.Options{})
	require.NoError(t, v.RegisterRule("notblank", validators.NotBlank, "{field} must not be blank"))
	for _, payload := range []string{
		`{"room":"lobby","text":"  \t\n ","score":1}`,
		`{"room":"lobby","text":" a ","score":1}`,
		`{"room":"lobby","text":"hi","score":1}`,
		`{"room":"lobby","text":"","score":1}`,
		`{"text":"hi","score":1}`,
		`{"room":"lobby","text":"hi","score":10}`,
		`{"room":"lobby","text":"hi","score":1,"kind":"c"}`,
		`{"room":"lobby","text":"hi","score":1,"email":"nope"}`,
		`{"room":"lobby","text":"hi","score":1,"items":[{"sku":"a1","qty":0}]}`,
		`{"room":"lobby","text":"hi","score":1,"items":[{"sku":"a-1","qty":1}]}`,
		`{"room":"lobby","text":"hi","score":1,"tags":{"x":"toolong"}}`,
		`{"room":"lobby","text":"hi","score":1,"id":"123e4567-e89b-12d3-a456-426614174000"}`,
	} {
		_, verr := validate.Decode[Order](v, []byte(payload))
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(payload))
		require.NoError(t, err)
		serr := compiled.Validate(inst)
		assert.Equal(t, verr == nil, serr == nil, "%s: validate says %v, the schema says %v", payload, verr, serr)
	}
}

func exampleHub(t *testing.T) *hub.Hub {
	h := hub.New(hub.Options{Logger: slog.New(slog.DiscardHandler)})
	hub.Handle(h, "chat.send", func(*hub.Context, Order) (any, error) { return nil, nil }, hub.RequireRole("member"))
	hub.Handle(h, "typing", func(*hub.Context, struct {
		Room string `json:"room" validate:"required"`
	}) (any, error) {
		return nil, nil
	})
	hub.DeclareEvent[ChatMessage](h, "chat.message")
	hub.DeclareEvent[struct {
		User string `json:"user"`
	}](h, "typing")
	hub.DeclareEvent[struct {
		Symbol string  `json:"symbol"`
		Price  float64 `json:"price"`
	}](h, "price", hub.Replaceable())
	t.Cleanup(func() { _ = h.Shutdown(t.Context()) })
	return h
}

func TestAsyncAPIDocumentIsValid(t *testing.T) {
	doc, err := schema.AsyncAPI(exampleHub(t), schema.Info{Title: "chat", Version: "1.0.0", Path: "/ws"})
	require.NoError(t, err)
	specFile := filepath.Join(tools, "@asyncapi/specs/schemas/3.0.0-without-$id.json")
	spec, err := os.ReadFile(specFile)
	require.NoError(t, err, "run `make deps`: the official AsyncAPI schemas come from the npm package @asyncapi/specs")
	var specDoc any
	require.NoError(t, json.Unmarshal(spec, &specDoc))
	compiled := compile(t, specDoc, "asyncapi-3.0.0.json")
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	require.NoError(t, err)
	require.NoError(t, compiled.Validate(inst), "%s", doc)

	var parsed struct {
		Operations map[string]struct{ Action string }
	}
	require.NoError(t, json.Unmarshal(doc, &parsed))
	assert.Equal(t, "receive", parsed.Operations["request.chat.send"].Action)
	assert.Equal(t, "send", parsed.Operations["event.chat.message"].Action)
	assert.Contains(t, string(doc), `"summary": "Request chat.send (roles: member)"`)

	var events struct {
		Components struct {
			Messages map[string]struct {
				Replaceable bool `json:"x-ginws-replaceable"`
				Payload     struct{ Properties map[string]any }
			}
		}
	}
	require.NoError(t, json.Unmarshal(doc, &events))
	price, chat := events.Components.Messages["event.price"], events.Components.Messages["event.chat.message"]
	assert.True(t, price.Replaceable, "a replaceable event is marked")
	assert.NotContains(t, price.Payload.Properties, "offset", "and has no offset")
	assert.False(t, chat.Replaceable)
	assert.Contains(t, chat.Payload.Properties, "offset")
}

func TestTypeScriptCompiles(t *testing.T) {
	tsc := filepath.Join(tools, ".bin/tsc")
	_, err := os.Stat(tsc)
	require.NoError(t, err, "run `make deps`: tsc comes from the npm package typescript")
	dir := t.TempDir()
	client, err := os.ReadFile("../client/js/ginws.d.ts")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ginws.d.ts"), client, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "events.d.ts"), []byte(schema.TypeScript(exampleHub(t), "./ginws.js")), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "check.ts"), []byte(`
import { Client } from './ginws.js';
declare const c: Client;
c.request('chat.send', { room: 'lobby', text: 'hi', score: 1 });
// @ts-expect-error text must be a string
c.request('chat.send', { room: 'lobby', text: 5, score: 1 });
// @ts-expect-error room is required
c.request('chat.send', { text: 'hi', score: 1 });
// @ts-expect-error kind is one of "a" | "b"
c.request('chat.send', { room: 'r', text: 't', kind: 'c' });
c.request('not.declared', 42); // unknown types stay untyped
c.on('chat.message', (m) => { const u: string = m.user; void u; });
// @ts-expect-error typing events have no text
c.on('typing', (t) => { const x: string = t.text; void x; });
`), 0o644))
	cmd := exec.Command(tsc, "--noEmit", "--strict", "--target", "es2022", "--module", "es2022", "--moduleResolution", "bundler",
		filepath.Join(dir, "check.ts"), filepath.Join(dir, "events.d.ts"))
	out, err := cmd.CombinedOutput()
	assert.NoError(t, err, "tsc:\n%s\n%s", out, schema.TypeScript(exampleHub(t), "./ginws.js"))
}

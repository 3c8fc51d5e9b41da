package validate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

type pathKey struct {
	t  reflect.Type
	ns string
}

// jsonPath maps validator's StructNamespace ("SendChat.Items[2].Qty") to the
// path the client wrote ("items[2].qty"). Doing it from the type instead of
// registering a tag-name function keeps a shared engine (Gin's) untouched.
// Results are cached: the set of namespaces a type produces is bounded by the
// type, except for slice indexes and map keys, which are copied verbatim.
func (v *Validator) jsonPath(root reflect.Type, ns string) string {
	key := pathKey{root, ns}
	if p, ok := v.paths.Load(key); ok {
		return p.(string)
	}
	p := translate(root, ns)
	if !strings.ContainsRune(ns, '[') {
		v.paths.Store(key, p)
	}
	return p
}

func translate(t reflect.Type, ns string) string {
	t = deref(t)
	ns = strings.TrimPrefix(ns, t.Name()+".")
	var b strings.Builder
	for _, seg := range splitNamespace(ns) {
		name, brackets := seg, ""
		if i := strings.IndexByte(seg, '['); i >= 0 {
			name, brackets = seg[:i], seg[i:]
		}
		t = deref(t)
		jsonName := name
		if t != nil && t.Kind() == reflect.Struct {
			if f, ok := t.FieldByName(name); ok {
				jsonName = fieldJSONName(f)
				t = f.Type
			} else {
				t = nil
			}
		} else {
			t = nil
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(jsonName)
		b.WriteString(brackets)
		for n := strings.Count(brackets, "["); n > 0 && t != nil; n-- {
			t = deref(t)
			switch t.Kind() {
			case reflect.Slice, reflect.Array, reflect.Map:
				t = t.Elem()
			default:
				t = nil
			}
		}
	}
	return b.String()
}

// splitNamespace splits on dots outside brackets, since map keys may hold dots.
func splitNamespace(ns string) []string {
	var segs []string
	depth, start := 0, 0
	for i := 0; i < len(ns); i++ {
		switch ns[i] {
		case '[':
			depth++
		case ']':
			depth--
		case '.':
			if depth == 0 {
				segs = append(segs, ns[start:i])
				start = i + 1
			}
		}
	}
	return append(segs, ns[start:])
}

func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func fieldJSONName(f reflect.StructField) string {
	tag := f.Tag.Get("json")
	if name, _, _ := strings.Cut(tag, ","); name != "" && name != "-" {
		return name
	}
	return f.Name
}

// pathAt returns the JSON path ("items[1].qty") of the value that ends at
// byte offset in data. encoding/json reports type mismatches with a dotted
// path and no indexes; walking the tokens recovers the path the client wrote.
// It only runs on the error path.
func pathAt(data []byte, offset int64) string {
	type frame struct {
		array     bool
		index     int
		key       string
		expectKey bool
	}
	var stack []frame
	render := func() string {
		var b strings.Builder
		for _, f := range stack {
			if f.array {
				fmt.Fprintf(&b, "[%d]", f.index)
				continue
			}
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(f.key)
		}
		return b.String()
	}
	advance := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].array {
				stack[n-1].index++
			} else {
				stack[n-1].expectKey = true
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		n := len(stack)
		if s, ok := tok.(string); ok && n > 0 && !stack[n-1].array && stack[n-1].expectKey {
			stack[n-1].key, stack[n-1].expectKey = s, false
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			stack = append(stack, frame{array: tok == json.Delim('['), expectKey: true})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:n-1]
		}
		if dec.InputOffset() >= offset {
			return render()
		}
		advance()
	}
}

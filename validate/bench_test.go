package validate_test

import (
	"encoding/json"
	"testing"

	"github.com/ginws/ginws/validate"
)

type chatSend struct {
	Room string `json:"room" validate:"required,max=128"`
	Text string `json:"text" validate:"required,min=1,max=500"`
}

// BenchmarkUnmarshalOnly is the baseline: encoding/json with no rules.
func BenchmarkUnmarshalOnly(b *testing.B) {
	data := []byte(`{"room":"lobby","text":"hello, how is everyone today?"}`)
	b.ReportAllocs()
	for b.Loop() {
		var m chatSend
		if err := json.Unmarshal(data, &m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeValid(b *testing.B) {
	benchDecode(b, `{"room":"lobby","text":"hello, how is everyone today?"}`, false)
}

func BenchmarkDecodeInvalid(b *testing.B) {
	benchDecode(b, `{"room":"","text":""}`, true)
}

// benchDecode measures Decode of data, which fails validation when invalid.
func benchDecode(b *testing.B, data string, invalid bool) {
	v := validate.New(validate.Options{})
	raw := []byte(data)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := validate.Decode[chatSend](v, raw); (err != nil) != invalid {
			b.Fatalf("invalid %v, err %v", invalid, err)
		}
	}
}

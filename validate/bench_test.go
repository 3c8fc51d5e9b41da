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
	v := validate.New(validate.Options{})
	data := []byte(`{"room":"lobby","text":"hello, how is everyone today?"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := validate.Decode[chatSend](v, data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeInvalid(b *testing.B) {
	v := validate.New(validate.Options{})
	data := []byte(`{"room":"","text":""}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := validate.Decode[chatSend](v, data); err == nil {
			b.Fatal("expected an error")
		}
	}
}

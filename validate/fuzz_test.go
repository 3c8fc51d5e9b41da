package validate_test

import (
	"errors"
	"testing"

	"github.com/ginws/ginws/validate"
	"github.com/ginws/ginws/wire"
)

func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"room":"lobby","text":"hi","items":[{"sku":"a1","qty":2}]}`,
		`{"room":"r","text":"t","items":[{"sku":"b","qty":"x"}]}`,
		`{"room":"r","text":"t","meta":{"a.b":"toolong"}}`,
		`{"inner":{"level":-1}}`,
		`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`,
		`{"room":"\"[{","text":"\\"}`,
		`1e999999`, `null`, ``, `{"room":1}`, `{"items":{}}`, "\xff\xfe",
	} {
		f.Add([]byte(seed))
	}
	strict := validate.New(validate.Options{DisallowUnknownFields: true, MaxDepth: 8, MaxBytes: 4096})
	lax := validate.New(validate.Options{})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, v := range []*validate.Validator{strict, lax} {
			_, err := validate.Decode[Order](v, data)
			if err == nil {
				continue
			}
			var verr *validate.Error
			if !errors.As(err, &verr) {
				t.Fatalf("error %T is not a *validate.Error: %v", err, err)
			}
			if verr.Code == wire.CodeValidationFailed && len(verr.Fields) == 0 {
				t.Fatal("validation_failed without fields")
			}
			for _, fe := range verr.Fields {
				if fe.Message == "" || fe.Rule == "" {
					t.Fatalf("field error without a rule or message: %+v", fe)
				}
			}
		}
	})
}

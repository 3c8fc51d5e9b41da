package validate_test

import (
	"errors"
	"fmt"

	"github.com/ginws/ginws/validate"
)

func ExampleDecode() {
	type SendChat struct {
		Room string `json:"room" validate:"required,max=128"`
		Text string `json:"text" validate:"required,min=1,max=500"`
	}
	v := validate.New(validate.Options{})

	msg, err := validate.Decode[SendChat](v, []byte(`{"room":"lobby","text":"hello"}`))
	fmt.Println(msg.Room, msg.Text, err)
	// Output: lobby hello <nil>
}

func ExampleError() {
	type SendChat struct {
		Room string `json:"room" validate:"required,max=128"`
		Text string `json:"text" validate:"required,min=1,max=500"`
	}
	v := validate.New(validate.Options{})

	_, err := validate.Decode[SendChat](v, []byte(`{"text":""}`))
	var verr *validate.Error
	if errors.As(err, &verr) {
		fmt.Println(verr.Code)
		for _, f := range verr.Fields {
			fmt.Printf("%s %s: %s\n", f.Field, f.Rule, f.Message)
		}
	}
	// Output:
	// validation_failed
	// room required: room is required
	// text required: text is required
}

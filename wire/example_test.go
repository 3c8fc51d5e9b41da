package wire_test

import (
	"fmt"

	"github.com/ginws/ginws/wire"
)

// A client decides what to do after a close from the code alone.
func ExampleStatusCode() {
	for _, code := range []wire.StatusCode{wire.CloseSlowConsumer, wire.CloseForbidden, 4000} {
		fmt.Printf("%d %q known=%v terminal=%v\n", code, code.Reason(), code.Known(), code.Terminal())
	}
	// Output:
	// 1013 "slow_consumer" known=true terminal=false
	// 4403 "forbidden" known=true terminal=true
	// 4000 "" known=false terminal=false
}

//go:build !unix

package sock

import "syscall"

// tryWrite writes nothing where non-blocking writes are not wired up: every
// write then goes through the flusher, which waits like a plain Write.
func tryWrite(syscall.RawConn, []byte) (int, error) { return 0, nil }

//go:build unix

package sock

import (
	"os"
	"syscall"
)

// tryWrite writes what the socket takes without waiting (Go's sockets are
// non-blocking): a full socket buffer writes nothing and is no error.
func tryWrite(raw syscall.RawConn, p []byte) (int, error) {
	var n int
	var werr error
	if err := raw.Write(func(fd uintptr) bool {
		for {
			n, werr = syscall.Write(int(fd), p)
			if werr != syscall.EINTR {
				return true
			}
		}
	}); err != nil {
		return 0, err
	}
	n = max(n, 0)
	if werr == nil || werr == syscall.EAGAIN {
		return n, nil
	}
	return n, os.NewSyscallError("write", werr)
}

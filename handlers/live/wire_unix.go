//go:build unix

package live

import (
	"net"
	"syscall"
)

// rawConn is c's socket, for the writes that wait for nothing; nil when it has none (a TLS
// connection has none to offer: its bytes must go through it).
func rawConn(c net.Conn) syscall.RawConn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// tryWrite writes the parts to the non-blocking socket, one write a part, until one goes out
// short or would wait (EAGAIN): what did not go out is left in them. Nearly every event is one
// part, which the socket takes whole.
func tryWrite(rc syscall.RawConn, parts *net.Buffers) error {
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		for len(*parts) > 0 {
			p := (*parts)[0]
			if len(p) == 0 {
				*parts = (*parts)[1:]
				continue
			}
			n, err := syscall.Write(int(fd), p)
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				if err != syscall.EAGAIN {
					werr = err
				}
				return true
			}
			if (*parts)[0] = p[n:]; n < len(p) {
				return true
			}
			*parts = (*parts)[1:]
		}
		return true
	})
	if err != nil {
		return err
	}
	return werr
}

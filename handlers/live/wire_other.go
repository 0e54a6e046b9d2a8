//go:build !unix

package live

import (
	"errors"
	"net"
	"syscall"
)

// rawConn is nil: the writes that wait for nothing are for sockets of unix systems.
func rawConn(net.Conn) syscall.RawConn { return nil }

func tryWrite(syscall.RawConn, *net.Buffers) error { return errors.ErrUnsupported }

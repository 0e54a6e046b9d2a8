//go:build unix

package live

import (
	"crypto/tls"
	"net"
	"testing"
)

// A worker writes straight to a plain TCP socket, never to a TLS connection's: its bytes must
// go through TLS, so its writes take the path with a deadline.
func TestRawWritesOnlyToPlainSockets(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	if newConnWire(server).rc == nil {
		t.Error("a TCP connection: no socket to write to")
	}
	if newConnWire(tls.Server(server, &tls.Config{})).rc != nil {
		t.Error("a TLS connection: its socket would be written past TLS")
	}
}

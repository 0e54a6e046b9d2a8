package handlers

import "testing"

func TestAddrBlock(t *testing.T) {
	tests := []struct{ in, want string }{
		{"203.0.113.7", "203.0.113.7"},
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"}, // the same host, another address
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"::ffff:203.0.113.7", "::ffff:203.0.113.7"}, // IPv4-mapped: an IPv4 address
		{"fe80::1%eth0", "fe80::1%eth0"},             // with a zone: not an address of the internet
		{"not-an-ip", "not-an-ip"},
	}
	for _, tt := range tests {
		if got := addrBlock(tt.in); got != tt.want {
			t.Errorf("addrBlock(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

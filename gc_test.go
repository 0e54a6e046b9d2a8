package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"testing"
)

// The soft memory limit follows the machine: three quarters of what the process may use, not a
// fixed figure that a busy server outgrows; GOMEMLIMIT wins when set.
func TestMemoryLimitFollowsTheMachine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the memory available is read from /proc and cgroups")
	}
	if os.Getenv("GOMEMLIMIT") != "" || os.Getenv("GOGC") != "" {
		t.Skip("GOMEMLIMIT or GOGC is set: the runtime's own")
	}
	m := memoryAvailable()
	if m < 64<<20 {
		t.Fatalf("memory available: %d bytes, want the machine's or its cgroup's", m)
	}
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	tuneGC()
	if got := debug.SetMemoryLimit(-1); got != m/4*3 {
		t.Errorf("memory limit %d, want %d (three quarters of %d)", got, m/4*3, m)
	}
	t.Logf("memory available %d MiB, limit %d MiB", m>>20, m/4*3>>20)
}

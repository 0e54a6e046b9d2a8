package main

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// tuneGC trades a little memory for much less garbage collection: between bursts the live heap
// is a few MiB, so the default (collect each time it doubles) runs the collector dozens of
// times a second under load. The soft limit is a guard, far above what the measured loads hold
// (1,000 live streams and the load benchmark stay under 100 MiB): set GOMEMLIMIT to a share of
// the machine's memory in production. GOGC and GOMEMLIMIT, which the runtime reads from the
// process's environment, win when set.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(300)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(256 << 20)
	}
}

// releaseWhenQuiet gives memory back to the system once the server goes quiet after a burst
// (thousands of connections at once, say). What a burst allocated stays in the heap until the
// next collection, and a quiet server may not collect for two minutes (the runtime's forced
// collection): so, after a period in which no collection ran and less than slack bytes were
// allocated, if the heap holds more than slack bytes above what was live after the last
// collection, it collects and returns the free pages at once. A server at work, even at a
// modest pace, is left to the collector.
func releaseWhenQuiet(ctx context.Context, period time.Duration, slack uint64) {
	samples := []metrics.Sample{
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/gc/heap/allocs:bytes"}, // allocated since the start
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"}, // live, and garbage not yet collected
		{Name: "/memory/classes/heap/free:bytes"},    // free, and not yet returned
	}
	type reading struct{ cycles, allocs, held uint64 }
	read := func() reading {
		metrics.Read(samples)
		live, objects, free := samples[2].Value.Uint64(), samples[3].Value.Uint64(), samples[4].Value.Uint64()
		return reading{samples[0].Value.Uint64(), samples[1].Value.Uint64(), objects + free - min(live, objects+free)}
	}
	last := read()
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := read()
		if now.cycles == last.cycles && now.allocs-last.allocs < slack && now.held > slack {
			debug.FreeOSMemory()
			now = read()
		}
		last = now
	}
}

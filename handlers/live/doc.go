// Package live streams the market to open market pages: GET /market/events, a Server-Sent
// Events stream of one viewer's page of the market.
//
// How a trade reaches a screen:
//
//  1. The store records a market event in the trade's own transaction, stamped with the
//     market version after it; after the commit, Feed.Changed rings (on PostgreSQL through
//     LISTEN/NOTIFY, so every instance hears every instance's trades).
//  2. The Broker (broker.go, one per process) wakes and reads Feed.ChangesSince its last
//     version in one snapshot: the version now, the events, and the page of each query the
//     open streams follow that the events can change, all as of that version. A trade moves
//     one item into or out of the items on sale, so it changes the pages of the searches its
//     item matches and no other: the store matches the item against every search in one
//     query, and the pages of the others are not read. That read is a group (page.go).
//  3. Each stream (stream.go) takes the group and renders its viewer's event: the markers of
//     the trades, the rows that left or joined its page (diff.go), and after the viewer's own
//     trades their items and budget. Viewers whose pages were alike share one rendering, and
//     so do the viewers whose page the group did not touch (their event is the markers alone).
//  4. The event goes out (sse.go) with id: the version, the cursor a reconnect sends back as
//     Last-Event-ID or since= to get what it missed.
//
// Serve (serve.go) opens one stream within the caps (caps.go: per process, per address, per
// user) and writes its first event; then the stream takes its connection over from net/http
// and the handler returns (wire.go). An open stream keeps no goroutine of its own but one
// blocked on its connection's read side, which sees the client hang up: the broker's few
// workers write its events (run.go), and one pinger pings the idle streams and ends those whose
// session ended or idled out, asking for all the streams due in one call (ping.go). The
// handlers package authenticates the viewer and parses the page's query before it hands over,
// and gives the Broker its Feed (the store), its Renderer (the market's caches) and the check
// of the streams' sessions.
package live

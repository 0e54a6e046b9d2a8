package live

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"market/components"
	"market/store"
)

// view is a stream's view of the market: what its viewer's page shows, and up to which version.
type view struct {
	b      *Broker
	s      *subscription
	cursor int64   // the version the page is up to
	shown  []int64 // the ids of the rows on its page of the market; nil when unknown
	key    string  // rowsKey of shown, once an event needed it
}

// remember takes the page at g's version as what the viewer's page shows.
func (v *view) remember(g *group) error {
	p, err := g.page(v.b.views, v.s.query)
	if err != nil {
		return err
	}
	v.shown, v.key = p.ids, "" // a page of its own: its key is built when an event needs it
	return nil
}

// event is the group's event for this viewer, and moves the view up to the group; nil when
// nothing the viewer sees changed. full sends the rows, items and budget whatever changed (a
// replay). A viewer who took no part in the group's trades gets the event rendered once for
// every viewer whose page was where theirs was.
func (v *view) event(g *group, full bool) ([]byte, error) {
	if g.version <= v.cursor {
		return nil, nil
	}
	events := g.events
	if v.cursor > g.from { // the view saw some of them (it opened after the group's read)
		events = nil
		for _, e := range g.events {
			if e.Version > v.cursor {
				events = append(events, e)
			}
		}
	}
	mine := full || g.refresh || slices.ContainsFunc(events, func(e store.MarketEvent) bool { return e.UserID == v.s.who.User })
	if v.unchanged(g) {
		return v.quietEvent(g, events, mine)
	}
	p, err := g.page(v.b.views, v.s.query)
	if err != nil {
		v.b.logger.Error("live page", "err", err)
		return nil, err
	}
	replay := full
	full = full || g.refresh
	render := func() ([]byte, error) { return v.render(g, p, events, full, mine) }
	var data []byte
	if mine {
		data, err = render()
	} else {
		if v.key == "" {
			v.key = rowsKey(v.shown)
		}
		data, err = p.sharedEvent(v.cursor, v.shown, v.key, render)
	}
	if err != nil {
		return nil, err
	}
	v.cursor, v.shown, v.key = g.version, p.ids, ""
	if !replay { // else the page is the stream's own: its key is built when an event needs it
		v.key = p.idsKey()
	}
	return data, nil
}

// unchanged reports whether g's events cannot have changed the viewer's page since the view's
// version: the group did not touch its query, and began no later than the view.
func (v *view) unchanged(g *group) bool {
	return v.shown != nil && v.cursor >= g.from && g.untouched[v.s.query]
}

// quietEvent is the event of a group that left the viewer's page as it was: the markers (none
// of them on the page) and, after the viewer's own trades, their items and budget. Viewers who
// took no part and were at the same version share one rendering.
func (v *view) quietEvent(g *group, events []store.MarketEvent, mine bool) ([]byte, error) {
	p := &page{ids: v.shown}
	render := func() ([]byte, error) { return v.render(g, p, events, false, mine) }
	var data []byte
	var err error
	if mine {
		data, err = render()
	} else {
		data, err = g.quiet.sharedEvent(v.cursor, nil, "", render)
	}
	if err != nil {
		return nil, err
	}
	v.cursor = g.version
	return data, nil
}

// render is the event of group g for this viewer, whose page shows p after it: the changes,
// the rows that moved (all of them when full) and, when mine, the viewer's items and budget;
// nil when nothing the viewer sees changed.
func (v *view) render(g *group, p *page, events []store.MarketEvent, full, mine bool) ([]byte, error) {
	lv := components.LiveView{Changes: v.changes(events, p.ids), Refresh: g.refresh, Page: &p.page}
	edited := editedShown(events, v.shown) // admins' changes: see admin.go
	pageChanged := full || edited || !slices.Equal(p.ids, v.shown)
	if !pageChanged && !mine && len(lv.Changes) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if mine {
		owned, budget, err := v.b.views.Account(ctx, g.version, v.s.who.User)
		if err != nil {
			return nil, err
		}
		lv.Owned, lv.Budget = owned, &budget
	}
	// The rows in full for a replay, else what changed: the page's rows keep their order, so
	// each new row goes before the next row that stays.
	if !full && !edited && pageChanged {
		lv.Diff = rowDiff(v.shown, p.page.Items)
	}
	if full || edited || (pageChanged && lv.Diff == nil) { // a replay, or no row stays: all of them
		var err error
		if lv.Rows, err = p.allRows(v.b.views); err != nil {
			return nil, err
		}
	}
	var b strings.Builder
	if err := components.LiveUpdate(lv).Render(ctx, &b); err != nil {
		return nil, err
	}
	return event(g.version, "market", b.String()), nil
}

// changes are the markers of the events for this viewer, whose page shows the rows ids after them.
func (v *view) changes(events []store.MarketEvent, ids []int64) []components.LiveChange {
	changes := make([]components.LiveChange, 0, len(events))
	for _, e := range events {
		if !isTrade(e) {
			continue
		}
		changes = append(changes, components.LiveChange{
			Row: "item-" + strconv.FormatInt(e.ItemID, 10), Bought: e.Kind == "buy", Name: e.ItemName,
			Mine: e.UserID == v.s.who.User,
			// A replay does not know the page's rows: it counts every change as seen.
			Shown: v.shown == nil || slices.Contains(v.shown, e.ItemID) || slices.Contains(ids, e.ItemID),
		})
	}
	return changes
}

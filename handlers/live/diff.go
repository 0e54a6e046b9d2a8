package live

import (
	"market/components"
	"market/store"
)

// pageIDs are the ids of a page's rows, in order.
func pageIDs(p store.MarketPage) []int64 {
	ids := make([]int64, len(p.Items))
	for i, it := range p.Items {
		ids[i] = it.ID
	}
	return ids
}

// rowDiff is what turns the rows shown into items: the rows that left, and the new ones, each
// placed before the next row that stays, or after the row before it; nil when no row stays
// (the page then takes all its rows).
func rowDiff(shown []int64, items []store.Item) *components.LiveDiff {
	d := &components.LiveDiff{}
	stays := false
	now := make(map[int64]bool, len(items))
	for _, it := range items {
		now[it.ID] = true
	}
	was := make(map[int64]bool, len(shown))
	for _, id := range shown {
		was[id] = true
		stays = stays || now[id]
		if !now[id] {
			d.Removed = append(d.Removed, id)
		}
	}
	for i, it := range items {
		if was[it.ID] {
			continue
		}
		in := components.LiveInsert{Item: it}
		for _, after := range items[i+1:] {
			if was[after.ID] {
				in.Before = after.ID
				break
			}
		}
		if in.Before == 0 {
			if i == 0 {
				return nil
			}
			in.After = items[i-1].ID
		}
		d.Added = append(d.Added, in)
	}
	if !stays {
		return nil
	}
	return d
}

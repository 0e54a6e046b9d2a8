package live

import (
	"reflect"
	"testing"

	"market/components"
	"market/store"
)

func items(ids ...int64) []store.Item {
	its := make([]store.Item, len(ids))
	for i, id := range ids {
		its[i] = store.Item{ID: id}
	}
	return its
}

func insert(id, before, after int64) components.LiveInsert {
	return components.LiveInsert{Item: store.Item{ID: id}, Before: before, After: after}
}

// A page's rows change by the rows that leave and the rows that join, each in its place; when
// no row stays, there is nothing to place them by, and the page takes all its rows instead.
func TestRowDiff(t *testing.T) {
	for _, tc := range []struct {
		name  string
		shown []int64
		now   []int64
		want  *components.LiveDiff
	}{
		{name: "nothing moved", shown: []int64{1, 2, 3}, now: []int64{1, 2, 3}, want: &components.LiveDiff{}},
		{name: "a row leaves", shown: []int64{1, 2, 3}, now: []int64{1, 3}, want: &components.LiveDiff{Removed: []int64{2}}},
		{name: "a row joins before the next that stays", shown: []int64{1, 3}, now: []int64{1, 2, 3},
			want: &components.LiveDiff{Added: []components.LiveInsert{insert(2, 3, 0)}}},
		{name: "a first row joins", shown: []int64{2, 3}, now: []int64{1, 2, 3},
			want: &components.LiveDiff{Added: []components.LiveInsert{insert(1, 2, 0)}}},
		{name: "a last row joins after the row before it", shown: []int64{1, 2}, now: []int64{1, 2, 3},
			want: &components.LiveDiff{Added: []components.LiveInsert{insert(3, 0, 2)}}},
		{name: "rows join and leave at once", shown: []int64{1, 3, 5}, now: []int64{2, 3, 4},
			want: &components.LiveDiff{Removed: []int64{1, 5}, Added: []components.LiveInsert{insert(2, 3, 0), insert(4, 0, 3)}}},
		{name: "no row stays", shown: []int64{1, 2}, now: []int64{3, 4}},
		{name: "the page empties", shown: []int64{1, 2}, now: nil},
		{name: "a page that was empty", shown: nil, now: []int64{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rowDiff(tc.shown, items(tc.now...)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("rowDiff(%v, %v) = %+v, want %+v", tc.shown, tc.now, got, tc.want)
			}
		})
	}
}

func TestPageIDs(t *testing.T) {
	if got := pageIDs(store.MarketPage{Items: items(4, 2, 9)}); !reflect.DeepEqual(got, []int64{4, 2, 9}) {
		t.Errorf("pageIDs = %v, want [4 2 9]", got)
	}
}

// Viewers whose pages were at the same version with the same rows share one rendering of an
// event; a viewer whose page differs gets their own.
func TestSharedEventRendersOncePerPage(t *testing.T) {
	p := newPage()
	renders := 0
	render := func() ([]byte, error) { renders++; return []byte("event"), nil }
	shared := func(cursor int64, shown []int64) ([]byte, error) {
		return p.sharedEvent(cursor, shown, rowsKey(shown), render)
	}
	for range 3 {
		if got, err := shared(7, []int64{1, 2}); err != nil || string(got) != "event" {
			t.Fatalf("sharedEvent = %q, %v", got, err)
		}
	}
	shared(7, []int64{1})    // other rows
	shared(6, []int64{1, 2}) // another version
	shared(7, nil)           // rows unknown: not the page with no rows
	shared(7, []int64{})
	shared(7, []int64{12}) // not the rows 1, 2
	if renders != 6 {
		t.Errorf("%d renderings, want 6: one per version and rows", renders)
	}
}

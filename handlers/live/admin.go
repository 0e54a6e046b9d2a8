package live

import (
	"slices"

	"market/store"
)

// Items an admin adds, edits or retires reach the live streams as market events of their own
// kinds ("add", "edit", "retire"). An added or retired item changes which rows a page shows,
// which the streams already follow; an edit changes a row in place, so a page that shows the
// edited item gets its rows whole (app.js replaces the rows whose content changed).

// isTrade reports whether e is a purchase or a sale: the changes a stream announces.
func isTrade(e store.MarketEvent) bool { return e.Kind == "buy" || e.Kind == "sell" }

// editedShown reports whether an admin edited an item of the rows shown (nil: rows unknown, so
// any edit counts).
func editedShown(events []store.MarketEvent, shown []int64) bool {
	return slices.ContainsFunc(events, func(e store.MarketEvent) bool {
		return e.Kind == "edit" && (shown == nil || slices.Contains(shown, e.ItemID))
	})
}

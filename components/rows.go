package components

import (
	"context"
	"io"
	"strings"

	"github.com/a-h/templ"

	"market/store"
)

// RowCue is where a buyer's cue goes in an item's row rendered for no budget (NoBudget): its
// short text (Text) and its button's aria-disabled (Disabled), offsets in the rows, and the
// row's end. Text is 0 when the row has no such places: it is then rendered for the buyer.
type RowCue struct{ Text, Disabled, End int }

// SharedRows renders ItemRows(items, NoBudget), rows every buyer shares, and notes where in
// each row a buyer's cue goes, for BuyerRows.
func SharedRows(ctx context.Context, items []store.Item) (string, []RowCue, error) {
	var b strings.Builder
	cues := make([]RowCue, len(items))
	for i, it := range items {
		start := b.Len()
		if err := ItemRow(it, NoBudget).Render(ctx, &b); err != nil {
			return "", nil, err
		}
		row := b.String()[start:]
		cues[i].End = b.Len()
		// The places are found by the ids the row gives them (escaped text cannot hold them).
		text := `id="` + shortID(it.ID) + `">`
		disabled := `aria-describedby="price-` + idString(it.ID) + " " + shortID(it.ID) + `"`
		if t, d := strings.Index(row, text+"</span>"), strings.Index(row, disabled+">"); t >= 0 && d > t &&
			strings.Count(row, text) == 1 && strings.Count(row, disabled) == 1 {
			cues[i].Text, cues[i].Disabled = start+t+len(text), start+d+len(disabled)
		}
	}
	return b.String(), cues, nil
}

// BuyerRows is ItemRows(items, budget), from the rows and cues SharedRows made of items: a row
// the buyer can afford is the shared one, and a row they are short for gets its cue written in.
func BuyerRows(items []store.Item, rows string, cues []RowCue, budget int64) templ.Component {
	return templ.ComponentFunc(func(ctx context.Context, w io.Writer) error {
		start := 0
		for i, it := range items {
			c := cues[i]
			var err error
			switch {
			case !Short(it.Price, budget):
				_, err = io.WriteString(w, rows[start:c.End])
			case c.Text == 0:
				err = ItemRow(it, budget).Render(ctx, w)
			default:
				err = writeAll(w, rows[start:c.Text], templ.EscapeString(ShortText(it.Price, budget)),
					rows[c.Text:c.Disabled], ` aria-disabled="true"`, rows[c.Disabled:c.End])
			}
			if err != nil {
				return err
			}
			start = c.End
		}
		return nil
	})
}

func writeAll(w io.Writer, parts ...string) error {
	for _, p := range parts {
		if _, err := io.WriteString(w, p); err != nil {
			return err
		}
	}
	return nil
}

package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// Pages says which pages ChangesSince reads.
type Pages int

const (
	// AllPages reads the page of every query asked.
	AllPages Pages = iota
	// TouchedPages reads only the pages the events may have changed; the other queries are
	// listed in Changes.Untouched, their pages as they were before the events.
	TouchedPages
)

// matchChunk bounds the searches one matching statement carries (SQLite allows 32,766
// parameters).
const matchChunk = 500

// touched splits queries into those whose page the events of c may have changed and those
// whose page they cannot have (both normalized). A purchase or a sale moves one item into or
// out of the items on sale, which changes the results of a search (any sort, any page: the
// boundaries shift) only when the item matches it, so the store answers "which searches does
// this item match" with the search's own LIKE in the same snapshot: the same collation,
// escaping and case rules as the page itself. A version that did not move touches nothing
// (a change can ring the doorbell twice: at commit, and in the poll that watches the file).
// When c may not tell every change (events lost or cut at limit, a version that moved with no
// event, as after an operator's command, or an event other than a trade), every page counts
// as touched.
func (s *Store) touched(ctx context.Context, tx *sql.Tx, c Changes, since int64, limit int, queries []MarketQuery) (touched, untouched []MarketQuery, err error) {
	if c.Version == since || !s.Exact(c.Version) {
		// Not moved, or not final: the broker reads again (an inexact read is not handed out).
		return nil, normalized(queries), nil
	}
	if !c.Complete || len(c.Events) == 0 || len(c.Events) >= limit {
		return queries, nil, nil
	}
	ids := make([]int64, 0, len(c.Events))
	for _, e := range c.Events {
		if e.Kind != "buy" && e.Kind != "sell" {
			return queries, nil, nil
		}
		ids = append(ids, e.ItemID)
	}
	var texts []string
	seen := map[string]bool{"": true} // every item matches the empty search
	for _, q := range queries {
		if q = q.Normalize(); !seen[q.Q] {
			seen[q.Q] = true
			texts = append(texts, q.Q)
		}
	}
	matched := map[string]bool{"": true}
	for start := 0; start < len(texts); start += matchChunk {
		if err := s.matching(ctx, tx, ids, texts[start:min(start+matchChunk, len(texts))], matched); err != nil {
			return nil, nil, err
		}
	}
	for _, q := range queries {
		if q = q.Normalize(); matched[q.Q] {
			touched = append(touched, q)
		} else {
			untouched = append(untouched, q)
		}
	}
	return touched, untouched, nil
}

// normalized is queries, each normalized.
func normalized(queries []MarketQuery) []MarketQuery {
	n := make([]MarketQuery, len(queries))
	for i, q := range queries {
		n[i] = q.Normalize()
	}
	return n
}

// matching adds to matched the searches of texts that at least one of the items ids matches.
func (s *Store) matching(ctx context.Context, tx *sql.Tx, ids []int64, texts []string, matched map[string]bool) error {
	args := make([]any, 0, len(texts)+len(ids))
	pattern := make(map[string]string, len(texts))
	for _, t := range texts {
		p := "%" + escapeLike(t) + "%"
		pattern[p] = t
		args = append(args, p)
	}
	for _, id := range ids {
		args = append(args, id)
	}
	like := s.d.Dialect().Like
	// VALUES names its column column1 on both engines.
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT p.column1 FROM (VALUES `+
		strings.TrimSuffix(strings.Repeat(`(CAST(? AS TEXT)),`, len(texts)), ",")+`) AS p
		JOIN items i ON i.id IN (`+strings.TrimSuffix(strings.Repeat(`?,`, len(ids)), ",")+`)
		AND (i.name `+like+` p.column1 ESCAPE '\' OR i.description `+like+` p.column1 ESCAPE '\')`, args...)
	if err != nil {
		return fmt.Errorf("match searches: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return err
		}
		matched[pattern[p]] = true
	}
	return rows.Err()
}

package postgres

import "testing"

func TestRebind(t *testing.T) {
	for in, want := range map[string]string{
		`SELECT 1`:                              `SELECT 1`,
		`SELECT ? , ?`:                          `SELECT $1 , $2`,
		`SELECT '?', "a?", ? WHERE x LIKE '%?'`: `SELECT '?', "a?", $1 WHERE x LIKE '%?'`,
		`UPDATE t SET a = ? WHERE b = 'it''s' AND c = ?`: `UPDATE t SET a = $1 WHERE b = 'it''s' AND c = $2`,
	} {
		if got := rebind(in); got != want {
			t.Errorf("rebind(%q) = %q, want %q", in, got, want)
		}
	}
}

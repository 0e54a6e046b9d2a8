package commands

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"market/store"
)

// copyTo is `market -db market.db copy -to postgres://... [-sessions]`: the whole SQLite
// market into an empty PostgreSQL database, then check on the target.
func copyTo(ctx context.Context, st *store.Store, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	to := fs.String("to", "", "postgres:// URL of an empty PostgreSQL database (migrated on the way)")
	sessions := fs.Bool("sessions", false, "copy the sessions too, so that users stay signed in")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !store.IsPostgres(*to) {
		return errors.New("copy needs -to postgres://user@host/database")
	}
	dst, err := store.Open(ctx, *to, store.Options{})
	if err != nil {
		return err
	}
	defer dst.Close()
	n, err := st.CopyTo(ctx, dst, *sessions)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "copied to %s: %d users, %d items, %d trades, %d admin log entries, %d sessions, %d pictures\n",
		dst.Path(), n.Users, n.Items, n.Trades, n.AdminLog, n.Sessions, n.Pictures)
	return check(ctx, dst, stdout)
}

package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"market/store"
)

// adminRole is `market role USERNAME admin|user`: the way to make the first admin.
func role(ctx context.Context, st *store.Store, args []string, stdout io.Writer) error {
	if len(args) != 2 {
		return errors.New("usage: market role USERNAME admin|user")
	}
	u, err := st.SetRole(ctx, args[0], args[1])
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("role: no user named %q", args[0])
	case errors.Is(err, store.ErrBadRole):
		return fmt.Errorf("role: %q is not a role: want admin or user", args[1])
	case err != nil:
		return err
	}
	fmt.Fprintf(stdout, "%s is now %s %s\n", u.Username, article(u.Role), u.Role)
	return nil
}

func article(role string) string {
	if role == store.RoleAdmin {
		return "an"
	}
	return "a"
}

// adminBackup is `market backup OUT`: a consistent copy of a SQLite market, taken while it
// serves, then checked; it fails unless the copy passes.
func backup(ctx context.Context, st *store.Store, args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: market -db FILE backup OUT")
	}
	problems, err := st.Backup(ctx, args[0])
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("backup %s fails check:\n%s", args[0], strings.Join(problems, "\n"))
	}
	fmt.Fprintf(stdout, "backup written to %s and checked: ok\n", args[0])
	return nil
}

// Package commands is the market's operator subcommands (users, seed, reset, check, copy,
// role, backup): what an operator runs against either engine's database, `market -db URL
// COMMAND`. The use cases they call are the store's (store/admin.go and the rest).
package commands

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"market/store"
)

// Commands names the subcommands, for usage lines.
const Commands = "users | seed [-items N] [-users N -password P] | reset --yes | check | copy -to postgres://... [-sessions] | role USERNAME admin|user | backup OUT"

// Run runs the subcommand args[0] with its flags args[1:] on st, writing its report to stdout.
func Run(ctx context.Context, st *store.Store, args []string, stdout io.Writer) error {
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	switch cmd {
	case "users":
		return users(ctx, st, stdout)
	case "seed":
		return seed(ctx, st, fs, rest, stdout)
	case "reset":
		return reset(ctx, st, fs, rest, stdout)
	case "check":
		return check(ctx, st, stdout)
	case "copy":
		return copyTo(ctx, st, fs, rest, stdout)
	case "role":
		return role(ctx, st, rest, stdout)
	case "backup":
		return backup(ctx, st, rest, stdout)
	}
	return fmt.Errorf("unknown command %q: want users, seed, reset, check, copy, role or backup", cmd)
}

func users(ctx context.Context, st *store.Store, stdout io.Writer) error {
	users, err := st.Users(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSERNAME\tEMAIL\tBUDGET\tROLE")
	for _, u := range users {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\n", u.ID, u.Username, u.Email, u.Budget, u.Role)
	}
	return tw.Flush()
}

func seed(ctx context.Context, st *store.Store, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	items := fs.Int("items", 0, "also add this many generated items (load tests)")
	users := fs.Int("users", 0, "also add this many generated users, user00001..., with -password")
	password := fs.String("password", "", "the password of the generated users")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *users > 0 && len(*password) < 8 {
		return errors.New("seed -users needs -password, of at least 8 characters")
	}
	n, err := st.Seed(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "demo catalogue: %d items added\n", n)
	if *items > 0 || *users > 0 {
		start := time.Now()
		if err := st.SeedScale(ctx, *items, *users, *password); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "generated: %d items and %d users in %s\n", *items, *users, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

func reset(ctx context.Context, st *store.Store, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	yes := fs.Bool("yes", false, "really delete every user, item, trade and session")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !*yes {
		return errors.New("reset deletes everything: run it as 'reset --yes'")
	}
	if err := st.Reset(ctx); err != nil {
		return err
	}
	n, err := st.Seed(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "database reset: %d demo items loaded\n", n)
	return nil
}

// check fails when the store finds a problem, and otherwise says how the money balances.
func check(ctx context.Context, st *store.Store, stdout io.Writer) error {
	problems, err := st.Check(ctx)
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stdout, "FAIL", p)
		}
		return fmt.Errorf("check: %d problems", len(problems))
	}
	t, err := st.Totals(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ok: integrity, ledgers and owners agree; budgets %d + owned items %d = granted %d\n",
		t.Budgets, t.Owned, t.Granted)
	return nil
}

package store

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// engine is everything that differs between SQLite (sqlite.go, sqlite_events.go) and PostgreSQL
// (postgres.go, postgres_listen.go, postgres_sql.go). Open chooses one; the use cases call it
// and never ask which it is.
type engine interface {
	// dialect is how the engine spells what the shared SQL cannot.
	dialect() dialect
	// migrations are the engine's numbered *.sql files, at the root of the FS.
	migrations() fs.FS
	// lockSchema holds the schema for one migration run (PostgreSQL: against other instances).
	lockSchema(ctx context.Context) (schemaLock, error)
	// dropAll drops the market's tables and functions (and what hangs on them), and the
	// schema version with them.
	dropAll(ctx context.Context, schema schemaObjects) error
	// isUnique reports whether err is a unique violation on table.column.
	isUnique(err error, column string) bool
	// trade runs one purchase (buy) or sale in one round trip; ok is false when the engine has
	// no such statement (SQLite: the shared trade runs, in its group commit).
	trade(ctx context.Context, userID, itemID int64, buy bool) (t Trade, ok bool, err error)
	// recordEvent writes a trade's market event inside its transaction (see events.go).
	recordEvent(ctx context.Context, tx *sql.Tx, itemID int64, kind string, userID int64) error
	// position is the market version q sees. exact is false when q may also see changes
	// after it (PostgreSQL, while a transaction older than the newest change still runs):
	// then nothing read may be cached under it, though every event up to it is final.
	position(ctx context.Context, q querier) (version int64, exact bool, err error)
	// lookAgain rings Changed in a moment: a read of the changes found a version that is not
	// exact (a change above its horizon), which will be final soon.
	lookAgain()
	// versionedUser is position and the user id (ErrNotFound: none), in one statement.
	versionedUser(ctx context.Context, q querier, id int64) (version int64, u User, err error)
	// eventsSince is up to limit events after version since, up to q's position; complete is
	// false when some are gone (pruned, or since is from another history).
	eventsSince(ctx context.Context, q querier, since int64, limit int) (events []MarketEvent, complete bool, err error)
	// prune deletes the events beyond the newest keep, and moves the horizon past them.
	prune(ctx context.Context, keep int) error
	// reset gives a market just migrated again a version past old, the version before.
	reset(ctx context.Context, old int64) error
	// start runs once the schema is migrated: what the engine runs besides the use cases.
	start(ctx context.Context) error
	// changed is Changed's channel; listening says whether other processes' changes are heard
	// as they commit.
	changed() <-chan struct{}
	committed() // a trade of this process committed
	listening() bool
	sessions(cleanup time.Duration) *SessionStore
	limits() limiter
	// pool is PostgreSQL's pgx pool, nil on SQLite.
	pool() *pgxpool.Pool
	// close ends what the engine runs besides db and read (Close closes those).
	close()
}

// dialect is the SQL the engines spell differently.
type dialect struct {
	like          string   // LIKE that ignores letter case
	schemaVersion string   // reads the number of the last migration applied
	integrity     []string // Check's queries of the engine's own integrity, each row a problem
	// lockRow ends a read of a row the transaction is about to change, so that a concurrent
	// change of the row waits for it (PostgreSQL's FOR UPDATE; SQLite writes one at a time).
	lockRow string
	// sessionAlive holds for a session s that has not expired (scs's stores keep the expiry
	// as a Julian day on SQLite, a timestamp on PostgreSQL).
	sessionAlive string
}

// schemaLock reads and moves the schema version while migrations run.
type schemaLock interface {
	version(ctx context.Context) (int, error)
	// apply runs one migration and records its version, in one transaction.
	apply(ctx context.Context, body string, version int) error
	release()
}

// migrate applies every migration of the engine newer than the schema's version, in order,
// each in its own transaction together with its version number.
func migrate(ctx context.Context, e engine) error {
	fsys := e.migrations()
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	lock, err := e.lockSchema(ctx)
	if err != nil {
		return err
	}
	defer lock.release()
	current, err := lock.version(ctx)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	for _, name := range names {
		version, err := strconv.Atoi(strings.SplitN(path.Base(name), "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: bad name", name)
		}
		if version <= current {
			continue
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		if err := lock.apply(ctx, string(body), version); err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
		current = version
	}
	return nil
}

// subFS is the migrations directory dir of fsys as an FS of its own.
func subFS(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err) // dir is a constant embedded with fsys
	}
	return sub
}

// schemaObjects are the tables and functions the migrations create, in the order they are
// created: what Reset drops, so that a table a new migration adds is dropped too, and a table
// of another program that shares the database is not.
type schemaObjects struct {
	tables, functions []string
}

var (
	sqlComment     = regexp.MustCompile(`--[^\n]*`)
	createTable    = regexp.MustCompile(`(?i)\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)`)
	createFunction = regexp.MustCompile(`(?i)\bCREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+(\w+)`)
)

// migrationObjects reads the engine's migrations for the objects they create.
func migrationObjects(fsys fs.FS) (schemaObjects, error) {
	var o schemaObjects
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return o, err
	}
	sort.Strings(names)
	for _, name := range names {
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return o, err
		}
		text := sqlComment.ReplaceAllString(string(body), "")
		for _, m := range createTable.FindAllStringSubmatch(text, -1) {
			o.tables = appendNew(o.tables, m[1])
		}
		for _, m := range createFunction.FindAllStringSubmatch(text, -1) {
			o.functions = appendNew(o.functions, m[1])
		}
	}
	return o, nil
}

func appendNew(list []string, name string) []string {
	if slices.Contains(list, name) {
		return list
	}
	return append(list, name)
}

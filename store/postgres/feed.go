package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"market/store/driver"
)

// The change feed on PostgreSQL (migrations/0004_feed.sql, 0005_trade_feed.sql) is
// the view market_changes: a trade's ledger row, and a row of market_feed for every other
// change of an item or a budget (triggers, an operator's change), each stamped with the id of
// the transaction that wrote it (xid8). Nothing is updated afterwards, and no two writers share
// a row. A reader's snapshot has a horizon (pgHorizon): every transaction below it that can
// write this database has ended, so no row can appear below it later. Readers take the rows
// below it, in (xid, seq) order, and that is the whole technique: every committed change once,
// none that rolled back, and a long transaction of this database holds the horizon back,
// delaying the feed without losing anything (one of another database does not). A trade's first
// write is its item's row (market_trade), so the trades of one item are in the order they
// committed.
//
// A market version on PostgreSQL is epoch*pgEpochUnit + xid*2 + inexact, so that it stays an
// int64 that only grows (the live streams' SSE ids and since= keep their form, and SQLite's
// small versions, epoch 0, stay apart):
//   - exact (even): the newest change the snapshot sees is below its horizon, so the set of
//     changes it sees is final and that change's xid names it: caches may key on it;
//   - inexact (odd): a transaction of this database older than the newest change still
//     runs (or may: see pgHorizon); every change up to the horizon is final, and the version
//     is the horizon's, but the data may hold changes after it: nothing is cached under it,
//     and the live streams get those changes with the next version.
//
// The epoch tells which history the xids belong to: rolled on Reset, and when the database
// turns out to be a copy or a restore (claim), so that a cursor from elsewhere gets a refresh.

// pgEpochUnit is the weight of the epoch in a version: 2^40 transaction ids per epoch.
const pgEpochUnit = 1 << 41

// pruneInterval is how often one instance prunes the feed beyond EventsKept.
const pruneInterval = 5 * time.Second

// pgVersion is the version of the feed at transaction id xid in epoch.
func pgVersion(epoch, xid int64, exact bool) int64 {
	v := epoch*pgEpochUnit + xid*2
	if !exact {
		v |= 1
	}
	return v
}

// pgNewest is the newest transaction id in the feed (NULL when empty), an index-only look at
// each of its tables' newest row. Ordered scans go to the tables, not to the view: PostgreSQL
// does not flatten a UNION ALL branch with a WHERE clause, so it sorts the view's rows instead
// of merging the two indexes.
const pgNewest = `greatest((SELECT max(xid) FROM market_feed),
	(SELECT max(xid) FROM trades WHERE xid IS NOT NULL AND kind IN ('buy', 'sell')))`

// pgPosition reads the epoch, the newest change the snapshot sees (or, in an empty feed, the
// transaction before the catalogue's horizon) and the snapshot's horizon for this database
// (pgHorizon): the whole per-request freshness read, an index-only look at the feed's newest
// row. No feed row can appear below the catalogue's horizon (it was created, or pruned, past
// every transaction then running), so the horizon counts from there at least.
const pgPosition = `SELECT c.epoch,
	greatest((` + pgNewest + `)::text::bigint, c.horizon::text::bigint - 1),
	greatest((` + pgHorizon + `)::text::bigint, c.horizon::text::bigint)`

// pgHorizon is the oldest transaction the snapshot sees running that can still write this
// database's feed (the snapshot's next transaction id when none can): every feed row below it
// is final. Usually that is the snapshot's own horizon, pg_snapshot_xmin, below which every
// transaction of the cluster has ended. But the cluster's transaction ids are shared by all its
// databases, and one long transaction in another database (another application, another
// test's database) would hold every market version of this one inexact for as long as it runs,
// though it can never write here. So when the cluster's horizon is not past the newest change,
// the transactions running below that change are looked up: those whose backend is connected
// to another database (pg_stat_activity: datid and backend_xid, which every role may read;
// a backend's database never changes) do not count. The lookup runs after the snapshot was
// taken: a transaction running then and ended since is not found, and counts, as does every
// one not found (a prepared transaction, a backend that has not published its id yet): the
// judgement errs only towards inexact. The feed's rows carry their top-level transaction's id
// (pg_current_xact_id), the ids a snapshot lists.
const pgHorizon = `SELECT CASE WHEN s.newest IS NULL OR s.newest < pg_snapshot_xmin(s.snap) THEN pg_snapshot_xmin(s.snap)
	ELSE coalesce((SELECT min(r.x) FROM pg_snapshot_xip(s.snap) r(x)
		WHERE r.x < s.newest AND NOT EXISTS (SELECT FROM pg_stat_activity a
			WHERE a.backend_xid::text::bigint = r.x::text::bigint % 4294967296
			  AND a.datid <> (SELECT oid FROM pg_database WHERE datname = current_database()))),
		pg_snapshot_xmax(s.snap)) END
	FROM (SELECT pg_current_snapshot() AS snap, (` + pgNewest + `) AS newest) s`

func (e *Engine) Position(ctx context.Context, q driver.Querier) (int64, bool, error) {
	return e.position(ctx, q, pgPosition+` FROM catalogue c`)
}

// ownPosition is Position as the engine reads it by itself (the poll, the notifier): the same
// statement, named apart, so that what runs beside the requests can be told from theirs (in
// pg_stat_statements, or at the wire).
func (e *Engine) ownPosition(ctx context.Context) (int64, error) {
	v, _, err := e.position(ctx, e.db, pgPosition+` FROM catalogue c /* the engine's own */`)
	return v, err
}

func (e *Engine) position(ctx context.Context, q driver.Querier, query string) (int64, bool, error) {
	var epoch, newest, horizon int64
	err := q.QueryRowContext(ctx, query).Scan(&epoch, &newest, &horizon)
	if err != nil {
		return 0, false, fmt.Errorf("market version: %w", err)
	}
	v, exact := e.version(epoch, newest, horizon)
	return v, exact, nil
}

// version is the version of a snapshot that sees the change newest, below horizon.
func (e *Engine) version(epoch, newest, horizon int64) (int64, bool) {
	if newest < horizon {
		return pgVersion(epoch, newest, true), true
	}
	return pgVersion(epoch, horizon-1, false), false
}

// VersionedUser reads the position and the signed-in user in one round trip, each request's first.
func (e *Engine) VersionedUser(ctx context.Context, q driver.Querier, id int64) (int64, driver.User, error) {
	var (
		epoch, newest, horizon int64
		u                      driver.NullUser
	)
	err := q.QueryRowContext(ctx, pgPosition+`, u.id, u.username, u.email, u.budget, u.role, u.session_gen,
		u.email_confirmed FROM catalogue c LEFT JOIN users u ON u.id = ?`, id).Scan(append([]any{&epoch, &newest, &horizon}, u.Dest()...)...)
	if err != nil {
		return 0, driver.User{}, fmt.Errorf("market version: %w", err)
	}
	v, _ := e.version(epoch, newest, horizon)
	user, err := u.User(id)
	return v, user, err
}

// pgSessionUser reads a session, the user its row names and the position: a request's first
// read, one round trip (no row: no such session, or it expired).
const pgSessionUser = pgPosition + `, s.data, coalesce(s.user_id, 0), u.id, u.username, u.email, u.budget, u.role, u.session_gen,
	u.email_confirmed
	FROM sessions s CROSS JOIN catalogue c LEFT JOIN users u ON u.id = s.user_id
	WHERE s.token = $1 AND current_timestamp < s.expiry`

// sessionUser is the sessions' driver.UserRead.
func (e *Engine) sessionUser(ctx context.Context, q driver.SessionDB, token string, su *driver.SessionUser) ([]byte, error) {
	var (
		epoch, newest, horizon, userID int64
		data                           []byte
		u                              driver.NullUser
	)
	err := q.QueryRowContext(ctx, pgSessionUser, token).Scan(append([]any{&epoch, &newest, &horizon, &data, &userID}, u.Dest()...)...)
	if err != nil {
		return nil, err
	}
	su.UserID = userID
	if userID != 0 {
		su.Read = true
		su.Version, _ = e.version(epoch, newest, horizon)
		su.User, su.Err = u.User(userID)
	}
	return data, nil
}

// EventsSince reads the trades after since up to until, a version Position gave in the same
// snapshot: every row up to it is final, and they are the events of exactly that version.
func (e *Engine) EventsSince(ctx context.Context, q driver.Querier, since, until int64, limit int) ([]driver.MarketEvent, bool, error) {
	var epoch, pruned int64
	if err := q.QueryRowContext(ctx, `SELECT epoch, horizon::text::bigint FROM catalogue`).Scan(&epoch, &pruned); err != nil {
		return nil, false, fmt.Errorf("events horizon: %w", err)
	}
	after := since % pgEpochUnit / 2
	if since/pgEpochUnit != epoch || after+1 < pruned {
		return nil, false, nil
	}
	return driver.ScanEvents(q.QueryContext(ctx, pgEvents, epoch*pgEpochUnit, after, until%pgEpochUnit/2, limit))
}

// pgEvents reads the feed's events after a transaction id and up to another, as versions from
// a base: a range of the two indexes' newest rows.
const pgEvents = `SELECT ?::bigint + f.xid::text::bigint * 2, f.item_id, coalesce(i.name, ''), f.kind, f.user_id
	FROM market_changes f LEFT JOIN items i ON i.id = f.item_id
	WHERE f.xid > ?::bigint::text::xid8 AND f.xid <= ?::bigint::text::xid8
	  AND f.kind <> 'change'
	ORDER BY f.xid, f.seq LIMIT ?`

// pgFeedCut is the transaction id before which the feed keeps no more than $1 rows (in whole
// transactions), and no later than the snapshot's horizon (pgHorizon: another database's long
// transaction does not keep the feed from being pruned); none when it holds fewer.
const pgFeedCut = `SELECT least(f.xid, (` + pgHorizon + `)) AS x FROM (
		(SELECT xid FROM market_feed ORDER BY xid DESC LIMIT $1 + 1)
		UNION ALL
		(SELECT xid FROM trades WHERE xid IS NOT NULL AND kind IN ('buy', 'sell') ORDER BY xid DESC LIMIT $1 + 1)
	) f ORDER BY f.xid DESC OFFSET $1 LIMIT 1`

// Prune moves the catalogue's horizon past the feed's rows beyond the newest keep, whole
// transactions and only below the snapshot's horizon (a row of a transaction still running
// must not appear behind it), and deletes those of market_feed, in one statement; the ledger's
// rows stay, and a cursor before the horizon gets a refresh.
func (e *Engine) Prune(ctx context.Context, keep int) error { return prune(ctx, e.pgx, keep) }

// prune is Prune on db: the pool, or the transaction that holds the pruning's lock.
func prune(ctx context.Context, db interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}, keep int) error {
	_, err := db.Exec(ctx, `WITH cut AS (`+pgFeedCut+`),
		moved AS (
			UPDATE catalogue c SET horizon = greatest(c.horizon, cut.x) FROM cut RETURNING c.horizon)
		DELETE FROM market_feed WHERE xid < (SELECT horizon FROM moved)`, keep)
	if err != nil {
		return fmt.Errorf("prune events: %w", err)
	}
	return nil
}

// pruneLoop prunes the feed every pruneInterval, outside the trades' commits, on one instance
// at a time (the others find the lock taken and skip their turn).
func (e *Engine) pruneLoop(ctx context.Context) {
	t := time.NewTicker(pruneInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// One connection, the lock's, within one interval: a hung database holds no more,
		// and the next turn tries again.
		turn, cancel := context.WithTimeout(ctx, pruneInterval)
		pgx.BeginFunc(turn, e.pgx, func(tx pgx.Tx) error {
			var mine bool
			if err := tx.QueryRow(turn, `SELECT pg_try_advisory_xact_lock(7460138)`).Scan(&mine); err != nil || !mine {
				return err
			}
			return prune(turn, tx, driver.EventsKept)
		})
		cancel()
	}
}

// Reset claims a new epoch: the schema was dropped and migrated again, so the feed is empty; the new epoch is
// past old's, so that versions go on growing and every cursor from before gets a refresh.
func (e *Engine) Reset(ctx context.Context, old int64) error {
	return e.claim(ctx, old/pgEpochUnit)
}

// claim makes the feed's history this database's. A database opened for the first time draws its
// epoch at random (two databases, a copy and its source, then hardly ever share one); one that is
// not where it was (another database OID, another cluster's system identifier when it can be read,
// or feed rows from transactions this cluster has not reached: a dump restored elsewhere) rolls
// its epoch and empties the feed, whose xids belong to the old place (the ledger's rows stay, and
// those from the future leave the feed). after > 0 rolls the epoch past after (Reset). Under the
// migrations' lock, so that instances starting together claim once.
func (e *Engine) claim(ctx context.Context, after int64) error {
	var system sql.NullString // pg_control_system may be refused to the market's role
	if err := e.pgx.QueryRow(ctx, `SELECT system_identifier::text FROM pg_control_system()`).Scan(&system); err != nil {
		system = sql.NullString{}
	}
	return pgx.BeginFunc(ctx, e.pgx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7460137)`); err != nil {
			return err
		}
		var (
			epoch         int64
			moved, future bool
			first         bool
		)
		err := tx.QueryRow(ctx, `SELECT c.epoch, c.db_oid IS NULL,
			c.db_oid IS DISTINCT FROM (SELECT oid FROM pg_database WHERE datname = current_database())
				OR ($1::text IS NOT NULL AND c.system_id IS NOT NULL AND c.system_id <> $1::text),
			coalesce(`+pgNewest+`, '0'::xid8) >= pg_snapshot_xmax(pg_current_snapshot())
				OR c.horizon > pg_snapshot_xmax(pg_current_snapshot())
			FROM catalogue c`, system).Scan(&epoch, &first, &moved, &future)
		if err != nil {
			return fmt.Errorf("feed epoch: %w", err)
		}
		switch {
		case after > 0:
			epoch = after + 1 + time.Now().UnixNano()%1024
		case first:
			epoch = 1 + time.Now().UnixNano()%(1<<20)
		case moved || future:
			epoch += 1 + time.Now().UnixNano()%1024
			// The ledger stays: its rows from the future leave the feed (the others are below
			// the new horizon, where no cursor of the new epoch reads).
			for _, q := range []string{`DELETE FROM market_feed`, `UPDATE trades SET xid = NULL
				WHERE xid >= pg_snapshot_xmax(pg_current_snapshot()) AND kind IN ('buy', 'sell')`} {
				if _, err := tx.Exec(ctx, q); err != nil {
					return err
				}
			}
		default:
			return nil
		}
		_, err = tx.Exec(ctx, `UPDATE catalogue SET epoch = $1, horizon = pg_current_xact_id(), system_id = $2,
			db_oid = (SELECT oid FROM pg_database WHERE datname = current_database())`, epoch, system)
		return err
	})
}

package postgres

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"market/store/driver"
)

// Snapshot is a read-only snapshot (REPEATABLE READ) on a connection of its own, its
// statements pipelined: each Send is one round trip, BEGIN sent with the first and ROLLBACK
// with the last. The statements are sent unnamed, parsed with the rest in the same round trip.
func (e *Engine) Snapshot(ctx context.Context) (driver.Batch, error) {
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	return &snapshot{ctx: ctx, e: e, conn: conn}, nil
}

type snapshot struct {
	ctx    context.Context
	e      *Engine
	conn   *sql.Conn
	begun  bool // BEGIN was sent: the connection may be in the transaction
	ended  bool // the transaction is over and the connection back in the pool
	queue  []pgStatement
	queued error // a statement that could not be queued (its parameters)
}

// pgStatement is a queued statement, and what takes each row of its result (text values).
type pgStatement struct {
	query  string
	params [][]byte
	row    func(values [][]byte) error
}

func (s *snapshot) Position(version *int64) {
	s.queue = append(s.queue, pgStatement{query: pgPosition + ` FROM catalogue c`, row: func(values [][]byte) error {
		var epoch, newest, horizon int64
		if err := scanText(values, []any{&epoch, &newest, &horizon}); err != nil {
			return fmt.Errorf("market version: %w", err)
		}
		*version, _ = s.e.version(epoch, newest, horizon)
		return nil
	}})
}

func (s *snapshot) Query(query string, args []any, row func(scan func(dest ...any) error) error) {
	params, err := textParams(args)
	if err != nil {
		s.queued = errors.Join(s.queued, err)
		return
	}
	s.queue = append(s.queue, pgStatement{query: rebind(query), params: params, row: func(values [][]byte) error {
		return row(func(dest ...any) error { return scanText(values, dest) })
	}})
}

func (s *snapshot) Send(end bool) error {
	queue := s.queue
	s.queue = nil
	switch {
	case s.queued != nil:
		return s.queued
	case s.ended:
		return errors.New("snapshot: sent after its end")
	}
	if !s.begun {
		queue = append([]pgStatement{{query: `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`}}, queue...)
	}
	if end {
		queue = append(queue, pgStatement{query: `ROLLBACK`})
	}
	s.begun = true
	err := s.conn.Raw(func(dc any) error {
		rc, ok := dc.(rebindConn)
		if !ok {
			return fmt.Errorf("snapshot: a connection of type %T", dc)
		}
		p := rc.Conn.Conn().PgConn().StartPipeline(s.ctx)
		for _, st := range queue {
			p.SendQueryParams(st.query, st.params, nil, nil, nil)
		}
		p.SendPipelineSync()
		if err := p.Flush(); err != nil {
			p.Close()
			return err
		}
		for _, st := range queue {
			if err := readRows(p, st.row); err != nil {
				err = errors.Join(err, toSync(p))
				p.Close()
				return err
			}
		}
		if err := toSync(p); err != nil {
			p.Close()
			return err
		}
		return p.Close()
	})
	if err == nil && end {
		s.ended = true
		s.conn.Close()
	}
	return err
}

// readRows reads the next statement's result, handing each row to row (nil: none expected).
func readRows(p *pgconn.Pipeline, row func(values [][]byte) error) error {
	res, err := p.GetResults()
	if err != nil {
		return err
	}
	rr, ok := res.(*pgconn.ResultReader)
	if !ok {
		return fmt.Errorf("pipeline: %T where a result was due", res)
	}
	for rr.NextRow() {
		if row == nil {
			continue
		}
		if err := row(rr.Values()); err != nil {
			rr.Close()
			return err
		}
	}
	_, err = rr.Close()
	return err
}

// Close ends a snapshot that no Send ended: a ROLLBACK, or, when that fails, the connection
// is closed rather than handed back in a transaction.
func (s *snapshot) Close() {
	if s.ended {
		return
	}
	s.ended = true
	if s.begun {
		s.conn.Raw(func(dc any) error {
			rc, ok := dc.(rebindConn)
			if !ok {
				return sqldriver.ErrBadConn
			}
			// Its own second: the read's context may have ended, and a connection whose
			// ROLLBACK was never sent is closed, where it could go back to the pool.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), time.Second)
			defer cancel()
			if _, err := rc.Conn.Conn().PgConn().Exec(ctx, `ROLLBACK`).ReadAll(); err != nil {
				return sqldriver.ErrBadConn
			}
			return nil
		})
	}
	s.conn.Close()
}

package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"

	"market/store/driver"
)

// tradeThenRead sends the trade and the read after it (after) in one round trip, pipelined,
// each in a transaction of its own: a sync point between them commits the trade before the
// read's snapshot is taken, so the read sees it (and every other commit before), and a read
// that fails leaves the trade as it went. dest takes the trade's row; an error is the trade's
// (statementError), the read's goes to after.Err. The statements are sent unnamed, parsed with
// the rest in the same round trip.
func (e *Engine) tradeThenRead(ctx context.Context, tradeArgs, dest []any, after *driver.AfterTrade) error {
	tradeParams, err := textParams(tradeArgs)
	if err != nil {
		return err
	}
	readParams, err := textParams(after.Args)
	if err != nil {
		return err
	}
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return err // nothing sent
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		rc, ok := dc.(rebindConn)
		if !ok {
			return fmt.Errorf("trade: a connection of type %T", dc)
		}
		p := rc.Conn.Conn().PgConn().StartPipeline(ctx)
		p.SendQueryParams(pgTrade, tradeParams, nil, nil, nil)
		p.SendPipelineSync()
		p.SendQueryParams(rebind(after.Query), readParams, nil, nil, nil)
		p.SendPipelineSync()
		if err := p.Flush(); err != nil {
			return statementError(err)
		}
		if err := oneRow(p, dest); err != nil {
			p.Close()
			return statementError(err)
		}
		after.Done = true
		after.Err = oneRow(p, []any{&after.Count})
		if err := p.Close(); err != nil && after.Err == nil {
			after.Err = err
		}
		return nil
	})
}

// oneRow reads the next statement's one row into dest (text values), and the sync point after it.
func oneRow(p *pgconn.Pipeline, dest []any) error {
	res, err := p.GetResults()
	if err != nil {
		return errors.Join(err, toSync(p))
	}
	rr, ok := res.(*pgconn.ResultReader)
	if !ok {
		return fmt.Errorf("pipeline: %T where a result was due", res)
	}
	r := rr.Read()
	if r.Err == nil && len(r.Rows) != 1 {
		r.Err = fmt.Errorf("pipeline: %d rows where one was due", len(r.Rows))
	}
	if r.Err == nil {
		r.Err = scanText(r.Rows[0], dest)
	}
	return errors.Join(r.Err, toSync(p))
}

// toSync reads up to the next sync point: what follows a statement, or its error.
func toSync(p *pgconn.Pipeline) error {
	for {
		res, err := p.GetResults()
		var pe *pgconn.PgError
		switch r := res.(type) {
		case *pgconn.PipelineSync:
			return nil
		case *pgconn.ResultReader:
			r.Close()
		case nil:
			if err == nil || !errors.As(err, &pe) {
				return err
			}
		}
	}
}

// textParams are args in PostgreSQL's text format: integers, booleans, text and NULL.
func textParams(args []any) ([][]byte, error) {
	out := make([][]byte, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case nil:
		case int64:
			out[i] = strconv.AppendInt(nil, v, 10)
		case int:
			out[i] = strconv.AppendInt(nil, int64(v), 10)
		case bool:
			out[i] = strconv.AppendBool(nil, v)
		case string:
			out[i] = []byte(v)
		default:
			return nil, fmt.Errorf("pipeline: a parameter of type %T", a)
		}
	}
	return out, nil
}

// scanText scans a row of text values into dest: strings, integers, or sql.Scanners.
func scanText(values [][]byte, dest []any) error {
	if len(values) != len(dest) {
		return fmt.Errorf("pipeline: %d columns for %d values", len(values), len(dest))
	}
	for i, v := range values {
		var src any
		if v != nil {
			src = string(v)
		}
		var err error
		switch d := dest[i].(type) {
		case *string:
			*d = string(v)
		case *int64:
			*d, err = strconv.ParseInt(string(v), 10, 64)
		case sql.Scanner:
			err = d.Scan(src)
		default:
			err = fmt.Errorf("pipeline: a destination of type %T", d)
		}
		if err != nil {
			return fmt.Errorf("pipeline: column %d: %w", i+1, err)
		}
	}
	return nil
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The outbox. A mail is written in the transaction of the change that asks for it (a token, an
// address change), so a mail is never lost and never sent for a change that did not commit.
// Workers (handlers/mail) claim the mails that are due, send them and mark them sent; a refusal
// or an unreachable server puts the mail back with a later next attempt, until it has been
// tried MailAttempts times and fails for good. A claim lasts a lease: a worker that dies with a
// mail claimed leaves it to another once the lease is over. So a mail is sent at least once,
// and twice only when a worker dies between the server's acceptance and the UPDATE that
// follows it (a few milliseconds), or when one send outlasts the lease (a batch's sending ends
// by a deadline well inside it: half the lease at most).
//
// The claim is one UPDATE of the due rows: its read skips the rows another instance holds (the
// dialect's SkipLocked: FOR UPDATE SKIP LOCKED on PostgreSQL), so instances never wait for each
// other nor claim one mail twice; on SQLite the one writer connection claims alone.

// The states of a mail.
const (
	MailQueued = "queued"
	MailSent   = "sent"
	MailFailed = "failed"
)

// MailAttempts is how many times a mail is tried before it fails for good.
const MailAttempts = 8

// Mail is one message of the outbox.
type Mail struct {
	ID                   int64
	To, Subject          string
	Text, HTML           string
	Secret               string // the token the bodies carry; scrubbed from them once sent
	State                string
	Attempts             int
	LastError            string
	Created, NextAttempt time.Time
	Sent                 time.Time // zero until sent
}

// millis is a time as the outbox keeps it; fromMillis the reverse (0 is the zero time).
func millis(t time.Time) int64 { return t.UnixMilli() }

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// enqueueMail writes m into the outbox inside tx, due now. The outbox keeps the wall clock's
// time, which its workers compare with.
func enqueueMail(ctx context.Context, tx *sql.Tx, m Mail) error {
	now := time.Now()
	_, err := tx.ExecContext(ctx, `INSERT INTO mails (to_addr, subject, body_text, body_html, secret, next_attempt_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, m.To, m.Subject, m.Text, m.HTML, m.Secret, millis(now), millis(now))
	if err != nil {
		return fmt.Errorf("enqueue mail: %w", err)
	}
	return nil
}

// EnqueueMail writes m into the outbox, due now: a mail that goes with no other change.
func (s *Store) EnqueueMail(ctx context.Context, m Mail) error {
	return s.d.Run(ctx, func(ctx context.Context, tx *sql.Tx) error { return enqueueMail(ctx, tx, m) })
}

// ClaimMails claims up to limit mails that are due (queued, next attempt passed, no live claim)
// for owner until now+lease, counts the attempt, and returns them, oldest due first.
func (s *Store) ClaimMails(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]Mail, error) {
	var mails []Mail
	err := s.d.Run(ctx, func(ctx context.Context, tx *sql.Tx) error {
		mails = mails[:0]
		rows, err := tx.QueryContext(ctx, `UPDATE mails SET claimed_by = ?, claimed_until = ?, attempts = attempts + 1
			WHERE id IN (SELECT id FROM mails WHERE state = 'queued' AND next_attempt_at <= ? AND claimed_until <= ?
			             ORDER BY next_attempt_at, id LIMIT ?`+s.d.Dialect().SkipLocked+`)
			RETURNING id, to_addr, subject, body_text, body_html, secret, attempts, created_at, next_attempt_at`,
			owner, millis(now.Add(lease)), millis(now), millis(now), limit)
		if err != nil {
			return fmt.Errorf("claim mails: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			m := Mail{State: MailQueued}
			var created, next int64
			if err := rows.Scan(&m.ID, &m.To, &m.Subject, &m.Text, &m.HTML, &m.Secret, &m.Attempts, &created, &next); err != nil {
				return err
			}
			m.Created, m.NextAttempt = fromMillis(created), fromMillis(next)
			mails = append(mails, m)
		}
		return rows.Err()
	})
	return mails, err
}

// scrubSecret, in an UPDATE of mails, takes the token out of a mail's bodies.
const scrubSecret = `body_text = CASE secret WHEN '' THEN body_text ELSE replace(body_text, secret, '(used)') END,
	body_html = CASE secret WHEN '' THEN body_html ELSE replace(body_html, secret, '(used)') END,
	secret = ''`

// MailSent marks a claimed mail sent, and scrubs its token from the bodies kept.
func (s *Store) MailSent(ctx context.Context, id int64, now time.Time) error {
	return s.d.Run(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE mails SET state = 'sent', sent_at = ?, claimed_by = '', claimed_until = 0, `+
			scrubSecret+` WHERE id = ?`, millis(now), id)
		return err
	})
}

// MailNotSent records a failed attempt of a mail owner claimed: it is tried again at retry, or,
// when final, it has failed for good (and retry should be the time it failed, from which
// SweepMail counts). A failed mail keeps its token while the token can be used, so that an
// operator's retry sends a link that works; SweepMail scrubs it after. Once the claim has passed
// to another worker (this one outlived its lease), the record is theirs to make: nothing changes.
func (s *Store) MailNotSent(ctx context.Context, id int64, owner, reason string, retry time.Time, final bool) error {
	state := MailQueued
	if final {
		state = MailFailed
	}
	return s.d.Run(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE mails SET state = ?, last_error = ?, next_attempt_at = ?,
			claimed_by = '', claimed_until = 0 WHERE id = ? AND claimed_by = ?`, state, clipText(reason, 500), millis(retry), id, owner)
		return err
	})
}

// ReleaseMail gives back a mail owner claimed and never offered to the server (its batch ran
// out of time): due as it was, its attempt not counted.
func (s *Store) ReleaseMail(ctx context.Context, id int64, owner string) error {
	return s.d.Run(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE mails SET attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,
			claimed_by = '', claimed_until = 0 WHERE id = ? AND claimed_by = ? AND state = 'queued'`, id, owner)
		return err
	})
}

// RetryMail queues a failed mail again, due now, with its attempts counted afresh. A mail that
// is not (or no longer) failed: ErrNotFound.
func (s *Store) RetryMail(ctx context.Context, id int64, now time.Time) (Mail, error) {
	var m Mail
	err := s.d.Run(ctx, func(ctx context.Context, tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `UPDATE mails SET state = 'queued', attempts = 0, next_attempt_at = ?
			WHERE id = ? AND state = 'failed' RETURNING id, to_addr, subject`, millis(now), id).Scan(&m.ID, &m.To, &m.Subject)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		return err
	})
	return m, err
}

// Mails lists up to limit mails of the outbox, newest first, without their bodies.
func (s *Store) Mails(ctx context.Context, limit int) ([]Mail, error) {
	rows, err := s.d.Read().QueryContext(ctx, `SELECT id, to_addr, subject, state, attempts, last_error, created_at,
		next_attempt_at, coalesce(sent_at, 0) FROM mails ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("list mails: %w", err)
	}
	defer rows.Close()
	var mails []Mail
	for rows.Next() {
		var m Mail
		var created, next, sent int64
		if err := rows.Scan(&m.ID, &m.To, &m.Subject, &m.State, &m.Attempts, &m.LastError, &created, &next, &sent); err != nil {
			return nil, err
		}
		m.Created, m.NextAttempt, m.Sent = fromMillis(created), fromMillis(next), fromMillis(sent)
		mails = append(mails, m)
	}
	return mails, rows.Err()
}

// MailCounts is how many mails of the outbox are in each state.
func (s *Store) MailCounts(ctx context.Context) (map[string]int, error) {
	rows, err := s.d.Read().QueryContext(ctx, `SELECT state, count(*) FROM mails GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("count mails: %w", err)
	}
	defer rows.Close()
	counts := map[string]int{}
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			return nil, err
		}
		counts[state] = n
	}
	return counts, rows.Err()
}

// clipText cuts s to at most n bytes, on a character boundary.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n]
}

// mailChecks are Check's queries of the outbox, each row a problem; those with a parameter take
// the latest time a claim may last (Unix milliseconds).
var mailChecks = []struct {
	query    string
	untilArg bool
}{
	{`SELECT 'mail ' || id || ': unknown state ' || state FROM mails WHERE state NOT IN ('queued', 'sent', 'failed')`, false},
	{`SELECT 'mail ' || id || ': sent without a time' FROM mails WHERE state = 'sent' AND sent_at IS NULL`, false},
	{`SELECT 'mail ' || id || ': ' || state || ' with a time sent' FROM mails WHERE state <> 'sent' AND sent_at IS NOT NULL`, false},
	{`SELECT 'mail ' || id || ': sent but still carries its token' FROM mails WHERE state = 'sent' AND secret <> ''`, false},
	{`SELECT 'mail ' || id || ': ' || state || ' but claimed' FROM mails WHERE state <> 'queued' AND claimed_by <> ''`, false},
	{`SELECT 'mail ' || id || ': negative attempts' FROM mails WHERE attempts < 0`, false},
	{`SELECT 'mail ' || id || ': claimed far into the future' FROM mails WHERE claimed_until > ?`, true},
}

// mailProblems runs mailChecks in q: no claim may last past an hour from now (a claim lasts a
// few minutes).
func mailProblems(ctx context.Context, q querier, now time.Time) ([]string, error) {
	var problems []string
	for _, c := range mailChecks {
		var args []any
		if c.untilArg {
			args = append(args, millis(now.Add(time.Hour)))
		}
		rows, err := q.QueryContext(ctx, c.query, args...)
		if err != nil {
			return nil, fmt.Errorf("check mails: %w", err)
		}
		for rows.Next() {
			var p string
			if err := rows.Scan(&p); err != nil {
				rows.Close()
				return nil, err
			}
			problems = append(problems, p)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return problems, nil
}

// MailKept is how long the outbox keeps a sent or failed mail, for the operator's page.
const MailKept = 30 * 24 * time.Hour

// SweepMail deletes the tokens expired for a day and the mails sent or failed more than
// MailKept ago, in batches, and takes out of failed mails the tokens that can no longer be used:
// the tables that grow with mail stay bounded, and no token waits in them for a mail that will
// not go. It returns how many rows it deleted or scrubbed.
func (s *Store) SweepMail(ctx context.Context, now time.Time) (int64, error) {
	tokens, err := s.deleteInBatches(ctx, `DELETE FROM mail_tokens WHERE hash IN
		(SELECT hash FROM mail_tokens WHERE expires_at < ? LIMIT ?)`, millis(now.Add(-24*time.Hour)))
	if err != nil {
		return tokens, err
	}
	mails, err := s.deleteInBatches(ctx, `DELETE FROM mails WHERE id IN
		(SELECT id FROM mails WHERE (state = 'sent' AND sent_at < ?) OR (state = 'failed' AND next_attempt_at < ?) LIMIT ?)`,
		millis(now.Add(-MailKept)), millis(now.Add(-MailKept)))
	if err != nil {
		return tokens + mails, err
	}
	scrubbed, err := s.scrubFailedTokens(ctx, now)
	return tokens + mails + scrubbed, err
}

// scrubFailedTokens takes the token out of failed mails whose token can no longer be used (the
// store keeps a token's hash, so the test is done here), a batch at a time, oldest first.
func (s *Store) scrubFailedTokens(ctx context.Context, now time.Time) (int64, error) {
	var total, after int64
	for {
		rows, err := s.d.Read().QueryContext(ctx, `SELECT id, secret FROM mails WHERE state = 'failed' AND secret <> '' AND id > ?
			ORDER BY id LIMIT ?`, after, mailSweepBatch)
		if err != nil {
			return total, fmt.Errorf("sweep mail: %w", err)
		}
		byHash := map[string][]any{}
		n := 0
		for rows.Next() {
			var secret string
			if err := rows.Scan(&after, &secret); err != nil {
				rows.Close()
				return total, err
			}
			byHash[TokenHash(secret)] = append(byHash[TokenHash(secret)], after)
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return total, err
		}
		if err := s.dropLiveTokens(ctx, byHash, now); err != nil {
			return total, err
		}
		var dead []any
		for _, ids := range byHash {
			dead = append(dead, ids...)
		}
		if len(dead) > 0 {
			scrubbed, err := s.scrub(ctx, dead)
			total += scrubbed
			if err != nil {
				return total, err
			}
		}
		if n < mailSweepBatch {
			return total, nil
		}
	}
}

// dropLiveTokens removes from byHash the hashes of tokens that can still be used at now.
func (s *Store) dropLiveTokens(ctx context.Context, byHash map[string][]any, now time.Time) error {
	if len(byHash) == 0 {
		return nil
	}
	args := []any{millis(now)}
	for h := range byHash {
		args = append(args, h)
	}
	rows, err := s.d.Read().QueryContext(ctx, `SELECT hash FROM mail_tokens WHERE used_at IS NULL AND expires_at > ?
		AND hash IN (`+placeholders(len(byHash))+`)`, args...)
	if err != nil {
		return fmt.Errorf("sweep mail: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return err
		}
		delete(byHash, h)
	}
	return rows.Err()
}

// scrub takes the token out of the failed mails ids, in one write.
func (s *Store) scrub(ctx context.Context, ids []any) (int64, error) {
	var n int64
	err := s.d.Run(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE mails SET `+scrubSecret+` WHERE state = 'failed' AND id IN (`+placeholders(len(ids))+`)`, ids...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sweep mail: %w", err)
	}
	return n, nil
}

// placeholders is n parameters of a list: ?, ?, ?.
func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

// mailSweepBatch bounds one delete of SweepMail, so that a sweep after a flood never holds the
// tables (or SQLite's writer) for long.
const mailSweepBatch = 1000

// deleteInBatches runs query (whose last parameter is the batch size), each batch one write,
// until it deletes less than a batch, and returns how many rows it deleted.
func (s *Store) deleteInBatches(ctx context.Context, query string, args ...any) (int64, error) {
	var total int64
	for {
		var n int64
		err := s.d.Run(ctx, func(ctx context.Context, tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, query, append(args, mailSweepBatch)...)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, fmt.Errorf("sweep mail: %w", err)
		}
		total += n
		if n < mailSweepBatch {
			return total, nil
		}
	}
}

-- Email that works for its owner. An address is confirmed by following a link sent to it; the
-- accounts from before start unconfirmed (no one ever proved they read their mail).
ALTER TABLE users ADD COLUMN email_confirmed INTEGER NOT NULL DEFAULT 0 CHECK (email_confirmed IN (0, 1));

-- The links' tokens, by the SHA-256 of the token (hex): the token itself is never stored. A
-- 'confirm' token confirms the user's address while it is still email; a 'change' token makes
-- email the user's address; a 'reset' token lets its holder choose a new password. Each is
-- used once (used_at) before expires_at (Unix milliseconds).
CREATE TABLE mail_tokens (
	hash       TEXT    PRIMARY KEY,
	user_id    INTEGER NOT NULL REFERENCES users (id),
	purpose    TEXT    NOT NULL CHECK (purpose IN ('confirm', 'change', 'reset')),
	email      TEXT    NOT NULL,
	expires_at INTEGER NOT NULL,
	used_at    INTEGER
);
CREATE INDEX mail_tokens_user ON mail_tokens (user_id, purpose);
CREATE INDEX mail_tokens_expiry ON mail_tokens (expires_at);

-- The outbox: each mail is written in the transaction of the change that asks for it, then
-- sent by a worker, which claims it (claimed_by, claimed_until: Unix milliseconds) so that one
-- instance sends it. secret is the token a queued mail's bodies carry; sending scrubs it from
-- them. Times are Unix milliseconds.
CREATE TABLE mails (
	id              INTEGER PRIMARY KEY,
	to_addr         TEXT    NOT NULL,
	subject         TEXT    NOT NULL,
	body_text       TEXT    NOT NULL,
	body_html       TEXT    NOT NULL,
	secret          TEXT    NOT NULL DEFAULT '',
	state           TEXT    NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'failed')),
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER NOT NULL,
	last_error      TEXT    NOT NULL DEFAULT '',
	created_at      INTEGER NOT NULL,
	sent_at         INTEGER,
	claimed_by      TEXT    NOT NULL DEFAULT '',
	claimed_until   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX mails_due ON mails (next_attempt_at) WHERE state = 'queued';

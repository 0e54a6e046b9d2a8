-- Operating the market. Roles: an admin runs the market from /admin. A session
-- remembers its user's session generation at login; a password change or "sign out everywhere
-- else" moves the generation on, which ends every other session on every instance. A retired
-- item stays in the table for the ledger's sake but leaves the market for good. A role or a
-- generation does not move the market version: a request reads its user fresh, with the
-- version, and a live stream checks its session's generation at each ping; moving the version
-- would make every open search's page be read again for a "sign out everywhere else".
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin'));
ALTER TABLE users ADD COLUMN session_gen INTEGER NOT NULL DEFAULT 0;
ALTER TABLE items ADD COLUMN retired_at TEXT;

-- What admins did, newest last: who (NULL: the command line), what, to what, before and after.
CREATE TABLE admin_log (
	id         INTEGER PRIMARY KEY,
	admin_id   INTEGER REFERENCES users (id),
	action     TEXT    NOT NULL,
	subject    TEXT    NOT NULL,
	old_value  TEXT    NOT NULL DEFAULT '',
	new_value  TEXT    NOT NULL DEFAULT '',
	created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- Market events also tell of items added, edited and retired, and of grants (item 0; user_id is
-- the user granted, whose pages show the new budget).
CREATE TABLE market_events_new (
	version INTEGER PRIMARY KEY,
	item_id INTEGER NOT NULL,
	kind    TEXT    NOT NULL CHECK (kind IN ('buy', 'sell', 'add', 'edit', 'retire', 'grant')),
	user_id INTEGER NOT NULL
);
INSERT INTO market_events_new (version, item_id, kind, user_id) SELECT version, item_id, kind, user_id FROM market_events;
DROP TABLE market_events;
ALTER TABLE market_events_new RENAME TO market_events;

-- The market's pages and counts are of the items on sale and not retired: the partial indexes
-- say both, so that a count of 100,000 items stays within the index.
DROP INDEX items_market_name;
DROP INDEX items_market_price;
CREATE INDEX items_market_name  ON items (name COLLATE NOCASE, id) WHERE owner_id IS NULL AND retired_at IS NULL;
CREATE INDEX items_market_price ON items (price, name COLLATE NOCASE, id) WHERE owner_id IS NULL AND retired_at IS NULL;

-- Users, the catalogue, and the table scs/sqlite3store keeps sessions in.
CREATE TABLE users (
	id            INTEGER PRIMARY KEY,
	username      TEXT    NOT NULL UNIQUE COLLATE NOCASE CHECK (length(username) BETWEEN 2 AND 30),
	email         TEXT    NOT NULL UNIQUE COLLATE NOCASE CHECK (length(email) <= 120),
	password_hash TEXT    NOT NULL,
	budget        INTEGER NOT NULL DEFAULT 1000 CHECK (budget >= 0)
);

CREATE TABLE items (
	id          INTEGER PRIMARY KEY,
	name        TEXT    NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 50),
	price       INTEGER NOT NULL CHECK (price > 0),
	barcode     TEXT    NOT NULL UNIQUE CHECK (length(barcode) = 12),
	description TEXT    NOT NULL DEFAULT '' CHECK (length(description) <= 1024),
	owner_id    INTEGER REFERENCES users (id)
);

-- The market lists unowned items by name or by price; a user's items by owner.
CREATE INDEX items_market_name  ON items (name COLLATE NOCASE, id) WHERE owner_id IS NULL;
CREATE INDEX items_market_price ON items (price, name COLLATE NOCASE, id) WHERE owner_id IS NULL;
CREATE INDEX items_owner        ON items (owner_id, name COLLATE NOCASE) WHERE owner_id IS NOT NULL;

CREATE TABLE sessions (
	token  TEXT PRIMARY KEY,
	data   BLOB NOT NULL,
	expiry REAL NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expiry);

-- The ledger: every change of a budget is one row, written in the transaction that makes it.
-- A budget is the sum of its user's rows; an item's owner is the buyer of its last trade.
CREATE TABLE trades (
	id         INTEGER PRIMARY KEY,
	user_id    INTEGER NOT NULL REFERENCES users (id),
	item_id    INTEGER REFERENCES items (id),
	kind       TEXT    NOT NULL CHECK (kind IN ('grant', 'buy', 'sell')),
	amount     INTEGER NOT NULL,
	created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX trades_user ON trades (user_id, id);
CREATE INDEX trades_item ON trades (item_id, id) WHERE item_id IS NOT NULL;

-- Databases made before the ledger get rows that explain what they hold: an opening grant of
-- 1000 for each user, then each owned item as a purchase at its price.
INSERT INTO trades (user_id, kind, amount) SELECT id, 'grant', 1000 FROM users;
INSERT INTO trades (user_id, item_id, kind, amount) SELECT owner_id, id, 'buy', -price FROM items WHERE owner_id IS NOT NULL;
INSERT INTO trades (user_id, kind, amount)
	SELECT u.id, 'grant', u.budget - (SELECT sum(t.amount) FROM trades t WHERE t.user_id = u.id) FROM users u
	WHERE u.budget <> (SELECT sum(t.amount) FROM trades t WHERE t.user_id = u.id);

-- The catalogue's version moves with every change to items, so readers can cache what they
-- built from it and still answer exactly as fresh as the database, across processes too.
CREATE TABLE catalogue (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
INSERT INTO catalogue (id, version) VALUES (1, 1);
CREATE TRIGGER items_insert AFTER INSERT ON items BEGIN UPDATE catalogue SET version = version + 1; END;
CREATE TRIGGER items_update AFTER UPDATE ON items BEGIN UPDATE catalogue SET version = version + 1; END;
CREATE TRIGGER items_delete AFTER DELETE ON items BEGIN UPDATE catalogue SET version = version + 1; END;

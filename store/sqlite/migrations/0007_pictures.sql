-- An item's picture: one per item, as resized copies re-encoded by the server (a square one for
-- lists, a 4:3 one for the item's page), named by the hash of both, which their URLs carry.
CREATE TABLE pictures (
	item_id INTEGER PRIMARY KEY REFERENCES items (id),
	hash    TEXT    NOT NULL,
	list    BLOB    NOT NULL,
	page    BLOB    NOT NULL
);
CREATE INDEX pictures_hash ON pictures (hash);

-- An item's picture, as in the SQLite migration 0007: one per item, its resized copies for a
-- list and for the item's page, named by the hash of both.
CREATE TABLE pictures (
	item_id bigint PRIMARY KEY REFERENCES items (id),
	hash    text   NOT NULL,
	list    bytea  NOT NULL,
	page    bytea  NOT NULL
);
CREATE INDEX pictures_hash ON pictures (hash);

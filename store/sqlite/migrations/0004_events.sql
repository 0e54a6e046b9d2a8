-- Market events: one row per purchase or sale, written in the trade's own transaction, so that
-- a live stream that reconnects can be told exactly what it missed. version is the market
-- version right after the trade (each trade moves it, so it is unique). Old rows are pruned;
-- market_events_horizon.pruned_through is the newest version pruned: a stream asking for
-- events after an older version than that gets a refresh of the list instead.
CREATE TABLE market_events (
	version INTEGER PRIMARY KEY,
	item_id INTEGER NOT NULL,
	kind    TEXT    NOT NULL CHECK (kind IN ('buy', 'sell')),
	user_id INTEGER NOT NULL
);
CREATE TABLE market_events_horizon (id INTEGER PRIMARY KEY CHECK (id = 1), pruned_through INTEGER NOT NULL);
-- Pages rendered before this migration cannot be replayed: their version is the horizon.
INSERT INTO market_events_horizon (id, pruned_through) SELECT 1, version FROM catalogue;

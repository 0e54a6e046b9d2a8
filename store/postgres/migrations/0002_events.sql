-- Market events: one row per purchase or sale, as in the SQLite migration 0004.
-- A trade inserts its event with a NULL version: the version moves only at commit, in the
-- deferred market_changed trigger, which then stamps the transaction's own events (only they
-- are visible to it with a NULL version; committed rows always have one) with the new version.
-- The catalogue row's lock serializes those commits, so versions are in commit order and
-- EventsSince(since) sees every event after since once its version is visible. The same
-- trigger prunes the events beyond the newest 10000 (store.EventsKept) every 500 versions.
CREATE TABLE market_events (
	version bigint UNIQUE,
	item_id bigint NOT NULL,
	kind    text   NOT NULL CHECK (kind IN ('buy', 'sell')),
	user_id bigint NOT NULL
);
CREATE TABLE market_events_horizon (id integer PRIMARY KEY CHECK (id = 1), pruned_through bigint NOT NULL);
-- Pages rendered before this migration cannot be replayed: their version is the horizon.
INSERT INTO market_events_horizon (id, pruned_through) SELECT 1, version FROM catalogue;

-- The version trigger of 0001, which now also stamps and prunes the events.
CREATE OR REPLACE FUNCTION market_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	v bigint;
	cutoff bigint;
BEGIN
	IF current_setting('market.bumped', true) = '1' THEN
		RETURN NULL;
	END IF;
	PERFORM set_config('market.bumped', '1', true);
	UPDATE catalogue SET version = version + 1 RETURNING version INTO v;
	UPDATE market_events SET version = v WHERE version IS NULL;
	IF v % 500 = 0 THEN
		SELECT e.version INTO cutoff FROM market_events e WHERE e.version IS NOT NULL
			ORDER BY e.version DESC OFFSET 9999 LIMIT 1;
		IF cutoff IS NOT NULL THEN
			UPDATE market_events_horizon SET pruned_through = greatest(pruned_through,
				coalesce((SELECT max(e.version) FROM market_events e WHERE e.version < cutoff), 0));
			DELETE FROM market_events WHERE version < cutoff;
		END IF;
	END IF;
	PERFORM pg_notify('market', v::text);
	RETURN NULL;
END $$;

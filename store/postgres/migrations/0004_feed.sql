-- The market's change feed without a hot row. Until now every writing transaction
-- bumped the one catalogue row in a deferred trigger, stamped its events there and notified
-- inside the transaction: the row's lock was held through each WAL flush, so commits ran one
-- at a time. Now a change only inserts rows into market_feed, stamped with the id of the
-- transaction that wrote them; readers take the rows below the visibility horizon
-- (pg_snapshot_xmin of their snapshot), where no transaction is still running, so no row can
-- appear there later (store/postgres_feed.go). Nothing is updated after it is inserted.
DROP TRIGGER items_changed ON items;
DROP TRIGGER users_budget ON users;
DROP FUNCTION market_changed();
DROP TABLE market_events, market_events_horizon;

CREATE TABLE market_feed (
	xid     xid8   NOT NULL DEFAULT pg_current_xact_id(),
	seq     bigint GENERATED ALWAYS AS IDENTITY,
	item_id bigint,
	kind    text   NOT NULL CHECK (kind IN ('buy', 'sell', 'change', 'add', 'edit', 'retire', 'grant')),
	user_id bigint,
	PRIMARY KEY (xid, seq)
);

-- The catalogue row no longer moves: it says which history the feed's positions belong to.
-- epoch is in every cursor; it is rolled when the database turns out to be a copy or a restore
-- (another database OID, another cluster, or feed rows from the future), and by Reset, so that
-- a cursor from elsewhere gets a refresh instead of a silent gap. horizon is the newest
-- transaction id whose rows may have been pruned.
ALTER TABLE catalogue DROP COLUMN version;
ALTER TABLE catalogue ADD COLUMN epoch bigint NOT NULL DEFAULT 1,
	ADD COLUMN horizon xid8 NOT NULL DEFAULT pg_current_xact_id(),
	ADD COLUMN db_oid oid,
	ADD COLUMN system_id text;

-- Every change of an item is in the feed: a move of its owner as the purchase or sale it is,
-- whoever made it (the store's trades, an administrator's SQL).
CREATE FUNCTION market_feed_item() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF OLD.owner_id IS NULL AND NEW.owner_id IS NOT NULL THEN
		INSERT INTO market_feed (item_id, kind, user_id) VALUES (NEW.id, 'buy', NEW.owner_id);
	ELSIF OLD.owner_id IS NOT NULL AND NEW.owner_id IS NULL THEN
		INSERT INTO market_feed (item_id, kind, user_id) VALUES (NEW.id, 'sell', OLD.owner_id);
	ELSE
		INSERT INTO market_feed (item_id, kind) VALUES (NEW.id, 'change');
	END IF;
	RETURN NULL;
END $$;
CREATE TRIGGER items_feed AFTER UPDATE ON items
	FOR EACH ROW WHEN (OLD IS DISTINCT FROM NEW) EXECUTE FUNCTION market_feed_item();

-- Items added or deleted (a seed, an administrator): one row per statement.
CREATE FUNCTION market_feed_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO market_feed (kind) VALUES ('change');
	RETURN NULL;
END $$;
CREATE TRIGGER items_added AFTER INSERT OR DELETE OR TRUNCATE ON items
	FOR EACH STATEMENT EXECUTE FUNCTION market_feed_change();
-- A budget changed outside a trade (a trade's purchase or sale is its row already; market_trade
-- says so with market.trade).
CREATE TRIGGER users_budget_feed AFTER UPDATE OF budget ON users
	FOR EACH ROW WHEN (OLD.budget IS DISTINCT FROM NEW.budget
		AND coalesce(current_setting('market.trade', true), '') <> 'on')
	EXECUTE FUNCTION market_feed_change();

-- Whether a row version was made by a transaction that took its id after this one did. A
-- writer takes its id as it first tries to update a row, before it waits for the row's lock;
-- if the version it finally updates (following the chain of updates it waited on) is younger
-- than its id, the feed would tell the two changes in the wrong order, so the trade runs again
-- (with a new id, now younger). No id yet: the one to come is younger than every version.
CREATE FUNCTION market_younger(v xid) RETURNS boolean LANGUAGE sql STABLE AS $$
	SELECT coalesce(((v::text::bigint - pg_current_xact_id_if_assigned()::text::bigint)
		% 4294967296 + 4294967296) % 4294967296 BETWEEN 1 AND 2147483647, false)
$$;

-- A purchase (buy) or sale in one statement, one round trip in its own transaction. The
-- item's row is the transaction's first write, so its transaction id is taken at the item's
-- lock, and it updates no version younger than that id (market_younger): of two trades of
-- one item, the one that commits first has the smaller id, and the feed, read in (xid, seq)
-- order, tells each item's trades in the order they committed.
-- outcome is 'ok', 'not_found', 'unavailable', 'funds' or 'not_owner'; item and budget are as
-- the trade left them, or as the refusal found them.
CREATE FUNCTION market_trade(p_user bigint, p_item bigint, p_buy boolean,
	OUT outcome text, OUT name text, OUT price bigint, OUT barcode text, OUT description text,
	OUT owner_id bigint, OUT budget bigint)
LANGUAGE plpgsql AS $$
BEGIN
	IF p_buy THEN
		UPDATE items i SET owner_id = p_user
		WHERE i.id = p_item AND i.owner_id IS NULL AND i.retired_at IS NULL AND NOT market_younger(i.xmin)
			AND i.price <= (SELECT u.budget FROM users u WHERE u.id = p_user)
		RETURNING i.name, i.price, i.barcode, i.description, i.owner_id
		INTO name, price, barcode, description, owner_id;
	ELSE
		UPDATE items i SET owner_id = NULL
		WHERE i.id = p_item AND i.owner_id = p_user AND i.retired_at IS NULL AND NOT market_younger(i.xmin)
		RETURNING i.name, i.price, i.barcode, i.description, i.owner_id
		INTO name, price, barcode, description, owner_id;
	END IF;
	IF FOUND THEN
		PERFORM set_config('market.trade', 'on', true);
		UPDATE users u SET budget = u.budget + CASE WHEN p_buy THEN -price ELSE price END
		WHERE u.id = p_user AND (NOT p_buy OR u.budget >= price)
		RETURNING u.budget INTO budget;
		IF NOT FOUND THEN
			-- The budget fell between the check and the debit (the buyer's other trade): the
			-- caller runs the trade again, and then it is refused.
			RAISE EXCEPTION 'budget moved' USING ERRCODE = 'serialization_failure';
		END IF;
		INSERT INTO trades (user_id, item_id, kind, amount)
			VALUES (p_user, p_item, CASE WHEN p_buy THEN 'buy' ELSE 'sell' END,
				CASE WHEN p_buy THEN -price ELSE price END);
		outcome := 'ok';
		RETURN;
	END IF;
	SELECT u.budget INTO budget FROM users u WHERE u.id = p_user;
	SELECT i.name, i.price, i.barcode, i.description, i.owner_id
		INTO name, price, barcode, description, owner_id FROM items i WHERE i.id = p_item AND i.retired_at IS NULL;
	outcome := CASE
		WHEN budget IS NULL OR name IS NULL THEN 'not_found'
		WHEN NOT p_buy AND owner_id IS DISTINCT FROM p_user THEN 'not_owner'
		WHEN p_buy AND owner_id IS NOT NULL THEN 'unavailable'
		WHEN p_buy AND price > budget THEN 'funds'
		ELSE 'retry' END; -- the item or the budget moved since, or the version was too young
END $$;

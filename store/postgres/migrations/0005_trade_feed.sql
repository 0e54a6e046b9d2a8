-- A trade's ledger row is its entry in the change feed. Until now a trade also wrote a row of
-- market_feed, through the items' row trigger: with its queued after-event and PL/pgSQL call,
-- the feed cost a trade 12-15 % of the trades/s it would have without one (pgbench, 32
-- clients); stamping the ledger row it writes anyway costs ~1 %. The ledger row carries the id
-- of the transaction that wrote it (rows from before this migration have none, and are older
-- than every cursor), and the feed is the view market_changes: market_feed's rows (every other
-- change, and an operator's) and the trades' purchases and sales, in (xid, seq) order. Within
-- one transaction the rows come from one of the two, and seq is that table's own order.
ALTER TABLE trades ADD COLUMN xid xid8;
ALTER TABLE trades ALTER COLUMN xid SET DEFAULT pg_current_xact_id();
CREATE INDEX trades_feed ON trades (xid, id) WHERE xid IS NOT NULL AND kind IN ('buy', 'sell');

CREATE VIEW market_changes AS
	SELECT xid, seq, item_id, kind, user_id FROM market_feed
	UNION ALL
	SELECT xid, id, item_id, kind, user_id FROM trades WHERE xid IS NOT NULL AND kind IN ('buy', 'sell');

-- The items' trigger writes the row of every change of an item but a trade's: market_trade
-- says, with market.trade, that its changes are in the feed already, for as long as it runs.
-- That is asked first: it spares a trade the comparison of the whole rows.
DROP TRIGGER items_feed ON items;
CREATE TRIGGER items_feed AFTER UPDATE ON items
	FOR EACH ROW WHEN (coalesce(current_setting('market.trade', true), '') <> 'on'
		AND OLD IS DISTINCT FROM NEW)
	EXECUTE FUNCTION market_feed_item();

-- market_trade as 0004_feed.sql wrote it, without the feed row: its ledger row is.
CREATE OR REPLACE FUNCTION market_trade(p_user bigint, p_item bigint, p_buy boolean,
	OUT outcome text, OUT name text, OUT price bigint, OUT barcode text, OUT description text,
	OUT owner_id bigint, OUT budget bigint)
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('market.trade', 'on', true); -- its ledger row is its entry in the feed
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
		PERFORM set_config('market.trade', '', true);
		RETURN;
	END IF;
	PERFORM set_config('market.trade', '', true);
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

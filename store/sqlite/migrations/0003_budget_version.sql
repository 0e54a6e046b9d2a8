-- The catalogue's version becomes the market's: it moves with every change of a budget too, so
-- that whatever is built from items or budgets can be cached under it.
CREATE TRIGGER users_budget AFTER UPDATE OF budget ON users BEGIN UPDATE catalogue SET version = version + 1; END;

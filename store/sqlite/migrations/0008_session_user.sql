-- Each session row names its signed-in user (NULL: none, or a session saved before this
-- column), written with the session, so that an engine far from the application can read the
-- session, its user and the market version in one statement. The session's own data stays the
-- record: a reader uses the column only when it agrees with it.
ALTER TABLE sessions ADD COLUMN user_id INTEGER;

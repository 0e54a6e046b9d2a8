-- Each session row names its signed-in user (NULL: none, or a session saved before this
-- column), written with the session, so that loading a session reads its user and the market
-- version in the same statement (one round trip). The session's own data stays the record: the
-- column is used only when it agrees with it. No foreign key: a deleted user's sessions read as
-- signed out, as before.
ALTER TABLE sessions ADD COLUMN user_id bigint;

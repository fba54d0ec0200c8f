-- Tollgate store, version 6: the lifecycle of people and their personal tokens.

-- A disabled user's personal tokens stop authenticating at once (they are kept, not revoked, so
-- enabling the user again brings them back until they expire). NULL: enabled.
ALTER TABLE users ADD COLUMN disabled_at INTEGER;

-- A user's tokens are listed by user.
CREATE INDEX user_tokens_by_user ON user_tokens(user_id);

-- Personal tokens live at most 90 days (the control plane's MAX_TOKEN_LIFETIME_DAYS). Tokens
-- issued before this version could live forever: they now expire 90 days after the upgrade, or
-- earlier if they already did.
UPDATE user_tokens
   SET expires_at = MIN(COALESCE(expires_at, CAST(strftime('%s', 'now') AS INTEGER) * 1000 + 7776000000),
                        CAST(strftime('%s', 'now') AS INTEGER) * 1000 + 7776000000)
 WHERE revoked_at IS NULL;

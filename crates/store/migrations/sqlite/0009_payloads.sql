-- Tollgate store, version 9: encrypted payloads and their data keys.

-- Data keys, only ever wrapped by the master key. One per (use case, end-user pseudonym,
-- retention day) per instance; destroying one (retention, erasure) empties `wrapped` and keeps
-- the row as the record that it was destroyed, when and why.
CREATE TABLE data_keys (
    id             TEXT PRIMARY KEY,
    use_case_id    TEXT NOT NULL,
    end_user_hash  TEXT NOT NULL,   -- '' without an end user
    expires_day    INTEGER NOT NULL, -- days since 1970-01-01 (UTC): destroyed once it is past
    wrapped        BLOB,
    kek_id         TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    destroyed_at   INTEGER,
    destroyed_why  TEXT
);
CREATE INDEX data_keys_live_by_day ON data_keys(expires_day) WHERE wrapped IS NOT NULL;
CREATE INDEX data_keys_by_end_user ON data_keys(end_user_hash);

-- What a request stored of its content, as its policy's logging mode says: `metadata` (sizes),
-- `masked` or `full` (sealed under a data key, bound to the record).
CREATE TABLE payloads (
    record_id      TEXT PRIMARY KEY,
    use_case_id    TEXT NOT NULL,
    end_user_hash  TEXT NOT NULL,
    mode           TEXT NOT NULL,
    data_key_id    TEXT,
    sealed         BLOB,
    digest         TEXT,
    prompt_bytes   INTEGER NOT NULL,
    answer_bytes   INTEGER NOT NULL,
    at             INTEGER NOT NULL
);

-- The payload's reference on the record (`full:<data key>:<sha-256 of the ciphertext>`), which
-- the audit chain covers: never the content.
ALTER TABLE request_records ADD COLUMN payload_ref TEXT;

-- Tollgate store, version 8: the tamper-evident audit chain.

-- One entry per request record and per audit event, in the order they were written: its hash
-- covers the row it stands for (rebuilt from that row when verifying) and the previous entry's
-- hash. Written in the same transaction as the row.
CREATE TABLE chain_entries (
    seq     INTEGER PRIMARY KEY,
    kind    TEXT NOT NULL,      -- request | audit
    ref     TEXT NOT NULL,      -- the record's id, or the audit event's seq
    hash    TEXT NOT NULL       -- hex SHA-256
);

-- Signed checkpoints: the chain's size and head, the Merkle root of the entries since the one
-- before, and that one's hash, as text; its Ed25519 signature.
CREATE TABLE chain_checkpoints (
    id         INTEGER PRIMARY KEY,
    size       INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    text       TEXT NOT NULL,
    signature  TEXT NOT NULL,
    key_id     TEXT NOT NULL
);

-- Append-only, like the audit trail (someone with the file can drop these; the chain and its
-- signed checkpoints still tell).
CREATE TRIGGER chain_entries_no_update BEFORE UPDATE ON chain_entries
BEGIN SELECT RAISE(ABORT, 'the audit chain is append-only'); END;
CREATE TRIGGER chain_entries_no_delete BEFORE DELETE ON chain_entries
BEGIN SELECT RAISE(ABORT, 'the audit chain is append-only'); END;
CREATE TRIGGER chain_checkpoints_no_update BEFORE UPDATE ON chain_checkpoints
BEGIN SELECT RAISE(ABORT, 'the audit chain is append-only'); END;
CREATE TRIGGER chain_checkpoints_no_delete BEFORE DELETE ON chain_checkpoints
BEGIN SELECT RAISE(ABORT, 'the audit chain is append-only'); END;

-- A keyed pseudonym of `x-tollgate-user`: what the chain covers instead of the id itself, so the
-- id can be erased without breaking the chain.
ALTER TABLE request_records ADD COLUMN end_user_hash TEXT;

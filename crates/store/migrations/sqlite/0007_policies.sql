-- Tollgate store, version 7: guard policies, versioned, and what the guard did on each request.

-- Every version of every policy: the org default (scope_id '') and one line of versions per use
-- case. A version is never changed; the newest is in force. A version without a document
-- removes the use case's own policy (the org default applies again).
CREATE TABLE policies (
    scope_id   TEXT NOT NULL,
    version    INTEGER NOT NULL,
    document   TEXT,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    note       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (scope_id, version)
);

-- Versions are never changed or removed (a removal is a version of its own).
CREATE TRIGGER policies_no_update BEFORE UPDATE ON policies
BEGIN SELECT RAISE(ABORT, 'policy versions are append-only'); END;
CREATE TRIGGER policies_no_delete BEFORE DELETE ON policies
BEGIN SELECT RAISE(ABORT, 'policy versions are append-only'); END;

-- The policy a request was governed by (`default@3`, `use_case@2`, `builtin`) and what the
-- guard found and did: counts per type, action and direction, never a value.
ALTER TABLE request_records ADD COLUMN policy TEXT;
ALTER TABLE request_records ADD COLUMN guard TEXT;

-- Tollgate store, version 18: stage gates — promotion requests, their approvals, overrides.

-- Someone asked for a use case to move up a stage. Open until the stage changes (any change
-- closes it); at most one open per use case.
CREATE TABLE promotion_requests (
    id           TEXT PRIMARY KEY,
    use_case_id  TEXT NOT NULL REFERENCES use_cases(id),
    from_stage   TEXT NOT NULL,
    to_stage     TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    reason       TEXT NOT NULL,
    at           INTEGER NOT NULL,
    closed_at    INTEGER
);
CREATE UNIQUE INDEX promotion_requests_open ON promotion_requests (use_case_id) WHERE closed_at IS NULL;

-- A sign-off of a request, in one role; a person signs a request once, a role is signed once.
CREATE TABLE approvals (
    id          TEXT PRIMARY KEY,
    request_id  TEXT NOT NULL REFERENCES promotion_requests(id),
    use_case_id TEXT NOT NULL REFERENCES use_cases(id),
    role        TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    note        TEXT NOT NULL,
    at          INTEGER NOT NULL,
    UNIQUE (request_id, user_id),
    UNIQUE (request_id, role)
);

-- Stage changes a platform admin made past an unmet gate, shown on the use case ever after.
ALTER TABLE use_cases ADD COLUMN gate_overrides TEXT NOT NULL DEFAULT '[]';

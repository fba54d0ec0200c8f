-- Tollgate store, version 1: the organization (pods, users, memberships), use cases, keys,
-- personal tokens, stage changes, audit events, settings. Times are Unix milliseconds (UTC).

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE pods (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    email      TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    org_role   TEXT,
    created_at INTEGER NOT NULL
);

CREATE TABLE memberships (
    pod_id     TEXT NOT NULL REFERENCES pods(id),
    user_id    TEXT NOT NULL REFERENCES users(id),
    role       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (pod_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships(user_id);

CREATE TABLE use_cases (
    id          TEXT PRIMARY KEY,
    pod_id      TEXT NOT NULL REFERENCES pods(id),
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    stage       TEXT NOT NULL,
    value_model TEXT NOT NULL,
    scores      TEXT NOT NULL,
    priority    INTEGER NOT NULL,
    routes      TEXT NOT NULL,
    pilot_caps  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (pod_id, name)
);
CREATE INDEX use_cases_by_pod ON use_cases(pod_id);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    use_case_id TEXT NOT NULL REFERENCES use_cases(id),
    user_id     TEXT REFERENCES users(id),
    name        TEXT NOT NULL,
    prefix      TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE,
    scopes      TEXT,
    expires_at  INTEGER,
    revoked_at  INTEGER,
    replaced_by TEXT,
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL
);
CREATE INDEX api_keys_by_use_case ON api_keys(use_case_id);

CREATE TABLE user_tokens (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id),
    name       TEXT NOT NULL,
    prefix     TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    expires_at INTEGER,
    revoked_at INTEGER,
    created_at INTEGER NOT NULL
);

CREATE TABLE stage_changes (
    id          TEXT PRIMARY KEY,
    use_case_id TEXT NOT NULL REFERENCES use_cases(id),
    from_stage  TEXT NOT NULL,
    to_stage    TEXT NOT NULL,
    actor       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX stage_changes_by_use_case ON stage_changes(use_case_id);

-- Append-only: the application never updates or deletes rows here.
CREATE TABLE audit_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    details     TEXT NOT NULL
);
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;

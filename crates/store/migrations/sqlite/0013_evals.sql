-- Tollgate store, version 13: evaluation traffic kept apart, suites and their runs.

-- A key the server mints for one evaluation run: its requests are tagged as evaluation, held to
-- the use case's eval budget instead of its production ones, and kept out of production KPIs.
ALTER TABLE api_keys ADD COLUMN purpose TEXT NOT NULL DEFAULT 'production';
ALTER TABLE request_records ADD COLUMN purpose TEXT NOT NULL DEFAULT 'production';

-- Suites, versioned per use case and name: a new version only when the document changes
-- (fingerprint: SHA-256 of its canonical JSON). Versions are never changed or deleted.
CREATE TABLE eval_suites (
    use_case_id  TEXT NOT NULL REFERENCES use_cases(id),
    name         TEXT NOT NULL,
    version      INTEGER NOT NULL,
    fingerprint  TEXT NOT NULL,
    document     TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    created_by   TEXT NOT NULL,
    PRIMARY KEY (use_case_id, name, version)
);

-- One row per run: its progress while it runs, its totals and full report when done.
CREATE TABLE eval_runs (
    id                    TEXT PRIMARY KEY,          -- run_… (time-ordered)
    use_case_id           TEXT NOT NULL REFERENCES use_cases(id),
    pod_id                TEXT NOT NULL,
    suite                 TEXT NOT NULL,
    suite_version         INTEGER NOT NULL,
    stage                 TEXT NOT NULL,             -- the use case's stage when it ran
    trigger               TEXT NOT NULL,             -- manual | scheduled
    status                TEXT NOT NULL,             -- running | done | failed
    started_at            INTEGER NOT NULL,
    finished_at           INTEGER,
    created_by            TEXT NOT NULL,
    cases_total           INTEGER NOT NULL,
    cases_done            INTEGER NOT NULL DEFAULT 0,
    passed                INTEGER NOT NULL DEFAULT 0,
    failed                INTEGER NOT NULL DEFAULT 0,
    errors                INTEGER NOT NULL DEFAULT 0,
    pass_rate             REAL,
    threshold             REAL NOT NULL,
    passed_threshold      INTEGER,
    cost_nano_usd         INTEGER NOT NULL DEFAULT 0,
    scoring_cost_nano_usd INTEGER NOT NULL DEFAULT 0,
    routes                TEXT NOT NULL,             -- JSON list
    models                TEXT NOT NULL DEFAULT '[]', -- JSON list of the models that answered
    report                TEXT,                      -- JSON, when done
    error                 TEXT                       -- why it failed, when it did
);
CREATE INDEX eval_runs_by_use_case ON eval_runs (use_case_id, suite, started_at);

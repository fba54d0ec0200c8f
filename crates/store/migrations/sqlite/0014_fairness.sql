-- Tollgate store, version 14: fairness probe runs.

-- One row per probe run: the probe as sent, what it ran against (route, models, the policy in
-- force, the prompt set's hash), its progress, and its report when done.
CREATE TABLE fairness_runs (
    id               TEXT PRIMARY KEY,          -- fair_… (time-ordered)
    use_case_id      TEXT NOT NULL REFERENCES use_cases(id),
    pod_id           TEXT NOT NULL,
    status           TEXT NOT NULL,             -- running | done | failed
    started_at       INTEGER NOT NULL,
    finished_at      INTEGER,
    created_by       TEXT NOT NULL,
    route            TEXT NOT NULL,
    policy           TEXT NOT NULL,             -- use_case@N, default@N or builtin
    prompt_set_hash  TEXT NOT NULL,
    probe            TEXT NOT NULL,             -- JSON
    calls_total      INTEGER NOT NULL,
    flagged          INTEGER,
    models           TEXT NOT NULL DEFAULT '[]',
    report           TEXT,
    error            TEXT
);
CREATE INDEX fairness_runs_by_use_case ON fairness_runs (use_case_id, started_at);

-- Tollgate store, version 17: scheduled evaluation of production use cases.

-- A suite a use case runs on a cadence; the server starts the run when `next_at` comes, and
-- alerts when the pass rate drops under the suite's or by more than `tolerance` since the last run.
CREATE TABLE eval_schedules (
    use_case_id   TEXT NOT NULL REFERENCES use_cases(id),
    suite         TEXT NOT NULL,
    every_minutes INTEGER NOT NULL,
    tolerance     REAL NOT NULL,
    next_at       INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    created_by    TEXT NOT NULL,
    PRIMARY KEY (use_case_id, suite)
);
CREATE INDEX eval_schedules_due ON eval_schedules (next_at);

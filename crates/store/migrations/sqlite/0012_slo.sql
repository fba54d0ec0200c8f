-- Tollgate store, version 12: service-level objectives per use case, and their 5-minute windows.

-- The SLO (JSON: latency_p95_ms, max_error_rate_pct, objective_pct); '{}' when none is set.
ALTER TABLE use_cases ADD COLUMN slo TEXT NOT NULL DEFAULT '{}';

-- One row per use case and 5-minute window with traffic, written when the window closes (by every
-- gateway instance that served it: counts add up). A window meets its SLO when at most
-- requests - ceil(0.95 * requests) requests were slower than the latency target (p95 at or under
-- it, nearest rank) and errors * 1e6 <= max_error_ppm * requests; a target left out is met.
CREATE TABLE slo_windows (
    use_case_id       TEXT NOT NULL,
    pod_id            TEXT NOT NULL,
    window_start      INTEGER NOT NULL,
    requests          INTEGER NOT NULL,
    errors            INTEGER NOT NULL,
    slow              INTEGER NOT NULL,
    latency_target_ms INTEGER,
    max_error_ppm     INTEGER,
    PRIMARY KEY (use_case_id, window_start)
);
CREATE INDEX slo_windows_by_start ON slo_windows (window_start);

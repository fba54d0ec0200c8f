-- Tollgate store, version 2: the request ledger and its hourly rollups.

-- One row per admitted request. Token counts by kind; cost in nano-USD (NULL when unpriced).
CREATE TABLE request_records (
    id                  TEXT PRIMARY KEY,
    request_id          TEXT NOT NULL,
    at                  INTEGER NOT NULL,
    key_id              TEXT NOT NULL,
    use_case_id         TEXT NOT NULL,
    pod_id              TEXT NOT NULL,
    end_user            TEXT,
    endpoint            TEXT NOT NULL,
    route               TEXT NOT NULL,
    provider            TEXT,
    model               TEXT,
    stream              INTEGER NOT NULL,
    attempts            INTEGER NOT NULL,
    status              INTEGER NOT NULL,
    outcome             TEXT NOT NULL,
    input_tokens        INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL,
    cache_write_tokens  INTEGER NOT NULL,
    output_tokens       INTEGER NOT NULL,
    reasoning_tokens    INTEGER NOT NULL,
    cost_nano_usd       INTEGER,
    price_source        TEXT NOT NULL,
    usage_source        TEXT NOT NULL,
    latency_ms          INTEGER NOT NULL,
    ttft_ms             INTEGER
);
CREATE INDEX request_records_by_time ON request_records(at);

-- Kept up to date by the ledger writer in the same transaction as the records, so reports over
-- long ranges read hours, not requests.
CREATE TABLE rollups_hourly (
    hour                INTEGER NOT NULL,
    pod_id              TEXT NOT NULL,
    use_case_id         TEXT NOT NULL,
    key_id              TEXT NOT NULL,
    route               TEXT NOT NULL,
    model               TEXT NOT NULL,
    requests            INTEGER NOT NULL,
    errors              INTEGER NOT NULL,
    unpriced            INTEGER NOT NULL,
    input_tokens        INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL,
    cache_write_tokens  INTEGER NOT NULL,
    output_tokens       INTEGER NOT NULL,
    reasoning_tokens    INTEGER NOT NULL,
    cost_nano_usd       INTEGER NOT NULL,
    PRIMARY KEY (hour, pod_id, use_case_id, key_id, route, model)
);

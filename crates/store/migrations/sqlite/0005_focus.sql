-- Tollgate store, version 5: what the FOCUS export and cost advice need.

-- The prices a request was charged at (FOCUS: the SKU price), one row per distinct price point,
-- written by the gateway at start. Prices in nano-USD per 1,000,000 tokens.
CREATE TABLE price_points (
    id                        TEXT PRIMARY KEY,
    provider                  TEXT NOT NULL,
    provider_kind             TEXT NOT NULL,
    publisher                 TEXT,
    model                     TEXT NOT NULL,
    source                    TEXT NOT NULL,
    currency                  TEXT NOT NULL,
    contracted_input          INTEGER,
    contracted_cached_input   INTEGER,
    contracted_cache_write    INTEGER,
    contracted_output         INTEGER,
    contracted_reasoning      INTEGER,
    list_input                INTEGER,
    list_cached_input         INTEGER,
    list_cache_write          INTEGER,
    list_output               INTEGER,
    list_reasoning            INTEGER,
    first_seen                INTEGER NOT NULL
);

-- Each record names its price point, its cost by token kind (adding up to cost_nano_usd), and a
-- keyed fingerprint of its prompt (never the prompt) so duplicates can be counted.
ALTER TABLE request_records ADD COLUMN price_id TEXT;
ALTER TABLE request_records ADD COLUMN prompt_hash TEXT;
ALTER TABLE request_records ADD COLUMN cost_input INTEGER NOT NULL DEFAULT 0;
ALTER TABLE request_records ADD COLUMN cost_cached_input INTEGER NOT NULL DEFAULT 0;
ALTER TABLE request_records ADD COLUMN cost_cache_write INTEGER NOT NULL DEFAULT 0;
ALTER TABLE request_records ADD COLUMN cost_output INTEGER NOT NULL DEFAULT 0;
ALTER TABLE request_records ADD COLUMN cost_reasoning INTEGER NOT NULL DEFAULT 0;

-- Hourly rollups by price point, kept by the ledger writer in the same transaction as the
-- records: the FOCUS export reads these (one row per hour × pod × use case × deployment), never
-- the raw records. Records written before this version are not in it; the export says so.
CREATE TABLE rollups_focus (
    hour                INTEGER NOT NULL,
    pod_id              TEXT NOT NULL,
    use_case_id         TEXT NOT NULL,
    route               TEXT NOT NULL,
    price_id            TEXT NOT NULL,
    requests            INTEGER NOT NULL,
    input_tokens        INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL,
    cache_write_tokens  INTEGER NOT NULL,
    output_tokens       INTEGER NOT NULL,
    reasoning_tokens    INTEGER NOT NULL,
    cost_input          INTEGER NOT NULL,
    cost_cached_input   INTEGER NOT NULL,
    cost_cache_write    INTEGER NOT NULL,
    cost_output         INTEGER NOT NULL,
    cost_reasoning      INTEGER NOT NULL,
    PRIMARY KEY (hour, pod_id, use_case_id, route, price_id)
);


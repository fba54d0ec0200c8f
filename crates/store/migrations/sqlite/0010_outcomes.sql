-- Tollgate store, version 10: outcome and feedback events, and the rollups the KPIs read.

-- A keyed pseudonym of the conversation (`x-tollgate-session`) a request belonged to: what
-- feedback about a session is checked against (never the session id itself).
ALTER TABLE request_records ADD COLUMN session_hash TEXT;
-- Feedback names a request by its `x-request-id` within the key's use case.
CREATE INDEX request_records_by_request ON request_records(use_case_id, request_id);
CREATE INDEX request_records_by_session ON request_records(use_case_id, session_hash)
    WHERE session_hash IS NOT NULL;

-- One row per accepted event (POST /v1/feedback). `event_id` is the client's idempotency id:
-- a second event with the same id in the same use case is not stored again.
CREATE TABLE outcome_events (
    id             TEXT PRIMARY KEY,   -- fbk_… (from the event id if any, else time-ordered)
    event_id       TEXT,
    at             INTEGER NOT NULL,   -- Unix ms
    use_case_id    TEXT NOT NULL,
    pod_id         TEXT NOT NULL,
    key_id         TEXT NOT NULL,
    request_id     TEXT,
    session_hash   TEXT,
    outcome        TEXT,               -- success | failure | escalated | abandoned
    rating         INTEGER,            -- 1-5
    accepted       INTEGER,            -- 0 | 1
    edited         INTEGER,            -- 0 | 1
    value_nano_usd INTEGER,
    minutes_saved_milli INTEGER,       -- thousandths of a minute
    labels         TEXT NOT NULL       -- JSON object of strings
);
CREATE UNIQUE INDEX outcome_events_by_event_id ON outcome_events(use_case_id, event_id)
    WHERE event_id IS NOT NULL;
CREATE INDEX outcome_events_by_time ON outcome_events(at);
-- How many events a request or a session has had (each is bounded).
CREATE INDEX outcome_events_by_request ON outcome_events(use_case_id, request_id)
    WHERE request_id IS NOT NULL;
CREATE INDEX outcome_events_by_session ON outcome_events(use_case_id, session_hash)
    WHERE session_hash IS NOT NULL;

-- Kept by the feedback writer in the same transaction as the events: KPIs read hours, not events.
CREATE TABLE rollups_outcomes_hourly (
    hour                INTEGER NOT NULL,  -- Unix hours (UTC)
    pod_id              TEXT NOT NULL,
    use_case_id         TEXT NOT NULL,
    events              INTEGER NOT NULL,
    success             INTEGER NOT NULL,
    failure             INTEGER NOT NULL,
    escalated           INTEGER NOT NULL,
    abandoned           INTEGER NOT NULL,
    rated               INTEGER NOT NULL,
    positive            INTEGER NOT NULL,  -- rated 4 or 5
    rating_sum          INTEGER NOT NULL,
    with_acceptance     INTEGER NOT NULL,  -- events saying whether the output was accepted
    accepted_unedited   INTEGER NOT NULL,
    accepted_edited     INTEGER NOT NULL,
    success_unvalued    INTEGER NOT NULL,  -- successes without a reported value
    success_untimed     INTEGER NOT NULL,  -- successes without reported minutes saved
    value_nano_usd      INTEGER NOT NULL,  -- reported values
    minutes_saved_milli INTEGER NOT NULL,
    PRIMARY KEY (hour, use_case_id)
);

-- Value drivers are one of four names now: earlier free-text names are mapped where the meaning
-- is clear and cleared otherwise (the use case's lead sets it again).
UPDATE use_cases SET value_model = json_set(value_model, '$.driver',
    CASE json_extract(value_model, '$.driver')
        WHEN 'efficiency' THEN 'efficiency'
        WHEN 'cost_reduction' THEN 'efficiency'
        WHEN 'productivity' THEN 'efficiency'
        WHEN 'revenue' THEN 'revenue'
        WHEN 'experience' THEN 'experience'
        WHEN 'customer_experience' THEN 'experience'
        WHEN 'risk' THEN 'risk'
        WHEN 'risk_reduction' THEN 'risk'
        ELSE '' END)
WHERE json_valid(value_model);

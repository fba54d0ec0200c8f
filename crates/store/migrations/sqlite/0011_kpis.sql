-- Tollgate store, version 11: the rollups the KPIs read, kept by the ledger writer in the same
-- transaction as the records (a report over a million requests reads hours, days and minutes).

-- Per hour and use case: outcomes of requests and latency histograms (bucket k counts requests
-- whose latency is at most LATENCY_BOUNDS_MS[k] and more than the bound before; l28/t28: more
-- than the last bound). ttft: streams only.
CREATE TABLE rollups_kpi_hourly (
    hour              INTEGER NOT NULL,
    pod_id            TEXT NOT NULL,
    use_case_id       TEXT NOT NULL,
    requests          INTEGER NOT NULL,
    answered          INTEGER NOT NULL,
    errors            INTEGER NOT NULL,
    fallbacks         INTEGER NOT NULL,
    streams           INTEGER NOT NULL,
    streams_cancelled INTEGER NOT NULL,
    guard_blocked     INTEGER NOT NULL,
    guard_flagged     INTEGER NOT NULL,
    with_session      INTEGER NOT NULL,
    l0 INTEGER NOT NULL, l1 INTEGER NOT NULL, l2 INTEGER NOT NULL, l3 INTEGER NOT NULL,
    l4 INTEGER NOT NULL, l5 INTEGER NOT NULL, l6 INTEGER NOT NULL, l7 INTEGER NOT NULL,
    l8 INTEGER NOT NULL, l9 INTEGER NOT NULL, l10 INTEGER NOT NULL, l11 INTEGER NOT NULL,
    l12 INTEGER NOT NULL, l13 INTEGER NOT NULL, l14 INTEGER NOT NULL, l15 INTEGER NOT NULL,
    l16 INTEGER NOT NULL, l17 INTEGER NOT NULL, l18 INTEGER NOT NULL, l19 INTEGER NOT NULL,
    l20 INTEGER NOT NULL, l21 INTEGER NOT NULL, l22 INTEGER NOT NULL, l23 INTEGER NOT NULL,
    l24 INTEGER NOT NULL, l25 INTEGER NOT NULL, l26 INTEGER NOT NULL, l27 INTEGER NOT NULL,
    l28 INTEGER NOT NULL,
    t0 INTEGER NOT NULL, t1 INTEGER NOT NULL, t2 INTEGER NOT NULL, t3 INTEGER NOT NULL,
    t4 INTEGER NOT NULL, t5 INTEGER NOT NULL, t6 INTEGER NOT NULL, t7 INTEGER NOT NULL,
    t8 INTEGER NOT NULL, t9 INTEGER NOT NULL, t10 INTEGER NOT NULL, t11 INTEGER NOT NULL,
    t12 INTEGER NOT NULL, t13 INTEGER NOT NULL, t14 INTEGER NOT NULL, t15 INTEGER NOT NULL,
    t16 INTEGER NOT NULL, t17 INTEGER NOT NULL, t18 INTEGER NOT NULL, t19 INTEGER NOT NULL,
    t20 INTEGER NOT NULL, t21 INTEGER NOT NULL, t22 INTEGER NOT NULL, t23 INTEGER NOT NULL,
    t24 INTEGER NOT NULL, t25 INTEGER NOT NULL, t26 INTEGER NOT NULL, t27 INTEGER NOT NULL,
    t28 INTEGER NOT NULL,
    PRIMARY KEY (hour, use_case_id)
);

-- Who was active, per UTC day and scope (`u:<use case>`, `p:<pod>`, `o` for the organization):
-- the first 64 bits of the end user's keyed pseudonym, as an integer. Distinct users over any
-- window are distinct rows of one scope, read in key order.
CREATE TABLE users_daily (
    scope TEXT NOT NULL,
    day   INTEGER NOT NULL,  -- days since 1970-01-01 (UTC)
    user  INTEGER NOT NULL,
    PRIMARY KEY (scope, day, user)
) WITHOUT ROWID;

-- Sessions per UTC day and use case (the first 64 bits of their pseudonyms).
CREATE TABLE sessions_daily (
    use_case_id TEXT NOT NULL,
    day         INTEGER NOT NULL,
    session     INTEGER NOT NULL,
    PRIMARY KEY (use_case_id, day, session)
) WITHOUT ROWID;

-- Per UTC day and scope: how many users were active that day (rows of users_daily) and how
-- many sessions had requests (session-days: a session over midnight counts on both days),
-- counted as their first request of the day arrives.
CREATE TABLE rollups_daily (
    scope    TEXT NOT NULL,
    day      INTEGER NOT NULL,
    users    INTEGER NOT NULL,
    sessions INTEGER NOT NULL,
    PRIMARY KEY (scope, day)
) WITHOUT ROWID;

-- Requests and tokens per minute and scope (as in users_daily): the busiest minute of any window
-- is one ordered range of one scope.
CREATE TABLE rollups_minute (
    scope    TEXT NOT NULL,
    minute   INTEGER NOT NULL,  -- Unix minutes
    requests INTEGER NOT NULL,
    tokens   INTEGER NOT NULL,
    PRIMARY KEY (scope, minute)
) WITHOUT ROWID;

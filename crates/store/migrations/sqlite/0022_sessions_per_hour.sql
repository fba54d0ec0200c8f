-- Tollgate store, version 22: sessions counted in the hour they began, not per UTC day.
--
-- Sessions were counted per day they had requests (a session over midnight on both days), so a
-- window of an hour counted the sessions of its whole day. Now each session is counted once, in
-- the hour of its first request (per use case), beside the other per-hour counters: a window
-- counts the sessions that began in it, whatever its length.

-- The sessions seen, per use case (the first 64 bits of their pseudonyms): a session's first
-- request adds its row, and one to `rollups_kpi_hourly.sessions` of its hour.
CREATE TABLE sessions_seen (
    use_case_id TEXT NOT NULL,
    session     INTEGER NOT NULL,
    PRIMARY KEY (use_case_id, session)
) WITHOUT ROWID;

ALTER TABLE rollups_kpi_hourly ADD COLUMN sessions INTEGER NOT NULL DEFAULT 0;

INSERT INTO sessions_seen (use_case_id, session)
    SELECT DISTINCT use_case_id, session FROM sessions_daily;

-- Stored sessions were kept per day: each is counted on its first day, in that day's first
-- hour with requests of a session (the hour within the day is not known any more), or, if no
-- hour of that day is marked with a session, in its first hour with requests. Every step is one
-- pass over a table or a lookup by key: an upgrade of a year of hourly rows takes moments, not
-- a scan per row.
CREATE TEMP TABLE first_days AS
    SELECT use_case_id, MIN(day) AS day FROM sessions_daily GROUP BY use_case_id, session;
CREATE TEMP TABLE day_hours (
    use_case_id TEXT NOT NULL,
    day         INTEGER NOT NULL,
    hour        INTEGER NOT NULL,
    PRIMARY KEY (use_case_id, day)
) WITHOUT ROWID;
-- (Hours are from 1970 on, so `hour / 24` is the day the writer's floor division gave.)
INSERT INTO day_hours (use_case_id, day, hour)
    SELECT use_case_id, hour / 24,
           COALESCE(MIN(CASE WHEN with_session > 0 THEN hour END), MIN(hour))
      FROM rollups_kpi_hourly GROUP BY use_case_id, hour / 24;
CREATE TEMP TABLE first_hours (
    use_case_id TEXT NOT NULL,
    hour        INTEGER NOT NULL,
    sessions    INTEGER NOT NULL,
    PRIMARY KEY (use_case_id, hour)
) WITHOUT ROWID;
INSERT INTO first_hours (use_case_id, hour, sessions)
    SELECT f.use_case_id, d.hour, COUNT(*)
      FROM first_days f JOIN day_hours d ON d.use_case_id = f.use_case_id AND d.day = f.day
     GROUP BY f.use_case_id, d.hour;
UPDATE rollups_kpi_hourly SET sessions = fh.sessions
  FROM first_hours fh
 WHERE fh.use_case_id = rollups_kpi_hourly.use_case_id AND fh.hour = rollups_kpi_hourly.hour;
DROP TABLE first_hours;
DROP TABLE day_hours;
DROP TABLE first_days;

DROP TABLE sessions_daily;
ALTER TABLE rollups_daily DROP COLUMN sessions;

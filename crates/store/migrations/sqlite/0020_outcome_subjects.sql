-- Tollgate store, version 20: outcomes counted per subject — a request or a session — as its
-- latest event says, so one answer stands for one outcome, one rating and one value however
-- many events name it (events are still stored and counted as events).

CREATE TABLE outcome_subjects (
    use_case_id         TEXT NOT NULL,
    subject             TEXT NOT NULL,     -- 'r:' || request_id, or 's:' || session_hash
    pod_id              TEXT NOT NULL,
    hour                INTEGER NOT NULL,  -- of its first event: the rollup row that counts it
    outcome             TEXT,
    rating              INTEGER,
    accepted            INTEGER,
    edited              INTEGER,
    value_nano_usd      INTEGER,
    minutes_saved_milli INTEGER,
    PRIMARY KEY (use_case_id, subject)
) WITHOUT ROWID;

ALTER TABLE rollups_outcomes_hourly ADD COLUMN subjects INTEGER NOT NULL DEFAULT 0;

-- The events stored so far, folded into their subjects: each field as the latest event (in the
-- order they were stored) that gave it.
INSERT INTO outcome_subjects
SELECT use_case_id, subject, MIN(pod_id), MIN(at) / 3600000,
       substr(MAX(CASE WHEN outcome IS NOT NULL THEN printf('%020d', rowid) || outcome END), 21),
       CAST(substr(MAX(CASE WHEN rating IS NOT NULL THEN printf('%020d', rowid) || rating END), 21) AS INTEGER),
       CAST(substr(MAX(CASE WHEN accepted IS NOT NULL THEN printf('%020d', rowid) || accepted || COALESCE(edited, 0) END), 21, 1) AS INTEGER),
       CAST(substr(MAX(CASE WHEN accepted IS NOT NULL THEN printf('%020d', rowid) || accepted || COALESCE(edited, 0) END), 22, 1) AS INTEGER),
       CAST(substr(MAX(CASE WHEN value_nano_usd IS NOT NULL THEN printf('%020d', rowid) || value_nano_usd END), 21) AS INTEGER),
       CAST(substr(MAX(CASE WHEN minutes_saved_milli IS NOT NULL THEN printf('%020d', rowid) || minutes_saved_milli END), 21) AS INTEGER)
FROM (SELECT rowid, use_case_id, pod_id, at, outcome, rating, accepted, edited, value_nano_usd, minutes_saved_milli,
             CASE WHEN request_id IS NOT NULL THEN 'r:' || request_id ELSE 's:' || session_hash END AS subject
      FROM outcome_events)
WHERE subject IS NOT NULL
GROUP BY use_case_id, subject;

-- The rollups counted again: events in the hour they happened in, subjects in their first hour.
DELETE FROM rollups_outcomes_hourly;
INSERT INTO rollups_outcomes_hourly (hour, pod_id, use_case_id, events, subjects, success, failure,
    escalated, abandoned, rated, positive, rating_sum, with_acceptance, accepted_unedited,
    accepted_edited, success_unvalued, success_untimed, value_nano_usd, minutes_saved_milli)
SELECT at / 3600000, MIN(pod_id), use_case_id, COUNT(*), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
FROM outcome_events GROUP BY at / 3600000, use_case_id;
INSERT INTO rollups_outcomes_hourly (hour, pod_id, use_case_id, events, subjects, success, failure,
    escalated, abandoned, rated, positive, rating_sum, with_acceptance, accepted_unedited,
    accepted_edited, success_unvalued, success_untimed, value_nano_usd, minutes_saved_milli)
SELECT hour, MIN(pod_id), use_case_id, 0, COUNT(*),
       COUNT(CASE WHEN outcome = 'success' THEN 1 END), COUNT(CASE WHEN outcome = 'failure' THEN 1 END),
       COUNT(CASE WHEN outcome = 'escalated' THEN 1 END), COUNT(CASE WHEN outcome = 'abandoned' THEN 1 END),
       COUNT(rating), COUNT(CASE WHEN rating >= 4 THEN 1 END), COALESCE(SUM(rating), 0),
       COUNT(accepted), COUNT(CASE WHEN accepted = 1 AND edited = 0 THEN 1 END),
       COUNT(CASE WHEN accepted = 1 AND edited = 1 THEN 1 END),
       COUNT(CASE WHEN outcome = 'success' AND value_nano_usd IS NULL THEN 1 END),
       COUNT(CASE WHEN outcome = 'success' AND minutes_saved_milli IS NULL THEN 1 END),
       -- Summed as whole USD and the nano-USD beyond them (SQLite's SUM fails on overflow); the
       -- total stops at the largest integer, as the writer's sums do.
       COALESCE(CASE WHEN SUM(value_nano_usd / 1000000000) + SUM(value_nano_usd % 1000000000) / 1000000000 >= 9223372036
                     THEN 9223372036854775807
                     ELSE SUM(value_nano_usd / 1000000000) * 1000000000 + SUM(value_nano_usd % 1000000000) END, 0),
       COALESCE(SUM(minutes_saved_milli), 0)
FROM outcome_subjects WHERE true GROUP BY hour, use_case_id
ON CONFLICT (hour, use_case_id) DO UPDATE SET
    subjects = excluded.subjects, success = excluded.success, failure = excluded.failure,
    escalated = excluded.escalated, abandoned = excluded.abandoned, rated = excluded.rated,
    positive = excluded.positive, rating_sum = excluded.rating_sum,
    with_acceptance = excluded.with_acceptance, accepted_unedited = excluded.accepted_unedited,
    accepted_edited = excluded.accepted_edited, success_unvalued = excluded.success_unvalued,
    success_untimed = excluded.success_untimed, value_nano_usd = excluded.value_nano_usd,
    minutes_saved_milli = excluded.minutes_saved_milli;

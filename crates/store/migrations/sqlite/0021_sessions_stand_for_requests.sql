-- Tollgate store, version 21: a session speaks for its requests. A request that belongs to a
-- session is stored with that session's pseudonym; what the session's events report is left out
-- of its requests' counts — what was achieved (outcome, value, minutes saved) together if it
-- reports any of it, the rating, the acceptance — so one answer is never counted both on its own
-- and as part of its session (events are still stored and counted as events).

ALTER TABLE outcome_subjects ADD COLUMN session TEXT;  -- a request's session pseudonym
CREATE INDEX outcome_subjects_by_session ON outcome_subjects(use_case_id, session)
    WHERE session IS NOT NULL;

-- A session's events are bounded apart from its requests' (which now carry its pseudonym too).
DROP INDEX outcome_events_by_session;
CREATE INDEX outcome_events_by_session ON outcome_events(use_case_id, session_hash)
    WHERE session_hash IS NOT NULL AND request_id IS NULL;

-- Requests reported on whose records show no answer in production (an evaluation run's, or one
-- refused or failed: feedback may not name them any more) stop counting; their events stay. A
-- request whose records are gone (retention) is kept as it was.
DELETE FROM outcome_subjects
WHERE substr(subject, 1, 2) = 'r:'
  AND EXISTS (SELECT 1 FROM request_records AS r
              WHERE r.use_case_id = outcome_subjects.use_case_id
                AND r.request_id = substr(outcome_subjects.subject, 3))
  AND NOT EXISTS (SELECT 1 FROM request_records AS r
                  WHERE r.use_case_id = outcome_subjects.use_case_id
                    AND r.request_id = substr(outcome_subjects.subject, 3)
                    AND r.purpose = 'production' AND r.status BETWEEN 200 AND 299);

-- Sessions reported on none of whose requests was answered in production: the same.
DELETE FROM outcome_subjects
WHERE substr(subject, 1, 2) = 's:'
  AND EXISTS (SELECT 1 FROM request_records AS r
              WHERE r.use_case_id = outcome_subjects.use_case_id
                AND r.session_hash = substr(outcome_subjects.subject, 3))
  AND NOT EXISTS (SELECT 1 FROM request_records AS r
                  WHERE r.use_case_id = outcome_subjects.use_case_id
                    AND r.session_hash = substr(outcome_subjects.subject, 3)
                    AND r.purpose = 'production' AND r.status BETWEEN 200 AND 299);

-- The requests reported on so far, with the session of their first answered production record
-- (the one feedback finds).
UPDATE outcome_subjects SET session = (
    SELECT r.session_hash FROM request_records AS r
    WHERE r.use_case_id = outcome_subjects.use_case_id
      AND r.request_id = substr(outcome_subjects.subject, 3)
      AND r.purpose = 'production' AND r.status BETWEEN 200 AND 299
    ORDER BY r.at LIMIT 1)
WHERE substr(subject, 1, 2) = 'r:';

-- The subjects counted again (events stay as they are).
UPDATE rollups_outcomes_hourly SET subjects = 0, success = 0, failure = 0, escalated = 0,
    abandoned = 0, rated = 0, positive = 0, rating_sum = 0, with_acceptance = 0,
    accepted_unedited = 0, accepted_edited = 0, success_unvalued = 0, success_untimed = 0,
    value_nano_usd = 0, minutes_saved_milli = 0;
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
FROM (
    -- Each subject's fields; a request's without those its session reports.
    SELECT s.hour, s.pod_id, s.use_case_id,
           -- What was achieved (outcome, value, minutes) is one report: a session giving any
           -- of it speaks for all of it.
           CASE WHEN COALESCE(t.outcome, t.value_nano_usd, t.minutes_saved_milli) IS NULL
                THEN s.outcome END AS outcome,
           CASE WHEN t.rating IS NULL THEN s.rating END AS rating,
           CASE WHEN t.accepted IS NULL THEN s.accepted END AS accepted,
           CASE WHEN t.accepted IS NULL THEN s.edited END AS edited,
           CASE WHEN COALESCE(t.outcome, t.value_nano_usd, t.minutes_saved_milli) IS NULL
                THEN s.value_nano_usd END AS value_nano_usd,
           CASE WHEN COALESCE(t.outcome, t.value_nano_usd, t.minutes_saved_milli) IS NULL
                THEN s.minutes_saved_milli END AS minutes_saved_milli
    FROM outcome_subjects AS s
    LEFT JOIN outcome_subjects AS t
        ON s.session IS NOT NULL AND t.use_case_id = s.use_case_id AND t.subject = 's:' || s.session
)
WHERE COALESCE(outcome, rating, accepted, value_nano_usd, minutes_saved_milli) IS NOT NULL
GROUP BY hour, use_case_id
ON CONFLICT (hour, use_case_id) DO UPDATE SET
    subjects = excluded.subjects, success = excluded.success, failure = excluded.failure,
    escalated = excluded.escalated, abandoned = excluded.abandoned, rated = excluded.rated,
    positive = excluded.positive, rating_sum = excluded.rating_sum,
    with_acceptance = excluded.with_acceptance, accepted_unedited = excluded.accepted_unedited,
    accepted_edited = excluded.accepted_edited, success_unvalued = excluded.success_unvalued,
    success_untimed = excluded.success_untimed, value_nano_usd = excluded.value_nano_usd,
    minutes_saved_milli = excluded.minutes_saved_milli;

-- Tollgate store, version 16: the pattern versions an evaluation run used (`["triage@2"]`),
-- pinned when it started, so its champion can be found by what production runs now.
ALTER TABLE eval_runs ADD COLUMN patterns TEXT NOT NULL DEFAULT '[]';

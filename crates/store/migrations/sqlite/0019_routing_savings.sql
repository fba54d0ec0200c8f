-- Tollgate store, version 19: what each request would have cost at its route's first
-- deployment's prices (KPI 19's routing savings), kept with the record and summed per hour and
-- use case by the ledger writer. Older records and hours have none: the KPI says so rather
-- than counting them as no saving.
ALTER TABLE request_records ADD COLUMN first_choice_cost_nano_usd INTEGER;

-- Requests priced both where they went and on their route's first deployment; what they would
-- have cost there; what they cost.
ALTER TABLE rollups_kpi_hourly ADD COLUMN routing_priced INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_kpi_hourly ADD COLUMN first_choice_nano_usd INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_kpi_hourly ADD COLUMN first_choice_paid_nano_usd INTEGER NOT NULL DEFAULT 0;

-- Tollgate store, version 4: budgets on a key, a use case, a pod or the whole org.
CREATE TABLE budgets (
    id              TEXT PRIMARY KEY,
    scope           TEXT NOT NULL,      -- key | use_case | pod | org
    scope_id        TEXT NOT NULL,      -- '' for org
    period          TEXT NOT NULL,      -- day | week | month | lifetime
    time_zone       TEXT NOT NULL,
    amount_nano_usd INTEGER NOT NULL,
    mode            TEXT NOT NULL,      -- soft | hard
    created_at      INTEGER NOT NULL,
    created_by      TEXT NOT NULL
);
CREATE INDEX budgets_by_scope ON budgets(scope, scope_id);

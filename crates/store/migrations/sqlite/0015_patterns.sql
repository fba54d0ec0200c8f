-- Tollgate store, version 15: patterns — versioned prompt templates many use cases share — and
-- the pattern version each request used.

-- A pattern, owned by a pod (whose lead moves its labels).
CREATE TABLE patterns (
    name        TEXT PRIMARY KEY,
    pod_id      TEXT NOT NULL REFERENCES pods(id),
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL
);

-- Immutable versions: messages (MiniJinja templates) and the JSON Schema of their variables.
CREATE TABLE pattern_versions (
    name        TEXT NOT NULL REFERENCES patterns(name),
    version     INTEGER NOT NULL,
    messages    TEXT NOT NULL,   -- JSON [{role, content}]
    schema      TEXT NOT NULL,   -- JSON Schema of the variables
    note        TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    PRIMARY KEY (name, version)
);

-- Labels (`production`, `staging`, any other) pointing at a version; moved, never versioned.
CREATE TABLE pattern_labels (
    name      TEXT NOT NULL REFERENCES patterns(name),
    label     TEXT NOT NULL,
    version   INTEGER NOT NULL,
    moved_at  INTEGER NOT NULL,
    moved_by  TEXT NOT NULL,
    PRIMARY KEY (name, label)
);

ALTER TABLE request_records ADD COLUMN pattern TEXT;

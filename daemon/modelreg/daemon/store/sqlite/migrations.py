"""Numbered schema migrations, recorded in the database itself.

Each migration runs in its own transaction and is recorded in ``schema_migrations``;
``PRAGMA user_version`` mirrors the newest one so a database written by newer code is
refused instead of being silently misread.

Upgrade guarantees (issue 11; tests/reliability/test_rel_upgrade.py opens a registry the
previous release wrote, tests/fixtures/registry_schema8/): a migration that fails rolls back
whole, leaving the schema and rows it found; migrations run with foreign keys off, so one may
rebuild a table others reference (create the new table, copy, drop, rename: SQLite cannot
change a CHECK or a constraint in place), and one that would leave a reference dangling is
refused before it commits. A migration must keep every row of the release before it: add a
fixture of that release (build_registry_fixture.py) before changing the schema.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "registry core",
        """
        CREATE TABLE models (
            id           INTEGER PRIMARY KEY,
            name         TEXT NOT NULL UNIQUE COLLATE NOCASE,
            description  TEXT NOT NULL DEFAULT '',
            next_version INTEGER NOT NULL DEFAULT 1,   -- never decreases: numbers are never reused
            directions   TEXT NOT NULL DEFAULT '{}',   -- per-model metric direction overrides
            created_at   REAL NOT NULL,
            updated_at   REAL NOT NULL
        );
        CREATE TABLE model_tags (
            model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
            key      TEXT NOT NULL,
            value    TEXT NOT NULL,
            PRIMARY KEY (model_id, key)
        ) WITHOUT ROWID;

        CREATE TABLE versions (
            id               INTEGER PRIMARY KEY,
            model_id         INTEGER NOT NULL REFERENCES models(id),
            number           INTEGER NOT NULL,
            stage            TEXT NOT NULL DEFAULT 'none'
                             CHECK (stage IN ('none', 'staging', 'production', 'archived')),
            status           TEXT NOT NULL DEFAULT 'pending'
                             CHECK (status IN ('pending', 'ready', 'failed')),
            status_message   TEXT NOT NULL DEFAULT '',
            source           TEXT NOT NULL,
            description      TEXT NOT NULL DEFAULT '',
            content_digest   TEXT,
            total_size       INTEGER NOT NULL DEFAULT 0,
            file_count       INTEGER NOT NULL DEFAULT 0,
            facts            TEXT NOT NULL DEFAULT '{}',
            created_at       REAL NOT NULL,
            created_by       TEXT NOT NULL,
            updated_at       REAL NOT NULL,
            stage_changed_at REAL,
            UNIQUE (model_id, number)
        );
        -- At most one production version per model, enforced by the database (PRODUCT.md §4).
        CREATE UNIQUE INDEX versions_one_production ON versions(model_id) WHERE stage = 'production';
        CREATE INDEX versions_by_stage ON versions(model_id, stage, number);
        CREATE INDEX versions_by_digest ON versions(model_id, content_digest);
        CREATE INDEX versions_pending ON versions(status) WHERE status = 'pending';

        CREATE TABLE manifest (
            version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
            path       TEXT NOT NULL,
            sha256     TEXT NOT NULL,
            size       INTEGER NOT NULL,
            PRIMARY KEY (version_id, path)
        ) WITHOUT ROWID;
        CREATE INDEX manifest_by_blob ON manifest(sha256);

        CREATE TABLE blobs (
            sha256     TEXT PRIMARY KEY,
            size       INTEGER NOT NULL,
            created_at REAL NOT NULL
        ) WITHOUT ROWID;

        CREATE TABLE params (
            version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
            key        TEXT NOT NULL,
            value      TEXT NOT NULL,
            PRIMARY KEY (version_id, key)
        ) WITHOUT ROWID;
        CREATE TABLE version_tags (
            version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
            key        TEXT NOT NULL,
            value      TEXT NOT NULL,
            PRIMARY KEY (version_id, key)
        ) WITHOUT ROWID;
        CREATE INDEX version_tags_by_kv ON version_tags(key, value);

        CREATE TABLE metrics (
            id          INTEGER PRIMARY KEY,
            version_id  INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
            key         TEXT NOT NULL,
            value       REAL NOT NULL,
            step        INTEGER,
            dataset     TEXT,
            source      TEXT NOT NULL
                        CHECK (source IN ('offline', 'online', 'monitoring', 'model-card')),
            recorded_at REAL NOT NULL
        );
        CREATE INDEX metrics_by_version ON metrics(version_id, key, id);
        -- "The value" of a key is its latest record; kept here so filters and ordering by a
        -- metric stay index lookups at a million versions.
        CREATE TABLE metric_latest (
            version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
            key        TEXT NOT NULL,
            value      REAL NOT NULL,
            PRIMARY KEY (version_id, key)
        ) WITHOUT ROWID;
        CREATE INDEX metric_latest_by_value ON metric_latest(key, value);

        CREATE TABLE datasets (
            id         INTEGER PRIMARY KEY,
            name       TEXT NOT NULL,
            version    TEXT NOT NULL,
            digest     TEXT,
            uri        TEXT,
            created_at REAL NOT NULL,
            UNIQUE (name, version)
        );
        CREATE TABLE runs (
            id              INTEGER PRIMARY KEY,
            run_id          TEXT NOT NULL UNIQUE,
            experiment      TEXT,
            started_at      REAL,
            ended_at        REAL,
            hardware        TEXT,
            code_revision   TEXT,
            hyperparameters TEXT NOT NULL DEFAULT '{}',
            created_at      REAL NOT NULL
        );
        CREATE TABLE lineage (
            id                INTEGER PRIMARY KEY,
            version_id        INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
            relation          TEXT NOT NULL
                              CHECK (relation IN ('trained_on', 'evaluated_on', 'produced_by', 'derived_from')),
            dataset_id        INTEGER REFERENCES datasets(id),
            run_id            INTEGER REFERENCES runs(id),
            parent_version_id INTEGER REFERENCES versions(id),
            external          TEXT,      -- a parent outside this registry, e.g. a hub base model
            note              TEXT NOT NULL DEFAULT '',
            created_at        REAL NOT NULL
        );
        CREATE INDEX lineage_by_version ON lineage(version_id);
        CREATE INDEX lineage_by_dataset ON lineage(dataset_id) WHERE dataset_id IS NOT NULL;
        CREATE INDEX lineage_by_run ON lineage(run_id) WHERE run_id IS NOT NULL;
        CREATE INDEX lineage_by_parent ON lineage(parent_version_id) WHERE parent_version_id IS NOT NULL;

        -- Append-only, hash-chained: each row stores the previous row's hash (PRODUCT.md §5).
        CREATE TABLE events (
            id        INTEGER PRIMARY KEY,
            ts        REAL NOT NULL,
            kind      TEXT NOT NULL,
            actor     TEXT NOT NULL,
            model     TEXT,
            version   INTEGER,
            data      TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash      TEXT NOT NULL
        );
        CREATE INDEX events_by_model ON events(model, id);
        """,
    ),
]

MIGRATIONS.append((
    2,
    "lifecycle: stage changes, gates, aliases, hooks, retention",
    """
    -- Every stage change, in commit order: history replays it (PRODUCT.md §4).
    CREATE TABLE stage_changes (
        id          INTEGER PRIMARY KEY,
        model_id    INTEGER NOT NULL REFERENCES models(id),
        version_id  INTEGER NOT NULL REFERENCES versions(id),
        number      INTEGER NOT NULL,
        from_stage  TEXT NOT NULL,
        to_stage    TEXT NOT NULL,
        kind        TEXT NOT NULL,   -- transition | replaced | rollback
        actor       TEXT NOT NULL,
        reason      TEXT NOT NULL DEFAULT '',
        forced      INTEGER NOT NULL DEFAULT 0,
        verdict     TEXT,
        event_id    INTEGER,
        ts          REAL NOT NULL
    );
    CREATE INDEX stage_changes_by_model ON stage_changes(model_id, id);

    CREATE TABLE aliases (
        model_id   INTEGER NOT NULL REFERENCES models(id),
        alias      TEXT NOT NULL,
        version_id INTEGER NOT NULL REFERENCES versions(id),
        created_at REAL NOT NULL,
        PRIMARY KEY (model_id, alias)
    ) WITHOUT ROWID;

    CREATE TABLE gates (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,   -- ids are named in the audit log: never reused
        model_id   INTEGER REFERENCES models(id),   -- NULL: the registry-wide default
        stage      TEXT NOT NULL CHECK (stage IN ('staging', 'production')),
        rule       TEXT NOT NULL,
        timeout    REAL,
        created_at REAL NOT NULL,
        created_by TEXT NOT NULL
    );
    CREATE INDEX gates_by_target ON gates(model_id, stage);

    CREATE TABLE hooks (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        kind         TEXT NOT NULL CHECK (kind IN ('webhook', 'command')),
        target       TEXT NOT NULL,
        secret       TEXT,
        event_kinds  TEXT NOT NULL DEFAULT '',   -- comma-separated globs; empty: every kind
        model        TEXT,
        stage        TEXT,
        created_at   REAL NOT NULL
    );
    CREATE TABLE hook_deliveries (
        id            INTEGER PRIMARY KEY,
        hook_id       INTEGER NOT NULL REFERENCES hooks(id) ON DELETE CASCADE,
        event_id      INTEGER NOT NULL,
        state         TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
        attempts      INTEGER NOT NULL DEFAULT 0,
        last_status   TEXT NOT NULL DEFAULT '',
        next_at       REAL NOT NULL,
        updated_at    REAL NOT NULL,
        UNIQUE (hook_id, event_id)
    );
    CREATE INDEX hook_deliveries_pending ON hook_deliveries(next_at) WHERE state = 'pending';

    -- Small durable cursors, e.g. the last event the hook dispatcher has fanned out.
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

    ALTER TABLE versions ADD COLUMN purged_at REAL;   -- artifacts removed by gc after retention
    """,
))

MIGRATIONS.append((
    3,
    "drop folders: watches and the ingest journal",
    """
    CREATE TABLE watches (
        id         INTEGER PRIMARY KEY,
        path       TEXT NOT NULL UNIQUE,
        model      TEXT,
        mode       TEXT NOT NULL CHECK (mode IN ('move', 'copy')),
        settle     REAL NOT NULL,
        poll       INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    -- One row per drop taken: a crash at any step resumes from here (PRODUCT.md §6).
    CREATE TABLE ingest_journal (
        id             INTEGER PRIMARY KEY,
        watch_id       INTEGER NOT NULL REFERENCES watches(id) ON DELETE CASCADE,
        entry          TEXT NOT NULL,
        fingerprint    TEXT NOT NULL,
        state          TEXT NOT NULL CHECK (state IN ('taken', 'registered', 'duplicate', 'failed', 'done')),
        model          TEXT,
        version_id     INTEGER REFERENCES versions(id),
        message        TEXT NOT NULL DEFAULT '',
        created_at     REAL NOT NULL,
        updated_at     REAL NOT NULL
    );
    CREATE INDEX ingest_journal_by_entry ON ingest_journal(watch_id, entry, id);
    CREATE INDEX ingest_journal_open ON ingest_journal(state) WHERE state IN ('taken', 'registered');
    """,
))

MIGRATIONS.append((
    4,
    "deleting models and versions",
    """
    -- A deleted version keeps its row (its number is never reused, lineage and history still
    -- name it) but leaves every listing, search and ref; gc then purges its files.
    ALTER TABLE versions ADD COLUMN deleted_at REAL;
    -- A deleted model keeps its row under a name no valid model name can take, so its name
    -- is free for a new model while its versions and events stay where they were.
    ALTER TABLE models ADD COLUMN deleted_at REAL;
    """,
))

MIGRATIONS.append((
    5,
    "drop folders: per-watch include/exclude globs, ignored drops in the journal",
    """
    ALTER TABLE watches ADD COLUMN include TEXT NOT NULL DEFAULT '[]';   -- JSON list of globs
    ALTER TABLE watches ADD COLUMN exclude TEXT NOT NULL DEFAULT '[]';
    -- SQLite cannot widen a CHECK in place: rebuild the journal with the 'ignored' state.
    CREATE TABLE ingest_journal_v4 (
        id             INTEGER PRIMARY KEY,
        watch_id       INTEGER NOT NULL REFERENCES watches(id) ON DELETE CASCADE,
        entry          TEXT NOT NULL,
        fingerprint    TEXT NOT NULL,
        state          TEXT NOT NULL CHECK (state IN ('taken', 'registered', 'duplicate', 'failed', 'done', 'ignored')),
        model          TEXT,
        version_id     INTEGER REFERENCES versions(id),
        message        TEXT NOT NULL DEFAULT '',
        created_at     REAL NOT NULL,
        updated_at     REAL NOT NULL
    );
    INSERT INTO ingest_journal_v4 (id, watch_id, entry, fingerprint, state, model, version_id, message, created_at, updated_at)
        SELECT id, watch_id, entry, fingerprint, state, model, version_id, message, created_at, updated_at FROM ingest_journal;
    DROP TABLE ingest_journal;
    ALTER TABLE ingest_journal_v4 RENAME TO ingest_journal;
    CREATE INDEX ingest_journal_by_entry ON ingest_journal(watch_id, entry, id);
    CREATE INDEX ingest_journal_open ON ingest_journal(state) WHERE state IN ('taken', 'registered');
    """,
))

MIGRATIONS.append((
    6,
    "catalog: live version counters kept by triggers, indexes for ordered pages",
    """
    -- The number of live (not deleted) versions of each model, kept by the database itself so
    -- the code that creates or deletes versions does not need to know, and a page of versions
    -- never counts rows (issue 9).
    ALTER TABLE models ADD COLUMN live_versions INTEGER NOT NULL DEFAULT 0;
    UPDATE models SET live_versions =
        (SELECT count(*) FROM versions v WHERE v.model_id = models.id AND v.deleted_at IS NULL);
    CREATE TRIGGER versions_live_on_insert AFTER INSERT ON versions WHEN NEW.deleted_at IS NULL
    BEGIN
        UPDATE models SET live_versions = live_versions + 1 WHERE id = NEW.model_id;
    END;
    CREATE TRIGGER versions_live_on_delete_mark AFTER UPDATE OF deleted_at ON versions
        WHEN (OLD.deleted_at IS NULL) != (NEW.deleted_at IS NULL)
    BEGIN
        UPDATE models SET live_versions = live_versions + (CASE WHEN NEW.deleted_at IS NULL THEN 1 ELSE -1 END)
            WHERE id = NEW.model_id;
    END;
    CREATE TRIGGER versions_live_on_delete AFTER DELETE ON versions WHEN OLD.deleted_at IS NULL
    BEGIN
        UPDATE models SET live_versions = live_versions - 1 WHERE id = OLD.model_id;
    END;
    -- Pages ordered by creation time or size walk an index instead of sorting every version.
    CREATE INDEX versions_live_by_created ON versions(model_id, created_at, number) WHERE deleted_at IS NULL;
    CREATE INDEX versions_live_by_size ON versions(model_id, total_size, number) WHERE deleted_at IS NULL;
    -- Search across every model, newest first (its default order).
    CREATE INDEX versions_live_by_created_all ON versions(created_at, number, id) WHERE deleted_at IS NULL;
    """,
))

MIGRATIONS.append((
    7,
    "mlflow tracking subset and the mlflow-artifacts tree",
    """
    -- MLflow's own timestamps (integer milliseconds, as its client sends and reads them) are
    -- kept as given, so a metric's history reads back exactly as it was logged (issue 10).
    CREATE TABLE mlflow_experiments (
        id                INTEGER PRIMARY KEY AUTOINCREMENT,   -- ids are never reused, as MLflow's
        name              TEXT NOT NULL UNIQUE,
        artifact_location TEXT NOT NULL,
        lifecycle_stage   TEXT NOT NULL DEFAULT 'active',
        created_ms        INTEGER NOT NULL,
        updated_ms        INTEGER NOT NULL
    );
    -- Experiment "0" ("Default") exists as in MLflow.
    INSERT INTO mlflow_experiments (id, name, artifact_location, created_ms, updated_ms) VALUES
        (0, 'Default', 'mlflow-artifacts:/0', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER),
         CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
    CREATE TABLE mlflow_experiment_tags (
        experiment_id INTEGER NOT NULL REFERENCES mlflow_experiments(id) ON DELETE CASCADE,
        key           TEXT NOT NULL,
        value         TEXT NOT NULL,
        PRIMARY KEY (experiment_id, key)
    ) WITHOUT ROWID;

    CREATE TABLE mlflow_runs (
        run_id          TEXT PRIMARY KEY,
        experiment_id   INTEGER NOT NULL REFERENCES mlflow_experiments(id),
        name            TEXT NOT NULL DEFAULT '',
        user_id         TEXT NOT NULL DEFAULT '',
        status          TEXT NOT NULL DEFAULT 'RUNNING',
        start_ms        INTEGER,
        end_ms          INTEGER,
        lifecycle_stage TEXT NOT NULL DEFAULT 'active',
        artifact_uri    TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX mlflow_runs_by_experiment ON mlflow_runs(experiment_id, start_ms);
    CREATE TABLE mlflow_params (
        run_id TEXT NOT NULL REFERENCES mlflow_runs(run_id) ON DELETE CASCADE,
        key    TEXT NOT NULL,
        value  TEXT NOT NULL,
        PRIMARY KEY (run_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE mlflow_run_tags (
        run_id TEXT NOT NULL REFERENCES mlflow_runs(run_id) ON DELETE CASCADE,
        key    TEXT NOT NULL,
        value  TEXT NOT NULL,
        PRIMARY KEY (run_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE mlflow_metrics (
        id        INTEGER PRIMARY KEY,
        run_id    TEXT NOT NULL REFERENCES mlflow_runs(run_id) ON DELETE CASCADE,
        key       TEXT NOT NULL,
        value     REAL,          -- NULL: NaN (SQLite has no NaN)
        is_nan    INTEGER NOT NULL DEFAULT 0,
        timestamp INTEGER NOT NULL,
        step      INTEGER NOT NULL DEFAULT 0,
        model_id  TEXT
    );
    CREATE INDEX mlflow_metrics_by_run ON mlflow_metrics(run_id, key, id);

    CREATE TABLE mlflow_logged_models (
        model_id        TEXT PRIMARY KEY,
        experiment_id   INTEGER NOT NULL REFERENCES mlflow_experiments(id),
        name            TEXT NOT NULL,
        artifact_uri    TEXT NOT NULL,
        status          TEXT NOT NULL DEFAULT 'LOGGED_MODEL_PENDING',
        status_message  TEXT NOT NULL DEFAULT '',
        model_type      TEXT NOT NULL DEFAULT '',
        source_run_id   TEXT,
        lifecycle_stage TEXT NOT NULL DEFAULT 'active',
        created_ms      INTEGER NOT NULL,
        updated_ms      INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX mlflow_logged_models_by_experiment ON mlflow_logged_models(experiment_id, created_ms);
    CREATE TABLE mlflow_logged_model_tags (
        model_id TEXT NOT NULL REFERENCES mlflow_logged_models(model_id) ON DELETE CASCADE,
        key      TEXT NOT NULL,
        value    TEXT NOT NULL,
        PRIMARY KEY (model_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE mlflow_logged_model_params (
        model_id TEXT NOT NULL REFERENCES mlflow_logged_models(model_id) ON DELETE CASCADE,
        key      TEXT NOT NULL,
        value    TEXT NOT NULL,
        PRIMARY KEY (model_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE mlflow_run_outputs (
        run_id   TEXT NOT NULL REFERENCES mlflow_runs(run_id) ON DELETE CASCADE,
        model_id TEXT NOT NULL,
        step     INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (run_id, model_id)
    ) WITHOUT ROWID;

    -- The mlflow-artifacts tree: a path (relative to the artifact root, e.g.
    -- '1/<run>/artifacts/model/MLmodel') names a blob of the content-addressed store; gc keeps
    -- every blob a row here references.
    CREATE TABLE mlflow_artifacts (
        path       TEXT PRIMARY KEY,
        sha256     TEXT NOT NULL,
        size       INTEGER NOT NULL,
        created_at REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX mlflow_artifacts_by_blob ON mlflow_artifacts(sha256);
    """,
))

MIGRATIONS.append((
    8,
    "gates guard an alias as well as a stage",
    """
    -- A gate's target is a stage or an alias, never both. SQLite cannot change a CHECK in
    -- place: rebuild the table, keeping every gate id (the audit log names them) and the
    -- AUTOINCREMENT counter (a removed gate's id is never reused).
    CREATE TABLE gates_v8 (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        model_id   INTEGER REFERENCES models(id),   -- NULL: the registry-wide default
        stage      TEXT CHECK (stage IN ('staging', 'production')),
        alias      TEXT,
        rule       TEXT NOT NULL,
        timeout    REAL,
        created_at REAL NOT NULL,
        created_by TEXT NOT NULL,
        CHECK ((stage IS NULL) != (alias IS NULL))
    );
    INSERT INTO gates_v8 (id, model_id, stage, alias, rule, timeout, created_at, created_by)
        SELECT id, model_id, stage, NULL, rule, timeout, created_at, created_by FROM gates;
    DELETE FROM sqlite_sequence WHERE name = 'gates_v8';
    INSERT INTO sqlite_sequence (name, seq) SELECT 'gates_v8', seq FROM sqlite_sequence WHERE name = 'gates';
    DROP TABLE gates;
    ALTER TABLE gates_v8 RENAME TO gates;
    CREATE INDEX gates_by_target ON gates(model_id, stage);
    CREATE INDEX gates_by_alias ON gates(model_id, alias) WHERE alias IS NOT NULL;
    """,
))

MIGRATIONS.append((
    9,
    "named, scoped tokens",
    """
    -- Named tokens (issue 12, PRODUCT.md §10). The token itself is shown once, at creation;
    -- only its sha256 is kept (a 256-bit random secret: a fast hash is enough, and a lookup by
    -- hash compares no secret byte by byte). Names are never reused: the audit log names them.
    CREATE TABLE tokens (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        name         TEXT NOT NULL UNIQUE,
        secret_hash  TEXT NOT NULL UNIQUE,
        scope        TEXT NOT NULL CHECK (scope IN ('read', 'write', 'promote', 'admin')),
        models       TEXT,            -- a glob of model names; NULL: every model
        created_at   REAL NOT NULL,
        created_by   TEXT NOT NULL,
        expires_at   REAL,            -- NULL: never
        revoked_at   REAL,
        revoked_by   TEXT,
        last_used_at REAL
    );
    """,
))
MIGRATIONS.append((
    10,
    "two-person approval, protected aliases",
    """
    -- A transition a gate's `approvals >= N` holds back becomes a request (issue 12).
    CREATE TABLE approval_requests (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,   -- named in the audit log: never reused
        model_id        INTEGER NOT NULL REFERENCES models(id),
        version_id      INTEGER NOT NULL REFERENCES versions(id),
        target          TEXT NOT NULL,        -- staging | production | @alias
        requested_by    TEXT NOT NULL,        -- the requester's identity (a token name, admin)
        requested_actor TEXT NOT NULL,        -- what events record for the requester
        reason          TEXT NOT NULL DEFAULT '',
        required        INTEGER NOT NULL,     -- approvals needed when the request was opened
        status          TEXT NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'approved', 'rejected', 'expired', 'failed', 'cancelled')),
        verdict         TEXT,                 -- JSON: the latest verdict of the transition's gates
        outcome         TEXT NOT NULL DEFAULT '',   -- why it closed, in words
        created_at      REAL NOT NULL,
        expires_at      REAL NOT NULL,
        closed_at       REAL
    );
    CREATE INDEX approval_requests_by_model ON approval_requests(model_id, status, id);
    -- One open request per version and target: a second `promote` joins the first.
    CREATE UNIQUE INDEX approval_requests_one_open ON approval_requests(version_id, target) WHERE status = 'pending';
    CREATE TABLE approval_votes (
        request_id INTEGER NOT NULL REFERENCES approval_requests(id),
        identity   TEXT NOT NULL,   -- one vote per identity
        actor      TEXT NOT NULL,
        vote       TEXT NOT NULL CHECK (vote IN ('approve', 'reject')),
        reason     TEXT NOT NULL,
        at         REAL NOT NULL,
        PRIMARY KEY (request_id, identity)
    ) WITHOUT ROWID;

    -- A protected alias moves only by identities with `promote` on the model (W&B's rule).
    ALTER TABLE aliases ADD COLUMN protected INTEGER NOT NULL DEFAULT 0;
    """,
))
MIGRATIONS.append((
    11,
    "signed models: trusted keys and each version's signature check",
    """
    -- Public keys and certificates a signature may be verified with (`modelreg trust add`).
    CREATE TABLE trusted_keys (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        name        TEXT NOT NULL UNIQUE,
        kind        TEXT NOT NULL CHECK (kind IN ('key', 'certificate')),
        pem         TEXT NOT NULL,
        fingerprint TEXT NOT NULL,   -- sha256 of the DER public key
        created_at  REAL NOT NULL,
        created_by  TEXT NOT NULL
    );
    -- The outcome of verifying a version's OpenSSF Model Signing bundle against its files.
    CREATE TABLE version_signatures (
        version_id    INTEGER PRIMARY KEY REFERENCES versions(id) ON DELETE CASCADE,
        status        TEXT NOT NULL CHECK (status IN ('signed', 'mismatch', 'untrusted', 'invalid')),
        signer        TEXT,          -- the trusted key that signed (status signed or mismatch)
        message       TEXT NOT NULL DEFAULT '',
        bundle_sha256 TEXT,          -- the bundle is kept as a blob
        checked_at    REAL NOT NULL
    );
    """,
))
MIGRATIONS.append((
    12,
    "watchdogs on the production version's monitoring metrics",
    """
    CREATE TABLE watchdogs (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,   -- named in the audit log: never reused
        model_id         INTEGER NOT NULL REFERENCES models(id),
        rule             TEXT NOT NULL,       -- monitoring:auc < 0.85 for 3 records
        source           TEXT NOT NULL,       -- the parts of the rule the store selects records by
        metric_key       TEXT NOT NULL,
        window_size      INTEGER NOT NULL,
        rollback         INTEGER NOT NULL DEFAULT 0,
        cooldown         REAL NOT NULL,       -- seconds between two automatic rollbacks
        created_at       REAL NOT NULL,
        created_by       TEXT NOT NULL,
        last_fired_at    REAL,
        last_rollback_at REAL                 -- set when a rollback starts; put back if it fails
    );
    CREATE INDEX watchdogs_by_model ON watchdogs(model_id);
    -- Each firing: the version that tripped it (never a rollback target of this watchdog).
    CREATE TABLE watchdog_trips (
        id             INTEGER PRIMARY KEY,
        watchdog_id    INTEGER NOT NULL REFERENCES watchdogs(id) ON DELETE CASCADE,
        version_id     INTEGER NOT NULL REFERENCES versions(id),
        observed       TEXT NOT NULL,         -- JSON list of the values that tripped it, oldest first
        last_metric_id INTEGER NOT NULL,      -- the newest record it counted: a later trip needs newer ones
        rollback_to    INTEGER,               -- the version number a rollback was started towards
        rolled_back_to INTEGER,               -- the version number production went back to, if it did
        note           TEXT NOT NULL DEFAULT '',  -- why it did not roll back
        event_id       INTEGER,               -- its watchdog.fired event; NULL while its rollback runs
        fired_at       REAL NOT NULL
    );
    CREATE INDEX watchdog_trips_by_watchdog ON watchdog_trips(watchdog_id, version_id);
    CREATE INDEX watchdog_trips_unfinished ON watchdog_trips(id) WHERE event_id IS NULL;
    """,
))
MIGRATIONS.append((
    13,
    "hook deliveries are claimed before they are sent",
    """
    -- Several daemons on one registry (issue 13): a due delivery is claimed in a write before it
    -- is sent, state 'sending' under the claim named in claimed_by until next_at, when the claim
    -- expires and any daemon may send it again (its claimer died mid-send).
    CREATE TABLE hook_deliveries_new (
        id            INTEGER PRIMARY KEY,
        hook_id       INTEGER NOT NULL REFERENCES hooks(id) ON DELETE CASCADE,
        event_id      INTEGER NOT NULL,
        state         TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'delivered', 'failed')),
        attempts      INTEGER NOT NULL DEFAULT 0,
        last_status   TEXT NOT NULL DEFAULT '',
        next_at       REAL NOT NULL,   -- pending: the next attempt's time, sending: the claim's expiry
        updated_at    REAL NOT NULL,
        claimed_by    TEXT,
        UNIQUE (hook_id, event_id)
    );
    INSERT INTO hook_deliveries_new (id, hook_id, event_id, state, attempts, last_status, next_at, updated_at)
        SELECT id, hook_id, event_id, state, attempts, last_status, next_at, updated_at FROM hook_deliveries;
    DROP TABLE hook_deliveries;
    ALTER TABLE hook_deliveries_new RENAME TO hook_deliveries;
    CREATE INDEX hook_deliveries_due ON hook_deliveries(next_at) WHERE state IN ('pending', 'sending');
    """,
))
MIGRATIONS.append((
    14,
    "drop-folder watch leases: one daemon at a time runs a watch",
    """
    -- The daemons sharing the registry (PostgreSQL; SQLite has one and writes none): each renews
    -- its row with its leases, and a row past its expiry is a daemon that died.
    CREATE TABLE daemons (
        instance   TEXT PRIMARY KEY,     -- host:pid:random
        host       TEXT NOT NULL,
        pid        INTEGER NOT NULL,
        proc       TEXT,                 -- boot id/pid namespace/pid/start time: a peer on the same machine sees it die
        started_at REAL NOT NULL,
        expires_at REAL NOT NULL         -- the database's clock
    );
    -- The daemon that runs each watch, while expires_at lies ahead.
    CREATE TABLE watch_leases (
        watch_id    INTEGER PRIMARY KEY REFERENCES watches(id) ON DELETE CASCADE,
        owner       TEXT NOT NULL,       -- a daemons.instance
        acquired_at REAL NOT NULL,
        expires_at  REAL NOT NULL
    );
    -- The daemon storing a pending version's files: recovery leaves a live one's alone.
    ALTER TABLE versions ADD COLUMN owner TEXT;
    """,
))

LATEST = MIGRATIONS[-1][0]

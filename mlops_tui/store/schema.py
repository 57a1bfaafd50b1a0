"""Versioned schema. Each migration is a list of single statements (one per execute)."""

from __future__ import annotations

SCHEMA_V1: list[str] = [
    "CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
    """CREATE TABLE regimes (
        name VARCHAR PRIMARY KEY,
        description VARCHAR NOT NULL DEFAULT '',
        created_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE data_snapshots (
        fingerprint VARCHAR PRIMARY KEY,
        kind VARCHAR NOT NULL,
        rows BIGINT NOT NULL,
        regime VARCHAR,
        time_min TIMESTAMP,
        time_max TIMESTAMP,
        path VARCHAR,
        created_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE profiles (
        id INTEGER PRIMARY KEY,
        snapshot VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL,
        profile VARCHAR NOT NULL
    )""",
    """CREATE TABLE env_snapshots (
        hash VARCHAR PRIMARY KEY,
        python_version VARCHAR NOT NULL,
        implementation VARCHAR NOT NULL,
        platform VARCHAR NOT NULL,
        packages VARCHAR NOT NULL,
        source VARCHAR NOT NULL,
        captured_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE code_snapshots (
        hash VARCHAR PRIMARY KEY,
        manifest VARCHAR NOT NULL,
        git_commit VARCHAR,
        git_dirty BOOLEAN,
        created_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE model_versions (
        number INTEGER PRIMARY KEY,
        regime VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL,
        artifact_sha256 VARCHAR NOT NULL,
        artifact_size BIGINT NOT NULL,
        artifact_path VARCHAR NOT NULL,
        artifact_format VARCHAR NOT NULL,
        env_hash VARCHAR NOT NULL,
        code_hash VARCHAR NOT NULL,
        train_snapshot VARCHAR,
        holdout_snapshot VARCHAR,
        metrics VARCHAR NOT NULL,
        parent INTEGER,
        trigger VARCHAR NOT NULL,
        runner VARCHAR NOT NULL,
        image VARCHAR,
        job_id VARCHAR,
        required_packages VARCHAR NOT NULL,
        note VARCHAR NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX model_versions_regime ON model_versions (regime)",
    """CREATE TABLE lineage_edges (
        child VARCHAR NOT NULL,
        parent VARCHAR NOT NULL,
        relation VARCHAR NOT NULL
    )""",
    "CREATE INDEX lineage_edges_child ON lineage_edges (child)",
    """CREATE TABLE deployment_events (
        seq INTEGER PRIMARY KEY,
        kind VARCHAR NOT NULL,
        subject VARCHAR NOT NULL,
        from_version INTEGER,
        to_version INTEGER NOT NULL,
        action VARCHAR NOT NULL,
        actor VARCHAR NOT NULL,
        reason VARCHAR NOT NULL,
        occurred_at TIMESTAMP NOT NULL,
        pinned BOOLEAN NOT NULL DEFAULT false,
        detail VARCHAR NOT NULL DEFAULT '{}'
    )""",
    """CREATE VIEW current_deployments AS
        SELECT * FROM deployment_events
        QUALIFY row_number() OVER (PARTITION BY kind, subject ORDER BY seq DESC) = 1""",
    """CREATE TABLE audit (
        seq INTEGER PRIMARY KEY,
        occurred_at TIMESTAMP NOT NULL,
        actor VARCHAR NOT NULL,
        action VARCHAR NOT NULL,
        subject VARCHAR NOT NULL,
        detail VARCHAR NOT NULL DEFAULT '{}',
        event_seq INTEGER
    )""",
    """CREATE TABLE jobs (
        id VARCHAR PRIMARY KEY,
        regime VARCHAR NOT NULL,
        runner VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL,
        spec VARCHAR NOT NULL
    )""",
    """CREATE TABLE job_events (
        seq INTEGER PRIMARY KEY,
        job_id VARCHAR NOT NULL,
        state VARCHAR NOT NULL,
        occurred_at TIMESTAMP NOT NULL,
        reason VARCHAR NOT NULL DEFAULT '',
        detail VARCHAR NOT NULL DEFAULT '{}'
    )""",
    """CREATE VIEW current_jobs AS
        SELECT j.*, e.state, e.occurred_at AS state_at, e.reason
        FROM jobs j JOIN job_events e ON e.job_id = j.id
        QUALIFY row_number() OVER (PARTITION BY j.id ORDER BY e.seq DESC) = 1""",
    """CREATE TABLE drift_results (
        run_id VARCHAR NOT NULL,
        regime VARCHAR,
        window_start TIMESTAMP NOT NULL,
        window_end TIMESTAMP NOT NULL,
        feature VARCHAR NOT NULL,
        test VARCHAR NOT NULL,
        statistic DOUBLE,
        threshold DOUBLE,
        verdict VARCHAR NOT NULL,
        reason VARCHAR NOT NULL DEFAULT '',
        computed_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE decisions (
        seq INTEGER PRIMARY KEY,
        occurred_at TIMESTAMP NOT NULL,
        regime VARCHAR,
        window_start TIMESTAMP,
        action VARCHAR NOT NULL,
        reason VARCHAR NOT NULL,
        numbers VARCHAR NOT NULL DEFAULT '{}',
        job_id VARCHAR
    )""",
]

# v2: production observations arrive as batches (Parquet files under data/batches, written
# outside the lock); late labels join on the observation id.
SCHEMA_V2: list[str] = [
    """CREATE TABLE batches (
        id INTEGER PRIMARY KEY,
        sha256 VARCHAR NOT NULL UNIQUE,
        source VARCHAR NOT NULL,
        path VARCHAR NOT NULL,
        rows BIGINT NOT NULL,
        time_min TIMESTAMP,
        time_max TIMESTAMP,
        columns VARCHAR NOT NULL,
        ingested_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE labels (
        obs_id VARCHAR NOT NULL,
        label DOUBLE,
        source VARCHAR NOT NULL,
        ingested_at TIMESTAMP NOT NULL
    )""",
]

# v3: serving pins and garbage collection. A manual deploy or rollback pins its subject through
# the event's `pinned` flag; `ct resume` appends a pin event that overrides the flag of the
# event it names (and only that one), so history stays append-only. `current_deployments.pinned`
# is the live pin state. Versions whose weights `models gc` removed are listed once.
SCHEMA_V3: list[str] = [
    """CREATE TABLE pin_events (
        seq INTEGER PRIMARY KEY,
        kind VARCHAR NOT NULL,
        subject VARCHAR NOT NULL,
        event_seq INTEGER NOT NULL,
        pinned BOOLEAN NOT NULL,
        actor VARCHAR NOT NULL,
        reason VARCHAR NOT NULL,
        occurred_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE collected_versions (
        number INTEGER PRIMARY KEY,
        artifact_sha256 VARCHAR NOT NULL,
        actor VARCHAR NOT NULL,
        reason VARCHAR NOT NULL,
        collected_at TIMESTAMP NOT NULL
    )""",
    """CREATE OR REPLACE VIEW current_deployments AS
        WITH latest AS (
            SELECT * FROM deployment_events
            QUALIFY row_number() OVER (PARTITION BY kind, subject ORDER BY seq DESC) = 1
        ), latest_pin AS (
            SELECT * FROM pin_events
            QUALIFY row_number() OVER (PARTITION BY kind, subject ORDER BY seq DESC) = 1
        )
        SELECT l.seq, l.kind, l.subject, l.from_version, l.to_version, l.action, l.actor,
               l.reason, l.occurred_at,
               CASE WHEN p.seq IS NOT NULL AND p.event_seq >= l.seq THEN p.pinned
                    ELSE l.pinned END AS pinned,
               l.detail
        FROM latest l LEFT JOIN latest_pin p ON p.kind = l.kind AND p.subject = l.subject""",
]

# v4: drift over time. A drift run records its settings, one row per window (regime and how it
# was identified, the reference it was judged against, the dataset verdict and the serving
# version's metric on labelled rows) and one per window and feature in drift_results (now
# with the p-value, the window's rows and the reference snapshot). Label files are
# remembered by content so the same file twice is a no-op.
SCHEMA_V4: list[str] = [
    "ALTER TABLE drift_results ADD COLUMN p_value DOUBLE",
    "ALTER TABLE drift_results ADD COLUMN rows BIGINT",
    "ALTER TABLE drift_results ADD COLUMN reference VARCHAR",
    "CREATE INDEX drift_results_run ON drift_results (run_id)",
    """CREATE TABLE drift_runs (
        run_id VARCHAR PRIMARY KEY,
        computed_at TIMESTAMP NOT NULL,
        settings VARCHAR NOT NULL DEFAULT '{}'
    )""",
    """CREATE TABLE drift_windows (
        run_id VARCHAR NOT NULL,
        window_start TIMESTAMP NOT NULL,
        window_end TIMESTAMP NOT NULL,
        rows BIGINT NOT NULL,
        regime VARCHAR NOT NULL,
        regime_method VARCHAR NOT NULL,
        regime_distance DOUBLE,
        mixed BOOLEAN NOT NULL,
        warning VARCHAR NOT NULL DEFAULT '',
        reference_version INTEGER,
        reference_basis VARCHAR NOT NULL,
        reference VARCHAR,
        drift_share DOUBLE,
        verdict VARCHAR NOT NULL,
        serving_version INTEGER,
        metric VARCHAR,
        metric_value DOUBLE,
        labelled_rows BIGINT
    )""",
    "CREATE INDEX drift_windows_run ON drift_windows (run_id)",
    "CREATE INDEX profiles_snapshot ON profiles (snapshot)",
    """CREATE TABLE label_files (
        sha256 VARCHAR PRIMARY KEY,
        source VARCHAR NOT NULL,
        rows BIGINT NOT NULL,
        matched BIGINT NOT NULL,
        ingested_at TIMESTAMP NOT NULL
    )""",
]

# Migrations by the version they produce. A new store runs all of them in order.
# v5: named captures of environments (e.g. an image's). Snapshots are stored once per hash,
# so the name an environment was captured under needs its own row.
SCHEMA_V5: list[str] = [
    """CREATE TABLE env_captures (
        source VARCHAR NOT NULL,
        hash VARCHAR NOT NULL,
        captured_at TIMESTAMP NOT NULL
    )""",
]

# v6: data time. Every timeline event also records the data time it acted on: the newest
# observation time in the store when it was written (or one the caller gave). The wall clock
# stays in `occurred_at` ("recorded at"). Old rows get the newest observation time ingested
# by then. The current-state views are re-created to carry the column.
_EVENT_TABLES = ("deployment_events", "pin_events", "audit", "job_events", "decisions")
SCHEMA_V6: list[str] = [
    *(f"ALTER TABLE {table} ADD COLUMN data_time TIMESTAMP" for table in _EVENT_TABLES),
    *(f"""UPDATE {table} SET data_time = (
            SELECT max(b.time_max) FROM batches b WHERE b.ingested_at <= {table}.occurred_at)"""
      for table in _EVENT_TABLES),
    """CREATE OR REPLACE VIEW current_deployments AS
        WITH latest AS (
            SELECT * FROM deployment_events
            QUALIFY row_number() OVER (PARTITION BY kind, subject ORDER BY seq DESC) = 1
        ), latest_pin AS (
            SELECT * FROM pin_events
            QUALIFY row_number() OVER (PARTITION BY kind, subject ORDER BY seq DESC) = 1
        )
        SELECT l.seq, l.kind, l.subject, l.from_version, l.to_version, l.action, l.actor,
               l.reason, l.occurred_at,
               CASE WHEN p.seq IS NOT NULL AND p.event_seq >= l.seq THEN p.pinned
                    ELSE l.pinned END AS pinned,
               l.detail, l.data_time
        FROM latest l LEFT JOIN latest_pin p ON p.kind = l.kind AND p.subject = l.subject""",
    """CREATE OR REPLACE VIEW current_jobs AS
        SELECT j.*, e.state, e.occurred_at AS state_at, e.reason, e.data_time
        FROM jobs j JOIN job_events e ON e.job_id = j.id
        QUALIFY row_number() OVER (PARTITION BY j.id ORDER BY e.seq DESC) = 1""",
]

MIGRATIONS: dict[int, list[str]] = {
    1: SCHEMA_V1, 2: SCHEMA_V2, 3: SCHEMA_V3, 4: SCHEMA_V4, 5: SCHEMA_V5, 6: SCHEMA_V6,
}
CURRENT_SCHEMA = max(MIGRATIONS)

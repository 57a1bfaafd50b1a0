"""SQL for the model registry: versions, snapshots, lineage edges, regimes."""

from __future__ import annotations

import json
from dataclasses import asdict

from mlops_tui.core.models import CodeSnapshot, DataSnapshot, EnvSnapshot, ModelVersion
from mlops_tui.store import rows
from mlops_tui.store.db import Tx, naive_utc, utcnow


def ensure_regime(tx: Tx, name: str, description: str = "") -> None:
    tx.execute(
        "INSERT INTO regimes VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        [name, description, utcnow()],
    )


def regime_names(tx: Tx) -> list[str]:
    return [r[0] for r in tx.all("SELECT name FROM regimes ORDER BY name")]


def put_env(tx: Tx, env: EnvSnapshot) -> None:
    """Insert once per distinct hash: versions share snapshots."""
    tx.execute(
        "INSERT INTO env_snapshots VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [env.hash, env.python_version, env.implementation, env.platform,
         json.dumps(env.packages, sort_keys=True), env.source,
         naive_utc(env.captured_at) or utcnow()],
    )


def record_capture(tx: Tx, env: EnvSnapshot) -> None:
    """Remember that `env.source` (e.g. 'image:trainer') was captured with this hash."""
    put_env(tx, env)
    tx.execute("INSERT INTO env_captures VALUES (?, ?, ?)",
               [env.source, env.hash, naive_utc(env.captured_at) or utcnow()])


def get_env(tx: Tx, env_hash: str) -> EnvSnapshot | None:
    row = tx.one(f"SELECT {rows.ENV_COLUMNS} FROM env_snapshots WHERE hash = ?", [env_hash])
    return rows.env(row) if row else None


def put_code(tx: Tx, code: CodeSnapshot) -> None:
    tx.execute(
        "INSERT INTO code_snapshots VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [code.hash, json.dumps([asdict(f) for f in code.files]), code.git_commit,
         code.git_dirty, utcnow()],
    )


def get_code(tx: Tx, code_hash: str) -> CodeSnapshot | None:
    row = tx.one(
        "SELECT hash, manifest, git_commit, git_dirty FROM code_snapshots WHERE hash = ?",
        [code_hash],
    )
    return rows.code(row) if row else None


def all_code(tx: Tx) -> list[CodeSnapshot]:
    return [rows.code(r) for r in tx.all(
        "SELECT hash, manifest, git_commit, git_dirty FROM code_snapshots ORDER BY hash")]


def put_data_snapshot(tx: Tx, snapshot: DataSnapshot) -> None:
    tx.execute(
        "INSERT INTO data_snapshots VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [snapshot.fingerprint, snapshot.kind, snapshot.rows, snapshot.regime,
         naive_utc(snapshot.time_min), naive_utc(snapshot.time_max), snapshot.path, utcnow()],
    )


def data_snapshots(tx: Tx, fingerprints: list[str]) -> dict[str, DataSnapshot]:
    """Several snapshots in one query (lineage walks many)."""
    if not fingerprints:
        return {}
    marks = ", ".join("?" for _ in fingerprints)
    found = tx.all(
        f"SELECT {rows.DATA_COLUMNS} FROM data_snapshots WHERE fingerprint IN ({marks})",
        fingerprints)
    return {row[0]: rows.data(row) for row in found}


def get_data_snapshot(tx: Tx, fingerprint: str) -> DataSnapshot | None:
    row = tx.one(
        f"SELECT {rows.DATA_COLUMNS} FROM data_snapshots WHERE fingerprint = ?", [fingerprint]
    )
    return rows.data(row) if row else None


def next_version_number(tx: Tx) -> int:
    return int(tx.scalar("SELECT coalesce(max(number), 0) + 1 FROM model_versions"))


def insert_version(tx: Tx, version: ModelVersion) -> None:
    tx.execute(
        f"INSERT INTO model_versions ({rows.VERSION_COLUMNS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [version.number, version.regime, naive_utc(version.created_at), version.artifact.sha256,
         version.artifact.size, version.artifact.path, version.artifact.format,
         version.env_hash, version.code_hash, version.train_snapshot,
         version.holdout_snapshot, json.dumps(version.metrics, sort_keys=True),
         version.parent, version.trigger.value, version.runner, version.image,
         version.job_id, json.dumps(list(version.required_packages)), version.note],
    )


def add_edges(tx: Tx, edges: list[tuple[str, str, str]]) -> None:
    """(child node, parent node, relation); nodes are 'kind:id' strings."""
    for child, parent, relation in edges:
        tx.execute("INSERT INTO lineage_edges VALUES (?, ?, ?)", [child, parent, relation])


def get_version(tx: Tx, number: int) -> ModelVersion | None:
    row = tx.one(f"SELECT {rows.VERSION_COLUMNS} FROM model_versions WHERE number = ?", [number])
    return rows.version(row) if row else None


def version_numbers_near(tx: Tx, number: int, limit: int = 200) -> list[int]:
    """Existing numbers closest to `number`, for did-you-mean suggestions."""
    return [r[0] for r in tx.all(
        "SELECT number FROM model_versions ORDER BY abs(number - ?) LIMIT ?", [number, limit])]


def list_versions(
    tx: Tx,
    *,
    regime: str | None = None,
    trigger: str | None = None,
    runner: str | None = None,
    limit: int | None = 200,
    offset: int = 0,
    newest_first: bool = True,
) -> list[ModelVersion]:
    where, params = _filters(regime=regime, trigger=trigger, runner=runner)
    order = "DESC" if newest_first else "ASC"
    if limit is None:
        sql = f"SELECT {rows.VERSION_COLUMNS} FROM model_versions{where} ORDER BY number {order}"
        return [rows.version(r) for r in tx.all(sql, params)]
    # Pick the page's numbers from one column first, then read only those rows: sorting all
    # 19 columns of every row to keep 200 costs ~3x more at 100,000 versions.
    sql = (
        f"WITH page AS (SELECT number FROM model_versions{where} ORDER BY number {order} "
        "LIMIT ? OFFSET ?) "
        f"SELECT {rows.VERSION_COLUMNS} FROM model_versions "
        f"WHERE number IN (SELECT number FROM page) ORDER BY number {order}"
    )
    return [rows.version(r) for r in tx.all(sql, [*params, limit, offset])]


def count_versions(tx: Tx, *, regime: str | None = None, trigger: str | None = None,
                   runner: str | None = None) -> int:
    where, params = _filters(regime=regime, trigger=trigger, runner=runner)
    return int(tx.scalar(f"SELECT count(*) FROM model_versions{where}", params))


def _filters(**filters: str | None) -> tuple[str, list]:
    clauses, params = [], []
    for column, value in filters.items():
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def ancestry(tx: Tx, number: int, max_depth: int = 1000) -> list[ModelVersion]:
    """The version and its parents, nearest first, in one recursive query."""
    sql = f"""
        WITH RECURSIVE chain(number, depth) AS (
            SELECT number, 0 FROM model_versions WHERE number = ?
            UNION ALL
            SELECT m.parent, c.depth + 1 FROM chain c
            JOIN model_versions m ON m.number = c.number
            WHERE m.parent IS NOT NULL AND c.depth < ?
        )
        SELECT {', '.join('v.' + c.strip() for c in rows.VERSION_COLUMNS.split(','))}
        FROM chain c JOIN model_versions v ON v.number = c.number ORDER BY c.depth
    """
    return [rows.version(r) for r in tx.all(sql, [number, max_depth])]


def edges_of(tx: Tx, nodes: list[str]) -> list[tuple[str, str, str]]:
    if not nodes:
        return []
    marks = ", ".join("?" for _ in nodes)
    return [tuple(r) for r in tx.all(
        f"SELECT child, parent, relation FROM lineage_edges WHERE child IN ({marks}) "
        "ORDER BY child, relation, parent", nodes)]


def version_counts_by_regime(tx: Tx) -> dict[str, int]:
    return dict(tx.all("SELECT regime, count(*) FROM model_versions GROUP BY regime"))


def artifact_refs(tx: Tx) -> list[tuple[int, str, str]]:
    """(version number, artifact path, sha256) for every version."""
    return [tuple(r) for r in tx.all(
        "SELECT number, artifact_path, artifact_sha256 FROM model_versions ORDER BY number")]


def dangling_references(tx: Tx) -> list[str]:
    """Versions whose env, code, parent or data snapshot rows are missing."""
    checks = (
        ("environment", "env_hash", "env_snapshots", "hash"),
        ("code snapshot", "code_hash", "code_snapshots", "hash"),
        ("parent version", "parent", "model_versions", "number"),
        ("train snapshot", "train_snapshot", "data_snapshots", "fingerprint"),
        ("holdout snapshot", "holdout_snapshot", "data_snapshots", "fingerprint"),
    )
    problems = []
    for label, column, table, key in checks:
        for number, value in tx.all(
            f"SELECT m.number, m.{column} FROM model_versions m "
            f"LEFT JOIN {table} t ON t.{key} = m.{column} "
            f"WHERE m.{column} IS NOT NULL AND t.{key} IS NULL"
        ):
            problems.append(f"version v{number}: its {label} {str(value)[:12]} is missing")
    return problems


def store_meta(tx: Tx) -> dict[str, str]:
    return dict(tx.all("SELECT key, value FROM meta"))


def counts(tx: Tx) -> dict[str, int]:
    tables = ("regimes", "model_versions", "env_snapshots", "code_snapshots", "data_snapshots",
              "deployment_events", "audit", "jobs")
    return {t: int(tx.scalar(f"SELECT count(*) FROM {t}")) for t in tables}


def unfinished_jobs(tx: Tx) -> list[tuple[str, str, str, str]]:
    """(job id, regime, runner, state) of jobs not yet in a final state."""
    return [tuple(r) for r in tx.all(
        "SELECT id, regime, runner, state FROM current_jobs "
        "WHERE state IN ('requested', 'created', 'running') ORDER BY created_at")]

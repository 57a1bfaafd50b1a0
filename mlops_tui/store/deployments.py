"""SQL for deployment events (append-only), their current-state view, and the audit log."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from mlops_tui.core.models import AuditEntry, DeploymentEvent, DeploymentKind
from mlops_tui.store import rows
from mlops_tui.store.data_time import event_data_time
from mlops_tui.store.db import Tx, naive_utc, utcnow


def current(tx: Tx, kind: DeploymentKind, subject: str) -> DeploymentEvent | None:
    row = tx.one(
        f"SELECT {rows.EVENT_COLUMNS} FROM current_deployments WHERE kind = ? AND subject = ?",
        [kind.value, subject],
    )
    return rows.event(row) if row else None


def roles_of(tx: Tx, version: int) -> list[tuple[str, str]]:
    """(kind, subject) of every target and regime the version currently serves."""
    return [tuple(r) for r in tx.all(
        "SELECT kind, subject FROM current_deployments WHERE to_version = ? "
        "ORDER BY kind, subject", [version])]


def current_all(tx: Tx) -> list[DeploymentEvent]:
    return [rows.event(r) for r in tx.all(
        f"SELECT {rows.EVENT_COLUMNS} FROM current_deployments ORDER BY kind, subject")]


def append_event(
    tx: Tx,
    *,
    kind: DeploymentKind,
    subject: str,
    from_version: int | None,
    to_version: int,
    action: str,
    actor: str,
    reason: str,
    pinned: bool = False,
    detail: dict[str, Any] | None = None,
    data_time: datetime | None = None,
) -> int:
    seq = int(tx.scalar("SELECT coalesce(max(seq), 0) + 1 FROM deployment_events"))
    tx.execute(
        "INSERT INTO deployment_events (seq, kind, subject, from_version, to_version, action, "
        "actor, reason, occurred_at, pinned, detail, data_time) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [seq, kind.value, subject, from_version, to_version, action, actor, reason, utcnow(),
         pinned, json.dumps(detail or {}, sort_keys=True, default=str),
         event_data_time(tx, data_time)],
    )
    return seq


def history(
    tx: Tx, *, kind: DeploymentKind | None = None, subject: str | None = None,
    limit: int | None = 200,
) -> list[DeploymentEvent]:
    clauses, params = [], []
    if kind is not None:
        clauses.append("kind = ?")
        params.append(kind.value)
    if subject is not None:
        clauses.append("subject = ?")
        params.append(subject)
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    sql = f"SELECT {rows.EVENT_COLUMNS} FROM deployment_events{where} ORDER BY seq DESC"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [rows.event(r) for r in tx.all(sql, params)]


def subjects(tx: Tx, kind: DeploymentKind) -> list[str]:
    return [r[0] for r in tx.all(
        "SELECT DISTINCT subject FROM deployment_events WHERE kind = ? ORDER BY subject",
        [kind.value])]


def append_audit(
    tx: Tx, *, actor: str, action: str, subject: str, detail: dict[str, Any] | None = None,
    event_seq: int | None = None, data_time: datetime | None = None,
) -> int:
    seq = int(tx.scalar("SELECT coalesce(max(seq), 0) + 1 FROM audit"))
    tx.execute(
        "INSERT INTO audit (seq, occurred_at, actor, action, subject, detail, event_seq, "
        "data_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [seq, utcnow(), actor, action, subject,
         json.dumps(detail or {}, sort_keys=True, default=str), event_seq,
         event_data_time(tx, data_time)],
    )
    return seq


def audit_entries(tx: Tx, *, since: datetime | None = None, limit: int | None = 200
                  ) -> list[AuditEntry]:
    params: list[Any] = []
    sql = f"SELECT {rows.AUDIT_COLUMNS} FROM audit"
    if since is not None:
        sql += " WHERE occurred_at >= ?"
        params.append(naive_utc(since))
    sql += " ORDER BY seq DESC"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [rows.audit(r) for r in tx.all(sql, params)]


def events_without_audit(tx: Tx) -> list[int]:
    return [r[0] for r in tx.all(
        "SELECT e.seq FROM deployment_events e LEFT JOIN audit a ON a.event_seq = e.seq "
        "WHERE a.seq IS NULL ORDER BY e.seq")]


def current_missing_versions(tx: Tx) -> list[tuple[str, str, int]]:
    """(kind, subject, version) of current deployments whose version does not exist."""
    return [tuple(r) for r in tx.all(
        "SELECT c.kind, c.subject, c.to_version FROM current_deployments c "
        "LEFT JOIN model_versions m ON m.number = c.to_version WHERE m.number IS NULL")]


# -- deploy, rollback, pins ------------------------------------------------------------------


def latest_event(tx: Tx, kind: DeploymentKind, subject: str) -> DeploymentEvent | None:
    """The subject's newest event as recorded (its own `pinned` flag, not the live pin)."""
    row = tx.one(
        f"SELECT {rows.EVENT_COLUMNS} FROM deployment_events WHERE kind = ? AND subject = ? "
        "ORDER BY seq DESC LIMIT 1", [kind.value, subject])
    return rows.event(row) if row else None


def append_pin_event(
    tx: Tx, *, kind: DeploymentKind, subject: str, event_seq: int, pinned: bool, actor: str,
    reason: str, data_time: datetime | None = None,
) -> int:
    """Pin or unpin a subject as of deployment event `event_seq` (a newer event overrides it)."""
    seq = int(tx.scalar("SELECT coalesce(max(seq), 0) + 1 FROM pin_events"))
    tx.execute(
        "INSERT INTO pin_events (seq, kind, subject, event_seq, pinned, actor, reason, "
        "occurred_at, data_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [seq, kind.value, subject, event_seq, pinned, actor, reason, utcnow(),
         event_data_time(tx, data_time)],
    )
    return seq


def pins(tx: Tx) -> list[tuple[str, str, int, bool, datetime, str, str]]:
    """(kind, subject, version, pinned, since, by, reason) of every subject's live pin state.

    The state comes from the newest pin event when it names the current deployment event
    (`ct resume`), else from the current event's own flag (a manual deploy or rollback).
    """
    found = tx.all("""
        WITH latest AS (
            SELECT * FROM deployment_events
            QUALIFY row_number() OVER (PARTITION BY kind, subject ORDER BY seq DESC) = 1
        ), latest_pin AS (
            SELECT * FROM pin_events
            QUALIFY row_number() OVER (PARTITION BY kind, subject ORDER BY seq DESC) = 1
        )
        SELECT l.kind, l.subject, l.to_version,
               CASE WHEN p.event_seq >= l.seq THEN p.pinned ELSE l.pinned END,
               CASE WHEN p.event_seq >= l.seq THEN p.occurred_at ELSE l.occurred_at END,
               CASE WHEN p.event_seq >= l.seq THEN p.actor ELSE l.actor END,
               CASE WHEN p.event_seq >= l.seq THEN p.reason ELSE l.reason END
        FROM latest l LEFT JOIN latest_pin p ON p.kind = l.kind AND p.subject = l.subject
        ORDER BY l.kind, l.subject""")
    return [(kind, subject, version, pinned, rows.aware(since), by, reason)
            for kind, subject, version, pinned, since, by, reason in found]


def drift_at(tx: Tx) -> dict[str, Any] | None:
    """The newest drift window in the store: the dataset verdict the drift engine recorded
    for it (drift_windows), else the verdict counts of its features (drift_results); None
    when there are no drift results yet. Of a window split at a regime switch, the part
    holding most rows."""
    row = tx.one(
        "SELECT w.regime, w.window_start, w.window_end, w.verdict, w.drift_share "
        "FROM drift_windows w JOIN drift_runs r ON r.run_id = w.run_id "
        "ORDER BY r.computed_at DESC, w.window_end DESC, w.rows DESC, w.regime LIMIT 1")
    if row is not None:
        return {"regime": row[0], "window_start": rows.aware(row[1]),
                "window_end": rows.aware(row[2]), "verdict": row[3], "drift_share": row[4]}
    newest = tx.one(
        "SELECT run_id, regime, window_start, window_end FROM drift_results "
        "ORDER BY computed_at DESC, window_end DESC LIMIT 1")
    if newest is None:
        return None
    counts = tx.all(
        "SELECT verdict, count(*) FROM drift_results "
        "WHERE run_id = ? AND window_start = ? AND window_end = ? GROUP BY verdict ORDER BY verdict",
        [newest[0], newest[2], newest[3]])
    return {"regime": newest[1], "window_start": rows.aware(newest[2]),
            "window_end": rows.aware(newest[3]), "verdicts": dict(counts)}


def env_by_source(tx: Tx, source: str):
    """The newest environment snapshot captured from `source` (e.g. 'image:trainer')."""
    columns = ", ".join(f"e.{c.strip()}" for c in rows.ENV_COLUMNS.split(","))
    row = tx.one(
        f"SELECT {columns} FROM env_captures c JOIN env_snapshots e ON e.hash = c.hash "
        "WHERE c.source = ? ORDER BY c.captured_at DESC LIMIT 1", [source])
    if row is None:  # snapshots first stored under this source
        row = tx.one(
            f"SELECT {rows.ENV_COLUMNS} FROM env_snapshots WHERE source = ? "
            "ORDER BY captured_at DESC LIMIT 1", [source])
    return rows.env(row) if row else None


def served_artifacts(tx: Tx) -> list[tuple[str, str, int, int, str, str, int, str]]:
    """(kind, subject, event seq, version, regime, artifact path, size, sha256) of every
    active version and champion: what the serving folder must link."""
    return [tuple(r) for r in tx.all(
        "SELECT c.kind, c.subject, c.seq, m.number, m.regime, m.artifact_path, "
        "m.artifact_size, m.artifact_sha256 FROM current_deployments c "
        "JOIN model_versions m ON m.number = c.to_version ORDER BY c.kind, c.subject")]


def latest_event_seq(tx: Tx) -> int:
    return int(tx.scalar("SELECT coalesce(max(seq), 0) FROM deployment_events"))


# -- garbage collection ----------------------------------------------------------------------


def protected_versions(tx: Tx) -> set[int]:
    """Every version that serves, is a champion, or could be rolled back to: anything named
    by a deployment event, plus the parent an unfinished job will be compared with."""
    served = {r[0] for r in tx.all(
        "SELECT to_version FROM deployment_events UNION "
        "SELECT from_version FROM deployment_events WHERE from_version IS NOT NULL")}
    parents = {r[0] for r in tx.all(
        "SELECT DISTINCT TRY_CAST(json_extract_string(spec, '$.parent') AS INTEGER) AS parent "
        "FROM current_jobs WHERE state IN ('requested', 'created', 'running')") if r[0] is not None}
    return served | parents


def collected(tx: Tx) -> dict[int, tuple[str, datetime]]:
    """version number -> (artifact sha256, when) for versions whose weights were collected."""
    return {r[0]: (r[1], rows.aware(r[2])) for r in tx.all(
        "SELECT number, artifact_sha256, collected_at FROM collected_versions ORDER BY number")}


def is_collected(tx: Tx, number: int) -> datetime | None:
    value = tx.scalar("SELECT collected_at FROM collected_versions WHERE number = ?", [number])
    return rows.aware(value) if value is not None else None


def gc_candidates(tx: Tx, keep_per_regime: int) -> list[tuple[int, str, str, str, int]]:
    """(number, regime, artifact path, sha256, size) of versions beyond the newest
    `keep_per_regime` of their regime that are neither protected nor collected yet."""
    return [tuple(r) for r in tx.all(
        """SELECT number, regime, artifact_path, artifact_sha256, artifact_size FROM (
               SELECT *, row_number() OVER (PARTITION BY regime ORDER BY number DESC) AS rank
               FROM model_versions)
           WHERE rank > ? AND number NOT IN (SELECT number FROM collected_versions)
           ORDER BY number""", [keep_per_regime])]


def mark_collected(tx: Tx, number: int, sha256: str, actor: str, reason: str) -> None:
    tx.execute("INSERT INTO collected_versions VALUES (?, ?, ?, ?, ?)",
               [number, sha256, actor, reason, utcnow()])


def artifact_states(tx: Tx) -> list[tuple[int, str, str, int, bool]]:
    """(number, artifact path, sha256, size, collected) of every version."""
    return [tuple(r) for r in tx.all(
        "SELECT m.number, m.artifact_path, m.artifact_sha256, m.artifact_size, "
        "c.number IS NOT NULL FROM model_versions m "
        "LEFT JOIN collected_versions c ON c.number = m.number ORDER BY m.number")]


def collected_but_protected(tx: Tx) -> list[int]:
    """Versions whose weights were collected although a deployment event names them."""
    return [r[0] for r in tx.all(
        "SELECT c.number FROM collected_versions c WHERE c.number IN ("
        "SELECT to_version FROM deployment_events UNION "
        "SELECT from_version FROM deployment_events WHERE from_version IS NOT NULL) "
        "ORDER BY c.number")]


def finished_jobs_before(tx: Tx, before: datetime) -> list[tuple[str, str, datetime, int | None]]:
    """(job id, final state, since, version it registered) of jobs that ended before `before`."""
    return [(r[0], r[1], rows.aware(r[2]), r[3]) for r in tx.all(
        "SELECT j.id, j.state, j.state_at, m.number FROM current_jobs j "
        "LEFT JOIN model_versions m ON m.job_id = j.id "
        "WHERE j.state IN ('failed', 'lost', 'cancelled', 'ingested', 'rejected') "
        "AND j.state_at < ? ORDER BY j.state_at", [naive_utc(before)])]

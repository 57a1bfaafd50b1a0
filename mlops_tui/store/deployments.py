"""SQL for deployment events (append-only), their current-state view, and the audit log."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from mlops_tui.core.models import AuditEntry, DeploymentEvent, DeploymentKind
from mlops_tui.store import rows
from mlops_tui.store.db import Tx, utcnow


def current(tx: Tx, kind: DeploymentKind, subject: str) -> DeploymentEvent | None:
    row = tx.one(
        f"SELECT {rows.EVENT_COLUMNS} FROM current_deployments WHERE kind = ? AND subject = ?",
        [kind.value, subject],
    )
    return rows.event(row) if row else None


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
) -> int:
    seq = int(tx.scalar("SELECT coalesce(max(seq), 0) + 1 FROM deployment_events"))
    tx.execute(
        "INSERT INTO deployment_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [seq, kind.value, subject, from_version, to_version, action, actor, reason, utcnow(),
         pinned, json.dumps(detail or {}, sort_keys=True, default=str)],
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
    event_seq: int | None = None,
) -> int:
    seq = int(tx.scalar("SELECT coalesce(max(seq), 0) + 1 FROM audit"))
    tx.execute(
        "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?)",
        [seq, utcnow(), actor, action, subject,
         json.dumps(detail or {}, sort_keys=True, default=str), event_seq],
    )
    return seq


def audit_entries(tx: Tx, *, since: datetime | None = None, limit: int | None = 200
                  ) -> list[AuditEntry]:
    params: list[Any] = []
    sql = f"SELECT {rows.AUDIT_COLUMNS} FROM audit"
    if since is not None:
        sql += " WHERE occurred_at >= ?"
        params.append(since.replace(tzinfo=None))
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

"""SQL for jobs and their append-only state events."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from mlops_tui.core.models import JobRecord, JobState
from mlops_tui.store.data_time import event_data_time
from mlops_tui.store.db import Tx, utcnow
from mlops_tui.store.rows import aware

JOB_COLUMNS = "id, regime, runner, created_at, state, state_at, reason, spec, data_time"


def _job(row: tuple) -> JobRecord:
    return JobRecord(id=row[0], regime=row[1], runner=row[2], created_at=aware(row[3]),
                     state=JobState(row[4]), state_at=aware(row[5]), reason=row[6],
                     spec=json.loads(row[7]), data_time=aware(row[8]))


def insert_job(tx: Tx, *, job_id: str, regime: str, runner: str, spec: dict[str, Any],
               data_time: datetime | None = None) -> None:
    tx.execute("INSERT INTO jobs VALUES (?, ?, ?, ?, ?)",
               [job_id, regime, runner, utcnow(), json.dumps(spec, sort_keys=True)])
    append_event(tx, job_id, JobState.REQUESTED, data_time=data_time)


def update_spec(tx: Tx, job_id: str, spec: dict[str, Any]) -> None:
    tx.execute("UPDATE jobs SET spec = ? WHERE id = ?", [json.dumps(spec, sort_keys=True), job_id])


def append_event(tx: Tx, job_id: str, state: JobState, reason: str = "",
                 detail: dict[str, Any] | None = None, data_time: datetime | None = None) -> None:
    seq = int(tx.scalar("SELECT coalesce(max(seq), 0) + 1 FROM job_events"))
    tx.execute("INSERT INTO job_events (seq, job_id, state, occurred_at, reason, detail, "
               "data_time) VALUES (?, ?, ?, ?, ?, ?, ?)",
               [seq, job_id, state.value, utcnow(), reason,
                json.dumps(detail or {}, sort_keys=True, default=str),
                event_data_time(tx, data_time)])


def get_job(tx: Tx, job_id: str) -> JobRecord | None:
    row = tx.one(f"SELECT {JOB_COLUMNS} FROM current_jobs WHERE id = ?", [job_id])
    return _job(row) if row else None


def find_jobs(tx: Tx, prefix: str) -> list[JobRecord]:
    return [_job(r) for r in tx.all(
        f"SELECT {JOB_COLUMNS} FROM current_jobs WHERE starts_with(id, ?) ORDER BY created_at",
        [prefix])]


def list_jobs(tx: Tx, *, unfinished_only: bool = False, regime: str | None = None,
              limit: int | None = 200) -> list[JobRecord]:
    clauses, params = [], []
    if unfinished_only:
        clauses.append("state IN ('requested', 'created', 'running')")
    if regime is not None:
        clauses.append("regime = ?")
        params.append(regime)
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    sql = f"SELECT {JOB_COLUMNS} FROM current_jobs{where} ORDER BY created_at DESC"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [_job(r) for r in tx.all(sql, params)]


def job_events(tx: Tx, job_id: str) -> list[tuple[str, Any, str]]:
    return [(r[0], aware(r[1]), r[2]) for r in tx.all(
        "SELECT state, occurred_at, reason FROM job_events WHERE job_id = ? ORDER BY seq",
        [job_id])]


def version_for_job(tx: Tx, job_id: str) -> int | None:
    return tx.scalar("SELECT number FROM model_versions WHERE job_id = ?", [job_id])

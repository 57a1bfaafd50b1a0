"""Jobs: following runners to their end, and ingesting verified results exactly once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mlops_tui.core.errors import ConflictError, IntegrityError, UsageError
from mlops_tui.core.models import (
    JOB_TRANSITIONS,
    DataSnapshot,
    JobRecord,
    JobState,
    ModelVersion,
    Trigger,
)
from mlops_tui.core.names import not_found
from mlops_tui.runners import local as local_runner
from mlops_tui.runners.base import JobHandle, JobStatus, log_tail
from mlops_tui.services.registry import Registration, env_from_capture, register_version
from mlops_tui.services.workspace import Workspace
from mlops_tui.store import Tx, jobs as job_sql
from mlops_tui.training.contract import RESULT_FILE, validate_result


def job_dir(workspace: Workspace, job_id: str) -> Path:
    return workspace.jobs_root / job_id


def transition(tx: Tx, job: JobRecord, state: JobState, reason: str = "",
               detail: dict | None = None) -> None:
    """Append a state event if the state machine allows it (else it is a conflict)."""
    if state not in JOB_TRANSITIONS.get(job.state, frozenset()):
        raise ConflictError(f"job {job.short_id} is {job.state.value}; cannot become {state.value}")
    job_sql.append_event(tx, job.id, state, reason, detail)


def require_job(tx: Tx, job_id: str) -> JobRecord:
    """A job by full id or unique prefix (at least 4 characters)."""
    if len(job_id) < 4 or not all(c in "0123456789abcdef-" for c in job_id.lower()):
        raise UsageError(f"invalid job id {job_id[:40]!r}: give at least 4 hex characters")
    matches = job_sql.find_jobs(tx, job_id.lower())
    if not matches:
        known = [j.id[:8] for j in job_sql.list_jobs(tx, limit=50)]
        raise not_found("job", job_id, known)
    if len(matches) > 1:
        raise UsageError(f"job id {job_id!r} is ambiguous: {', '.join(j.short_id for j in matches)}")
    return matches[0]


def get_job(workspace: Workspace, job_id: str) -> JobRecord:
    with workspace.store.read() as tx:
        return require_job(tx, job_id)


def list_jobs(workspace: Workspace, *, unfinished_only: bool = False, regime: str | None = None,
              limit: int | None = 200) -> list[JobRecord]:
    with workspace.store.read() as tx:
        return job_sql.list_jobs(tx, unfinished_only=unfinished_only, regime=regime, limit=limit)


def handle_for(workspace: Workspace, job: JobRecord) -> JobHandle:
    directory = job_dir(workspace, job.id)
    if job.runner == "docker":
        from mlops_tui.runners import docker as docker_runner

        return docker_runner.attach(job.id, directory, workspace.config.runner)
    return local_runner.attach(job.id, directory)


@dataclass(frozen=True)
class JobOutcome:
    job: JobRecord
    version: ModelVersion | None = None
    message: str = ""


def record_status(workspace: Workspace, job: JobRecord, status: JobStatus) -> JobRecord:
    """Write the runner's final status for a running job (no-op while it runs)."""
    if not status.finished:
        return job
    state = JobState(status.state)
    detail = {"log_tail": log_tail(job_dir(workspace, job.id))} if state is not JobState.SUCCEEDED else {}
    with workspace.store.write("job-finish") as tx:
        current = job_sql.get_job(tx, job.id)
        if current is None or not current.state.unfinished:
            return current or job  # another process recorded it first
        if current.state is not JobState.RUNNING and state is JobState.SUCCEEDED:
            transition(tx, current, JobState.RUNNING)
            current = job_sql.get_job(tx, job.id)
        transition(tx, current, state, status.reason, detail)
        return job_sql.get_job(tx, job.id)


def ingest_result(workspace: Workspace, job: JobRecord) -> JobOutcome:
    """Verify result.json and the artifact, then register the version and mark the job
    ingested in the same transaction; on any problem mark it rejected and register nothing."""
    directory = job_dir(workspace, job.id)
    try:
        document = json.loads((directory / RESULT_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return _reject(workspace, job, "result.json is missing")
    except (ValueError, UnicodeDecodeError) as error:
        return _reject(workspace, job, f"result.json is not valid JSON: {error}")
    problems = validate_result(document, job.id)
    if problems:
        return _reject(workspace, job, "result.json is malformed: " + "; ".join(problems[:5]))
    spec = job.spec
    artifact_file = directory / document["artifact"]["file"]
    if not artifact_file.is_file():
        return _reject(workspace, job, f"artifact {artifact_file.name} is missing")
    metrics = dict(document["metrics"])
    try:
        metrics |= _parent_scores(workspace, spec, document)
    except IntegrityError:
        pass  # the parent cannot be loaded here (e.g. its artifact is damaged): no comparison
    snapshots = spec.get("snapshots", {})

    def snapshot(kind: str) -> DataSnapshot | None:
        data = snapshots.get(kind)
        if not data:
            return None
        return DataSnapshot(
            fingerprint=data["fingerprint"], kind=kind, rows=data["rows"],
            regime=spec["regime"], path=data["path"],
            time_min=datetime.fromisoformat(data["time_min"]) if data.get("time_min") else None,
            time_max=datetime.fromisoformat(data["time_max"]) if data.get("time_max") else None,
        )

    environment = env_from_capture(
        document["environment"], source=f"job:{job.id}" if job.runner == "local"
        else f"image:{spec.get('image') or '?'}")
    registration = Registration(
        regime=spec["regime"], artifact_file=artifact_file,
        code_dir=directory / spec.get("pipeline_dir", "pipeline"),
        environment=environment, metrics=metrics,
        trigger=Trigger(spec.get("trigger", "manual")), runner=job.runner,
        image=spec.get("image_id"), job_id=job.id, train=snapshot("train"),
        holdout=snapshot("holdout"), artifact_sha256=document["artifact"]["sha256"],
        parent=spec.get("parent"),
    )

    def mark_ingested(tx: Tx, version: ModelVersion) -> None:
        current = job_sql.get_job(tx, job.id)
        transition(tx, current, JobState.INGESTED, f"registered {version.id}",
                   {"version": version.id})

    try:
        version = register_version(workspace, registration, also=mark_ingested,
                                   once_per_job=True)
    except IntegrityError as error:
        return _reject(workspace, job, error.message)
    except ConflictError as error:  # another process ingested it first
        return JobOutcome(get_job(workspace, job.id), None, error.message)
    with workspace.store.read() as tx:
        final = job_sql.get_job(tx, job.id)
    return JobOutcome(final, version, f"job {job.short_id} registered {version.id}")


def _parent_scores(workspace: Workspace, spec: dict, document: dict) -> dict[str, float]:
    """Score the parent (the regime's champion when the job was requested) on the same
    holdout, so the candidate and the serving version are compared like for like."""
    parent = spec.get("parent")
    holdout = spec.get("snapshots", {}).get("holdout")
    if parent is None or not holdout:
        return {}
    import pandas as pd

    from mlops_tui.services.registry import load_estimator, require_version
    from mlops_tui.store import registry as registry_sql
    from mlops_tui.training.harness import score

    with workspace.store.read() as tx:
        version = require_version(tx, f"v{parent}")
        env = registry_sql.get_env(tx, version.env_hash)
    estimator = load_estimator(workspace, version, env, allow_version_mismatch=True)
    frame = pd.read_parquet(workspace.root / holdout["path"])
    features = list(spec["features_numeric"]) + list(spec["features_categorical"])
    try:
        scores = score(list(document["metrics"]), frame[spec["label"]],
                       estimator.predict(frame[features]))
    except Exception:  # noqa: BLE001 - a parent that cannot score gets no comparison
        return {}
    return {f"parent_{name}": value for name, value in scores.items()}


def _reject(workspace: Workspace, job: JobRecord, reason: str) -> JobOutcome:
    with workspace.store.write("job-reject") as tx:
        current = job_sql.get_job(tx, job.id)
        if current.state is JobState.SUCCEEDED:
            transition(tx, current, JobState.REJECTED, reason[:500])
        final = job_sql.get_job(tx, job.id)
    return JobOutcome(final, None, f"job {job.short_id} rejected: {reason}")


def follow_to_end(workspace: Workspace, job: JobRecord, status: JobStatus) -> JobOutcome:
    """Record a finished status and, for a success, ingest the result."""
    job = record_status(workspace, job, status)
    if job.state is JobState.SUCCEEDED:
        return ingest_result(workspace, job)
    message = f"job {job.short_id} {job.state.value}" + (f": {job.reason}" if job.reason else "")
    return JobOutcome(job, None, message)


def reconcile(workspace: Workspace) -> list[JobOutcome]:
    """Follow every unfinished job to its true state; ingest finished results once."""
    outcomes = []
    with workspace.store.read() as tx:
        pending = job_sql.list_jobs(tx, unfinished_only=True, limit=None)
        succeeded = [j for j in job_sql.list_jobs(tx, limit=None) if j.state is JobState.SUCCEEDED]
    for job in pending:
        if job.state is JobState.REQUESTED and not job_dir(workspace, job.id).exists():
            age = datetime.now(UTC) - job.state_at
            if age.total_seconds() < 60:
                continue  # its launcher is still preparing it
            status = JobStatus("lost", "the launcher stopped before the job was created")
        else:
            status = handle_for(workspace, job).status()
        if status.finished:
            outcomes.append(follow_to_end(workspace, job, status))
    for job in succeeded:
        outcomes.append(ingest_result(workspace, job))
    if workspace.config.runner.kind in ("docker", "auto"):
        outcomes.extend(_reconcile_containers(workspace))
    return outcomes


def _reconcile_containers(workspace: Workspace) -> list[JobOutcome]:
    try:
        from mlops_tui.runners import docker as docker_runner
    except ImportError:
        return []
    reconcile_orphans = getattr(docker_runner, "reconcile_orphans", None)
    return reconcile_orphans(workspace) if reconcile_orphans else []


def cancel_job(workspace: Workspace, job_id: str) -> JobRecord:
    with workspace.store.read() as tx:
        job = require_job(tx, job_id)
    if not job.state.unfinished:
        raise ConflictError(f"job {job.short_id} is already {job.state.value}")
    handle_for(workspace, job).cancel()
    with workspace.store.write("job-cancel") as tx:
        current = job_sql.get_job(tx, job.id)
        if current.state.unfinished:
            transition(tx, current, JobState.CANCELLED, "cancelled by an operator")
        return job_sql.get_job(tx, job.id)


def job_events(workspace: Workspace, job_id: str) -> tuple[JobRecord, list]:
    with workspace.store.read() as tx:
        job = require_job(tx, job_id)
        return job, job_sql.job_events(tx, job.id)


def log_path(workspace: Workspace, job: JobRecord) -> Path:
    from mlops_tui.training.contract import LOG_FILE

    return job_dir(workspace, job.id) / LOG_FILE

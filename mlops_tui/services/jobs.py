"""Jobs: following runners to their end, and ingesting verified results exactly once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mlops_tui.core.errors import ConflictError, IntegrityError, UnavailableError, UsageError
from mlops_tui.core.models import (
    JOB_TRANSITIONS,
    JobRecord,
    JobState,
    ModelVersion,
    Trigger,
)
from mlops_tui.core.names import not_found
from mlops_tui.runners import local as local_runner
from mlops_tui.runners.base import RUNNER_FILE, JobHandle, JobStatus, log_tail
from mlops_tui.runners.folder import JobFolder
from mlops_tui.services.registry import Registration, env_from_capture, register_version
from mlops_tui.services.workspace import Workspace
from mlops_tui.store import Tx
from mlops_tui.store import jobs as job_sql


def job_dir(workspace: Workspace, job_id: str) -> Path:
    return workspace.jobs_root / job_id


def transition(tx: Tx, job: JobRecord, state: JobState, reason: str = "",
               detail: dict | None = None, data_time: datetime | None = None) -> None:
    """Append a state event if the state machine allows it (else it is a conflict). Its data
    time is `data_time`, else the newest observation in the store."""
    if state not in JOB_TRANSITIONS.get(job.state, frozenset()):
        raise ConflictError(f"job {job.short_id} is {job.state.value}; cannot become {state.value}")
    job_sql.append_event(tx, job.id, state, reason, detail, data_time=data_time)


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
    """Check the job's output (`job_results`), then register the version and mark the job
    ingested in the same transaction; on any problem mark it rejected, with one audit row,
    and register nothing."""
    from mlops_tui.services import job_results

    try:
        checked = job_results.read_result(workspace, job, JobFolder(job_dir(workspace, job.id)))
    except job_results.RejectedResult as rejected:
        return _reject(workspace, job, rejected.reason)
    spec, document = job.spec, checked.document
    metrics = dict(checked.metrics)
    try:
        metrics |= _parent_scores(workspace, spec)
    except (IntegrityError, job_results.RejectedResult):
        pass  # the parent cannot be loaded here (e.g. its artifact is damaged): no comparison
    environment = env_from_capture(
        document["environment"], source=f"job:{job.id}" if job.runner == "local"
        else f"image:{spec.get('image') or '?'}")
    registration = Registration(
        regime=spec["regime"], artifact_file=None, artifact_bytes=checked.artifact_bytes,
        code_dir=None, code=checked.code,
        environment=environment, metrics=metrics,
        trigger=Trigger(spec.get("trigger", "manual")), runner=job.runner,
        image=spec.get("image_id"), job_id=job.id,
        train=job_results.data_snapshot(spec, "train"),
        holdout=job_results.data_snapshot(spec, "holdout"),
        artifact_sha256=document["artifact"]["sha256"],
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
    except ConflictError:  # another process ingested it first
        return _registered_outcome(workspace, job.id)
    with workspace.store.read() as tx:
        final = job_sql.get_job(tx, job.id)
    return JobOutcome(final, version, f"job {job.short_id} registered {version.id}")


def _parent_scores(workspace: Workspace, spec: dict) -> dict[str, float]:
    """Score the parent (the regime's champion when the job was requested) on the same
    holdout, so the candidate and the serving version are compared like for like."""
    from mlops_tui.services import job_results
    from mlops_tui.services.registry import load_estimator, require_version
    from mlops_tui.store import registry as registry_sql

    parent = spec.get("parent")
    if parent is None or not spec.get("snapshots", {}).get("holdout"):
        return {}
    with workspace.store.read() as tx:
        version = require_version(tx, f"v{parent}")
        env = registry_sql.get_env(tx, version.env_hash)
    estimator = load_estimator(workspace, version, env, allow_version_mismatch=True)
    frame = job_results.holdout_frame(workspace, spec)
    names = [m for m in [spec.get("metric"), *spec.get("extra_metrics", [])] if m]
    try:
        scores = job_results.score_on_holdout(estimator, frame, spec,
                                              list(dict.fromkeys(names)))
    except Exception:  # noqa: BLE001 - a parent that cannot score gets no comparison
        return {}
    return {f"parent_{name}": value for name, value in scores.items()}


def _reject(workspace: Workspace, job: JobRecord, reason: str) -> JobOutcome:
    """Mark the job rejected and write its one audit row, in one transaction."""
    from mlops_tui.services.actor import current_actor
    from mlops_tui.store import deployments as deployment_sql

    with workspace.store.write("job-reject") as tx:
        current = job_sql.get_job(tx, job.id)
        if current.state is JobState.SUCCEEDED:
            transition(tx, current, JobState.REJECTED, reason[:500])
            deployment_sql.append_audit(
                tx, actor=current_actor(), action="reject", subject=f"job:{job.id}",
                detail={"regime": job.regime, "reason": reason[:500], "runner": job.runner})
        final = job_sql.get_job(tx, job.id)
    return JobOutcome(final, None, f"job {job.short_id} rejected: {reason}")


def _registered_outcome(workspace: Workspace, job_id: str) -> JobOutcome:
    """The outcome of a job whose result another process has already ingested."""
    from mlops_tui.store import registry as registry_sql

    with workspace.store.read() as tx:
        job = job_sql.get_job(tx, job_id)
        number = job_sql.version_for_job(tx, job_id)
        version = registry_sql.get_version(tx, number) if number is not None else None
    if version is None:
        return JobOutcome(job, None, f"job {job.short_id} {job.state.value}: {job.reason}")
    return JobOutcome(job, version, f"job {job.short_id} registered {version.id} "
                                    "(ingested by another process)")


def release_runner(workspace: Workspace, job: JobRecord | None) -> None:
    """Remove a job's container once the job is final: its result ingested (or rejected), or
    a failure, loss or cancel recorded. Never earlier."""
    if job is None or job.runner != "docker" or not job.state.final:
        return
    from mlops_tui.runners import docker as docker_runner

    try:
        docker_runner.remove_job_container(job.id)
    except UnavailableError:
        pass  # the engine is away: a later reconcile removes it


def follow_to_end(workspace: Workspace, job: JobRecord, status: JobStatus) -> JobOutcome:
    """Record a finished status and, for a success, ingest the result; then release the
    job's container."""
    outcome = _follow_to_end(workspace, job, status)
    release_runner(workspace, outcome.job)
    return outcome


def _follow_to_end(workspace: Workspace, job: JobRecord, status: JobStatus) -> JobOutcome:
    job = record_status(workspace, job, status)
    if job.state is JobState.SUCCEEDED:
        return ingest_result(workspace, job)
    if job.state is JobState.INGESTED:  # another process followed it to the end first
        return _registered_outcome(workspace, job.id)
    message = f"job {job.short_id} {job.state.value}" + (f": {job.reason}" if job.reason else "")
    return JobOutcome(job, None, message)


def reconcile(workspace: Workspace) -> list[JobOutcome]:
    """Follow every unfinished job to its true state; ingest finished results once."""
    outcomes = []
    with workspace.store.read() as tx:
        pending = job_sql.list_jobs(tx, unfinished_only=True, limit=None)
        every_job = job_sql.list_jobs(tx, limit=None)
        succeeded = [j for j in every_job if j.state is JobState.SUCCEEDED]
    for job in pending:
        try:
            outcome = _reconcile_one(workspace, job)
        except ConflictError as error:  # another process moved it on meanwhile
            outcome = JobOutcome(get_job(workspace, job.id), None, error.message)
        except UnavailableError as error:  # e.g. its Docker engine is down: try next time
            outcome = JobOutcome(job, None, f"job {job.short_id}: cannot follow it now: "
                                            f"{error.message}")
        if outcome is not None:
            outcomes.append(outcome)
    for job in succeeded:
        outcome = ingest_result(workspace, job)
        release_runner(workspace, outcome.job)
        outcomes.append(outcome)
    if workspace.config.runner.kind in ("docker", "auto") or any(
            j.runner == "docker" for j in every_job):
        outcomes.extend(_reconcile_containers(workspace))
    return outcomes


PREPARING_GRACE_SECONDS = 600  # a launcher on another host gets this long to start a job


def _reconcile_one(workspace: Workspace, job: JobRecord) -> JobOutcome | None:
    """Move one unfinished job to its true state; None while nothing changed."""
    started = JobFolder(job_dir(workspace, job.id)).has_host_file(RUNNER_FILE)
    if job.state is not JobState.RUNNING and not started:
        # Still being prepared (snapshots exported, runner starting) unless its launcher died.
        alive = local_runner.launcher_alive(job.spec.get("launcher"))
        age = (datetime.now(UTC) - job.state_at).total_seconds()
        if alive or (alive is None and age < PREPARING_GRACE_SECONDS):
            return None
        status = JobStatus("failed", f"its launcher stopped before the job started "
                                     f"(while {job.state.value})")
    else:
        status = handle_for(workspace, job).status()
    if not status.finished:
        if job.state is JobState.CREATED:  # its launcher died between start and record
            with workspace.store.write("job-running") as tx:
                current = job_sql.get_job(tx, job.id)
                if current.state is JobState.CREATED:
                    transition(tx, current, JobState.RUNNING, "followed by reconcile")
        return None
    return follow_to_end(workspace, job, status)


def _reconcile_containers(workspace: Workspace) -> list[JobOutcome]:
    """Remove containers carrying this store's label that no unfinished job follows: those of
    final jobs (their removal was interrupted) and those of jobs this store does not know.
    Containers of unfinished jobs are adopted by `_reconcile_one` (followed to the end)."""
    from mlops_tui.runners import docker as docker_runner
    from mlops_tui.store import registry as registry_sql

    with workspace.store.read() as tx:
        store_id = registry_sql.store_meta(tx).get("store_id", "")
    try:
        containers = docker_runner.job_containers(store_id)
    except UnavailableError:
        return []  # no engine now: nothing to clean, and jobs were followed above
    outcomes = []
    for container in containers:
        with workspace.store.read() as tx:
            job = job_sql.get_job(tx, container.job_id) if container.job_id else None
        if job is not None and not job.state.final:
            continue  # unfinished, or succeeded and not yet ingested: keep it
        if not docker_runner.remove_job_container(container.job_id):
            continue
        if job is None:
            now = datetime.now(UTC)
            job = JobRecord(id=container.job_id, regime=container.regime, runner="docker",
                            created_at=now, state=JobState.LOST, state_at=now,
                            reason="unknown to this store")
            message = (f"removed orphan container {container.name} ({container.state}): "
                       "this store has no such job")
        else:
            message = (f"removed container {container.name} of job {job.short_id} "
                       f"({job.state.value})")
        outcomes.append(JobOutcome(job, None, message))
    return outcomes


def cancel_job(workspace: Workspace, job_id: str) -> JobRecord:
    with workspace.store.read() as tx:
        job = require_job(tx, job_id)
    if not job.state.unfinished:
        raise ConflictError(f"job {job.short_id} is already {job.state.value}")
    handle = handle_for(workspace, job)
    if job.state is JobState.RUNNING:
        status = handle.status()
        if status.finished:  # it ended before the cancel: record how, stop nothing
            outcome = follow_to_end(workspace, job, status)
            raise ConflictError(f"job {job.short_id} had already ended; {outcome.message}",
                                detail={"state": outcome.job.state.value})
    handle.cancel()
    with workspace.store.write("job-cancel") as tx:
        current = job_sql.get_job(tx, job.id)
        if current.state.unfinished:
            transition(tx, current, JobState.CANCELLED, "cancelled by an operator")
        cancelled = job_sql.get_job(tx, job.id)
    release_runner(workspace, cancelled)
    return cancelled


def job_events(workspace: Workspace, job_id: str) -> tuple[JobRecord, list]:
    with workspace.store.read() as tx:
        job = require_job(tx, job_id)
        return job, job_sql.job_events(tx, job.id)


def read_log(workspace: Workspace, job: JobRecord, position: int = 0) -> tuple[bytes, str]:
    """(new bytes of the job's log from `position`, or b"", and a note when the log is
    refused). The log lives in the job's work folder: read without following links."""
    from mlops_tui.runners.folder import UntrustedFileError
    from mlops_tui.training.contract import LOG_FILE

    try:
        return JobFolder(job_dir(workspace, job.id)).read_from(LOG_FILE, position), ""
    except FileNotFoundError:
        return b"", ""
    except UntrustedFileError as error:
        return b"", error.message


def log_size(workspace: Workspace, job: JobRecord) -> int:
    """The job log's size in bytes (0 when absent or refused)."""
    from mlops_tui.runners.folder import UntrustedFileError
    from mlops_tui.training.contract import LOG_FILE

    try:
        entry = JobFolder(job_dir(workspace, job.id)).entry(LOG_FILE)
    except UntrustedFileError:
        return 0
    return entry.st_size if entry is not None else 0


def read_log_tail(workspace: Workspace, job: JobRecord, max_bytes: int) -> tuple[str, int]:
    """(the log's last `max_bytes` as text, its size); a refused log gives its reason."""
    from mlops_tui.runners.folder import UntrustedFileError
    from mlops_tui.training.contract import LOG_FILE

    try:
        data, size = JobFolder(job_dir(workspace, job.id)).tail_bytes(LOG_FILE, max_bytes)
    except FileNotFoundError:
        return "", 0
    except UntrustedFileError as error:
        return f"({error.message})", 0
    return data.decode(errors="replace"), size


def read_runner_log(workspace: Workspace, job: JobRecord) -> str:
    """The launcher's own lines for a job (image build, container start and end)."""
    from mlops_tui.runners.folder import HOST_LOG_FILE

    try:
        data = JobFolder(job_dir(workspace, job.id)).read(HOST_LOG_FILE, 1 << 20, host=True)
    except (OSError, IntegrityError):
        return ""
    return data.decode(errors="replace")

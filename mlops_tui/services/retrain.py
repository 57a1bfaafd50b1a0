"""The host side of a retrain: export snapshots, write the job spec, hand it to a runner."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mlops_tui.artifacts import code as code_snapshots
from mlops_tui.artifacts.blobs import file_sha256
from mlops_tui.core.errors import ConflictError, UsageError
from mlops_tui.core.models import DeploymentKind, JobRecord, JobState, Trigger
from mlops_tui.core.names import not_found, validate_name
from mlops_tui.runners import local as local_runner
from mlops_tui.runners.base import JobHandle, wait_for
from mlops_tui.runners.folder import JobFolder
from mlops_tui.services import jobs as job_service
from mlops_tui.services.workspace import Workspace
from mlops_tui.store import deployments as deployment_sql
from mlops_tui.store import exports as export_sql
from mlops_tui.store import jobs as job_sql
from mlops_tui.store import labels as label_sql
from mlops_tui.store import observations as observation_sql
from mlops_tui.store import registry as registry_sql
from mlops_tui.training.contract import METRICS, SPEC_FILE, SPEC_SCHEMA

Progress = Callable[[str], None]


def pipeline_dir(workspace: Workspace) -> Path:
    configured = Path(workspace.config.pipeline.path).expanduser()
    return configured if configured.is_absolute() else workspace.root / configured


def check_pipeline(directory: Path) -> None:
    """A pipeline is a directory with train.py (entry point) and requirements.txt (pins)."""
    if not directory.is_dir():
        raise UsageError(f"pipeline directory {directory} does not exist ([pipeline] path)")
    for name, what in (("train.py", "entry point train(frame, params)"),
                       ("requirements.txt", "dependency pins")):
        if not (directory / name).is_file():
            raise UsageError(f"pipeline {directory} has no {name} ({what})")
    if "def train(" not in (directory / "train.py").read_text(encoding="utf-8", errors="replace"):
        raise UsageError(f"{directory / 'train.py'} defines no train(frame, params) function")


@dataclass(frozen=True)
class RetrainRequest:
    regime: str
    since: datetime | None = None
    until: datetime | None = None
    runner: str | None = None  # None: the workspace's configured runner
    trigger: Trigger = Trigger.MANUAL
    reason: str = ""
    data_time: datetime | None = None  # the job's data time (default: the newest observation)


@dataclass(frozen=True)
class StartedJob:
    job: JobRecord
    handle: JobHandle
    runner: str
    runner_note: str = ""


def choose_runner(workspace: Workspace, requested: str | None) -> tuple[str, str]:
    """(runner, note). `auto` takes Docker when an engine answers, else the local runner."""
    kind = requested or workspace.config.runner.kind
    if kind not in ("local", "docker", "auto"):
        raise UsageError(f"unknown runner {kind[:20]!r}: local, docker or auto")
    if kind != "auto":
        return kind, ""
    try:
        from mlops_tui.runners import docker as docker_runner

        if docker_runner.engine_available():
            return "docker", "runner auto: a Docker engine answers, using docker"
    except ImportError:
        pass
    return "local", "runner auto: no Docker engine answers, using local"


def start_retrain(workspace: Workspace, request: RetrainRequest,
                  progress: Progress | None = None) -> StartedJob:
    """Request, prepare and launch a retrain job; return without waiting for it."""
    say = progress or (lambda message: None)
    regime = validate_name(request.regime, "regime")
    if request.data_time is not None:  # refused before anything is written
        from mlops_tui.services.deployments import checked_data_time

        with workspace.store.read() as tx:
            checked_data_time(tx, request.data_time)
    contract = workspace.config.data
    if not contract.label_column:
        raise UsageError(f"{workspace.config_path}: [data] label_column is needed to train")
    if workspace.config.pipeline.metric not in METRICS:
        raise UsageError(f"[pipeline] metric must be one of {', '.join(METRICS)}")
    source_dir = pipeline_dir(workspace)
    check_pipeline(source_dir)
    runner, note = choose_runner(workspace, request.runner)
    if note:
        say(note)
    if runner == "docker":  # engine and base image, before any job exists (else exit 6)
        from mlops_tui.services.images import preflight

        preflight(workspace)
    job_id = str(uuid.uuid4())
    with workspace.store.write("retrain-request") as tx:
        known = registry_sql.regime_names(tx)
        if regime not in known:
            raise not_found("regime", regime, known)
        running = job_sql.list_jobs(tx, unfinished_only=True, regime=regime, limit=1)
        if running:
            raise ConflictError(
                f"a retrain for regime {regime} is already {running[0].state.value}: job "
                f"{running[0].id} (wait for it or 'mlops-tui jobs cancel {running[0].short_id}')",
                detail={"job": running[0].id})
        files = [workspace.root / p for p in observation_sql.batch_paths(tx)]
        champion = deployment_sql.current(tx, DeploymentKind.CHAMPION, regime)
        spec = {
            "schema": SPEC_SCHEMA, "job_id": job_id, "regime": regime,
            "trigger": request.trigger.value, "reason": request.reason,
            "label": contract.label_column, "features_numeric": list(contract.numeric),
            "features_categorical": list(contract.categorical),
            "metric": workspace.config.pipeline.metric,
            "extra_metrics": _extra_metrics(workspace.config.pipeline.metric),
            "pipeline_dir": "pipeline", "parent": champion.to_version if champion else None,
            "since": request.since.isoformat() if request.since else None,
            "until": request.until.isoformat() if request.until else None,
            # lets reconcile tell a job still being prepared from one whose launcher died
            "launcher": local_runner.launcher_identity(),
        }
        job_sql.insert_job(tx, job_id=job_id, regime=regime, runner=runner, spec=spec,
                           data_time=request.data_time)
    handle: JobHandle | None = None
    try:
        if not files:
            raise UsageError("no observations ingested yet: run 'mlops-tui ingest FILE' first")
        say(f"job {job_id[:8]}: exporting regime {regime} snapshots")
        directory = job_service.job_dir(workspace, job_id)
        directory.mkdir(parents=True)
        folder = JobFolder(directory)
        spec["snapshots"] = _export_snapshots(workspace, files, request, regime, directory)
        spec["code"] = _prepare_input(workspace, source_dir, folder, spec)
        folder.work_dir.mkdir()
        with workspace.store.write("job-created") as tx:
            job_sql.update_spec(tx, job_id, spec)
            job_service.transition(tx, job_sql.get_job(tx, job_id), JobState.CREATED,
                                   data_time=request.data_time)
        say(f"job {job_id[:8]}: starting on the {runner} runner")
        handle = _launch(workspace, runner, job_id, directory, spec, say)
        with workspace.store.write("job-running") as tx:
            job_sql.update_spec(tx, job_id, spec)
            current = job_sql.get_job(tx, job_id)
            if current.state is JobState.CREATED:
                job_service.transition(tx, current, JobState.RUNNING, detail=handle.detail())
            job = job_sql.get_job(tx, job_id)
        if job.state is JobState.CANCELLED:  # cancelled while it was being started
            handle.cancel()
            raise ConflictError(f"job {job.short_id} was cancelled while it started")
    except BaseException as error:
        if handle is None:  # once launched, the job is followed by reconcile instead
            reason = getattr(error, "message", None) or f"{type(error).__name__}: {error}"
            _fail_unstarted(workspace, job_id, reason)
        raise
    return StartedJob(job, handle, runner, note)


def _extra_metrics(metric: str) -> list[str]:
    from mlops_tui.training.contract import CLASSIFICATION_METRICS, REGRESSION_METRICS

    family = REGRESSION_METRICS if metric in REGRESSION_METRICS else CLASSIFICATION_METRICS
    return [m for m in family if m != metric]


def _export_snapshots(workspace: Workspace, files: list[Path], request: RetrainRequest,
                      regime: str, directory: Path) -> dict:
    staging = directory / "staging"
    staging.mkdir()
    try:
        return _export_staged(workspace, files, request, regime, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # a failed export leaves no empty files


def _export_staged(workspace: Workspace, files: list[Path], request: RetrainRequest,
                   regime: str, staging: Path) -> dict:
    with workspace.store.read() as tx:  # late labels (`mlops-tui labels ingest`) join on the id
        labels = [workspace.root / p for p in label_sql.label_paths(tx)]
    split = export_sql.export_split(
        files, workspace.config.data, regime=regime, since=request.since, until=request.until,
        holdout_share=workspace.config.pipeline.holdout_share,
        train_path=staging / "train.parquet", holdout_path=staging / "holdout.parquet",
        label_files=labels)
    if split.train_rows == 0 or split.holdout_rows == 0:
        raise UsageError(
            f"regime {regime} has {split.train_rows + split.holdout_rows} labelled rows in the "
            "chosen range: nothing to train on")
    snapshots_root = workspace.data_root / "snapshots"
    snapshots_root.mkdir(parents=True, exist_ok=True)
    result = {}
    for kind, rows in (("train", split.train_rows), ("holdout", split.holdout_rows)):
        staged = staging / f"{kind}.parquet"
        fingerprint, _ = file_sha256(staged)
        target = snapshots_root / f"{fingerprint}.parquet"
        if target.exists():
            staged.unlink()
        else:
            os.chmod(staged, 0o444)
            os.replace(staged, target)
        result[kind] = {
            "fingerprint": fingerprint, "rows": rows,
            "path": target.relative_to(workspace.root).as_posix(),
            "time_min": split.time_min.isoformat() if split.time_min else None,
            "time_max": split.time_max.isoformat() if split.time_max else None,
        }
    return result


def _prepare_input(workspace: Workspace, source: Path, folder: JobFolder, spec: dict) -> dict:
    """Snapshot the pipeline's code now, before the job runs (the job may change its copy),
    and give the job exactly that snapshot, with its spec, in input/."""
    code = code_snapshots.snapshot(workspace.code_root, source)
    folder.input_dir.mkdir()
    code_snapshots.restore(workspace.code_root, code, folder.input_dir / spec["pipeline_dir"])
    (folder.input_dir / SPEC_FILE).write_text(json.dumps(spec, indent=2, sort_keys=True))
    return code_snapshots.snapshot_document(code)


def _launch(workspace: Workspace, runner: str, job_id: str, directory: Path,
            spec: dict, say: Progress | None = None) -> JobHandle:
    snapshots = spec["snapshots"]
    train = workspace.root / snapshots["train"]["path"]
    holdout = workspace.root / snapshots["holdout"]["path"]
    if runner == "docker":
        from mlops_tui.runners import docker as docker_runner
        from mlops_tui.services.images import ensure_trainer_image, log_into

        # The image is built from the job's copy of the pipeline (the code that is recorded);
        # its id goes into the spec, and from there into the version's lineage.
        image = ensure_trainer_image(workspace, JobFolder(directory).input_dir
                                     / spec["pipeline_dir"], progress=say,
                                     log=log_into(directory))
        with workspace.store.read() as tx:
            spec["store_id"] = registry_sql.store_meta(tx).get("store_id", "")
        spec["image"], spec["image_id"] = image.tag, image.id
        return docker_runner.start(workspace, job_id, directory, train, holdout, spec)
    return local_runner.start(job_id, directory, train, holdout)


def _fail_unstarted(workspace: Workspace, job_id: str, reason: str) -> None:
    with workspace.store.write("job-failed") as tx:
        job = job_sql.get_job(tx, job_id)
        if job is not None and job.state.unfinished:
            job_service.transition(tx, job, JobState.FAILED, reason[:500])


def retrain_and_wait(workspace: Workspace, request: RetrainRequest,
                     progress: Progress | None = None, timeout: float | None = None
                     ) -> job_service.JobOutcome:
    """Start a retrain, follow it to the end, ingest its result."""
    started = start_retrain(workspace, request, progress)
    status = wait_for(started.handle, timeout=timeout)
    if not status.finished:
        return job_service.JobOutcome(started.job, None, f"job {started.job.short_id} still running")
    return job_service.follow_to_end(workspace, started.job, status)

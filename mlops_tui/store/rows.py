"""Rows become domain objects here, and only here."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from mlops_tui.core.models import (
    ArtifactRef,
    AuditEntry,
    CodeFile,
    CodeSnapshot,
    DataSnapshot,
    DeploymentEvent,
    DeploymentKind,
    EnvSnapshot,
    ModelVersion,
    Trigger,
)

VERSION_COLUMNS = (
    "number, regime, created_at, artifact_sha256, artifact_size, artifact_path, "
    "artifact_format, env_hash, code_hash, train_snapshot, holdout_snapshot, metrics, parent, "
    "trigger, runner, image, job_id, required_packages, note"
)
EVENT_COLUMNS = (
    "seq, kind, subject, from_version, to_version, action, actor, reason, occurred_at, pinned, "
    "data_time"
)
AUDIT_COLUMNS = "seq, occurred_at, actor, action, subject, detail, event_seq, data_time"
ENV_COLUMNS = "hash, python_version, implementation, platform, packages, source, captured_at"
DATA_COLUMNS = "fingerprint, kind, rows, regime, time_min, time_max, path"


def aware(value: datetime | None) -> datetime | None:
    """The store keeps naive UTC; the domain uses aware datetimes."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def version(row: tuple) -> ModelVersion:
    return ModelVersion(
        number=row[0],
        regime=row[1],
        created_at=aware(row[2]),
        artifact=ArtifactRef(sha256=row[3], size=row[4], path=row[5], format=row[6]),
        env_hash=row[7],
        code_hash=row[8],
        train_snapshot=row[9],
        holdout_snapshot=row[10],
        metrics=json.loads(row[11]),
        parent=row[12],
        trigger=Trigger(row[13]),
        runner=row[14],
        image=row[15],
        job_id=row[16],
        required_packages=tuple(json.loads(row[17])),
        note=row[18],
    )


def event(row: tuple) -> DeploymentEvent:
    return DeploymentEvent(
        seq=row[0], kind=DeploymentKind(row[1]), subject=row[2], from_version=row[3],
        to_version=row[4], action=row[5], actor=row[6], reason=row[7], at=aware(row[8]),
        pinned=row[9], data_time=aware(row[10]),
    )


def audit(row: tuple) -> AuditEntry:
    return AuditEntry(
        seq=row[0], at=aware(row[1]), actor=row[2], action=row[3], subject=row[4],
        detail=json.loads(row[5]), event_seq=row[6], data_time=aware(row[7]),
    )


def env(row: tuple) -> EnvSnapshot:
    return EnvSnapshot(
        hash=row[0], python_version=row[1], implementation=row[2], platform=row[3],
        packages=json.loads(row[4]), source=row[5], captured_at=aware(row[6]),
    )


def code(row: tuple) -> CodeSnapshot:
    files = tuple(CodeFile(**entry) for entry in json.loads(row[1]))
    return CodeSnapshot(hash=row[0], files=files, git_commit=row[2], git_dirty=row[3])


def data(row: tuple) -> DataSnapshot:
    return DataSnapshot(
        fingerprint=row[0], kind=row[1], rows=row[2], regime=row[3],
        time_min=aware(row[4]), time_max=aware(row[5]), path=row[6],
    )

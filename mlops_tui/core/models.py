"""Domain values: frozen dataclasses shared by services, CLI and TUI."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from mlops_tui.core.names import format_version_id


class Trigger(StrEnum):
    MANUAL = "manual"
    DRIFT = "drift"
    REGIME_NEW = "regime-new"
    CODE_CHANGE = "code-change"
    DEPENDENCY_CHANGE = "dependency-change"
    SCHEDULE = "schedule"


class DeploymentKind(StrEnum):
    ACTIVE = "active"  # subject is a serving target
    CHAMPION = "champion"  # subject is a regime


@dataclass(frozen=True)
class EnvSnapshot:
    """Python, platform and the full installed distribution list, identified by a hash."""

    hash: str
    python_version: str
    implementation: str
    platform: str
    packages: dict[str, str]
    source: str = "host"
    captured_at: datetime | None = None

    def summary(self) -> str:
        return f"{self.implementation} {self.python_version}, {len(self.packages)} packages"


@dataclass(frozen=True)
class CodeFile:
    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class CodeSnapshot:
    """A pipeline's source files by content hash; the snapshot hash covers the manifest."""

    hash: str
    files: tuple[CodeFile, ...]
    git_commit: str | None = None
    git_dirty: bool | None = None


@dataclass(frozen=True)
class ArtifactRef:
    """Weights file inside the workspace's content-addressed artifact store."""

    sha256: str
    size: int
    path: str  # relative to the workspace
    format: str = "skops"


@dataclass(frozen=True)
class DataSnapshot:
    """An exported, immutable slice of data (train, holdout) identified by its fingerprint."""

    fingerprint: str
    kind: str
    rows: int
    regime: str | None
    time_min: datetime | None
    time_max: datetime | None
    path: str | None = None


@dataclass(frozen=True)
class ModelVersion:
    """An immutable registered model: code + weights + environment + data."""

    number: int
    regime: str
    created_at: datetime
    artifact: ArtifactRef
    env_hash: str
    code_hash: str
    train_snapshot: str | None
    holdout_snapshot: str | None
    metrics: dict[str, float]
    parent: int | None
    trigger: Trigger
    runner: str
    image: str | None = None
    job_id: str | None = None
    required_packages: tuple[str, ...] = ()
    note: str = ""

    @property
    def id(self) -> str:
        return format_version_id(self.number)

    @property
    def parent_id(self) -> str | None:
        return format_version_id(self.parent) if self.parent is not None else None


@dataclass(frozen=True)
class DeploymentEvent:
    """One change of a target's active version or a regime's champion (append-only)."""

    seq: int
    kind: DeploymentKind
    subject: str
    from_version: int | None
    to_version: int
    action: str
    actor: str
    reason: str
    at: datetime  # recorded at (wall clock)
    pinned: bool = False
    data_time: datetime | None = None  # the newest observation time it acted on

    @property
    def timeline_at(self) -> datetime:
        """Where the event sits on the data's time axis (the wall clock for old rows)."""
        return self.data_time or self.at


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any] = field(default_factory=dict)
    event_seq: int | None = None
    data_time: datetime | None = None


@dataclass(frozen=True)
class ServingState:
    """Current active versions per target and champions per regime."""

    active: dict[str, DeploymentEvent]
    champions: dict[str, DeploymentEvent]


class JobState(StrEnum):
    REQUESTED = "requested"
    CREATED = "created"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    LOST = "lost"
    CANCELLED = "cancelled"
    INGESTED = "ingested"
    REJECTED = "rejected"

    @property
    def unfinished(self) -> bool:
        return self in (JobState.REQUESTED, JobState.CREATED, JobState.RUNNING)

    @property
    def final(self) -> bool:
        return self in (JobState.FAILED, JobState.LOST, JobState.CANCELLED,
                        JobState.INGESTED, JobState.REJECTED)


# Allowed transitions of the job state machine (docs/architecture.md, "Jobs").
JOB_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.REQUESTED: frozenset({JobState.CREATED, JobState.FAILED, JobState.CANCELLED}),
    JobState.CREATED: frozenset({JobState.RUNNING, JobState.FAILED, JobState.CANCELLED,
                                 JobState.LOST}),
    JobState.RUNNING: frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.LOST,
                                 JobState.CANCELLED}),
    JobState.SUCCEEDED: frozenset({JobState.INGESTED, JobState.REJECTED}),
}


@dataclass(frozen=True)
class JobRecord:
    id: str
    regime: str
    runner: str
    created_at: datetime
    state: JobState
    state_at: datetime
    reason: str
    spec: dict[str, Any] = field(default_factory=dict)
    data_time: datetime | None = None  # of its latest state event

    @property
    def short_id(self) -> str:
        return self.id[:8]

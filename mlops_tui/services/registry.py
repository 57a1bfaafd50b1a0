"""Registering, listing and looking up model versions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mlops_tui.artifacts import blobs, weights
from mlops_tui.artifacts import code as code_snapshots
from mlops_tui.core.errors import ConflictError, IntegrityError, UsageError
from mlops_tui.core.fingerprint import environment_hash
from mlops_tui.core.models import (
    ArtifactRef,
    CodeSnapshot,
    DataSnapshot,
    DeploymentKind,
    EnvSnapshot,
    ModelVersion,
    Trigger,
)
from mlops_tui.core.names import format_version_id, not_found, parse_version_id, validate_name
from mlops_tui.services.actor import current_actor
from mlops_tui.services.workspace import Workspace
from mlops_tui.store import Tx
from mlops_tui.store import deployments as deployment_sql
from mlops_tui.store import jobs as job_sql
from mlops_tui.store import registry as registry_sql
from mlops_tui.training.environment import module_distributions

AUTO = "auto"


def env_from_capture(captured: dict, source: str, captured_at: datetime | None = None
                     ) -> EnvSnapshot:
    """An EnvSnapshot from the dict `training.environment.capture()` returns."""
    try:
        python_version = str(captured["python_version"])
        implementation = str(captured["implementation"])
        platform = str(captured["platform"])
        packages = {str(k): str(v) for k, v in dict(captured["packages"]).items()}
    except (KeyError, TypeError, ValueError) as error:
        raise IntegrityError(f"environment snapshot is malformed: missing {error}") from None
    return EnvSnapshot(
        hash=environment_hash(python_version, implementation, platform, packages),
        python_version=python_version, implementation=implementation, platform=platform,
        packages=packages, source=source, captured_at=captured_at or datetime.now(UTC),
    )


@dataclass(frozen=True)
class Registration:
    """Everything a new version is made of. The artifact file is copied, never moved; or
    the artifact's verified bytes and an already-stored code snapshot are given (a job's
    result, whose folder is not trusted)."""

    regime: str
    artifact_file: Path | None
    code_dir: Path | None
    environment: EnvSnapshot
    metrics: dict[str, float] = field(default_factory=dict)
    trigger: Trigger = Trigger.MANUAL
    runner: str = "local"
    image: str | None = None
    job_id: str | None = None
    train: DataSnapshot | None = None
    holdout: DataSnapshot | None = None
    artifact_sha256: str | None = None  # verified when given
    parent: int | None | str = AUTO  # AUTO: the regime's champion at registration time
    note: str = ""
    artifact_bytes: bytes | None = None  # instead of artifact_file
    code: CodeSnapshot | None = None  # instead of code_dir: stored already, verified here


def required_packages(artifact_bytes: bytes) -> tuple[str, ...]:
    """Distributions whose modules the artifact's schema names, plus skops to read it."""
    modules = weights.artifact_modules(artifact_bytes)
    names = {"skops"}
    for module, distributions in module_distributions(modules).items():
        names.update(distributions or [module])
    return tuple(sorted(names))


def register_version(
    workspace: Workspace,
    registration: Registration,
    *,
    also: Callable[[Tx, ModelVersion], None] | None = None,
    once_per_job: bool = False,
) -> ModelVersion:
    """Store the artifact and code, then record the version and its lineage in one transaction.

    `also` runs inside that transaction (e.g. marking the job ingested). With
    `once_per_job`, a job that already registered a version is refused (ConflictError).
    """
    regime = validate_name(registration.regime, "regime")
    if registration.artifact_bytes is not None:
        artifact_bytes = registration.artifact_bytes
        sha256, artifact_path = blobs.put_verified_bytes(
            workspace.artifacts_root, artifact_bytes, weights.SUFFIX,
            expected_sha256=registration.artifact_sha256)
    else:
        sha256, artifact_path = blobs.put_file(
            workspace.artifacts_root, registration.artifact_file, weights.SUFFIX,
            expected_sha256=registration.artifact_sha256,
        )
        artifact_bytes = artifact_path.read_bytes()
    needed = required_packages(artifact_bytes)
    if registration.code is not None:
        code = registration.code
        problems = code_snapshots.verify_snapshot(workspace.code_root, code)
        if problems:
            raise IntegrityError(problems[0], detail={"problems": problems})
    else:
        code = code_snapshots.snapshot(workspace.code_root, registration.code_dir)
    from mlops_tui.services.drift import profile_snapshot  # numpy: only when registering
    from mlops_tui.store import drift as drift_sql

    profile = profile_snapshot(workspace, registration.train)  # the version's drift reference
    env = registration.environment
    artifact = ArtifactRef(
        sha256=sha256, size=len(artifact_bytes),
        path=artifact_path.relative_to(workspace.root).as_posix(), format=weights.FORMAT,
    )
    with workspace.store.write("register") as tx:
        if once_per_job and registration.job_id:
            existing = job_sql.version_for_job(tx, registration.job_id)
            if existing is not None:
                raise ConflictError(
                    f"job {registration.job_id[:8]} already registered v{existing}")
        registry_sql.ensure_regime(tx, regime)
        registry_sql.put_env(tx, env)
        registry_sql.put_code(tx, code)
        for snapshot in (registration.train, registration.holdout):
            if snapshot is not None:
                registry_sql.put_data_snapshot(tx, snapshot)
        if profile is not None:
            drift_sql.put_profile(tx, profile)
        parent = registration.parent
        if parent == AUTO:
            champion = deployment_sql.current(tx, DeploymentKind.CHAMPION, regime)
            parent = champion.to_version if champion else None
        version = ModelVersion(
            number=registry_sql.next_version_number(tx),
            regime=regime,
            created_at=datetime.now(UTC),
            artifact=artifact,
            env_hash=env.hash,
            code_hash=code.hash,
            train_snapshot=registration.train.fingerprint if registration.train else None,
            holdout_snapshot=registration.holdout.fingerprint if registration.holdout else None,
            metrics=dict(registration.metrics),
            parent=parent,  # type: ignore[arg-type]
            trigger=registration.trigger,
            runner=registration.runner,
            image=registration.image,
            job_id=registration.job_id,
            required_packages=needed,
            note=registration.note,
        )
        registry_sql.insert_version(tx, version)
        registry_sql.add_edges(tx, lineage_edges(version))
        deployment_sql.append_audit(
            tx, actor=current_actor(), action="register", subject=version.id,
            detail={"regime": regime, "trigger": version.trigger.value,
                    "artifact": sha256, "runner": version.runner, "job": version.job_id},
        )
        if also is not None:
            also(tx, version)
    return version


def lineage_edges(version: ModelVersion) -> list[tuple[str, str, str]]:
    node = f"version:{version.id}"
    edges = [(node, f"code:{version.code_hash}", "code"),
             (node, f"weights:{version.artifact.sha256}", "weights"),
             (node, f"environment:{version.env_hash}", "environment")]
    if version.train_snapshot:
        edges.append((node, f"data:{version.train_snapshot}", "train"))
    if version.holdout_snapshot:
        edges.append((node, f"data:{version.holdout_snapshot}", "holdout"))
    if version.parent is not None:
        edges.append((node, f"version:{format_version_id(version.parent)}", "parent"))
    if version.image:
        edges.append((node, f"image:{version.image}", "image"))
    if version.job_id:
        edges.append((node, f"job:{version.job_id}", "job"))
    return edges


def require_version(tx: Tx, version_id: str) -> ModelVersion:
    """The version named `version_id`, or a NotFoundError with did-you-mean."""
    number = parse_version_id(version_id)
    version = registry_sql.get_version(tx, number)
    if version is None:
        near = [format_version_id(n) for n in registry_sql.version_numbers_near(tx, number)]
        raise not_found("version", version_id, near)
    return version


@dataclass(frozen=True)
class VersionDetail:
    version: ModelVersion
    env: EnvSnapshot | None
    code: CodeSnapshot | None
    train: DataSnapshot | None
    holdout: DataSnapshot | None
    champion_of: tuple[str, ...]
    active_on: tuple[str, ...]


def show_version(workspace: Workspace, version_id: str) -> VersionDetail:
    with workspace.store.read() as tx:
        version = require_version(tx, version_id)
        roles = deployment_sql.roles_of(tx, version.number)
        snapshots = registry_sql.data_snapshots(
            tx, [f for f in (version.train_snapshot, version.holdout_snapshot) if f])
        return VersionDetail(
            version=version,
            env=registry_sql.get_env(tx, version.env_hash),
            code=registry_sql.get_code(tx, version.code_hash),
            train=snapshots.get(version.train_snapshot or ""),
            holdout=snapshots.get(version.holdout_snapshot or ""),
            champion_of=tuple(s for k, s in roles if k == DeploymentKind.CHAMPION.value),
            active_on=tuple(s for k, s in roles if k == DeploymentKind.ACTIVE.value),
        )


@dataclass(frozen=True)
class VersionPage:
    versions: list[ModelVersion]
    total: int
    offset: int


def list_versions(
    workspace: Workspace, *, regime: str | None = None, trigger: str | None = None,
    runner: str | None = None, limit: int | None = 200, offset: int = 0,
    newest_first: bool = True,
) -> VersionPage:
    if regime is not None:
        validate_name(regime, "regime")
    if trigger is not None and trigger not in {t.value for t in Trigger}:
        raise UsageError(
            f"unknown trigger {trigger[:40]!r}: one of {', '.join(t.value for t in Trigger)}")
    with workspace.store.read() as tx:
        versions = registry_sql.list_versions(
            tx, regime=regime, trigger=trigger, runner=runner, limit=limit, offset=offset,
            newest_first=newest_first)
        total = registry_sql.count_versions(tx, regime=regime, trigger=trigger, runner=runner)
    return VersionPage(versions=versions, total=total, offset=offset)


def load_estimator(workspace: Workspace, version: ModelVersion, env: EnvSnapshot | None,
                   *, allow_version_mismatch: bool | None = None):
    """Load a version's weights through the verified path (hash, trusted types, versions)."""
    path = blobs.resolve_inside(workspace.root, version.artifact.path)
    if workspace.artifacts_root.resolve() not in path.parents:
        raise IntegrityError(f"artifact path {version.artifact.path!r} is outside artifacts/")
    allow = (workspace.config.artifacts.allow_version_mismatch
             if allow_version_mismatch is None else allow_version_mismatch)
    return weights.load(
        path, version.artifact.sha256,
        extra_trusted=workspace.config.artifacts.trusted_types,
        recorded_sklearn=env.packages.get("scikit-learn") if env else None,
        allow_version_mismatch=allow,
    )

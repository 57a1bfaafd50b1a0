"""Store upkeep: migrate, verify invariants (and repair the derived serving folder), back up."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mlops_tui.artifacts import blobs
from mlops_tui.artifacts import code as code_snapshots
from mlops_tui.core.errors import IntegrityError, MlopsError
from mlops_tui.services.workspace import Workspace
from mlops_tui.store import deployments as deployment_sql
from mlops_tui.store import registry as registry_sql


@dataclass(frozen=True)
class VerifyReport:
    problems: list[str]
    checked: dict[str, int]
    repaired: list[str] = field(default_factory=list)  # derived state rebuilt from the store

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_store(workspace: Workspace) -> VerifyReport:
    """Check every invariant; collect all problems rather than stopping at the first."""
    problems: list[str] = []
    with workspace.store.read() as tx:
        for kind, subject, number in deployment_sql.current_missing_versions(tx):
            what = "target" if kind == "active" else "champion of regime"
            problems.append(f"{what} {subject}: version v{number} does not exist")
        for seq in deployment_sql.events_without_audit(tx):
            problems.append(f"deployment event {seq} has no audit row")
        problems.extend(registry_sql.dangling_references(tx))
        for number in deployment_sql.collected_but_protected(tx):
            problems.append(f"version v{number}: its weights were collected although a "
                            "deployment event names it")
        collected = deployment_sql.collected(tx)
        artifacts = registry_sql.artifact_refs(tx)
        codes = registry_sql.all_code(tx)
        counts = registry_sql.counts(tx)
    seen: set[str] = set()
    for number, relative, sha256 in artifacts:
        if number in collected or sha256 in seen:  # `models gc` removed collected weights
            continue
        seen.add(sha256)
        try:
            path = blobs.resolve_inside(workspace.root, relative)
            blobs.verify(path, sha256)
        except IntegrityError as error:
            problems.append(f"version v{number}: artifact {error.message}")
    for code in codes:
        problems.extend(code_snapshots.verify_snapshot(workspace.code_root, code))
    checked = {"versions": counts["model_versions"], "artifacts": len(seen),
               "code_snapshots": len(codes), "deployment_events": counts["deployment_events"]}
    serving_problems, repaired = check_serving(workspace)
    return VerifyReport(problems=problems + serving_problems, checked=checked,
                        repaired=repaired)


def check_serving(workspace: Workspace) -> tuple[list[str], list[str]]:
    """(problems, repairs): the serving folder must match the store. It is derived from
    the store, so a mismatch a crash left behind is repaired here, not just reported."""
    from mlops_tui.services import serving

    try:
        found = serving.inspect(workspace)
        if not found:
            return [], []
        result = serving.sync(workspace, unit="verify")
    except (MlopsError, OSError) as error:
        text = getattr(error, "message", None) or str(error)
        return [f"serving folder does not match the store and cannot be repaired: {text}"], []
    left = serving.inspect(workspace)
    repaired = [f"serving folder: {problem}" for problem in found]
    return [f"serving folder: {p}" for p in list(result.problems) + left], repaired


def migrate_store(workspace: Workspace) -> tuple[int, int]:
    return workspace.store.migrate()


def backup_store(workspace: Workspace, destination: Path) -> Path:
    destination = destination.expanduser().absolute()
    workspace.store.backup(destination)
    return destination


def as_disk_full(error: BaseException) -> MlopsError | None:
    """A full disk that reached the CLI unclassified (a plain write of a file): exit 6 naming
    the folder and the file, instead of an internal error."""
    from mlops_tui.store import space

    if not space.is_disk_full(error):
        return None
    written = space.written_file(error)
    return space.disk_full(written.parent if written else None,
                           writing=written.name if written else "")

"""Store upkeep: migrate, verify invariants, back up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlops_tui.artifacts import blobs, code as code_snapshots
from mlops_tui.core.errors import IntegrityError
from mlops_tui.services.workspace import Workspace
from mlops_tui.store import deployments as deployment_sql, registry as registry_sql


@dataclass(frozen=True)
class VerifyReport:
    problems: list[str]
    checked: dict[str, int]

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
        artifacts = registry_sql.artifact_refs(tx)
        codes = registry_sql.all_code(tx)
        counts = registry_sql.counts(tx)
    seen: set[str] = set()
    for number, relative, sha256 in artifacts:
        if sha256 in seen:
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
    return VerifyReport(problems=problems, checked=checked)


def migrate_store(workspace: Workspace) -> tuple[int, int]:
    return workspace.store.migrate()


def backup_store(workspace: Workspace, destination: Path) -> Path:
    destination = destination.expanduser().absolute()
    workspace.store.backup(destination)
    return destination

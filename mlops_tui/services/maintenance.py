"""Store upkeep: migrate, verify invariants (repairing the derived serving folder, and with
`--repair` removing leftovers), back up."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mlops_tui.artifacts import blobs
from mlops_tui.artifacts import code as code_snapshots
from mlops_tui.core.errors import IntegrityError, MlopsError
from mlops_tui.services.actor import current_actor
from mlops_tui.services.workspace import Workspace
from mlops_tui.store import deployments as deployment_sql
from mlops_tui.store import registry as registry_sql


@dataclass(frozen=True)
class VerifyReport:
    problems: list[str]
    checked: dict[str, int]
    repaired: list[str] = field(default_factory=list)  # derived state rebuilt from the store
    warnings: list[str] = field(default_factory=list)  # leftovers: not integrity failures
    leftovers: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def invariant_problems(workspace: Workspace) -> tuple[list[str], dict[str, int]]:
    """(problems, what was checked): every invariant and every artifact and code hash.
    Reads only; collects all problems rather than stopping at the first."""
    records, files, checked = check_invariants(workspace)
    return records + files, checked


def check_invariants(workspace: Workspace) -> tuple[list[str], list[str], dict[str, int]]:
    """(problems of the records, problems of the files they name, what was checked)."""
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
    files: list[str] = []
    seen: set[str] = set()
    for number, relative, sha256 in artifacts:
        if number in collected or sha256 in seen:  # `models gc` removed collected weights
            continue
        seen.add(sha256)
        try:
            path = blobs.resolve_inside(workspace.root, relative)
            blobs.verify(path, sha256)
        except IntegrityError as error:
            files.append(f"version v{number}: artifact {error.message}")
    for code in codes:
        files.extend(code_snapshots.verify_snapshot(workspace.code_root, code))
    checked = {"versions": counts["model_versions"], "artifacts": len(seen),
               "code_snapshots": len(codes), "deployment_events": counts["deployment_events"]}
    return problems, files, checked


def verify_store(workspace: Workspace, *, repair: bool = False) -> VerifyReport:
    """Check every invariant, rebuild a serving folder a crash left behind, and report
    leftovers as warnings; with `repair`, remove the leftovers too (under the write lock)."""
    from mlops_tui.services import leftovers

    problems, checked = invariant_problems(workspace)
    serving_problems, repaired = check_serving(workspace)
    found = leftovers.find(workspace)
    if repair and found:
        with workspace.store.write("verify-repair") as tx:
            gone = leftovers.remove(workspace, leftovers.find(workspace, tx),
                                    include_manual=True)
            if gone:
                deployment_sql.append_audit(
                    tx, actor=current_actor(), action="store-repair", subject="leftovers",
                    detail={"removed": [g.path for g in gone]})
        # the write unit's own upkeep may have taken some first: judge by what is left
        removed = [f for f in found if not (workspace.root / f.path).exists()]
        repaired += [f"removed {f.text}" for f in removed]
        found = [f for f in found if f not in removed]
    return VerifyReport(problems=problems + serving_problems, checked=checked,
                        repaired=repaired, warnings=[f.text for f in found],
                        leftovers=[f.document() for f in found])


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

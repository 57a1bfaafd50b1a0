"""The serving folder: `serving/current`, a symlink to an immutable generation folder.

A generation (`serving/generations/g<N>`, N = the newest deployment event it reflects) holds
a link to the verified weights of each target's active version (`targets/<target>.skops`)
and of each regime's champion (`champions/<regime>.skops`), plus `manifest.json`. It is
built under a temporary name and renamed into place; only then is `current` swapped, by
making a symlink under a temporary name and `os.replace`-ing it over `current`. A serving
process follows deployments by resolving `current` and reading its manifest.

The store is the truth and this folder is derived from it. Every sync reads the store while
it holds the serving lock, so a slower process can never put back an older state; and the
same sync repairs whatever a crash left behind (`store verify`, `serving reconcile`, and the
next write unit of any command: services/upkeep.py). Reads only compare:
services/serving_check.py.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import secrets
import shutil
import signal
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_tui.artifacts import blobs
from mlops_tui.core.errors import IntegrityError, StoreBusyError
from mlops_tui.core.models import DeploymentKind
from mlops_tui.core.names import format_version_id
from mlops_tui.store import Tx
from mlops_tui.store import deployments as deployment_sql
from mlops_tui.store.db import FAULT_ENV

if TYPE_CHECKING:  # annotations only: workspace imports these lazily
    from mlops_tui.services.workspace import Workspace

MANIFEST_SCHEMA = 1
CURRENT = "current"
GENERATIONS = "generations"
MANIFEST = "manifest.json"
LOCK = ".lock"
KEEP_GENERATIONS = 5  # older ones go, so a reader that just resolved `current` still finds it
FAULT_POINTS = ("generation_built", "link_staged")  # test-only, like the store's
ROLE_DIRS = {DeploymentKind.ACTIVE: "targets", DeploymentKind.CHAMPION: "champions"}


@dataclass(frozen=True)
class ServedEntry:
    """One link the folder must hold: a target's active version or a regime's champion."""

    kind: DeploymentKind
    subject: str
    event_seq: int
    version: int
    regime: str
    artifact_path: str  # relative to the workspace
    size: int
    sha256: str

    @property
    def file(self) -> str:
        return f"{ROLE_DIRS[self.kind]}/{self.subject}.skops"

    def document(self) -> dict[str, Any]:
        return {"version": format_version_id(self.version), "regime": self.regime,
                "sha256": self.sha256, "size": self.size, "file": self.file,
                "event_seq": self.event_seq}


@dataclass(frozen=True)
class ServingPlan:
    """What the store says the folder must hold, as of deployment event `generation`."""

    generation: int
    entries: tuple[ServedEntry, ...]

    def sections(self) -> dict[str, dict[str, dict[str, Any]]]:
        sections: dict[str, dict[str, dict[str, Any]]] = {"targets": {}, "champions": {}}
        for entry in self.entries:
            sections[ROLE_DIRS[entry.kind]][entry.subject] = entry.document()
        return sections


@dataclass(frozen=True)
class SyncResult:
    generation: int | None  # None: nothing is deployed, so there is no `current`
    changed: bool
    path: Path | None
    problems: tuple[str, ...] = ()  # entries that could not be linked (failed verification)
    message: str = ""


def _fault(point: str, unit: str) -> None:
    """Test-only: SIGKILL this process at `point` when MLOPS_TUI_FAULT names it."""
    wanted = os.environ.get(FAULT_ENV)
    if not wanted:
        return
    name, _, only_unit = wanted.partition("@")
    if name == point and (not only_unit or only_unit == unit):
        os.kill(os.getpid(), signal.SIGKILL)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _serving_lock(workspace: Workspace) -> Iterator[None]:
    """Exclusive flock on serving/.lock: one process builds and swaps at a time."""
    root = workspace.serving_root
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + workspace.store.lock_timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreBusyError(
                        f"serving folder {root} is busy (another process is publishing); "
                        f"gave up after {workspace.store.lock_timeout:g}s") from None
                time.sleep(random.uniform(0.002, 0.02))
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def plan_from_store(workspace: Workspace) -> ServingPlan:
    with workspace.store.read() as tx:
        return plan_in(tx)


def plan_in(tx: Tx) -> ServingPlan:
    """The plan as of an open transaction (a read that also needs other store data)."""
    generation = deployment_sql.latest_event_seq(tx)
    rows = deployment_sql.served_artifacts(tx)
    entries = tuple(
        ServedEntry(kind=DeploymentKind(kind), subject=subject, event_seq=seq, version=number,
                    regime=regime, artifact_path=path, size=size, sha256=sha256)
        for kind, subject, seq, number, regime, path, size, sha256 in rows)
    return ServingPlan(generation=generation, entries=entries)


def _blob(workspace: Workspace, entry: ServedEntry) -> Path:
    """The entry's artifact file, refusing a recorded path that leaves artifacts/."""
    path = blobs.resolve_inside(workspace.root, entry.artifact_path)
    if workspace.artifacts_root.resolve() not in path.parents:
        raise IntegrityError(
            f"{format_version_id(entry.version)}: artifact path {entry.artifact_path!r} "
            "is outside artifacts/")
    return path


def generation_dir(workspace: Workspace, generation: int) -> Path:
    return workspace.serving_root / GENERATIONS / f"g{generation:08d}"


def read_current(workspace: Workspace) -> tuple[Path | None, dict | None, str | None]:
    """(generation folder, manifest, problem) of what `current` points to now."""
    link = workspace.serving_root / CURRENT
    if not link.is_symlink():
        if link.exists():
            return None, None, f"{link} is not a symlink"
        return None, None, None
    target = os.readlink(link)
    parts = Path(target).parts
    if len(parts) != 2 or parts[0] != GENERATIONS or not parts[1].startswith("g"):
        return None, None, f"{link} points to {target!r}, not to a generation folder"
    folder = workspace.serving_root / target
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return folder, None, f"{link} points to {target}, which has no {MANIFEST}"
    except (OSError, ValueError) as error:
        return folder, None, f"{folder / MANIFEST} is unreadable: {error}"
    if not isinstance(manifest, dict):
        return folder, None, f"{folder / MANIFEST} is not a JSON object"
    return folder, manifest, None


def _folder_problems(workspace: Workspace, folder: Path, manifest: dict,
                     plan: ServingPlan) -> list[str]:
    """How a generation folder differs from the plan (empty: it is exactly the plan)."""
    problems = []
    if manifest.get("generation") != plan.generation:
        problems.append(f"serving folder is at deployment event {manifest.get('generation')}, "
                        f"the store at {plan.generation}")
    expected = plan.sections()
    for section in ("targets", "champions"):
        found = manifest.get(section)
        if not isinstance(found, dict):
            problems.append(f"{MANIFEST} has no {section}")
            continue
        for subject in sorted(expected[section].keys() | found.keys()):
            want, have = expected[section].get(subject), found.get(subject)
            if want is None:
                problems.append(f"serving folder lists {section} {subject}, the store does not")
            elif have is None or {k: have.get(k) for k in want} != want:
                shown = have.get("version") if isinstance(have, dict) else "nothing"
                problems.append(f"serving folder has {shown} for {section} {subject}, "
                                f"the store has {want['version']}")
    for entry in plan.entries:
        link = folder / entry.file
        try:
            expected_blob = _blob(workspace, entry)
        except IntegrityError as error:
            problems.append(error.message)
            continue
        if not link.is_symlink():
            problems.append(f"{link} is missing")
        elif link.resolve() != expected_blob:
            problems.append(f"{link} does not point to {entry.artifact_path}")
    return problems


def inspect(workspace: Workspace, plan: ServingPlan | None = None) -> list[str]:
    """Everything that keeps the serving folder from matching the store (empty: it does)."""
    plan = plan or plan_from_store(workspace)
    folder, manifest, problem = read_current(workspace)
    if problem:
        return [problem]
    if folder is None:
        if plan.entries:
            return [f"{workspace.serving_root / CURRENT} is missing; the store serves "
                    f"{len(plan.entries)} version link(s) as of event {plan.generation}"]
        return []
    if not plan.entries:
        return [f"{workspace.serving_root / CURRENT} exists but nothing is deployed"]
    return _folder_problems(workspace, folder, manifest or {}, plan)


def _make_writable(path: Path) -> None:
    """Undo the read-only bits of a generation so it can be removed."""
    for directory, _, _ in os.walk(path):
        os.chmod(directory, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH
                 | stat.S_IXOTH)


def _remove_tree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
        return
    if path.exists():
        _make_writable(path)
        shutil.rmtree(path, ignore_errors=True)


def _verified_before(manifest: dict | None) -> set[str]:
    """sha256 of artifacts linked by the previous generation (verified when they were linked)."""
    if not manifest:
        return set()
    hashes = set()
    for section in ("targets", "champions"):
        for entry in (manifest.get(section) or {}).values():
            if (isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
                    and "problem" not in entry):
                hashes.add(entry["sha256"])
    return hashes


def _build(workspace: Workspace, plan: ServingPlan, final: Path,
           verified: set[str]) -> list[str]:
    """Build the generation under a temporary name and rename it to `final`."""
    generations = final.parent
    generations.mkdir(parents=True, exist_ok=True)
    temp = generations / f".build-{secrets.token_hex(6)}"
    problems: list[str] = []
    try:
        for directory in ROLE_DIRS.values():
            (temp / directory).mkdir(parents=True)
        sections = plan.sections()
        for entry in plan.entries:
            try:
                blob = _blob(workspace, entry)
                if entry.sha256 not in verified:
                    blobs.verify(blob, entry.sha256)
                    verified.add(entry.sha256)
            except IntegrityError as error:
                problems.append(f"{entry.file}: {error.message}")
                sections[ROLE_DIRS[entry.kind]][entry.subject]["problem"] = error.message
                continue
            # relative, so the workspace can move; temp and final sit at the same depth
            os.symlink(os.path.relpath(blob, final / ROLE_DIRS[entry.kind]), temp / entry.file)
        manifest = {"schema": MANIFEST_SCHEMA, "generation": plan.generation,
                    "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    **sections}
        manifest_path = temp / MANIFEST
        with open(manifest_path, "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(manifest_path, 0o444)
        for directory in ROLE_DIRS.values():
            os.chmod(temp / directory, 0o555)
        os.chmod(temp, 0o555)
        os.rename(temp, final)
    except BaseException:
        _remove_tree(temp)
        raise
    _fsync_dir(generations)
    return problems


def _swap(workspace: Workspace, folder: Path, unit: str) -> None:
    root = workspace.serving_root
    if (root / CURRENT).exists() and not (root / CURRENT).is_symlink():
        _remove_tree(root / CURRENT)  # damage: something else took the link's name
    temp = root / f".current-{secrets.token_hex(6)}"
    os.symlink(f"{GENERATIONS}/{folder.name}", temp)
    _fault("link_staged", unit)
    try:
        os.replace(temp, root / CURRENT)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(root)


def _prune(workspace: Workspace, keep: Path | None) -> None:
    """Drop leftovers of crashed builds and all but the newest generations."""
    root = workspace.serving_root
    for leftover in root.glob(".current-*"):
        leftover.unlink(missing_ok=True)
    generations = root / GENERATIONS
    if not generations.is_dir():
        return
    for leftover in generations.glob(".build-*"):
        _remove_tree(leftover)
    folders = sorted((p for p in generations.glob("g*") if p.is_dir()), reverse=True)
    for folder in folders[KEEP_GENERATIONS:]:
        if keep is None or folder != keep:
            _remove_tree(folder)


def sync(workspace: Workspace, *, unit: str = "reconcile") -> SyncResult:
    """Make the serving folder match the store; a no-op when it already does.

    `unit` names the operation for the test-only fault hook (deploy, rollback, reconcile).
    """
    with _serving_lock(workspace):
        plan = plan_from_store(workspace)
        previous_folder, previous_manifest, _ = read_current(workspace)
        if not inspect(workspace, plan):
            path = previous_folder if plan.entries else None
            return SyncResult(plan.generation if plan.entries else None, False, path,
                              message="serving folder matches the store")
        link = workspace.serving_root / CURRENT
        if not plan.entries:
            link.unlink(missing_ok=True)
            _prune(workspace, None)
            return SyncResult(None, True, None, message="nothing deployed: removed current")
        folder = generation_dir(workspace, plan.generation)
        problems: list[str] = []
        if folder.exists():
            _, manifest, _ = _read_folder(folder)
            if manifest is None or _folder_problems(workspace, folder, manifest, plan):
                _remove_tree(folder)  # a stale or damaged build of this generation
        if not folder.exists():
            problems = _build(workspace, plan, folder, _verified_before(previous_manifest))
        _fault("generation_built", unit)
        _swap(workspace, folder, unit)
        _prune(workspace, folder)
    message = f"serving/current -> {GENERATIONS}/{folder.name}"
    return SyncResult(plan.generation, True, folder, tuple(problems), message)


def _read_folder(folder: Path) -> tuple[Path, dict | None, str | None]:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return folder, None, str(error)
    return folder, manifest if isinstance(manifest, dict) else None, None


def current_manifest(workspace: Workspace) -> dict | None:
    """The manifest `current` points to, or None (nothing published yet, or damaged)."""
    _, manifest, _ = read_current(workspace)
    return manifest

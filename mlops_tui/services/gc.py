"""Garbage collection: `models gc` (old versions' weights) and `jobs gc` (old job folders).

Protected, always: every version a deployment event names — the active version of each
target, each regime's champion, and every version a rollback could restore — plus the parent
an unfinished job will be compared with. A collected version keeps its record, lineage and
metrics; only its weights file goes, and it can no longer serve. The store commits first,
then files are removed, so a crash in between leaves only files the next run removes.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mlops_tui.artifacts import blobs, weights
from mlops_tui.core.errors import IntegrityError, UsageError
from mlops_tui.core.names import format_version_id
from mlops_tui.services.actor import current_actor
from mlops_tui.services.workspace import Workspace
from mlops_tui.store import deployments as deployment_sql

ORPHAN_GRACE_SECONDS = 3600  # a registration writes its blob before it commits: leave new ones
AGE = re.compile(r"(\d+)([hdw])")
MAX_AGE_HOURS = 100 * 365 * 24


@dataclass(frozen=True)
class ModelsGcResult:
    collected: list[str]  # version ids whose weights were (or would be) removed
    kept_protected: list[str]  # old versions kept because serving or rollback needs them
    orphans: list[str]  # artifact files no version references
    freed_bytes: int
    dry_run: bool
    message: str = ""


def _remove_file(path: Path) -> int:
    """Delete a (read-only) file; return the bytes freed."""
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        return 0
    return size


def _artifact_file(workspace: Workspace, relative: str) -> Path | None:
    try:
        path = blobs.resolve_inside(workspace.root, relative)
    except IntegrityError:
        return None  # a recorded path outside the workspace is never deleted
    return path if workspace.artifacts_root.resolve() in path.parents else None


def collect_models(workspace: Workspace, *, keep: int = 3, dry_run: bool = False,
                   reason: str = "models gc") -> ModelsGcResult:
    """Remove the weights of versions beyond the newest `keep` per regime, except protected
    ones, and artifact files no version references (older than an hour)."""
    if keep < 1:
        raise UsageError("--keep must be at least 1: each regime keeps its newest version")
    actor = current_actor()
    unit = workspace.store.read() if dry_run else workspace.store.write("models-gc")
    with unit as tx:
        protected = deployment_sql.protected_versions(tx)
        candidates = deployment_sql.gc_candidates(tx, keep)
        chosen = [c[0] for c in candidates if c[0] not in protected]
        kept = [format_version_id(c[0]) for c in candidates if c[0] in protected]
        if chosen and not dry_run:
            for number, _, _, sha256, _ in candidates:
                if number in chosen:
                    deployment_sql.mark_collected(tx, number, sha256, actor, reason)
            deployment_sql.append_audit(
                tx, actor=actor, action="models-gc", subject="models",
                detail={"collected": [format_version_id(n) for n in chosen],
                        "kept_protected": kept, "keep_per_regime": keep, "reason": reason})
        states = deployment_sql.artifact_states(tx)
    gone = set(chosen) | {number for number, *_, collected in states if collected}
    still_needed = {sha for number, _, sha, _, _ in states if number not in gone}
    # weights of every collected version: this run's, or an earlier run a crash cut short
    doomed = {path: size for number, path, sha, size, _ in states
              if number in gone and sha not in still_needed}
    freed = 0
    for relative, size in sorted(doomed.items()):
        target = _artifact_file(workspace, relative)
        if target is None or not target.exists():
            continue
        freed += size if dry_run else _remove_file(target)
    orphans = _orphans(workspace, {path for _, path, *_ in states})
    freed += sum(p.stat().st_size for p in orphans) if dry_run else sum(
        _remove_file(p) for p in orphans)
    collected = [format_version_id(n) for n in chosen]
    verb = "would remove" if dry_run else "removed"
    shown = ", ".join(collected[:10]) + ("…" if len(collected) > 10 else "")
    message = (f"{verb} the weights of {len(collected)} version(s)"
               + (f" ({shown})" if collected else "")
               + f" and {len(orphans)} unreferenced file(s), {freed:,} bytes; "
               f"{len(kept)} old version(s) kept because serving or rollback needs them")
    return ModelsGcResult(collected, kept, [p.relative_to(workspace.root).as_posix()
                                            for p in orphans], freed, dry_run, message)


def _orphans(workspace: Workspace, referenced: set[str]) -> list[Path]:
    """Artifact files (and leftover temp files) no version references, older than the grace."""
    root = workspace.artifacts_root / "sha256"
    if not root.is_dir():
        return []
    cutoff = time.time() - ORPHAN_GRACE_SECONDS
    found = []
    for path in sorted(root.glob("*/*")):
        relative = path.relative_to(workspace.root).as_posix()
        is_blob = path.name.endswith(weights.SUFFIX) and not path.name.startswith(".")
        if is_blob and relative in referenced:
            continue
        if not is_blob and not path.name.startswith(".tmp-"):
            continue
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                found.append(path)
        except FileNotFoundError:
            continue
    return found


@dataclass(frozen=True)
class JobsGcResult:
    removed: list[str]  # job ids whose folders were (or would be) removed
    kept_protected: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    dry_run: bool = False
    message: str = ""


def parse_age(text: str) -> timedelta:
    """`12h`, `7d`, `2w` as a timedelta."""
    match = AGE.fullmatch(text.strip())
    if not match:
        raise UsageError(f"invalid age {text[:20]!r} (--older-than): expected e.g. 12h, 7d or 2w")
    number, unit = int(match.group(1)), match.group(2)
    hours = number * {"h": 1, "d": 24, "w": 168}[unit]
    if hours > MAX_AGE_HOURS:  # timedelta and the clock overflow long before 10**20 days
        raise UsageError(f"invalid age {text[:20]!r} (--older-than): at most {MAX_AGE_HOURS // 24}d")
    return timedelta(hours=hours)


def _tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def collect_jobs(workspace: Workspace, *, older_than: str = "7d", dry_run: bool = False,
                 now: datetime | None = None) -> JobsGcResult:
    """Remove the folders of jobs that ended before `older_than`, except jobs whose version
    serves, is a champion or could be rolled back to (their logs explain that version)."""
    cutoff = (now or datetime.now(UTC)) - parse_age(older_than)
    with workspace.store.read() as tx:
        finished = deployment_sql.finished_jobs_before(tx, cutoff)
        protected = deployment_sql.protected_versions(tx)
    removable, kept = [], []
    for job_id, _, _, number in finished:
        folder = workspace.jobs_root / job_id
        if not folder.is_dir():
            continue
        (kept if number is not None and number in protected else removable).append(job_id)
    freed = sum(_tree_size(workspace.jobs_root / job_id) for job_id in removable)
    if removable and not dry_run:
        with workspace.store.write("jobs-gc") as tx:
            deployment_sql.append_audit(
                tx, actor=current_actor(), action="jobs-gc", subject="jobs",
                detail={"removed": removable, "kept_protected": kept,
                        "older_than": older_than})
        for job_id in removable:
            shutil.rmtree(workspace.jobs_root / job_id, ignore_errors=True)
    verb = "would remove" if dry_run else "removed"
    message = (f"{verb} {len(removable)} job folder(s), {freed:,} bytes; {len(kept)} kept "
               "because their version serves or could be rolled back to")
    return JobsGcResult(removable, kept, freed, dry_run, message)

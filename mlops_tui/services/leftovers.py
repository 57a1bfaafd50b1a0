"""Leftovers: files no store record points to and no running process will finish.

- an orphan batch or label file (`data/batches/`, `data/labels/`): staged and renamed into
  place, then the store refused the write (busy, exit 4) and the clean-up could not run;
- a `.staging-*` file of an ingest that was killed while staging;
- an orphan artifact (`artifacts/sha256/`): weights no version references (a rejected job
  result, a registration killed before its commit) and `.tmp-*` files of killed writes;
- an abandoned job folder: a job that ended without ever running (it failed or was
  cancelled while being prepared; its reason is in the store), or an empty folder of an
  ended job; and folders of jobs this store does not know (removed only on request).

Everything here is older than a grace period, so a file an ingest or a registration in
another process is about to commit is never taken: they rename a fresh file into place and
commit within the store's lock timeout. A staging file also names the process writing it
and is kept while that process lives (staging a large file can take longer than the grace).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_tui.runners.base import RUNNER_FILE
from mlops_tui.store import Tx
from mlops_tui.store import upkeep as upkeep_sql

if TYPE_CHECKING:  # annotations only: workspace imports these lazily
    from mlops_tui.services.workspace import Workspace

GRACE_SECONDS = 3600.0
STAGING = re.compile(r"\.staging-(?:(\d+)-)?")
FINAL_WITHOUT_RUN = ("failed", "cancelled", "lost")
JOB_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Leftover:
    kind: str  # orphan-batch, staging, orphan-artifact, job-folder, unknown-job-folder
    path: str  # relative to the workspace
    size: int
    reason: str
    automatic: bool = True  # the next write unit may remove it (else only --repair)

    def document(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path, "bytes": self.size,
                "reason": self.reason, "automatic": self.automatic}

    @property
    def text(self) -> str:
        return f"leftover {self.kind} {self.path} ({self.size:,} bytes): {self.reason}"


def grace_seconds(workspace: Workspace) -> float:
    """Longer than any wait between an ingest's rename and its commit (the lock timeout)."""
    return max(GRACE_SECONDS, 2 * workspace.store.lock_timeout)


def _newest_change(path: Path) -> float:
    """The newest mtime of a file, or of a folder and everything in it (lstat: no links)."""
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for directory, folders, files in os.walk(path):
            for name in folders + files:
                try:
                    newest = max(newest, os.lstat(os.path.join(directory, name)).st_mtime)
                except FileNotFoundError:
                    continue
    return newest


def _size(path: Path) -> int:
    if path.is_symlink() or not path.is_dir():
        return path.lstat().st_size
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except FileNotFoundError:
                continue
    return total


def _has_files(path: Path) -> bool:
    return any(files for _, _, files in os.walk(path))


def _writer_alive(name: str) -> bool:
    """True while the process a staging file names still runs on this host."""
    match = STAGING.match(name)
    if not match or not match.group(1):
        return False
    try:
        os.kill(int(match.group(1)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def _entries(folder: Path) -> Iterator[Path]:
    try:
        yield from sorted(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return


def _data_leftovers(workspace: Workspace, referenced: set[str], old: float) -> Iterator[Leftover]:
    for sub, what in (("batches", "batch"), ("labels", "label")):
        for path in _entries(workspace.data_root / sub):
            relative = path.relative_to(workspace.root).as_posix()
            if path.is_symlink() or not path.is_file() or _newest_change(path) > old:
                continue
            if path.name.startswith(".staging-"):
                if not _writer_alive(path.name):
                    yield Leftover("staging", relative, _size(path),
                                   "staging file of an ingest that did not finish")
            elif path.suffix == ".parquet" and relative not in referenced:
                yield Leftover(f"orphan-{what}", relative, _size(path),
                               f"no {what} in the store names it (an ingest refused after "
                               "staging it)")


def _artifact_leftovers(workspace: Workspace, referenced: set[str], old: float
                        ) -> Iterator[Leftover]:
    for shard in _entries(workspace.artifacts_root / "sha256"):
        for path in _entries(shard):
            relative = path.relative_to(workspace.root).as_posix()
            if relative in referenced or path.is_symlink() or not path.is_file():
                continue  # the set first: most blobs are referenced, no stat needed
            if _newest_change(path) > old:
                continue
            reason = ("temporary file of a write that did not finish"
                      if path.name.startswith(".") else
                      "no version references it (a rejected result or an unfinished "
                      "registration)")
            yield Leftover("orphan-artifact", relative, _size(path), reason)


def _job_leftovers(workspace: Workspace, jobs: dict, old: float) -> Iterator[Leftover]:
    for path in _entries(workspace.jobs_root):
        if not JOB_ID.fullmatch(path.name) or path.is_symlink() or not path.is_dir():
            continue
        relative = path.relative_to(workspace.root).as_posix()
        known = jobs.get(path.name)
        if known is not None:
            state, _, ran, registered = known
            ran = ran or (path / RUNNER_FILE).exists()  # launched, though never seen running
            if state in ("requested", "created", "running", "succeeded") or registered:
                continue  # unfinished, not yet ingested, or it explains a version
            if ran and _has_files(path):
                continue  # its logs explain how it ended: `jobs gc` decides
        if _newest_change(path) > old:  # walked only for the few candidates
            continue
        if known is None:
            yield Leftover("unknown-job-folder", relative, _size(path),
                           "this store has no such job", automatic=False)
        elif state in FINAL_WITHOUT_RUN and not ran:
            yield Leftover("job-folder", relative, _size(path),
                           f"job {state} before it ran (its reason is in 'mlops-tui jobs show "
                           f"{path.name[:8]}')")
        elif not _has_files(path):
            yield Leftover("job-folder", relative, 0, f"empty folder of a {state} job")


def find(workspace: Workspace, tx: Tx | None = None, *, now: float | None = None
         ) -> list[Leftover]:
    """Every leftover older than the grace period (reads only)."""
    if tx is None:
        with workspace.store.read() as read_tx:
            return find(workspace, read_tx, now=now)
    referenced = upkeep_sql.referenced_files(tx)
    jobs = upkeep_sql.job_folders_state(tx)
    old = (now if now is not None else time.time()) - grace_seconds(workspace)
    return [*_data_leftovers(workspace, referenced, old),
            *_artifact_leftovers(workspace, referenced, old),
            *_job_leftovers(workspace, jobs, old)]


def remove(workspace: Workspace, leftovers: list[Leftover], *, include_manual: bool = False
           ) -> list[Leftover]:
    """Delete the leftovers (only `automatic` ones unless asked); return what went."""
    removed = []
    for leftover in leftovers:
        if not leftover.automatic and not include_manual:
            continue
        path = workspace.root / leftover.path
        try:
            if path.is_dir() and not path.is_symlink():
                for directory, _, _ in os.walk(path):  # never follows a link
                    if not os.path.islink(directory):
                        os.chmod(directory, 0o755)  # read-only folders inside a job folder
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            continue  # e.g. owned by another user: reported again next time
        removed.append(leftover)
    return removed

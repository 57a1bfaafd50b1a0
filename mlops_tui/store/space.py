"""Disk space: the free-space probe and the one place that recognises "disk full".

ENOSPC reaches us two ways: as an OSError from Python's own file calls, and inside a DuckDB
exception's text (DuckDB raises IOException or TransactionException; some messages carry a
JSON `"errno":"28"`, all carry strerror's "No space left on device").
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import duckdb

from mlops_tui.core.errors import DiskFullError

__all__ = ["DiskFullError", "disk_full", "free_bytes", "is_disk_full", "megabytes"]

MB = 1024 * 1024
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_FULL_TEXTS = (os.strerror(errno.ENOSPC), os.strerror(errno.EDQUOT),
               '"errno":"28"', '"errno":"122"')


def free_bytes(path: Path | str) -> int:
    """Bytes an unprivileged writer may still use on the filesystem holding `path` (or its
    nearest existing parent)."""
    probe = Path(path).absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    info = os.statvfs(probe)
    return info.f_bavail * info.f_frsize


def is_disk_full(error: BaseException) -> bool:
    """True when `error` (an OSError or a DuckDB error) means no space or quota is left."""
    if isinstance(error, OSError):
        return error.errno in _FULL_ERRNOS
    if isinstance(error, duckdb.Error):
        text = str(error)
        return any(marker in text for marker in _FULL_TEXTS)
    return False


def written_file(error: BaseException) -> Path | None:
    """The file a failed write was writing, when the error names it."""
    if isinstance(error, OSError) and error.filename:
        return Path(os.fsdecode(error.filename))
    found = re.search(r'Could not write file \\?"(.+?)\\?"', str(error))
    return Path(found.group(1)) if found else None


def megabytes(size: int) -> str:
    return f"{size / MB:,.1f} MB"


def disk_full(directory: Path | str | None, *, needed: int | None = None, writing: str = "",
              outcome: str = "", detail: dict | None = None) -> DiskFullError:
    """The one-line disk-full error: "no space left on DIR: N MB free, M MB needed", then
    what was being written and what happened to the change (the truth, e.g. committed)."""
    free = None
    if directory is not None:
        directory = Path(directory).absolute()
        try:
            free = free_bytes(directory)
        except OSError:
            pass
    parts = [f"{megabytes(free)} free" if free is not None else "free space unknown"]
    if needed is not None:
        parts.append(f"{megabytes(max(needed, 0))} needed")
    message = f"no space left on {directory or 'the device'}: {', '.join(parts)}"
    if writing:
        message += f" (writing {writing})"
    if outcome:
        message += f"; {outcome}"
    return DiskFullError(message, detail={"directory": directory and str(directory),
                                          "free_bytes": free,
                                          "needed_bytes": needed} | (detail or {}))

"""What a DuckDB error means for the store file, by its type, and the one-line MlopsError
each kind becomes: corrupt (exit 5), held by a process outside mlops-tui (exit 4), a full
disk (exit 6, saying whether the change was committed)."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import duckdb

from mlops_tui.core.errors import IntegrityError, MlopsError, ReadOnlyError, StoreBusyError
from mlops_tui.store import space

# DuckDB's own file lock, held by a process that opened the store file directly.
_DUCKDB_LOCK = "Could not set lock on file"
_NOT_WRITABLE = (os.strerror(errno.EACCES), os.strerror(errno.EROFS), os.strerror(errno.EPERM))
_DUCKDB_HOLDER = re.compile(r"Conflicting lock is held in (.+?) \(PID (\d+)\)")


def classify(error: duckdb.Error) -> str:
    """What a DuckDB error means for the store, by its type: "disk-full", "locked" (another
    process holds DuckDB's file lock), "corrupt", "unreadable", "read-only" or "other"."""
    if space.is_disk_full(error):
        return "disk-full"
    if isinstance(error, duckdb.IOException):
        # The lock conflict is an IOException like every unreadable file; only its
        # wording tells them apart.
        text = str(error)
        if _DUCKDB_LOCK in text:
            return "locked"
        return "read-only" if any(t in text for t in _NOT_WRITABLE) else "unreadable"
    # DuckDB raises a failed block checksum ("Corrupt database file") as the base Error
    # class itself; bad metadata as a SerializationException.
    if type(error) is duckdb.Error or isinstance(error, duckdb.SerializationException):
        return "corrupt"
    if isinstance(error, duckdb.PermissionException):
        return "read-only"
    return "other"


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def open_error(db_path: Path, error: duckdb.Error, timeout: float) -> MlopsError:
    """The MlopsError for a failed ATTACH of the store file."""
    text = first_line(error)
    kind = classify(error)
    if kind == "locked":
        found = _DUCKDB_HOLDER.search(str(error))
        holder = (f"pid {found.group(2)} ({found.group(1)}) holds DuckDB's lock on the "
                  "file outside mlops-tui" if found else text)
        return StoreBusyError(f"store {db_path} is open elsewhere: {holder}; "
                              f"gave up after {timeout:g}s")
    if kind == "disk-full":
        return space.disk_full(db_path.parent, writing=f"{db_path.name}, while opening it",
                               outcome="nothing was changed")
    if kind == "read-only" or "read-only" in text.lower():
        return ReadOnlyError(f"store {db_path} cannot be written: {text}")
    if kind == "corrupt":
        return corrupt(db_path, text)
    return IntegrityError(f"{db_path} is not a readable mlops-tui store: {text}")


def corrupt(db_path: Path, text: str) -> IntegrityError:
    return IntegrityError(f"store {db_path} is corrupt: {text}; restore it from a "
                          "backup ('mlops-tui store backup' writes one)",
                          detail={"store": str(db_path), "corrupt": True})


def storage_error(db_path: Path, error: duckdb.Error, unit: str, *, committed: bool
                  ) -> MlopsError | None:
    """The MlopsError for a DuckDB error inside a unit of work, or None when it is not
    about the store file (the caller's own SQL error: left as it is)."""
    kind = classify(error)
    if kind == "disk-full":
        written = space.written_file(error)
        return space.disk_full(
            written.parent if written else db_path.parent,
            writing=(written.name if written and written != db_path
                     else f"the store, '{unit}'"),
            outcome=("the change was committed" if committed
                     else "nothing was committed: the store is as it was"),
            detail={"committed": committed, "unit": unit})
    if kind == "corrupt":
        return corrupt(db_path, first_line(error))
    if kind == "unreadable" and str(db_path) in str(error):  # not another file's IO error
        return IntegrityError(f"store {db_path} cannot be read: {first_line(error)}")
    return None


def detach_error(db_path: Path, error: duckdb.Error, unit: str, *, committed: bool
                 ) -> MlopsError:
    """DETACH checkpoints the write-ahead log into the store file. When that fails the
    committed change is still safe in the log, and the next open replays it."""
    wal = db_path.with_name(db_path.name + ".wal")
    if space.is_disk_full(error):
        try:
            needed = wal.stat().st_size + 256 * 1024  # about the log, plus a block
        except OSError:
            needed = None
        outcome = ("the change was committed: it is kept in the write-ahead log "
                   f"{wal.name} until a write after space is freed" if committed
                   else "nothing was committed: the store is as it was")
        return space.disk_full(
            db_path.parent, needed=needed,
            writing=f"a checkpoint of {db_path.name} after '{unit}'",
            outcome=outcome,
            detail={"committed": committed, "unit": unit})
    mapped = storage_error(db_path, error, unit, committed=committed)
    if mapped is not None:
        return mapped
    return IntegrityError(f"store {db_path}: closing it after '{unit}' failed: "
                          f"{first_line(error)}"
                          + ("; the change was committed" if committed else ""))

"""`store backup`: copy the store into a new DuckDB file through DuckDB itself, under a
shared lock, so readers and other backups go on.

The copy is written under a temporary name next to the destination and linked into place
only when complete: a failed backup (a full disk, an interrupt) leaves no file behind that
would make its retry refuse with "already exists".
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from mlops_tui.core.errors import ConflictError, UsageError
from mlops_tui.store import space

if TYPE_CHECKING:
    from mlops_tui.store.db import Store


def _remove(*paths: Path) -> None:
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass


def backup(store: Store, destination: Path) -> None:
    from mlops_tui.store.db import _aliases

    destination = Path(destination)
    if destination.exists():
        raise ConflictError(f"backup destination {destination} already exists")
    directory = destination.parent
    if not directory.is_dir():
        raise UsageError(f"backup destination folder {directory} does not exist")
    temp = directory / f".{destination.name}.{os.getpid()}-{next(_aliases)}.tmp"
    temp_wal = temp.with_name(temp.name + ".wal")
    needed = sum(p.stat().st_size for p in (store.db_path, store.db_path.with_name(
        store.db_path.name + ".wal")) if p.exists())  # at most the store and its log
    try:
        with store._unit("backup", exclusive=False) as tx:
            tx.execute("COMMIT")  # COPY FROM DATABASE runs outside the read transaction
            alias = f"backup_{next(_aliases)}"
            try:
                tx.execute(f"ATTACH ? AS {alias}", [str(temp)])
                try:
                    current = tx.scalar("SELECT current_database()")
                    tx.execute(f"COPY FROM DATABASE {current} TO {alias}")
                except BaseException:
                    try:
                        tx.execute(f"DETACH {alias}")
                    except duckdb.Error:
                        pass
                    raise
                tx.execute(f"DETACH {alias}")  # checkpoints the copy into its file
            except duckdb.Error as error:
                if not space.is_disk_full(error):
                    raise
                raise _full(directory, temp, temp_wal, needed, destination) from None
            finally:
                tx.execute("BEGIN TRANSACTION")
        with open(temp, "rb") as handle:
            os.fsync(handle.fileno())
        try:
            os.link(temp, destination)  # never replaces a file someone created meanwhile
        except FileExistsError:
            raise ConflictError(f"backup destination {destination} already exists") from None
    except OSError as error:
        if not space.is_disk_full(error):
            raise
        raise _full(directory, temp, temp_wal, needed, destination) from None
    finally:
        _remove(temp, temp_wal)


def _full(directory: Path, temp: Path, temp_wal: Path, needed: int,
          destination: Path) -> space.DiskFullError:
    _remove(temp, temp_wal)  # first, so the free space reported is what a retry gets
    return space.disk_full(directory, needed=needed, writing=f"the backup {destination.name}",
                           outcome="no backup was written; the store is unchanged")

"""The sidecar `store.lock`: flock, shared for readers and exclusive for writers.

`fcntl.flock` locks belong to an open file description, so two threads that each open the
lock file exclude each other just as two processes do. A writer records who it is (pid,
host, command, since) in the lock file so a waiter that times out can name the holder.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import random
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from mlops_tui.core.errors import ReadOnlyError, StoreBusyError


def _holder_text(lock_path: Path) -> str:
    try:
        holder = json.loads(lock_path.read_text() or "{}")
    except (OSError, ValueError):
        holder = {}
    if not holder or not _may_be_alive(holder):
        return "readers (or a writer that has just finished)"
    return (
        f"pid {holder.get('pid')} on {holder.get('host')} "
        f"({holder.get('command')}, since {holder.get('since')})"
    )


def _may_be_alive(holder: dict) -> bool:
    """False when the recorded writer is a dead process on this host (killed mid-write)."""
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(holder.get("pid", -1)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, OverflowError):
        return True
    return True


@contextmanager
def hold_lock(
    lock_path: Path, *, exclusive: bool, timeout: float, command: str
) -> Iterator[None]:
    """Hold the store lock; raise StoreBusyError naming the writer after `timeout` seconds."""
    fd = _open_lock_file(lock_path, exclusive)
    if fd is None:
        yield  # a read-only workspace without a lock file: no writer can exist there
        return
    try:
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreBusyError(
                        f"store is busy: held by {_holder_text(lock_path)}; "
                        f"gave up after {timeout:g}s"
                    ) from None
                time.sleep(random.uniform(0.002, 0.02))  # jitter: waiters do not stampede
        if exclusive:
            holder = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "command": command,
                "since": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            os.ftruncate(fd, 0)
            try:
                os.pwrite(fd, json.dumps(holder).encode(), 0)
            except OSError as error:
                # The record only names the holder to waiters: on a full disk go without
                # it and let the store write itself report the lack of space.
                if error.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
        try:
            yield
        finally:
            if exclusive:
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _open_lock_file(lock_path: Path, exclusive: bool) -> int | None:
    """The lock file's descriptor; None for a reader of a read-only workspace without one."""
    try:
        return os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        if exclusive and error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise ReadOnlyError(
                f"workspace {lock_path.parent} is read-only: cannot write the store"
            ) from None
    try:
        return os.open(lock_path, os.O_RDONLY)  # readers may use a read-only workspace
    except FileNotFoundError:
        return None


def current_writer(lock_path: Path) -> dict | None:
    """The writer holding the lock now (pid, host, command, since), {} when a writer holds
    it without saying who, or None when no writer does. Takes a shared lock for an instant
    on a read-only descriptor: nothing is written."""
    try:
        fd = os.open(lock_path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = json.loads(lock_path.read_text() or "{}")
            except (OSError, ValueError):
                holder = {}
            return holder if isinstance(holder, dict) else {}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)

"""A job's folder: host-written files beside a work area that the job writes and nobody trusts.

    jobs/<id>/          the host's: runner.json, exit.json, the cancel and timed-out markers,
                        runner.log (launcher and image-build lines). Never given to the job.
    jobs/<id>/input/    written by the host before the job starts, read-only to a container:
                        spec.json and pipeline/ (restored from the code snapshot).
    jobs/<id>/work/     the job's: job.log, result.json, failure.json, the weights file.

Whatever is under work/ may have been planted by the job, so it is read like a hostile
upload: the folder is opened without following a symlink, each name is looked up in it with
`lstat`, and only a regular file with one link is opened (O_NOFOLLOW, non-blocking, so a FIFO
or device can never hang or trigger the host), re-checked on the open descriptor, and read up
to a size bound. The host never writes under work/ once the job has started.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from mlops_tui.core.errors import IntegrityError

INPUT_DIR = "input"
WORK_DIR = "work"
HOST_LOG_FILE = "runner.log"  # the launcher's own lines; the job's output is work/job.log

MAX_DOCUMENT_BYTES = 1 << 20  # result.json, failure.json
MAX_ARTIFACT_BYTES = 2 << 30  # a weights file
LOG_TAIL_BYTES = 64 << 10  # what a log tail reads from the end of job.log
LOG_CHUNK_BYTES = 1 << 20  # what one `jobs logs` read returns at most

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UntrustedFileError(IntegrityError):
    """A file in a job's work area that is refused (symlink, FIFO, hard link, too large…)."""

    kind = "untrusted-job-file"


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


@dataclass(frozen=True)
class JobFolder:
    root: Path  # jobs/<id>

    @property
    def input_dir(self) -> Path:
        return self.root / INPUT_DIR

    @property
    def work_dir(self) -> Path:
        return self.root / WORK_DIR

    def host_file(self, name: str) -> Path:
        return self.root / name

    # -- the work area, read safely -------------------------------------------------------

    def _open_work(self) -> int:
        """A descriptor of work/, refusing a symlinked job folder or work folder."""
        return _open_directory(self.root, self.work_dir)

    def entry(self, name: str) -> os.stat_result | None:
        """lstat of work/NAME (None when absent, or when the work area does not exist)."""
        try:
            directory = self._open_work()
        except FileNotFoundError:
            return None
        try:
            return os.lstat(name, dir_fd=directory)
        except FileNotFoundError:
            return None
        finally:
            os.close(directory)

    def exists(self, name: str) -> bool:
        """Whether work/NAME exists in any form (a planted FIFO counts: it is refused later)."""
        try:
            return self.entry(name) is not None
        except UntrustedFileError:
            return True

    def _open_file(self, name: str, max_bytes: int | None, *, host: bool = False
                   ) -> tuple[int, os.stat_result]:
        if "/" in name or name in ("", ".", ".."):
            raise UntrustedFileError(f"{name!r} is not a plain file name in the job folder")
        directory = _open_directory(self.root) if host else self._open_work()
        try:
            try:
                before = os.lstat(name, dir_fd=directory)
            except FileNotFoundError:
                raise FileNotFoundError(f"{name} is missing from the job folder") from None
            if not stat.S_ISREG(before.st_mode):
                raise UntrustedFileError(f"{name} is {_kind(before.st_mode)}: refused")
            if before.st_nlink != 1:
                raise UntrustedFileError(
                    f"{name} has {before.st_nlink} hard links: refused (it may be another file)")
            if max_bytes is not None and before.st_size > max_bytes:
                raise UntrustedFileError(
                    f"{name} is {before.st_size} bytes, over the {max_bytes}-byte bound: refused")
            try:
                descriptor = os.open(name, _OPEN_FLAGS, dir_fd=directory)
            except OSError as error:
                raise UntrustedFileError(f"{name}: cannot be opened safely "
                                         f"({error.strerror})") from None
        finally:
            os.close(directory)
        after = os.fstat(descriptor)
        if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino) or not \
                stat.S_ISREG(after.st_mode) or after.st_nlink != 1:
            os.close(descriptor)
            raise UntrustedFileError(f"{name} changed while it was opened: refused")
        return descriptor, after

    def read(self, name: str, max_bytes: int = MAX_DOCUMENT_BYTES, *, host: bool = False
             ) -> bytes:
        """The whole of work/NAME (with `host`, jobs/<id>/NAME), or UntrustedFileError saying
        why it is refused."""
        descriptor, _ = self._open_file(name, max_bytes, host=host)
        try:
            data = _read_up_to(descriptor, max_bytes + 1)
        finally:
            os.close(descriptor)
        if len(data) > max_bytes:
            raise UntrustedFileError(f"{name} grew past the {max_bytes}-byte bound: refused")
        return data

    def host_json(self, name: str) -> dict | None:
        """jobs/<id>/NAME as a JSON object; None when absent, refused or malformed."""
        try:
            value = json.loads(self.read(name, host=True))
        except (OSError, UntrustedFileError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def has_host_file(self, name: str) -> bool:
        try:
            return os.lstat(self.host_file(name)) is not None
        except OSError:
            return False

    def read_from(self, name: str, position: int, max_bytes: int = LOG_CHUNK_BYTES) -> bytes:
        """Up to `max_bytes` of work/NAME from `position` (for following a log)."""
        descriptor, _ = self._open_file(name, None)
        try:
            os.lseek(descriptor, position, os.SEEK_SET)
            return _read_up_to(descriptor, max_bytes)
        finally:
            os.close(descriptor)

    def tail_bytes(self, name: str, max_bytes: int = LOG_TAIL_BYTES) -> tuple[bytes, int]:
        """(the last `max_bytes` of work/NAME, its size); FileNotFoundError when absent,
        UntrustedFileError when refused."""
        descriptor, info = self._open_file(name, None)
        try:
            os.lseek(descriptor, max(0, info.st_size - max_bytes), os.SEEK_SET)
            return _read_up_to(descriptor, max_bytes), info.st_size
        finally:
            os.close(descriptor)

    def tail(self, name: str, lines: int = 20, max_bytes: int = LOG_TAIL_BYTES) -> str:
        """The last `lines` lines of work/NAME, reading at most `max_bytes` from its end; a
        refused file gives a one-line note instead."""
        try:
            data, _ = self.tail_bytes(name, max_bytes)
        except FileNotFoundError:
            return ""
        except UntrustedFileError as error:
            return f"({error.message})"
        return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


def _open_directory(*chain: Path) -> int:
    """Open the last of `chain` (each a folder inside the one before), refusing any that is a
    symlink or not a folder. FileNotFoundError when one is absent."""
    for directory in chain:
        mode = os.lstat(directory).st_mode
        if not stat.S_ISDIR(mode):
            raise UntrustedFileError(
                f"job folder {directory.name}/ is {_kind(mode)}: refused (never followed)")
    try:
        return os.open(chain[-1], _DIR_FLAGS)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UntrustedFileError(f"job folder {chain[-1].name}/ was swapped for a "
                                     "symlink: refused") from None
        raise


def _read_up_to(descriptor: int, limit: int) -> bytes:
    chunks, remaining = [], limit
    while remaining > 0:
        chunk = os.read(descriptor, min(remaining, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def create_log(path: Path) -> int:
    """Create an empty log file that nobody has planted (O_EXCL, no symlink followed) and
    return its descriptor, opened for appending."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_APPEND
                   | os.O_CLOEXEC, 0o644)


def append_host_log(root: Path, line: str) -> None:
    """A launcher line in jobs/<id>/runner.log (host-owned: never inside work/)."""
    try:
        descriptor = os.open(root / HOST_LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND
                             | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError:
        return
    try:
        os.write(descriptor, (line.rstrip("\n") + "\n").encode("utf-8", errors="replace"))
    except OSError:
        pass
    finally:
        os.close(descriptor)


def write_host_file(root: Path, name: str, text: str) -> None:
    """Write jobs/<id>/NAME atomically without following a planted link (temp + rename)."""
    import tempfile

    descriptor, temp = tempfile.mkstemp(dir=root, prefix=f".{name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            os.fchmod(handle.fileno(), 0o644)  # as readable as the rest of the workspace
        os.replace(temp, root / name)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise

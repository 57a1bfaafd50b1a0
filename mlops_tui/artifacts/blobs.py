"""Content-addressed files: `<root>/sha256/<aa>/<hash><suffix>`, written once, read-only.

Writes go to a temp file in the same directory, are fsynced, renamed into place and made
read-only; an existing blob is never overwritten (same hash, same bytes).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from mlops_tui.core.errors import IntegrityError

CHUNK = 1 << 20


def file_sha256(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def blob_path(root: Path, sha256: str, suffix: str = "") -> Path:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise IntegrityError(f"malformed sha256 {sha256[:80]!r}")
    return root / "sha256" / sha256[:2] / f"{sha256}{suffix}"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def put_bytes(root: Path, data: bytes, suffix: str = "") -> tuple[str, Path]:
    """Store `data`; return (sha256, path). Idempotent."""
    sha256 = hashlib.sha256(data).hexdigest()
    target = blob_path(root, sha256, suffix)
    if target.exists():
        try:  # fresh again: leftover clean-up must not take a blob about to be referenced
            os.utime(target)
        except OSError:
            pass
        return sha256, target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, 0o444)
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    return sha256, target


def put_verified_bytes(root: Path, data: bytes, suffix: str = "",
                       expected_sha256: str | None = None, name: str = "artifact"):
    """Store `data`, verifying it against `expected_sha256` if given."""
    if expected_sha256 is not None:
        sha256 = hashlib.sha256(data).hexdigest()
        if sha256 != expected_sha256:
            raise IntegrityError(f"{name}: sha256 {sha256[:12]}… does not match the recorded "
                                 f"{expected_sha256[:12]}…")
    return put_bytes(root, data, suffix)


def put_file(root: Path, source: Path, suffix: str = "", expected_sha256: str | None = None):
    """Copy `source` into the store, verifying it against `expected_sha256` if given."""
    return put_verified_bytes(root, Path(source).read_bytes(), suffix, expected_sha256,
                              name=str(source))


def resolve_inside(root: Path, relative: str) -> Path:
    """Resolve `relative` under `root`, refusing anything that escapes it."""
    root_resolved = root.resolve()
    candidate = (root_resolved / relative).resolve()
    if candidate != root_resolved and root_resolved not in candidate.parents:
        raise IntegrityError(f"path {relative!r} escapes {root}")
    return candidate


def verify(path: Path, sha256: str) -> bytes:
    """Read the file and check its hash; return the verified bytes."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise IntegrityError(f"{path}: cannot be read ({error.strerror})") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise IntegrityError(
            f"{path}: sha256 {actual[:12]}… does not match the recorded {sha256[:12]}…; "
            "the artifact changed after it was registered"
        )
    return data

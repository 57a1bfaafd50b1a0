"""Error kinds and the exit codes the CLI maps them to (docs/operator-guide.md, "Exit codes")."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    INTERNAL = 1
    USAGE = 2
    CONFLICT = 3
    BUSY = 4
    INTEGRITY = 5
    UNAVAILABLE = 6
    SIGINT = 130
    SIGTERM = 143


class MlopsError(Exception):
    """Base of every expected failure; carries its exit code and a short kind."""

    code: ExitCode = ExitCode.INTERNAL
    kind: str = "internal"

    def __init__(self, message: str, *, detail: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail or {}


class UsageError(MlopsError):
    code = ExitCode.USAGE
    kind = "usage"


class NotFoundError(UsageError):
    kind = "not-found"


class InvalidNameError(UsageError):
    kind = "invalid-name"


class ReadOnlyError(UsageError):
    kind = "read-only"


class ConflictError(MlopsError):
    code = ExitCode.CONFLICT
    kind = "conflict"


class StoreBusyError(MlopsError):
    code = ExitCode.BUSY
    kind = "busy"


class IntegrityError(MlopsError):
    code = ExitCode.INTEGRITY
    kind = "integrity"


class UnavailableError(MlopsError):
    code = ExitCode.UNAVAILABLE
    kind = "unavailable"


class DiskFullError(UnavailableError):
    """No space left on a workspace or destination folder (ENOSPC, EDQUOT)."""

    kind = "disk-full"

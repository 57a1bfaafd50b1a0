"""What every runner's handle offers, and how a finished job's outcome is read.

A job's outcome is read from its folder, not from a process exit code, so a job whose
launcher died can still be followed to its true end: result.json means it trained,
failure.json carries the harness's reason, the cancel marker means an operator stopped it.
The job's own files are read through `JobFolder`, which refuses anything planted.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mlops_tui.runners.folder import JobFolder, UntrustedFileError
from mlops_tui.training.contract import CANCEL_FILE, FAILURE_FILE, LOG_FILE, RESULT_FILE

RUNNER_FILE = "runner.json"  # every runner writes it (host side) once the job is launched


@dataclass(frozen=True)
class JobStatus:
    state: str  # running, succeeded, failed, cancelled, lost
    reason: str = ""

    @property
    def finished(self) -> bool:
        return self.state != "running"


class JobHandle(Protocol):
    job_id: str
    job_dir: Path

    def status(self) -> JobStatus: ...

    def cancel(self) -> None: ...

    def detail(self) -> dict: ...


def failure_reason(folder: JobFolder) -> str:
    """The harness's reason from failure.json (or why that file was refused)."""
    try:
        document = json.loads(folder.read(FAILURE_FILE))
    except UntrustedFileError as error:
        return f"the harness failed ({error.message})"
    except (OSError, ValueError):
        return "the harness failed (unreadable failure.json)"
    reason = document.get("reason", "") if isinstance(document, dict) else ""
    return str(reason)[:500] or "the harness failed"


def outcome_from_folder(job_dir: Path, ended_how: str = "") -> JobStatus:
    """The state of a job whose process has ended, from the files it left. A planted
    result.json (a FIFO, a link) still reads as "succeeded": ingesting it refuses it with
    the reason, so the job ends `rejected` rather than silently `lost`."""
    folder = JobFolder(job_dir)
    if folder.has_host_file(CANCEL_FILE):
        return JobStatus("cancelled", "cancelled by an operator")
    if folder.exists(RESULT_FILE):
        return JobStatus("succeeded")
    if folder.exists(FAILURE_FILE):
        return JobStatus("failed", failure_reason(folder))
    return JobStatus("lost", ended_how or "the job ended without a result or a failure report")


def wait_for(handle: JobHandle, timeout: float | None = None, poll: float = 0.2,
             on_poll=None) -> JobStatus:
    """Poll until the job finishes (or `timeout` passes: then the running status)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        status = handle.status()
        if status.finished:
            return status
        if on_poll is not None:
            on_poll(status)
        if deadline is not None and time.monotonic() >= deadline:
            return status
        time.sleep(poll)


def log_tail(job_dir: Path, lines: int = 20) -> str:
    """The job log's last lines, read safely (a refused log gives a one-line note)."""
    return JobFolder(job_dir).tail(LOG_FILE, lines)

"""What every runner's handle offers, and how a finished job's outcome is read.

A job's outcome is read from its folder, not from a process exit code, so a job whose
launcher died can still be followed to its true end: result.json means it trained,
failure.json carries the harness's reason, the cancel marker means an operator stopped it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mlops_tui.training.contract import CANCEL_FILE, FAILURE_FILE, LOG_FILE, RESULT_FILE

RUNNER_FILE = "runner.json"  # every runner writes it once the job is launched


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


def outcome_from_folder(job_dir: Path, ended_how: str = "") -> JobStatus:
    """The state of a job whose process has ended, from the files it left."""
    if (job_dir / CANCEL_FILE).exists():
        return JobStatus("cancelled", "cancelled by an operator")
    if (job_dir / RESULT_FILE).exists():
        return JobStatus("succeeded")
    failure = job_dir / FAILURE_FILE
    if failure.exists():
        try:
            reason = json.loads(failure.read_text()).get("reason", "")
        except (OSError, ValueError):
            reason = "the harness failed (unreadable failure.json)"
        return JobStatus("failed", str(reason)[:500] or "the harness failed")
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
    try:
        text = (job_dir / LOG_FILE).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])

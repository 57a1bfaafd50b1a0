"""The embedded default runner: the harness in a subprocess, in its own process group.

It runs the pipeline as the operator, without isolation: the pipeline's code can do whatever
the operator can. The host still reads the job's files as untrusted (see `folder`), but only
the Docker runner keeps a hostile pipeline away from the host.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from mlops_tui.runners.base import RUNNER_FILE, JobStatus, outcome_from_folder
from mlops_tui.runners.folder import JobFolder, create_log, write_host_file
from mlops_tui.training.contract import CANCEL_FILE, FAILURE_FILE, LOG_FILE, RESULT_FILE

NAME = "local"


def _proc_start_ticks(pid: int) -> int | None:
    """Start time of `pid` in clock ticks since boot (guards against pid reuse)."""
    if pid <= 0:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in ("Z", "X"):  # a zombie has finished
        return None
    return int(fields[19])


def launcher_identity() -> dict:
    """Who is preparing a job: this process, so others can tell whether it still lives."""
    return {"pid": os.getpid(), "start_ticks": _proc_start_ticks(os.getpid()),
            "host": socket.gethostname()}


def launcher_alive(identity: dict | None) -> bool | None:
    """Whether the process named by `launcher_identity()` still runs (None: can't tell)."""
    if not identity or identity.get("host") != socket.gethostname():
        return None
    pid, ticks = int(identity.get("pid", -1)), identity.get("start_ticks")
    return ticks is not None and _proc_start_ticks(pid) == ticks


class LocalJobHandle:
    """Follows a harness process by pid (started here or by a launcher that has died)."""

    def __init__(self, job_id: str, job_dir: Path, pid: int, start_ticks: int | None,
                 process: subprocess.Popen | None = None) -> None:
        self.job_id = job_id
        self.job_dir = job_dir
        self.pid = pid
        self.start_ticks = start_ticks
        self._process = process

    def _alive(self) -> bool:
        if self._process is not None:
            return self._process.poll() is None
        ticks = _proc_start_ticks(self.pid)
        return ticks is not None and ticks == self.start_ticks

    def status(self) -> JobStatus:
        if self._alive():
            return JobStatus("running")
        return outcome_from_folder(self.job_dir, "the harness process ended without a result "
                                                 "(killed?)")

    def cancel(self, grace: float = 3.0) -> None:
        """Mark the job cancelled and end its whole process group (TERM, then KILL)."""
        alive = self._alive()
        folder = JobFolder(self.job_dir)
        finished = any(folder.exists(name) for name in (RESULT_FILE, FAILURE_FILE))
        if self.job_dir.is_dir() and (alive or not finished):
            write_host_file(self.job_dir, CANCEL_FILE, "cancelled\n")
        if not alive:
            return
        try:
            os.killpg(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while self._alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._alive():
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self._process is not None:
            self._process.wait()

    def detail(self) -> dict:
        return {"runner": NAME, "pid": self.pid, "start_ticks": self.start_ticks}


def harness_command(folder: JobFolder, train: Path, holdout: Path) -> list[str]:
    return [sys.executable, "-m", "mlops_tui.training.harness", "--job", str(folder.work_dir),
            "--input", str(folder.input_dir), "--train", str(train), "--holdout", str(holdout)]


def start(job_id: str, job_dir: Path, train: Path, holdout: Path) -> LocalJobHandle:
    """Launch the harness in a new session (so cancel can end the whole group)."""
    folder = JobFolder(job_dir)
    log = create_log(folder.work_dir / LOG_FILE)
    try:
        package_root = str(Path(__file__).resolve().parents[2])
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, environment.get("PYTHONPATH")) if p)
        environment.pop("MLOPS_TUI_FAULT", None)  # the store's test hook is not the job's
        process = subprocess.Popen(
            harness_command(folder, train, holdout), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, cwd=folder.work_dir, start_new_session=True,
            env=environment,
        )
    finally:
        os.close(log)
    handle = LocalJobHandle(job_id, job_dir, process.pid, _proc_start_ticks(process.pid), process)
    write_host_file(job_dir, RUNNER_FILE, json.dumps(handle.detail()))
    return handle


def attach(job_id: str, job_dir: Path) -> LocalJobHandle:
    """A handle for a job started by another (possibly dead) process."""
    detail = JobFolder(job_dir).host_json(RUNNER_FILE)
    if detail is None:
        return LocalJobHandle(job_id, job_dir, -1, None)
    return LocalJobHandle(job_id, job_dir, int(detail.get("pid", -1)), detail.get("start_ticks"))

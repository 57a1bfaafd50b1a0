"""Small, real training workspaces for the training and jobs tests.

A workspace here is the sample scenario's configuration and default pipeline with a thin,
deterministic slice of the packaged observations ingested, so one retrain reads a few
hundred rows and is dominated by interpreter start-up, not by fitting. Fault pipelines wrap
the sample pipeline (kept beside them as `sample_train.py`) and misbehave for real: they
raise, tamper with the job folder after fitting, or wait for a release file.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from mlops_tui.core.models import DeploymentKind, JobState
from mlops_tui.services.workspace import Workspace, init_workspace, open_workspace

SLICE_EVERY = 12  # every 12th minute of the 50,400-row sample: 4,200 rows, ~1,400 per regime
SLICE_FILE = "sample-slice.parquet"
BASE_REGIME = "suv"  # the regime the base workspace trains and crowns


def write_sample_slice(path: Path, every: int = SLICE_EVERY, first: int = 0) -> Path:
    """Every `every`-th row of the packaged observations from row `first`, as Parquet."""
    import pyarrow.parquet as pq

    from mlops_tui.sample import packaged_observations_path

    table = pq.read_table(packaged_observations_path())
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.take(list(range(first, table.num_rows, every))), path)
    return path


def new_sample_workspace(root: Path) -> Workspace:
    """The sample configuration, the packaged pipeline and a small slice ingested."""
    from mlops_tui.sample import packaged_pipeline_dir
    from mlops_tui.services.demo import sample_config_text
    from mlops_tui.services.ingest import ingest_file

    workspace = init_workspace(root, config_text=sample_config_text(), command="tests")
    shutil.copytree(packaged_pipeline_dir(), workspace.root / "pipeline",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    ingest_file(workspace, write_sample_slice(root.parent / f"{root.name}-{SLICE_FILE}"))
    return workspace


def train_in_process(workspace: Workspace, regime: str):
    """One retrain through the same service, runner and harness as the CLI; its outcome."""
    from mlops_tui.runners.base import wait_for
    from mlops_tui.services import jobs as job_service
    from mlops_tui.services.retrain import RetrainRequest, start_retrain

    started = start_retrain(workspace, RetrainRequest(regime=regime))
    return job_service.follow_to_end(workspace, started.job, wait_for(started.handle, 120))


def build_base_workspace(root: Path) -> Workspace:
    """A sample workspace with one trained version of BASE_REGIME, crowned its champion."""
    from mlops_tui.services.deployments import record_deployment

    workspace = new_sample_workspace(root)
    outcome = train_in_process(workspace, BASE_REGIME)
    assert outcome.version is not None, outcome.message
    record_deployment(workspace, kind=DeploymentKind.CHAMPION, subject=BASE_REGIME,
                      version_id=outcome.version.id, action="promote",
                      reason="tests: first model")
    return workspace


def copy_workspace(source: Path, destination: Path) -> Workspace:
    """A private copy of a workspace (every stored path is relative to its root)."""
    shutil.copytree(source, destination, symlinks=True)
    return open_workspace(destination)


# -- pipelines that misbehave for real ---------------------------------------------------

WRAPPER_HEADER = '''"""Test pipeline: the sample pipeline (sample_train.py) plus a fault."""
import atexit
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from sample_train import predict, train as sample_train  # noqa: F401 - predict is used
'''

RAISES = WRAPPER_HEADER + '''

def train(frame, params):
    raise ValueError("adhesion sensor calibration table is empty")
'''

# After fitting, register a handler that runs when the harness exits with success: the job
# folder then looks finished but its result does not check out. TAMPER is the body.
TAMPER_TEMPLATE = WRAPPER_HEADER + '''

def _tamper():
    job = Path.cwd()
{body}


def train(frame, params):
    estimator = sample_train(frame, params)
    atexit.register(_tamper)
    return estimator
'''

TAMPER_BODIES = {
    "malformed-json": '    (job / "result.json").write_text("{\\"schema\\": 1, \\"metrics\\": ")',
    "invalid-schema": (
        '    document = json.loads((job / "result.json").read_text())\n'
        '    document["metrics"] = {"r2": "very good"}\n'
        '    document["rows_train"] = "many"\n'
        '    (job / "result.json").write_text(json.dumps(document))'),
    "hash-mismatch": (
        '    with open(job / "model.skops", "ab") as artifact:\n'
        '        artifact.write(b"tampered")'),
}

# Waits (at most two minutes) until the test drops a `release` file into the job folder;
# writes `harness.pid` and, with a child, starts a grandchild in the same process group.
SLOW_TEMPLATE = WRAPPER_HEADER + '''

def train(frame, params):
    job = Path.cwd()
    if {with_child}:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        (job / "child.pid").write_text(str(child.pid))
    (job / "harness.pid").write_text(str(os.getpid()))
    deadline = time.monotonic() + 120
    while not (job / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return sample_train(frame, params)
'''


def install_pipeline(workspace: Workspace, train_source: str) -> Path:
    """Replace the workspace pipeline's train.py, keeping the sample one as sample_train.py."""
    directory = workspace.root / "pipeline"
    sample = directory / "sample_train.py"
    if not sample.exists():
        shutil.copy2(directory / "train.py", sample)
    (directory / "train.py").write_text(train_source)
    return directory


def raises_pipeline() -> str:
    return RAISES


def tamper_pipeline(kind: str) -> str:
    return TAMPER_TEMPLATE.format(body=TAMPER_BODIES[kind])


def slow_pipeline(with_child: bool = False) -> str:
    return SLOW_TEMPLATE.replace("{with_child}", str(with_child))


# -- observing jobs and processes --------------------------------------------------------


def wait_until(predicate: Callable[[], object], timeout: float, what: str,
               poll: float = 0.05) -> object:
    """Poll `predicate` until it returns something truthy; fail naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(poll)


def pid_gone(pid: int) -> bool:
    """True once `pid` has ended (a zombie awaiting its parent's wait() has ended too)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def only_job_dir(workspace: Workspace, exclude: set[str] = frozenset()) -> Path | None:
    """The one job folder not in `exclude` (None until it exists)."""
    folders = [p for p in workspace.jobs_root.iterdir() if p.name not in exclude]
    assert len(folders) <= 1, folders
    return folders[0] if folders else None


def version_count(workspace: Workspace) -> int:
    from mlops_tui.services.registry import list_versions

    return list_versions(workspace, limit=None).total


def job_state(workspace: Workspace, job_id: str) -> JobState:
    from mlops_tui.services.jobs import get_job

    return get_job(workspace, job_id).state


def versions_of_job(workspace: Workspace, job_id: str) -> list[str]:
    from mlops_tui.services.registry import list_versions

    return [v.id for v in list_versions(workspace, limit=None).versions if v.job_id == job_id]


def store_verifies(workspace: Workspace) -> list[str]:
    """The problems `store verify` finds (empty when it passes)."""
    from mlops_tui.services.maintenance import verify_store

    return verify_store(workspace).problems


def kill_if_alive(pid: int) -> None:
    """Best-effort cleanup of a test's stray process group (never a broad kill)."""
    import signal

    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


_BASE_ROOTS: dict[str, Path] = {}


def base_workspace_root(tmp_path_factory) -> Path:
    """The base workspace of this test process (built once per xdist worker, then copied)."""
    if "root" not in _BASE_ROOTS:
        root = tmp_path_factory.mktemp("training-base") / "ws"
        _BASE_ROOTS["root"] = build_base_workspace(root).root
    return _BASE_ROOTS["root"]

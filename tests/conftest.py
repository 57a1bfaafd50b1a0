"""Shared fixtures: an isolated environment, a real workspace, real versions, the real CLI.

Everything here builds real, throwaway data: a DuckDB file in `tmp_path`, skops artifacts of
fitted scikit-learn pipelines, code directories on disk, and `mlops-tui` run as a subprocess.
The helpers are plain functions too, so subprocess worker scripts can import them.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mlops_tui.core.models import DataSnapshot, EnvSnapshot, ModelVersion
from mlops_tui.services.workspace import Workspace, init_workspace

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
ISOLATED_VARIABLES = ("MLOPS_TUI_WORKSPACE", "MLOPS_TUI_FAULT", "MLOPS_TUI_DEBUG", "NO_COLOR")
LOCK_TIMEOUT_SECONDS = "5"


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep the developer's workspace, fault hooks and colours out of every test."""
    for name in ISOLATED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLOPS_TUI_LOCK_TIMEOUT", LOCK_TIMEOUT_SECONDS)
    monkeypatch.chdir(tmp_path)  # a command without --workspace never finds a real one


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A freshly initialised workspace with the default configuration."""
    return init_workspace(tmp_path / "ws")


# -- real versions ------------------------------------------------------------------------


def train_pipeline(seed: int = 0, rows: int = 40, features: int = 3):
    """A fitted Pipeline(StandardScaler, Ridge) on seeded random data."""
    import numpy as np
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features))
    y = x @ rng.normal(size=features) + rng.normal(scale=0.1, size=rows)
    return Pipeline([("scale", StandardScaler()), ("ridge", Ridge(alpha=1.0))]).fit(x, y)


def write_artifact(directory: Path, estimator: Any, name: str = "model.skops") -> Path:
    from mlops_tui.artifacts.weights import dumps

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(dumps(estimator))
    return path


def write_code_dir(directory: Path, marker: str = "") -> Path:
    """A tiny pipeline directory: train.py and requirements.txt (plus a cache to skip)."""
    import sklearn

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "train.py").write_text(
        "from sklearn.linear_model import Ridge\n\n\n"
        f"def build():  # {marker}\n    return Ridge()\n"
    )
    (directory / "requirements.txt").write_text(f"scikit-learn=={sklearn.__version__}\n")
    (directory / "__pycache__").mkdir(exist_ok=True)
    (directory / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"not code")
    return directory


@functools.lru_cache(maxsize=1)
def host_environment() -> EnvSnapshot:
    """This interpreter's environment (captured once: it does not change during a run)."""
    from mlops_tui.services.environments import capture_host

    return capture_host()


def data_snapshot(kind: str = "train", regime: str | None = "a", rows: int = 40,
                  seed: int = 0) -> DataSnapshot:
    fingerprint = hashlib.sha256(f"{kind}-{regime}-{rows}-{seed}".encode()).hexdigest()
    return DataSnapshot(
        fingerprint=fingerprint, kind=kind, rows=rows, regime=regime,
        time_min=datetime(2026, 1, 1, tzinfo=UTC), time_max=datetime(2026, 1, 2, tzinfo=UTC),
        path=f"data/snapshots/{fingerprint}.parquet",
    )


def register_real_version(
    ws: Workspace,
    *,
    regime: str = "a",
    seed: int = 0,
    estimator: Any = None,
    with_data: bool = False,
    code_marker: str = "",
    environment: EnvSnapshot | None = None,
    **registration: Any,
) -> ModelVersion:
    """Register a real version: fitted pipeline, skops artifact, code dir, host environment.

    Extra keyword arguments go to `Registration` (metrics, trigger, runner, parent, ...).
    """
    from mlops_tui.services.registry import Registration, register_version

    key = hashlib.sha256(repr((regime, seed, code_marker)).encode()).hexdigest()[:12]
    inputs = ws.root.parent / "inputs" / key  # the regime may be hostile: not a path part
    artifact = write_artifact(inputs, estimator if estimator is not None else train_pipeline(seed))
    code_dir = write_code_dir(inputs / "pipeline", code_marker)
    if with_data:
        registration.setdefault("train", data_snapshot("train", regime, seed=seed))
        registration.setdefault("holdout", data_snapshot("holdout", regime, rows=10, seed=seed))
    return register_version(ws, Registration(
        regime=regime, artifact_file=artifact, code_dir=code_dir,
        environment=environment or host_environment(), **registration,
    ))


@pytest.fixture
def register(workspace: Workspace):
    """`register(**kwargs)` registers a real version in the `workspace` fixture."""
    return functools.partial(register_real_version, workspace)


# -- the real CLI -------------------------------------------------------------------------


def run_cli(
    *args: str,
    workspace: Workspace | Path | str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> tuple[int, str, str]:
    """Run `python -m mlops_tui.cli.main [--workspace W] ARGS...`; return (code, out, err)."""
    command = [sys.executable, "-m", "mlops_tui.cli.main"]
    if workspace is not None:
        root = workspace.root if isinstance(workspace, Workspace) else workspace
        command += ["--workspace", str(root)]
    environment = dict(os.environ)
    environment["COLUMNS"] = "200"  # human output is not wrapped mid-word
    environment.update(env or {})
    done = subprocess.run(command + list(args), capture_output=True, text=True,
                          env=environment, timeout=timeout, check=False)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture(name="run_cli")
def run_cli_fixture():
    return run_cli


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def shared_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """`mlops-tui demo --no-tui --workspace W`, run once per session from an unrelated
    directory; xdist workers share it behind a file lock. (W, the demo's stdout/stderr).
    Tests that change the workspace copy it first."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    workspace, summary = shared / "demo-workspace", shared / "demo-summary.json"
    with open(shared / "demo.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not summary.exists():
            shutil.rmtree(workspace, ignore_errors=True)
            elsewhere = shared / "demo-cwd"
            elsewhere.mkdir(exist_ok=True)
            environment = {k: v for k, v in os.environ.items() if k not in ISOLATED_VARIABLES}
            done = subprocess.run(
                [sys.executable, "-m", "mlops_tui.cli.main", "demo", "--no-tui",
                 "--workspace", str(workspace)], capture_output=True, text=True,
                cwd=elsewhere, env=environment | {"COLUMNS": "200"}, timeout=300, check=False)
            assert done.returncode == 0, done.stderr
            summary.write_text(json.dumps({"stdout": done.stdout, "stderr": done.stderr}))
    return workspace, json.loads(summary.read_text())


def pytest_terminal_summary(terminalreporter) -> None:
    """The SIGKILL matrix's totals (runs, violations, lost writes, tracebacks), when it ran."""
    from crash_tally import terminal_summary

    terminal_summary(terminalreporter)

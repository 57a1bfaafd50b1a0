"""The dashboard's test workspace ("plant-a") and helpers to drive the app.

`build_plant` makes a demo-like workspace through the real services: the sample line's
observations (a deterministic slice) ingested, versions trained in-process with the sample
pipeline and registered with `register_version`, champions and the production target's
history recorded with `record_deployment` (one manual deploy rolled back), drift computed and
recorded by the drift service, and retrain jobs that really failed or were really cancelled.

With `frozen=True` the build runs inside a frozen world: the clock starts at a fixed time
and moves only when the builder says so (time-machine), uuid4 yields a fixed sequence, and
the actor is `operator@plant-a`. Environments are fixed snapshots (not this host's), so the
same build gives the same store on every run: snapshots compare equal.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mlops_tui.core.models import DeploymentKind, Trigger
from mlops_tui.services.workspace import Workspace, init_workspace, open_workspace

SNAPSHOT_NOW = datetime(2026, 2, 9, 6, 30, tzinfo=UTC)  # "now" for every frozen dashboard
SLICE_EVERY = 4  # every 4th minute of the sample: 12,600 rows, about 90 per 6h window
PLANT = "plant-a"

# Two trainer images: B moves scikit-learn and numpy by a minor version (breaking for a
# model that needs them), pandas by a minor, drops pyarrow and adds polars.
_BASE_PACKAGES = {
    "joblib": "1.4.2", "numpy": "2.1.3", "pandas": "2.2.3", "pyarrow": "17.0.0",
    "python-dateutil": "2.9.0.post0", "pytz": "2024.2", "scikit-learn": "1.5.2",
    "scipy": "1.14.1", "six": "1.16.0", "skops": "0.10.0", "threadpoolctl": "3.5.0",
    "tzdata": "2024.2", "prettytable": "3.12.0", "wcwidth": "0.2.13",
}
ENV_A = {"python_version": "3.11.9", "implementation": "CPython",
         "platform": "Linux-6.1.0-x86_64-with-glibc2.36", "packages": _BASE_PACKAGES}
ENV_B = {"python_version": "3.11.11", "implementation": "CPython",
         "platform": "Linux-6.1.0-x86_64-with-glibc2.36",
         "packages": {**{k: v for k, v in _BASE_PACKAGES.items() if k != "pyarrow"},
                      "numpy": "2.2.1", "scikit-learn": "1.6.1", "pandas": "2.3.0",
                      "polars": "1.17.1", "threadpoolctl": "3.5.1"}}


# -- a frozen world ------------------------------------------------------------------------------


class World:
    """The build's clock: it moves only by `at(...)` or `later(...)`."""

    def __init__(self, traveller: Any | None) -> None:
        self.traveller = traveller

    def at(self, moment: datetime) -> None:
        if self.traveller is not None:
            self.traveller.move_to(moment)

    def later(self, minutes: float = 1) -> None:
        if self.traveller is not None:
            self.traveller.shift(timedelta(minutes=minutes))


@contextmanager
def frozen_world(start: datetime, frozen: bool = True) -> Iterator[World]:
    """A fixed clock, a fixed uuid4 sequence and a fixed actor, for a reproducible store."""
    if not frozen:
        yield World(None)
        return
    import time_machine

    counter = itertools.count(1)

    def next_uuid() -> uuid.UUID:
        digest = hashlib.sha256(f"plant-a-{next(counter)}".encode()).hexdigest()
        return uuid.UUID(digest[:32], version=4)

    job_counter = itertools.count(1)

    def next_job_id() -> uuid.UUID:
        digest = hashlib.sha256(f"plant-a-job-{next(job_counter)}".encode()).hexdigest()
        return uuid.UUID(digest[:32], version=4)

    with pytest.MonkeyPatch.context() as patch, time_machine.travel(start, tick=False) as t:
        patch.setattr(uuid, "uuid4", next_uuid)
        # Job ids are on screen: their own sequence, whatever else draws a uuid4 meanwhile.
        patch.setattr("mlops_tui.services.retrain.uuid", SimpleNamespace(uuid4=next_job_id))
        patch.setattr("getpass.getuser", lambda: "operator")
        patch.setattr("socket.gethostname", lambda: PLANT)
        patch.delenv("SSH_CONNECTION", raising=False)
        yield World(t)


# -- building plant-a ------------------------------------------------------------------------------


def _slice(path: Path) -> Path:
    import pyarrow.parquet as pq

    from mlops_tui.sample import packaged_observations_path

    table = pq.read_table(packaged_observations_path())
    pq.write_table(table.take(list(range(0, table.num_rows, SLICE_EVERY))), path)
    return path


def _snapshot(workspace: Workspace, frame, kind: str, regime: str):
    from mlops_tui.core.models import DataSnapshot

    folder = workspace.data_root / "snapshots"
    folder.mkdir(parents=True, exist_ok=True)
    scratch = folder / f".{kind}.tmp"
    frame.to_parquet(scratch, index=False)
    fingerprint = hashlib.sha256(scratch.read_bytes()).hexdigest()
    target = folder / f"{fingerprint}.parquet"
    scratch.replace(target)
    return DataSnapshot(fingerprint=fingerprint, kind=kind, rows=len(frame), regime=regime,
                        time_min=frame["ts"].min().to_pydatetime(),
                        time_max=frame["ts"].max().to_pydatetime(),
                        path=target.relative_to(workspace.root).as_posix())


# (regime, trigger, environment, code variant, parent, registered at, training rows from, to)
VERSION_PLAN: list[tuple[str, Trigger, dict, int, int | None, str, str, str]] = [
    ("sedan", Trigger.MANUAL, ENV_A, 0, None, "01-06T00:00", "01-05T00:00", "01-06T00:00"),
    ("suv", Trigger.REGIME_NEW, ENV_A, 0, None, "01-14T06:00", "01-13T14:00", "01-14T06:00"),
    ("sedan", Trigger.SCHEDULE, ENV_A, 0, 1, "01-20T08:00", "01-05T00:00", "01-20T08:00"),
    ("suv", Trigger.CODE_CHANGE, ENV_B, 1, 2, "01-21T00:00", "01-13T14:00", "01-19T22:00"),
    ("pickup", Trigger.REGIME_NEW, ENV_A, 0, None, "01-27T06:00", "01-26T14:00", "01-27T06:00"),
    ("pickup", Trigger.DEPENDENCY_CHANGE, ENV_B, 0, 5, "01-30T00:00", "01-26T14:00",
     "01-30T00:00"),
    ("sedan", Trigger.DRIFT, ENV_B, 0, 3, "02-06T00:00", "02-03T00:00", "02-06T00:00"),
]
# (at, kind, subject, version, action, pinned, reason)
DEPLOYMENT_PLAN: list[tuple[str, DeploymentKind, str, int, str, bool, str]] = [
    ("01-06T00:05", DeploymentKind.CHAMPION, "sedan", 1, "promote", False, "first sedan model"),
    ("01-06T00:10", DeploymentKind.ACTIVE, "production", 1, "deploy", False, "line runs sedan"),
    ("01-14T06:05", DeploymentKind.CHAMPION, "suv", 2, "promote", False, "first suv model"),
    ("01-14T06:10", DeploymentKind.ACTIVE, "production", 2, "deploy", False,
     "line switched to suv"),
    ("01-20T08:05", DeploymentKind.CHAMPION, "sedan", 3, "promote", False,
     "weekly retrain: better holdout r2"),
    ("01-20T08:10", DeploymentKind.ACTIVE, "production", 3, "deploy", False,
     "line switched back to sedan"),
    ("01-21T00:05", DeploymentKind.CHAMPION, "suv", 4, "promote", False, "new feature code"),
    ("01-27T06:05", DeploymentKind.CHAMPION, "pickup", 5, "promote", False,
     "first pickup model"),
    ("01-27T06:10", DeploymentKind.ACTIVE, "production", 5, "deploy", False,
     "line switched to pickup"),
    ("01-30T00:05", DeploymentKind.CHAMPION, "pickup", 6, "promote", False,
     "rebuilt on the new image"),
    ("01-30T00:10", DeploymentKind.ACTIVE, "production", 6, "deploy", False,
     "pickup champion changed"),
    ("01-30T06:00", DeploymentKind.ACTIVE, "production", 5, "rollback", True,
     "v6 rejects good parts"),
    ("02-01T04:10", DeploymentKind.ACTIVE, "production", 3, "deploy", True,
     "line switched back to sedan"),
    ("02-06T12:00", DeploymentKind.ACTIVE, "production", 7, "deploy", True,
     "try the drift retrain"),
]
SERVING_IMAGE = "image:mlops-trainer:a"  # the serving environment: trainer image A


def moment(text: str) -> datetime:
    return datetime.fromisoformat(f"2026-{text}:00+00:00")


def stable_skops(data: bytes) -> bytes:
    """The same skops archive with its object ids renumbered in order of appearance.

    skops names arrays and marks shared objects by `id()`, a memory address, so two dumps
    of one model differ from run to run. Renumbering consistently (and fixing the zip
    entries' times) keeps a loadable archive whose hash, shown by the dashboard, is stable.
    The archive also names the scikit-learn and skops releases that wrote it, which move
    with every fresh install; they are set to the ones ENV_A claims, so the hash on screen
    does not change when either library has a new release.
    """
    import re
    import zipfile

    source = zipfile.ZipFile(io.BytesIO(data))
    schema = source.read("schema.json").decode()
    numbers: dict[str, str] = {}
    for found in re.finditer(r'"__id__": (\d+)|"(\d+)\.npy"', schema):
        numbers.setdefault(found.group(1) or found.group(2), str(len(numbers) + 1))
    for name in source.namelist():
        if name.endswith(".npy"):
            numbers.setdefault(name[:-4], str(len(numbers) + 1))
    schema = re.sub(r'("__id__": )(\d+)', lambda m: m.group(1) + numbers[m.group(2)], schema)
    schema = re.sub(r'"(\d+)\.npy"', lambda m: f'"{numbers[m.group(1)]}.npy"', schema)
    sklearn, skops = ENV_A["packages"]["scikit-learn"], ENV_A["packages"]["skops"]
    schema = re.sub(r'("_sklearn_version": \{[^{}]*"content": )"(?:[^"\\]|\\.)*"',
                    lambda m: m.group(1) + json.dumps(json.dumps(sklearn)), schema)
    schema = re.sub(r'("_skops_version": )"[^"]*"', lambda m: m.group(1) + json.dumps(skops),
                    schema)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name in sorted(source.namelist(), key=lambda n: (
                n != "schema.json", int(numbers.get(n[:-4], 0)) if n.endswith(".npy") else 0)):
            body = schema.encode() if name == "schema.json" else source.read(name)
            renamed = f"{numbers[name[:-4]]}.npy" if name.endswith(".npy") else name
            info = zipfile.ZipInfo(renamed, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = source.getinfo(name).compress_type
            target.writestr(info, body)
    return out.getvalue()


def _code_variants(workspace: Workspace) -> list[Path]:
    """The packaged pipeline, and a copy with a stronger ridge penalty (a code change)."""
    from mlops_tui.sample import packaged_pipeline_dir

    variants = []
    for number, alpha in enumerate(("1.0", "3.0")):
        target = workspace.root.parent / f"{workspace.root.name}-code{number}"
        shutil.copytree(packaged_pipeline_dir(), target,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        params = target / "params.toml"
        params.write_text(params.read_text().replace("alpha = 1.0", f"alpha = {alpha}"))
        variants.append(target)
    return variants


def _register_versions(workspace: Workspace, world: World, observations: Path) -> None:
    import importlib.util

    import numpy as np
    import pandas as pd

    from mlops_tui.artifacts import weights
    from mlops_tui.sample import packaged_ground_truth
    from mlops_tui.services.registry import Registration, env_from_capture, register_version

    truth = packaged_ground_truth()
    frame = pd.read_parquet(observations)
    params = {"features_numeric": truth["features_numeric"],
              "features_categorical": truth["features_categorical"], "label": truth["label"]}
    codes = _code_variants(workspace)
    spec = importlib.util.spec_from_file_location("plant_train", codes[0] / "train.py")
    train_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_module)
    inputs = workspace.root.parent / f"{workspace.root.name}-inputs"
    inputs.mkdir(exist_ok=True)
    for regime, trigger, env, code, parent, at, since, until in VERSION_PLAN:
        world.at(moment(at))
        rows = frame[(frame["ts"] >= pd.Timestamp(moment(since)))
                     & (frame["ts"] < pd.Timestamp(moment(until)))
                     & (frame["car_model"] == regime)]
        labelled = rows[rows[truth["label"]].notna()]
        cut = int(len(labelled) * 0.8)
        train, holdout = labelled.iloc[:cut], labelled.iloc[cut:]
        estimator = train_module.train(train, params | {"alpha": 1.0 + 2.0 * code})
        error = train_module.predict(estimator, holdout) - holdout[truth["label"]]
        spread = float(np.var(holdout[truth["label"]]))
        metrics = {"mae": round(float(np.mean(np.abs(error))), 6),
                   "rmse": round(float(np.sqrt(np.mean(error ** 2))), 6),
                   "r2": round(1.0 - float(np.mean(error ** 2)) / spread, 6)}
        artifact = inputs / f"{regime}-{at}.skops"
        artifact.write_bytes(stable_skops(weights.dumps(estimator)))
        source = "image:mlops-trainer:" + ("a" if env is ENV_A else "b")
        register_version(workspace, Registration(
            regime=regime, artifact_file=artifact, code_dir=codes[code],
            environment=env_from_capture(env, source, captured_at=moment(at)),
            metrics=metrics, trigger=trigger, runner="docker",
            image=f"mlops-tui-trainer:{'a' if env is ENV_A else 'b'}1c2d3e4f5a6b",
            train=_snapshot(workspace, train, "train", regime),
            holdout=_snapshot(workspace, holdout, "holdout", regime), parent=parent))


def _deploy_history(workspace: Workspace, world: World) -> None:
    from mlops_tui.services.deployments import record_deployment

    for at, kind, subject, version, action, pinned, reason in DEPLOYMENT_PLAN:
        world.at(moment(at))
        # every row is ingested first: the change acted on the data up to its moment
        record_deployment(workspace, kind=kind, subject=subject, version_id=f"v{version}",
                          action=action, reason=reason, pinned=pinned, data_time=moment(at))


def _jobs(workspace: Workspace, world: World) -> None:
    """A retrain cancelled by an operator, and one that failed before it could start."""
    from mlops_tui.core.errors import UsageError
    from mlops_tui.services.jobs import cancel_job
    from mlops_tui.services.retrain import RetrainRequest, start_retrain

    world.at(moment("02-08T10:00"))
    started = start_retrain(workspace, RetrainRequest(regime="suv", reason="nightly"))
    world.later(2)
    cancel_job(workspace, started.job.id)
    world.at(moment("02-08T22:00"))
    try:
        start_retrain(workspace, RetrainRequest(regime="pickup", since=moment("02-08T00:00"),
                                                reason="pickup again?"))
    except UsageError:
        pass  # no pickup rows since: the job is recorded as failed, which is the point
    else:  # pragma: no cover - the sample has no pickup rows in February
        raise AssertionError("the pickup retrain should have failed before starting")


def _drift(workspace: Workspace, world: World) -> None:
    from mlops_tui.services.drift_compute import compute_drift, record_drift
    from mlops_tui.services.references import ensure_profiles

    world.at(moment("02-09T06:00"))
    ensure_profiles(workspace)
    record_drift(workspace, compute_drift(workspace))


def build_plant(root: Path, *, frozen: bool = True, with_jobs: bool = True) -> Workspace:
    """plant-a at `root` (see the module docstring); a few seconds."""
    from mlops_tui.sample import packaged_pipeline_dir
    from mlops_tui.services.demo import sample_config_text
    from mlops_tui.services.ingest import ingest_file

    with frozen_world(moment("01-05T00:00"), frozen) as world:
        config = sample_config_text().replace('environment = "host"',
                                              f'environment = "{SERVING_IMAGE}"')
        workspace = init_workspace(root, config_text=config, command="tests")
        shutil.copytree(packaged_pipeline_dir(), workspace.root / "pipeline",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        observations = _slice(root.parent / f"{root.name}-observations.parquet")
        world.at(moment("01-05T00:01"))
        # the frozen wall clock is early in the scenario: the plausible-time bound is the
        # scenario's end, as for data recorded then
        ingest_file(workspace, observations, now=moment("12-31T00:00"))
        _register_versions(workspace, world, observations)
        _deploy_history(workspace, world)
        if with_jobs:
            _jobs(workspace, world)
        _drift(workspace, world)
    return open_workspace(root)


def plant_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """plant-a, built once per test process (xdist worker) and copied by each test."""
    base = tmp_path_factory.getbasetemp() / "plant-template"
    root = base / PLANT
    if not (base / "complete").exists():
        if base.exists():
            shutil.rmtree(base)  # an earlier build in this process failed half-way
        base.mkdir()
        build_plant(root)
        (base / "complete").write_text("built\n")
    return root


def copy_workspace(template: Path, destination: Path) -> Workspace:
    """A private copy of a built workspace (the DuckDB file, artifacts, snapshots, jobs)."""
    shutil.copytree(template, destination, symlinks=True)
    return open_workspace(destination)


# -- driving the app ---------------------------------------------------------------------------


def frozen_clock() -> datetime:
    return SNAPSHOT_NOW


def make_app(workspace: Workspace, *, readonly: bool = False, frozen: bool = True):
    from mlops_tui.tui.app import MlopsApp

    return MlopsApp(workspace, readonly=readonly, refresh_seconds=3600,
                    **({"clock": frozen_clock} if frozen else {}))


def _tables_measuring(app) -> bool:
    """Whether a DataTable has rows whose column widths it has not measured yet (it does so
    when idle; a picture taken before shows columns as wide as their labels)."""
    from textual.widgets import DataTable

    return any(table._require_update_dimensions or table._updated_cells
               or _narrower_than_cells(table) for table in app.screen.query(DataTable))


def _narrower_than_cells(table) -> bool:
    """A column narrower than its widest cell: its rows arrived after the last measure (seen
    on a loaded machine), so wait for the next one."""
    from rich.text import Text

    if table.row_count > 500:
        return False
    for column in table.ordered_columns:
        if not column.auto_width:
            continue
        for row in table.ordered_rows:
            cell = table.get_cell(row.key, column.key)
            width = cell.cell_len if isinstance(cell, Text) else Text(str(cell)).cell_len
            if width > column.content_width:
                return True
    return False


async def settle(pilot, timeout: float = 60.0) -> None:
    """Wait until no worker runs and no message is pending (loads start further loads).
    A log follower runs as long as its job does, so it is not waited for."""
    import asyncio
    import time

    app = pilot.app
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 3:
        busy = [w for w in app.workers if w.is_running and w.group != "log"]
        if not getattr(app.screen, "settled", True):
            busy.append("the view's data")  # a view just pushed, or a delayed load, is coming
        if _tables_measuring(app):
            busy.append("a table's column widths")  # measured on the table's next idle
        if busy:
            quiet = 0
            if time.monotonic() > deadline:
                raise TimeoutError(f"workers still running: {busy}")
            await asyncio.sleep(0.02)
        else:
            quiet += 1
        await pilot.pause()


def keys_for(text: str) -> list[str]:
    """Key names that type `text` (a space is the `space` key)."""
    return ["space" if character == " " else character for character in text]


def screen_text(app) -> str:
    """What the terminal shows now, as plain text (one line per row)."""
    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False)
    console.print(app.screen._compositor.render_update(
        full=True, screen_stack=app._background_screens, simplify=True))
    return console.export_text()


def error_modal_open(app) -> bool:
    from mlops_tui.tui.screens.modals import ErrorScreen

    return any(isinstance(screen, ErrorScreen) for screen in app.screen_stack)


TEXTUAL_VARIABLES = ("NO_COLOR", "COLORTERM", "FORCE_COLOR", "TERM_PROGRAM")


def clean_terminal_environment(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """No colour or Textual settings from the developer's shell; HOME where `~` shows."""
    import os

    for name in list(os.environ):
        if name.startswith("TEXTUAL_SNAPSHOT"):
            continue  # the snapshot plugin's own bookkeeping, not a terminal setting
        if name.startswith("TEXTUAL_") or name in TEXTUAL_VARIABLES:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    # the theme follows the terminal's colours (16 colours: the ANSI palette); a fixed TERM
    # keeps the pictures the same whatever terminal runs the tests
    monkeypatch.setenv("TERM", "xterm-256color")

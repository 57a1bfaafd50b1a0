"""Real workspaces for the drift and regime tests: the sample scenario, and a second,
differently named data set made by a small generator (nothing may assume the sample's names).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from conftest import register_real_version

from mlops_tui.core.models import DataSnapshot, DeploymentKind, ModelVersion
from mlops_tui.services.deployments import record_deployment
from mlops_tui.services.ingest import ingest_file
from mlops_tui.services.workspace import Workspace, init_workspace


def snapshot_of(workspace: Workspace, table: pa.Table, regime: str) -> DataSnapshot:
    """Write `table` as a training snapshot inside the workspace, named by its content."""
    folder = workspace.data_root / "snapshots"
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / f".{regime}.parquet"
    pq.write_table(table, staging)
    fingerprint = hashlib.sha256(staging.read_bytes()).hexdigest()
    target = folder / f"{fingerprint}.parquet"
    staging.replace(target)
    return DataSnapshot(fingerprint, "train", table.num_rows, regime, None, None,
                        target.relative_to(workspace.root).as_posix())


def champion(workspace: Workspace, regime: str, train: pa.Table, estimator=None,
             seed: int = 0) -> ModelVersion:
    """Register a real version trained (for the record) on `train` and make it champion."""
    version = register_real_version(workspace, regime=regime, seed=seed, estimator=estimator,
                                    train=snapshot_of(workspace, train, regime))
    record_deployment(workspace, kind=DeploymentKind.CHAMPION, subject=regime,
                      version_id=version.id, action="promote", reason="test champion")
    return version


# -- the sample scenario ------------------------------------------------------------------------

def sample_config(*, regime_column: bool = True) -> str:
    """The demo's sample config (it ignores `shift`, derived from the hour, and derives
    thresholds from the reference), optionally without the regime column."""
    from mlops_tui.services.demo import sample_config_text

    text = sample_config_text()
    assert 'ignore = ["shift"]' in text and 'threshold_mode = "reference"' in text
    if not regime_column:
        text = "\n".join(line for line in text.splitlines()
                         if not line.startswith("regime_column")) + "\n"
    return text


def _between(table: pa.Table, start: str, end: str) -> np.ndarray:
    ts = table.column("ts").to_numpy()
    return (ts >= np.datetime64(start.rstrip("Z"))) & (ts < np.datetime64(end.rstrip("Z")))


def build_sample(root: Path, *, seed: int = 7, regime_column: bool = True
                 ) -> tuple[Workspace, dict]:
    """The sample scenario ingested, with a champion per car model trained on its stretches
    (sedan on the first two sedan stretches, as the demo's weekly retrain does)."""
    from mlops_tui.sample import generator

    table, truth = generator.generate(seed=seed)
    workspace = init_workspace(root, config_text=sample_config(regime_column=regime_column))
    observed = table if regime_column else table.drop_columns([truth["regime_column"]])
    pq.write_table(observed, root.parent / f"{root.name}-observations.parquet")
    ingest_file(workspace, root.parent / f"{root.name}-observations.parquet")
    periods = truth["periods"]
    regimes = table.column(truth["regime_column"]).to_numpy(zero_copy_only=False)
    for regime, stretches in (("sedan", (0, 2)), ("suv", (1,)), ("pickup", (3,))):
        mask = np.zeros(table.num_rows, dtype=bool)
        for index in stretches:
            mask |= _between(table, periods[index]["start"], periods[index]["end"])
        mask &= regimes == regime
        champion(workspace, regime, observed.filter(pa.array(mask)))
    return workspace, truth


# -- a second, differently named data set -------------------------------------------------------

RECIPE_MEANS = {"alpha": (5.0, 120.0, 350.0), "beta": (7.5, 90.0, 365.0)}
RECIPE_STDS = {"alpha": (0.4, 8.0, 3.0), "beta": (0.5, 6.0, 2.5)}
BYOD_CONFIG = """
[data]
id_column = "row_key"
timestamp_column = "event_time"
label_column = "yield_pct"
regime_column = "recipe"
numeric = ["pressure_bar", "flow_lpm", "temp_k"]
categorical = ["line", "valve"]
window = "1h"

[drift]
min_rows = 20
"""


def byod_table(start: datetime, schedule: list[tuple[str, int]], *, seed: int = 0,
               rows_per_hour: int = 120, pressure_drift_from: int | None = None,
               with_label: bool = True, first_id: int = 0) -> pa.Table:
    """A bottling line: `schedule` is (recipe, hours) in order; optional pressure drift
    (+0.05 bar per hour from that hour on); yield depends on the features."""
    rng = np.random.default_rng(seed)
    step = timedelta(hours=1) / rows_per_hour
    recipes: list[str] = []
    for recipe, hours in schedule:
        recipes += [recipe] * hours * rows_per_hour
    n = len(recipes)
    codes = np.array([list(RECIPE_MEANS).index(r) for r in recipes])
    means = np.array(list(RECIPE_MEANS.values()))[codes]
    stds = np.array(list(RECIPE_STDS.values()))[codes]
    values = means + stds * rng.standard_normal((n, 3))
    hours = np.arange(n) / rows_per_hour
    if pressure_drift_from is not None:
        values[:, 0] += 0.05 * np.clip(hours - pressure_drift_from, 0, None)
    line = rng.choice(np.array(["l1", "l2", "l3"], dtype=object), n, p=[0.5, 0.3, 0.2])
    valve = np.where(rng.random(n) < np.where(codes == 0, 0.7, 0.4), "open", "closed")
    label = 50 + 2.0 * values[:, 0] + 0.05 * values[:, 1] - 0.1 * (values[:, 2] - 350) \
        + rng.normal(0, 0.5, n)
    columns = {
        "row_key": pa.array([f"k{first_id + i:06d}" for i in range(n)]),
        "event_time": pa.array([start + i * step for i in range(n)],
                               type=pa.timestamp("us", tz="UTC")),
        "recipe": pa.array(recipes),
        "pressure_bar": pa.array(np.round(values[:, 0], 4)),
        "flow_lpm": pa.array(np.round(values[:, 1], 3)),
        "temp_k": pa.array(np.round(values[:, 2], 3)),
        "line": pa.array(line.tolist()),
        "valve": pa.array(valve.tolist()),
    }
    if with_label:
        columns["yield_pct"] = pa.array(np.round(label, 3))
    return pa.table(columns)


def next_hour(offset_hours: int = 1) -> datetime:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return now + timedelta(hours=offset_hours)

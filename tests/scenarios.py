"""Generated scenarios for the drift and regime acceptance tests (pure numpy/pyarrow: no store).

Each generator is its own function returning `(table, truth)`; the tests ingest the table
through the real services.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa

# -- natural variation: AR(1) daily means, regimes that return ---------------------------------

NATURAL_START = datetime(2025, 1, 6, tzinfo=UTC)
NATURAL_VISITS = ("a", "b", "a", "c", "b", "a")
NATURAL_DAYS = 60  # per visit
NATURAL_ROWS_PER_DAY = 288  # one row every 5 minutes
NATURAL_TRAIN_DAYS = 45  # each regime's champion: the first 45 days of its first visit
NATURAL_NUMERIC = ("x1", "x2", "x3", "x4", "x5", "x6")
NATURAL_CATEGORICAL = ("grade",)
NATURAL_GRADES = ("g1", "g2", "g3")
# Operating points in row standard deviations: any two regimes are 2.5 sd apart or more on
# four of the seven features (a majority, as `[drift] dataset_share = 0.5` needs; x5, x6
# never change) and differ in their grade shares.
NATURAL_MEANS = {"a": (0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
                 "b": (2.5, -2.5, 2.5, 2.5, 0.0, 0.0),
                 "c": (-2.5, 2.5, -2.5, -2.5, 0.0, 0.0)}
NATURAL_SHARES = {"a": (0.6, 0.3, 0.1), "b": (0.2, 0.3, 0.5), "c": (0.3, 0.5, 0.2)}
NATURAL_SPREAD = 0.3  # stationary sd of the daily means, in row standard deviations
NATURAL_PHI = 0.8  # AR(1) coefficient from one day to the next
NATURAL_CONFIG = """
[data]
id_column = "row_id"
timestamp_column = "ts"
regime_column = "mode"
numeric = ["x1", "x2", "x3", "x4", "x5", "x6"]
categorical = ["grade"]
window = "1d"
"""


def _ar1(rng: np.random.Generator, days: int, features: int) -> np.ndarray:
    """(days, features) AR(1) paths, stationary from day 0, sd NATURAL_SPREAD."""
    innovation = NATURAL_SPREAD * np.sqrt(1 - NATURAL_PHI ** 2)
    paths = np.empty((days, features))
    paths[0] = rng.normal(scale=NATURAL_SPREAD, size=features)
    for day in range(1, days):
        paths[day] = NATURAL_PHI * paths[day - 1] + rng.normal(scale=innovation, size=features)
    return paths


def natural_variation_scenario(seed: int = 0) -> tuple[pa.Table, dict]:
    """Daily feature means follow an AR(1) process (spread 0.3 row sd, phi 0.8) around each
    regime's operating point; visits a b a c b a of 60 days; `1d` windows of 288 rows; the
    grade shares wander the same way on the logit scale. The process runs on across switches.

    truth: `days` (regime per day), `switch_days` (first day of each new visit),
    `train_days` (regime -> its champion's training days), `start` (day 0, UTC midnight)."""
    rng = np.random.default_rng(seed)
    regimes = [regime for regime in NATURAL_VISITS for _ in range(NATURAL_DAYS)]
    days = len(regimes)
    drift = _ar1(rng, days, len(NATURAL_NUMERIC) + len(NATURAL_GRADES))
    rows = days * NATURAL_ROWS_PER_DAY
    day_of_row = np.repeat(np.arange(days), NATURAL_ROWS_PER_DAY)
    means = np.array([NATURAL_MEANS[r] for r in regimes]) + drift[:, :len(NATURAL_NUMERIC)]
    values = means[day_of_row] + rng.standard_normal((rows, len(NATURAL_NUMERIC)))
    logits = np.log(np.array([NATURAL_SHARES[r] for r in regimes])) + drift[:, len(NATURAL_NUMERIC):]
    shares = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    cumulative = shares.cumsum(axis=1)[day_of_row]
    grade = (rng.random(rows)[:, None] > cumulative).sum(axis=1).clip(0, len(NATURAL_GRADES) - 1)
    step = timedelta(days=1) / NATURAL_ROWS_PER_DAY
    ts = np.datetime64(NATURAL_START.replace(tzinfo=None), "us") + \
        np.arange(rows) * np.timedelta64(int(step.total_seconds() * 1e6), "us")
    columns: dict[str, object] = {"row_id": pa.array(np.arange(rows, dtype=np.int64)),
                                  "ts": pa.array(ts, type=pa.timestamp("us", tz="UTC"))}
    for index, name in enumerate(NATURAL_NUMERIC):
        columns[name] = pa.array(values[:, index])
    columns["grade"] = pa.array(np.array(NATURAL_GRADES)[grade])
    columns["mode"] = pa.array(np.array(regimes)[day_of_row])
    switches = [d for d in range(1, days) if regimes[d] != regimes[d - 1]]
    train = {}
    for regime in dict.fromkeys(NATURAL_VISITS):
        first = regimes.index(regime)
        train[regime] = (first, first + NATURAL_TRAIN_DAYS)
    return pa.table(columns), {"days": regimes, "switch_days": switches, "train_days": train,
                               "start": NATURAL_START, "rows_per_day": NATURAL_ROWS_PER_DAY}

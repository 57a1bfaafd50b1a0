"""Generated scenarios for tests: seeded, pure numpy/pandas/pyarrow, no store.

Each generator is its own function; the drift tests ingest theirs through the real services.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

# --- regimes whose operating points move slowly over many returns ---------------------------

MOVING_FEATURES = tuple(f"x{i}" for i in range(6))
MOVING_START = datetime(2026, 3, 2, 3, tzinfo=UTC)  # 03:00: every switch falls inside a 6h window


def moving_regimes_scenario(seed: int, *, regimes: int = 3, visits: int = 40,
                            visit_hours: int = 48, step_std: float = 0.2) -> pd.DataFrame:
    """One row a minute; `visits` visits of `visit_hours` each, the regime of each visit drawn
    at random (never the same twice in a row, all regimes in the first ones). The regimes sit
    >= 4 sd apart on x0 and x1 and 0.5 sd apart on x2..x5 (sd = 1 on every feature); a
    categorical `grade` has regime-specific shares. Each visit moves its regime's operating
    point by N(0, step_std) sd on every feature, linearly across the visit, so the point
    random-walks over the returns. Columns: ts, regime (the truth), x0..x5, grade."""
    rng = np.random.default_rng(seed)
    centres = np.zeros((regimes, len(MOVING_FEATURES)))
    centres[:, 0] = 4.0 * np.arange(regimes)
    centres[:, 1] = 4.0 * rng.permutation(regimes)
    centres[:, 2:] = 0.5 * rng.standard_normal((regimes, len(MOVING_FEATURES) - 2))
    grade_shares = rng.dirichlet(np.full(3, 2.0), size=regimes)
    order: list[int] = list(rng.permutation(regimes))
    while len(order) < visits:
        order.append(int(rng.choice([r for r in range(regimes) if r != order[-1]])))
    per_visit = visit_hours * 60
    frames = []
    for v, regime in enumerate(order):
        start = centres[regime].copy()
        centres[regime] += step_std * rng.standard_normal(len(MOVING_FEATURES))
        ramp = np.linspace(0.0, 1.0, per_visit)[:, None]
        means = start + ramp * (centres[regime] - start)
        x = means + rng.standard_normal((per_visit, len(MOVING_FEATURES)))
        frame = pd.DataFrame(x, columns=list(MOVING_FEATURES))
        frame.insert(0, "regime", f"m{regime}")
        frame["grade"] = np.array(["a", "b", "c"])[
            (rng.random(per_visit)[:, None] > np.cumsum(grade_shares[regime])).sum(1).clip(0, 2)]
        frame.insert(0, "ts", pd.Timestamp(MOVING_START) + pd.to_timedelta(
            v * per_visit + np.arange(per_visit), unit="min"))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


# --- four regimes, labels 0/1, visits of 100 rows (the continuous-training scenario) --------

CLASSIFICATION_FEATURES = tuple(f"f{i}" for i in range(6))


def four_regime_classification_scenario(seed: int, *, visits_per_regime: int = 50,
                                        visit_rows: int = 100, separation: float = 1.5
                                        ) -> pd.DataFrame:
    """4 regimes x `visits_per_regime` visits of `visit_rows` rows in a shuffled order, 6
    numeric features with sd 1. Regime (a, b), a, b in {0, 1}, has means `separation * a` on
    f0, f1 and `separation * b` on f2, f3 (f4, f5 the same everywhere), so each regime's
    nearest other differs by `separation` sd on two features. Each regime has its own decision
    boundary for the 0/1 label. Columns: row, visit, regime (the truth), f0..f5, label."""
    rng = np.random.default_rng(seed)
    means = np.zeros((4, len(CLASSIFICATION_FEATURES)))
    for r in range(4):
        a, b = divmod(r, 2)
        means[r, :2], means[r, 2:4] = separation * a, separation * b
    weights = rng.standard_normal((4, len(CLASSIFICATION_FEATURES)))
    order = rng.permutation(np.repeat(np.arange(4), visits_per_regime))
    frames = []
    for v, regime in enumerate(order):
        x = means[regime] + rng.standard_normal((visit_rows, len(CLASSIFICATION_FEATURES)))
        logit = (x - means[regime]) @ weights[regime]
        frame = pd.DataFrame(x, columns=list(CLASSIFICATION_FEATURES))
        frame.insert(0, "regime", f"c{regime}")
        frame.insert(0, "visit", v)
        frame["label"] = (logit + 0.5 * rng.standard_normal(visit_rows) > 0).astype(int)
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    out.insert(0, "row", np.arange(len(out)))
    return out

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

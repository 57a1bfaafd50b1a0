"""Generated scenarios for tests: seeded, pure numpy/pandas, no store."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

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

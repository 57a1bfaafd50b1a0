"""Drift statistics over count arrays: a registry of small pure tests (numpy only).

Every test takes the reference's counts per bin (shape `(bins,)`, or `(rows, bins)` for one
reference per row) and the current windows' counts (`(windows, bins)`) and returns one
statistic per window, computed for all windows at once. No test loops over windows or rows in
Python, and none calls scipy: the special functions they need (the Kolmogorov distribution,
the regularised incomplete gamma) are in core/special.py, and the tests check every statistic
against scipy on the same counts.

Tests by kind (docs/drift.md):

- `ks`: two-sample Kolmogorov-Smirnov. On an *exact* grid (bins at every distinct reference
  value and between them, see core/profiles.py) the statistic D is exactly scipy's
  `ks_2samp(reference, current).statistic`. The p-value is Smirnov's asymptotic one,
  Q_KS(sqrt(n*m/(n+m)) * D) = `scipy.stats.kstwobign.sf`; it differs from ks_2samp's exact
  small-sample p-value by at most about 0.035 (measured in tests/test_drift_stats.py).
- `chi2`: chi-square test of homogeneity on the 2 x k table (reference, window) over the
  categories present in either; equal to `scipy.stats.chi2_contingency` (no Yates
  correction is needed: two categories use `z`).
- `z`: two-proportion z-test for a binary categorical (pooled variance, two-sided).
- `wasserstein`: W1 between the two binned distributions, each bin's mass at its position
  (equal to `scipy.stats.wasserstein_distance(positions, positions, ref, cur)`), divided by
  the reference standard deviation. Against W1 of the raw values the error is at most
  sum_i (p_i + q_i) * width_i / 2 / std (each value moves at most half its bin's width):
  `wasserstein_error_bound` computes it per window.
- `jensenshannon`: Jensen-Shannon distance (natural log), `scipy.spatial.distance.jensenshannon`.
- `psi`: population stability index, shares floored at 1e-4 (available for both kinds).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from mlops_tui.core.regimes import ReferenceChoice, WindowMetric, WindowRegime
from mlops_tui.core.special import (  # noqa: F401  (re-exported: tests check them)
    chi2_sf,
    gamma_q,
    kolmogorov_sf,
    log_gamma,
    normal_two_sided,
)

P_VALUE = "p_value"  # drift when the p-value is below the threshold
DISTANCE = "distance"  # drift when the statistic is at or above the threshold
NUMERIC = "numeric"
CATEGORICAL = "categorical"
PSI_FLOOR = 1e-4


@dataclass(frozen=True)
class Bins:
    """Where each bin's mass sits (numeric bins only): positions and widths, both (bins,)
    or (windows, bins), sorted by position."""

    positions: np.ndarray
    widths: np.ndarray


@dataclass(frozen=True)
class TestOutput:
    """One value per window: the statistic, and the p-value for significance tests."""

    statistic: np.ndarray
    p_value: np.ndarray | None = None


StatFunction = Callable[[np.ndarray, np.ndarray, "Bins | None", "np.ndarray | None"], TestOutput]
# p-value of given statistics at given counts: (statistic, reference, current) -> p-values
PValueFunction = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class StatTest:
    """A drift test registered by name: what it is for and how it decides."""

    name: str
    kind: str  # P_VALUE or DISTANCE
    dtypes: frozenset[str]
    function: StatFunction
    title: str
    p_of: PValueFunction | None = None  # significance tests: p-value of a statistic

    def compute(self, reference: np.ndarray, current: np.ndarray, bins: Bins | None = None,
                scale: np.ndarray | None = None) -> TestOutput:
        reference = np.asarray(reference, dtype=np.float64)
        current = np.atleast_2d(np.asarray(current, dtype=np.float64))
        return self.function(reference, current, bins, scale)

    def value(self, output: TestOutput) -> np.ndarray:
        """The number compared with the threshold: the p-value or the distance."""
        return output.p_value if self.kind == P_VALUE else output.statistic

    def drifted(self, output: TestOutput, threshold: float | np.ndarray) -> np.ndarray:
        value = self.value(output)
        return value < threshold if self.kind == P_VALUE else value >= threshold


REGISTRY: dict[str, StatTest] = {}


def register(name: str, kind: str, dtypes: tuple[str, ...], title: str,
             p_of: PValueFunction | None = None) -> Callable[[StatFunction], StatFunction]:
    def decorate(function: StatFunction) -> StatFunction:
        REGISTRY[name] = StatTest(name, kind, frozenset(dtypes), function, title, p_of)
        return function
    return decorate


def get_test(name: str) -> StatTest:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown drift test {name!r} (known: {', '.join(sorted(REGISTRY))})"
                       ) from None


# -- helpers ---------------------------------------------------------------------------------

def _shares(counts: np.ndarray) -> np.ndarray:
    totals = counts.sum(axis=-1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts, dtype=np.float64),
                     where=totals > 0)


def _cdf(counts: np.ndarray) -> np.ndarray:
    cumulative = np.cumsum(counts, axis=-1, dtype=np.float64)
    totals = cumulative[..., -1:]
    return cumulative / np.where(totals > 0, totals, 1.0)


# -- the tests -------------------------------------------------------------------------------

def ks_p(statistic: np.ndarray, reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    n_ref = reference.sum(axis=-1)
    n_cur = current.sum(axis=-1)
    effective = n_ref * n_cur / np.maximum(n_ref + n_cur, 1)
    return kolmogorov_sf(np.sqrt(effective) * statistic)


@register("ks", P_VALUE, (NUMERIC,), "two-sample Kolmogorov-Smirnov (exact statistic)", ks_p)
def ks_test(reference: np.ndarray, current: np.ndarray, bins: Bins | None,
            scale: np.ndarray | None) -> TestOutput:
    statistic = np.abs(_cdf(reference) - _cdf(current)).max(axis=-1)
    return TestOutput(statistic, ks_p(statistic, reference, current))


def chi2_p(statistic: np.ndarray, reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    present = (np.broadcast_to(reference, current.shape) + current) > 0
    return chi2_sf(statistic, np.maximum(present.sum(axis=-1) - 1, 1))


@register("chi2", P_VALUE, (CATEGORICAL,), "chi-square test of homogeneity", chi2_p)
def chi2_test(reference: np.ndarray, current: np.ndarray, bins: Bins | None,
              scale: np.ndarray | None) -> TestOutput:
    reference = np.broadcast_to(reference, current.shape)
    column_totals = reference + current
    row_totals = np.stack([reference.sum(axis=-1), current.sum(axis=-1)], axis=-1)
    grand = row_totals.sum(axis=-1)
    present = column_totals > 0
    statistic = np.zeros(current.shape[0])
    for row, observed in ((0, reference), (1, current)):
        expected = row_totals[:, row, None] * column_totals / np.maximum(grand, 1)[:, None]
        contribution = np.divide((observed - expected) ** 2, expected,
                                 out=np.zeros_like(expected), where=present & (expected > 0))
        statistic = statistic + contribution.sum(axis=-1)
    return TestOutput(statistic, chi2_p(statistic, reference, current))


def z_p(statistic: np.ndarray, reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    return normal_two_sided(statistic)


@register("z", P_VALUE, (CATEGORICAL,), "two-proportion z-test (binary)", z_p)
def z_test(reference: np.ndarray, current: np.ndarray, bins: Bins | None,
           scale: np.ndarray | None) -> TestOutput:
    """Share of the first bin (the reference's first category) in each sample."""
    n_ref = reference.sum(axis=-1)
    n_cur = current.sum(axis=-1)
    hits_ref, hits_cur = reference[..., 0], current[:, 0]
    pooled = (hits_ref + hits_cur) / np.maximum(n_ref + n_cur, 1)
    spread = np.sqrt(pooled * (1 - pooled) * (1 / np.maximum(n_ref, 1) + 1 / np.maximum(n_cur, 1)))
    difference = hits_ref / np.maximum(n_ref, 1) - hits_cur / np.maximum(n_cur, 1)
    z = np.divide(difference, spread, out=np.zeros_like(spread), where=spread > 0)
    return TestOutput(np.abs(z), normal_two_sided(z))


def wasserstein_raw(reference: np.ndarray, current: np.ndarray, bins: Bins) -> np.ndarray:
    """W1 between the binned distributions with each bin's mass at its position."""
    # CDFs from cumulative counts, so they are exactly 0 before and 1 after all mass (the
    # far overflow bins sit up to 2**30 ranges away, where a rounding residue would count).
    cdf_gap = np.abs(_cdf(reference) - _cdf(current))
    steps = np.diff(bins.positions, axis=-1)
    return cdf_gap[..., :-1] @ steps if steps.ndim == 1 else (cdf_gap[..., :-1] * steps).sum(-1)


def wasserstein_error_bound(reference: np.ndarray, current: np.ndarray, bins: Bins,
                            scale: np.ndarray | float) -> np.ndarray:
    """Bound on |binned W1 - raw W1| / scale: each value moves at most half a bin width."""
    widths = np.broadcast_to(bins.widths, current.shape)
    moved = (_shares(np.broadcast_to(reference, current.shape)) + _shares(current)) * widths / 2
    return moved.sum(axis=-1) / np.asarray(scale, dtype=np.float64)


@register("wasserstein", DISTANCE, (NUMERIC,),
          "Wasserstein distance / reference std (quantile grid)")
def wasserstein_test(reference: np.ndarray, current: np.ndarray, bins: Bins | None,
                     scale: np.ndarray | None) -> TestOutput:
    if bins is None or scale is None:
        raise ValueError("wasserstein needs bin positions and the reference std")
    return TestOutput(wasserstein_raw(reference, current, bins) / scale)


@register("jensenshannon", DISTANCE, (CATEGORICAL, NUMERIC),
          "Jensen-Shannon distance (natural log)")
def jensenshannon_test(reference: np.ndarray, current: np.ndarray, bins: Bins | None,
                       scale: np.ndarray | None) -> TestOutput:
    p = _shares(np.broadcast_to(reference, current.shape))
    q = _shares(current)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> np.ndarray:
        ratio = np.divide(a, m, out=np.ones_like(a), where=(a > 0) & (m > 0))
        return (a * np.log(ratio)).sum(axis=-1)

    divergence = np.maximum((kl(p) + kl(q)) / 2, 0.0)
    return TestOutput(np.sqrt(divergence))


@register("psi", DISTANCE, (CATEGORICAL, NUMERIC), "population stability index")
def psi_test(reference: np.ndarray, current: np.ndarray, bins: Bins | None,
             scale: np.ndarray | None) -> TestOutput:
    p = np.maximum(_shares(np.broadcast_to(reference, current.shape)), PSI_FLOOR)
    q = np.maximum(_shares(current), PSI_FLOOR)
    return TestOutput(((q - p) * np.log(q / p)).sum(axis=-1))


# -- thresholds ------------------------------------------------------------------------------

MIN_REFERENCE_CHUNKS = 5
MAX_REFERENCE_CHUNKS = 200
REFERENCE_PERCENTILE = 99.0


@dataclass(frozen=True)
class Threshold:
    """What a window's value is compared with, in the test's own terms (a p-value for
    significance tests). A reference-derived threshold also carries `statistic`, the cut on
    the statistic it came from; a significance test compares the statistic instead when its
    p-value threshold underflows to 0."""

    value: float
    basis: str  # "fixed" or "reference"
    note: str = ""
    statistic: float | None = None


def reference_threshold(test: StatTest, chunk_counts: np.ndarray, fixed: float,
                        bins: Bins | None = None, scale: np.ndarray | None = None,
                        chunk_rows: int = 0, total: np.ndarray | None = None) -> Threshold:
    """The 99th percentile of the test's statistic over leave-one-out reference chunks.

    Each chunk (a row of `chunk_counts`, one window's worth of consecutive reference rows) is
    compared with the rest of the reference (`total` minus the chunk; `total` defaults to
    the sum of the chunks), all chunks in one vectorised call. The percentile is numpy's
    linear one, so with fewer than 100 chunks it lies between the two largest values.

    A significance test's threshold is the p-value of that cut at a chunk's size, so windows
    of another size are judged on the same footing, and never above the fixed `p_value`:
    with K chunks the cut sits near their largest, which sampling alone passes about once in
    K + 1 windows. With fewer than 5 chunks the fixed threshold stands, and the note says why.
    """
    chunks = int(chunk_counts.shape[0])
    if chunks < MIN_REFERENCE_CHUNKS:
        return Threshold(fixed, "fixed",
                         f"fixed {fixed}: the reference has {chunks} chunk(s) of "
                         f"{chunk_rows} rows, {MIN_REFERENCE_CHUNKS} needed")
    chunk_counts = np.asarray(chunk_counts, dtype=np.float64)
    whole = chunk_counts.sum(axis=0) if total is None else np.asarray(total, dtype=np.float64)
    rest = whole[None, :] - chunk_counts
    statistic = test.compute(rest, chunk_counts, bins, scale).statistic
    cut = float(np.percentile(statistic, REFERENCE_PERCENTILE))
    head = f"99th percentile over {chunks} leave-one-out reference chunks of {chunk_rows} rows"
    if test.kind != P_VALUE or test.p_of is None:
        return Threshold(cut, "reference", f"{head}: {cut:.4g}", cut)
    # The cut's p-value at a typical chunk (every chunk has the same rows).
    middle = int(np.argsort(statistic)[chunks // 2])
    p_cut = float(test.p_of(np.array([cut]), rest[middle], chunk_counts[middle:middle + 1])[0])
    if p_cut >= fixed:
        return Threshold(fixed, "reference", f"{head}: {test.name} statistic {cut:.4g}, "
                         f"p = {p_cut:.3g}; the fixed p < {fixed} is stricter", cut)
    return Threshold(p_cut, "reference",
                     f"{head}: {test.name} statistic {cut:.4g}, p < {p_cut:.3g}", cut)


# -- effect size -----------------------------------------------------------------------------

def effect_size(reference: np.ndarray, current: np.ndarray, bins: Bins | None,
                scale: np.ndarray | float | None) -> np.ndarray:
    """How far each window moved, on a scale shared by every test: numeric, W1 / reference
    std on the reference's grid; categorical (no bins), 2 * the Hellinger distance
    2*sqrt(sum (sqrt p - sqrt q)^2), which is Cohen's h for a binary feature."""
    current = np.atleast_2d(np.asarray(current, dtype=np.float64))
    reference = np.asarray(reference, dtype=np.float64)
    if bins is not None and scale is not None:
        return wasserstein_raw(reference, current, bins) / np.asarray(scale, dtype=np.float64)
    p = _shares(np.broadcast_to(reference, current.shape))
    q = _shares(current)
    return 2.0 * np.sqrt(((np.sqrt(p) - np.sqrt(q)) ** 2).sum(axis=-1))


# -- verdicts --------------------------------------------------------------------------------

DRIFT, OK, INCONCLUSIVE = "drift", "ok", "inconclusive"


@dataclass(frozen=True)
class FeatureDrift:
    """One feature in one window: the test by name, its numbers and the verdict."""

    feature: str
    test: str
    statistic: float | None
    p_value: float | None
    threshold: float | None
    verdict: str  # DRIFT, OK or INCONCLUSIVE
    reason: str = ""
    error_bound: float | None = None  # wasserstein: bound on |grid - exact| (normalised)
    effect: float | None = None  # effect_size: W1/std (numeric) or 2*Hellinger (categorical)

    @property
    def value(self) -> float | None:
        """What the threshold is compared with: the p-value of a significance test."""
        return self.p_value if self.p_value is not None else self.statistic


def inconclusive_reasons(rows: np.ndarray, present: np.ndarray, mixed: np.ndarray,
                         min_rows: int) -> list[str]:
    """Per window: '' when the window can be judged, else why not (never a NaN later)."""
    reasons = []
    for n_rows, n_present, is_mixed in zip(rows.tolist(), present.tolist(), mixed.tolist(),
                                           strict=True):
        if n_rows == 0:
            reasons.append("empty window")
        elif is_mixed:
            reasons.append("the window straddles a regime switch (mixed)")
        elif n_present == 0:
            reasons.append("no values in this window (all missing)")
        elif n_present < min_rows:
            reasons.append(f"too few values ({int(n_present)} < {min_rows})")
        else:
            reasons.append("")
    return reasons


def judge_feature(name: str, test: StatTest, reference: np.ndarray, current: np.ndarray,
                  threshold: Threshold, reasons: list[str], *, bins: Bins | None = None,
                  scale: float | None = None, reference_problem: str = "",
                  min_effect: float = 0.0) -> list[FeatureDrift]:
    """Verdicts of one feature for all windows: the statistic is computed once, vectorised;
    windows that cannot be judged are `inconclusive` with their reason.

    A window drifts when it is beyond the threshold *and* its effect size is at least
    `min_effect`, so a large window does not flag a negligible (if significant) shift."""
    windows = current.shape[0]
    if reference_problem:
        return [FeatureDrift(name, test.name, None, None, threshold.value, INCONCLUSIVE,
                             reference_problem) for _ in range(windows)]
    scale_array = np.asarray(scale, dtype=np.float64) if scale is not None else None
    output = test.compute(reference, current, bins, scale_array)
    statistic = output.statistic
    p_value = output.p_value
    if test.kind == P_VALUE and threshold.value <= 0 and threshold.statistic is not None:
        drifted = statistic >= threshold.statistic  # the p-value cut underflowed
    else:
        drifted = test.drifted(output, threshold.value)
    effect = effect_size(reference, current, bins, scale_array)
    small = effect < min_effect
    bound = (wasserstein_error_bound(reference, current, bins, scale_array)
             if test.name == "wasserstein" and bins is not None else None)
    note = threshold.note if threshold.basis == "reference" else ""
    results = []
    for w in range(windows):
        value = float(statistic[w])
        p = float(p_value[w]) if p_value is not None else None
        reason = reasons[w]
        if not reason and (not math.isfinite(value) or (p is not None and not math.isfinite(p))):
            reason = "the statistic is undefined for this window"
        if reason:
            results.append(FeatureDrift(name, test.name, None, None, threshold.value,
                                        INCONCLUSIVE, reason))
            continue
        verdict, why = (DRIFT, note) if drifted[w] else (OK, note)
        if drifted[w] and small[w]:
            verdict, why = OK, f"below the minimum effect {min_effect:g}"
        results.append(FeatureDrift(
            name, test.name, value, p, threshold.value, verdict, why,
            float(bound[w]) if bound is not None else None, float(effect[w])))
    return results


def dataset_verdict(features: list[FeatureDrift], share: float) -> tuple[float | None, str]:
    """Share of drifted features among the conclusive ones, and the dataset's verdict."""
    conclusive = [f for f in features if f.verdict != INCONCLUSIVE]
    if not conclusive:
        return None, INCONCLUSIVE
    drifted = sum(1 for f in conclusive if f.verdict == DRIFT) / len(conclusive)
    return drifted, DRIFT if drifted >= share else OK


@dataclass(frozen=True)
class WindowDrift:
    """One window: its rows, regime, reference, per-feature verdicts and dataset verdict."""

    start: datetime
    end: datetime
    rows: int
    regime: WindowRegime
    reference: ReferenceChoice
    reference_snapshot: str | None
    features: dict[str, FeatureDrift]
    drift_share: float | None
    verdict: str
    metric: WindowMetric | None = None
    # one regime's part of a window that spans a regime switch: its rows only, judged
    # against that regime's reference (the window's other parts are rows of their own)
    split: bool = False

    @property
    def drifted(self) -> list[str]:
        return [name for name, f in self.features.items() if f.verdict == DRIFT]


@dataclass(frozen=True)
class DriftReport:
    """Drift over time: every window of the requested range, oldest first."""

    window: str
    features: tuple[str, ...]
    windows: list[WindowDrift]
    computed_at: datetime
    regime: str | None = None
    notes: tuple[str, ...] = ()
    thresholds: dict[str, str] = field(default_factory=dict)
    run_id: str | None = None

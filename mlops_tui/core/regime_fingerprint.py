"""Fingerprints of row sets and the distance between them, for matching regimes. Pure.

Per matching feature: numeric, the 19 quantiles 5%, 10% .. 95% and the robust scale
(Q75 - Q25) / 1.349; categorical, the share of each category, missing as a category of its own.
The distance of a row set w to a reference R: numeric `d_f = min(10, mean_j |q_w[j] - q_R[j]| /
s_R)`, the Wasserstein distance of the 5..95% trimmed distributions in R's robust scales;
categorical `d_f = 2 sqrt(sum_k (sqrt p_w - sqrt p_R)^2)` (Cohen's h for two categories); and
`D = sqrt(mean_f d_f^2)`, the root mean square, which dilutes less than a mean when only a few
features separate the regimes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from mlops_tui.core.profiles import Profile

LEVELS = np.round(np.arange(1, 20) * 0.05, 2)
IQR_TO_SIGMA = 1.349
MAX_FEATURE_DISTANCE = 10.0
_WITH_QUARTILES = np.concatenate([LEVELS, [0.25, 0.75]])
MISSING = "\x00missing"


@dataclass(frozen=True, eq=False)
class Fingerprint:
    """What a row set looks like, per feature. NaN quantiles: the feature had no values."""

    rows: int
    quantiles: Mapping[str, np.ndarray] = field(default_factory=dict)  # 19 per feature
    scales: Mapping[str, float] = field(default_factory=dict)
    shares: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"rows": self.rows,
                "quantiles": {f: [float(v) for v in q] for f, q in self.quantiles.items()},
                "scales": {f: float(s) for f, s in self.scales.items()},
                "shares": {f: dict(s) for f, s in self.shares.items()}}

    @classmethod
    def from_dict(cls, data: Mapping) -> Fingerprint:
        return cls(int(data["rows"]),
                   {f: np.asarray(q, dtype=np.float64) for f, q in data["quantiles"].items()},
                   {f: float(s) for f, s in data["scales"].items()},
                   {f: dict(s) for f, s in data["shares"].items()})


def _numeric(values: np.ndarray) -> tuple[np.ndarray, float]:
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return np.full(len(LEVELS), np.nan), math.nan
    q = np.quantile(x, _WITH_QUARTILES)
    scale = float(q[-1] - q[-2]) / IQR_TO_SIGMA
    if scale <= 0:  # discrete or nearly constant: fall back to the standard deviation
        scale = float(x.std())
    return q[: len(LEVELS)], scale


def _shares(values: Sequence | np.ndarray) -> dict[str, float]:
    keys = [MISSING if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
            for v in list(values)]
    if not keys:
        return {}
    names, counts = np.unique(np.asarray(keys, dtype=object), return_counts=True)
    return {str(k): float(c) / len(keys) for k, c in zip(names, counts, strict=True)}


def fingerprint(numeric: Mapping[str, np.ndarray],
                categorical: Mapping[str, Sequence | np.ndarray] | None = None) -> Fingerprint:
    """The fingerprint of one row set given as columns (numeric arrays may hold NaN)."""
    categorical = categorical or {}
    columns = [*numeric.values(), *categorical.values()]
    rows = len(columns[0]) if columns else 0
    quantiles, scales = {}, {}
    for name, values in numeric.items():
        quantiles[name], scales[name] = _numeric(values)
    return Fingerprint(rows, quantiles, scales,
                       {name: _shares(values) for name, values in categorical.items()})


def fingerprint_from_profile(profile: Profile) -> Fingerprint:
    """The fingerprint of a reference profile (`core.profiles.Profile`): exact from the raw
    values of small references, else interpolated inside the bins of the profile's grid."""
    quantiles, scales, shares = {}, {}, {}
    for name, feature in profile.features.items():
        if feature.dtype == "categorical":
            total = max(feature.rows, 1)
            share = {c: n / total for c, n in zip(feature.categories, feature.counts,
                                                  strict=True)}
            if feature.missing:
                share[MISSING] = feature.missing / total
            shares[name] = share
        elif feature.raw:
            quantiles[name], scales[name] = _numeric(np.asarray(feature.raw))
        elif feature.grid is None or not feature.counts:
            quantiles[name], scales[name] = np.full(len(LEVELS), np.nan), math.nan
        else:
            left, right = feature.grid.bin_edges()
            counts = np.asarray(feature.counts, dtype=np.float64)
            cum = np.concatenate([[0.0], np.cumsum(counts)]) / counts.sum()
            levels = _WITH_QUARTILES
            i = np.clip(np.searchsorted(cum, levels, side="left") - 1, 0, len(counts) - 1)
            within = (levels - cum[i]) / np.maximum(counts[i] / counts.sum(), 1e-300)
            values = left[i] + np.clip(within, 0, 1) * (right[i] - left[i])
            quantiles[name] = values[: len(LEVELS)]
            scale = float(values[-1] - values[-2]) / IQR_TO_SIGMA
            scales[name] = scale if scale > 0 else float(feature.std or 0.0)
    return Fingerprint(profile.rows, quantiles, scales, shares)


def feature_distances(window: Fingerprint, reference: Fingerprint) -> dict[str, float]:
    """`d_f` of every feature both fingerprints have (see the module text)."""
    out: dict[str, float] = {}
    for name, q_ref in reference.quantiles.items():
        q_win = window.quantiles.get(name)
        if q_win is None:
            continue
        ref_missing, win_missing = bool(np.isnan(q_ref).all()), bool(np.isnan(q_win).all())
        if ref_missing or win_missing:
            if ref_missing != win_missing:
                out[name] = MAX_FEATURE_DISTANCE
            continue
        median = float(q_ref[len(LEVELS) // 2])
        scale = reference.scales.get(name, math.nan)
        scale = max(scale if math.isfinite(scale) else 0.0, 1e-6 * (abs(median) + 1))
        out[name] = min(MAX_FEATURE_DISTANCE, float(np.mean(np.abs(q_win - q_ref))) / scale)
    for name, p_ref in reference.shares.items():
        p_win = window.shares.get(name)
        if p_win is None:
            continue
        keys = set(p_ref) | set(p_win)
        total = sum((math.sqrt(p_win.get(k, 0.0)) - math.sqrt(p_ref.get(k, 0.0))) ** 2
                    for k in keys)
        out[name] = 2 * math.sqrt(total)
    return out


def distance(window: Fingerprint, reference: Fingerprint) -> float:
    """D: the root mean square of the feature distances (inf when none is comparable)."""
    values = list(feature_distances(window, reference).values())
    return math.sqrt(sum(v * v for v in values) / len(values)) if values else math.inf


def blend(old: Fingerprint, new: Fingerprint, weight: float) -> Fingerprint:
    """(1 - weight) * old + weight * new, per quantile, scale and share; rows add up."""
    quantiles, scales, shares = dict(old.quantiles), dict(old.scales), {}
    for name, q_new in new.quantiles.items():
        q_old = old.quantiles.get(name)
        if q_old is None or np.isnan(q_old).all():
            quantiles[name], scales[name] = q_new, new.scales.get(name, math.nan)
        elif not np.isnan(q_new).all():
            quantiles[name] = (1 - weight) * q_old + weight * q_new
            scales[name] = ((1 - weight) * old.scales.get(name, math.nan)
                            + weight * new.scales.get(name, math.nan))
    for name in set(old.shares) | set(new.shares):
        p_old, p_new = old.shares.get(name, {}), new.shares.get(name, {})
        if not p_old or not p_new:
            shares[name] = dict(p_old or p_new)
            continue
        shares[name] = {k: (1 - weight) * p_old.get(k, 0.0) + weight * p_new.get(k, 0.0)
                        for k in set(p_old) | set(p_new)}
    return Fingerprint(old.rows + new.rows, quantiles, scales, shares)

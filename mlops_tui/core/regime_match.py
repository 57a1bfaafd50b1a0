"""Regimes without a column: fingerprints, a distance, and the discovery state machine. Pure:
row sets come in as arrays, states go out as values (no store, no I/O).

- **Fingerprint** of a row set, per matching feature: numeric, the 19 quantiles 5%, 10% .. 95%
  and the robust scale (Q75 - Q25) / 1.349; categorical, the share of each category, missing
  as a category of its own.
- **Distance** of a row set w to a regime R: numeric `d_f = min(10, mean_j |q_w[j] - q_R[j]|
  / s_R)`, the Wasserstein distance of the 5..95% trimmed distributions in R's robust scales;
  categorical `d_f = 2 sqrt(sum_k (sqrt p_w - sqrt p_R)^2)` (Cohen's h for two categories);
  `D = sqrt(mean_f d_f^2)`. The root mean square dilutes less than a mean when only a few
  features separate the regimes.
- **Threshold** `tau(n) = max(distance, noise / sqrt(n))`: sampling noise of `D` grows like
  1/sqrt(rows), so small windows get a wider threshold (noise 3.6: 0.51 at 50 rows).
- **Discovery** (`step`, one window at a time in data-time order): a window within tau of its
  nearest regime is assigned to it, and when it is also confident (the second nearest at least
  twice as far) the regime's reference follows it, `phi_R <- (1 - a) phi_R + a phi_w`
  (averaging quantile functions is the 1-D Wasserstein barycentre). Unmatched windows that
  agree with each other gather in a candidate; `new_regime_windows` of them make a new regime
  named r1, r2, ... whose reference is their row-weighted average, and those windows belong to
  it. By default the candidate's windows must be consecutive (any matched window clears the
  candidates); `candidate_memory = M > 0` lets a candidate survive up to M matched windows, so
  regimes whose visits are shorter than `new_regime_windows` windows are still found.
  `reset_reference` replaces a reference (a new champion's training data).
- **Sub-windows** (optional): an unmatched window whose sub-windows of at least `min_rows`
  rows match different regimes, or a regime and none, is `mixed`: its runs of equal labels are
  segments, it neither refreshes nor advances a candidate, and its unknown segment joins the
  regime created by the candidate that starts right after it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from mlops_tui.core.profiles import Profile

LEVELS = np.round(np.arange(1, 20) * 0.05, 2)
IQR_TO_SIGMA = 1.349
MAX_FEATURE_DISTANCE = 10.0
MISSING = "\x00missing"
MAX_CANDIDATES = 16


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
    q = np.quantile(x, LEVELS)
    q25, q75 = np.quantile(x, (0.25, 0.75))
    scale = float(q75 - q25) / IQR_TO_SIGMA
    if scale <= 0:  # discrete or nearly constant: fall back to the standard deviation
        scale = float(x.std())
    return q, scale


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
            levels = np.concatenate([LEVELS, [0.25, 0.75]])
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


@dataclass(frozen=True)
class MatchConfig:
    """The matcher's settings; the defaults are what the sample and scenarios were checked with."""

    distance: float = 0.5  # tau's floor, in reference robust standard deviations (RMS)
    noise: float = 3.6  # tau(n) >= noise / sqrt(n)
    new_regime_windows: int = 3
    refresh_weight: float = 0.2  # alpha of the reference's exponential update
    confident_ratio: float = 2.0  # refresh only when the second nearest is this much farther
    min_rows: int = 30  # fewer rows: "too few rows", the state does not move
    candidate_memory: int = 0  # windows a candidate survives matched windows (0: consecutive)
    names: str = "r"

    def threshold(self, rows: int) -> float:
        return max(self.distance, self.noise / math.sqrt(max(rows, 1)))


@dataclass(frozen=True)
class Regime:
    id: str  # stable: the name given at creation
    name: str
    fingerprint: Fingerprint
    windows: int = 0  # windows assigned so far
    refreshes: int = 0


@dataclass(frozen=True)
class Candidate:
    windows: tuple[int, ...]  # window numbers (State.seen at their step)
    fingerprint: Fingerprint
    last: int


@dataclass(frozen=True)
class State:
    config: MatchConfig = field(default_factory=MatchConfig)
    regimes: tuple[Regime, ...] = ()
    counter: int = 0  # regimes ever created: names are never reused
    seen: int = 0  # windows stepped so far
    candidates: tuple[Candidate, ...] = ()
    mixed_unknown: int = -1  # the last mixed window with an unknown segment

    def regime(self, regime_id: str) -> Regime:
        for regime in self.regimes:
            if regime.id == regime_id:
                return regime
        raise KeyError(regime_id)


@dataclass(frozen=True)
class Segment:
    first_sub: int
    last_sub: int
    regime: str | None
    rows: int


@dataclass(frozen=True)
class Assignment:
    """What `step` decided for one window (`index` = its window number)."""

    index: int
    regime: str | None  # regime id; None: unknown, candidate or mixed
    status: str  # matched | candidate | created | too-few-rows | mixed
    threshold: float
    nearest: tuple[tuple[str, float], ...] = ()  # the nearest two regimes (id, D)
    confident: bool = False
    candidate: int = 0  # k of new_regime_windows for a candidate window
    created: tuple[int, ...] = ()  # windows that now belong to the new regime (this one too)
    created_segments: tuple[int, ...] = ()  # mixed windows whose unknown part joins it
    segments: tuple[Segment, ...] = ()  # for a mixed window

    @property
    def distance(self) -> float | None:
        return self.nearest[0][1] if self.nearest else None


def nearest(state: State, fp: Fingerprint) -> tuple[tuple[str, float], ...]:
    """The two regimes nearest to a fingerprint, nearest first."""
    ranked = sorted((distance(fp, r.fingerprint), r.id) for r in state.regimes)
    return tuple((rid, d) for d, rid in ranked[:2])


def match(state: State, fp: Fingerprint, rows: int) -> tuple[str | None, tuple]:
    """Read-only: the regime a row set belongs to (None when none is within tau)."""
    near = nearest(state, fp)
    if rows < state.config.min_rows or not near:
        return None, near
    return (near[0][0] if near[0][1] <= state.config.threshold(rows) else None), near


def _sub_labels(state: State, subs: Sequence[tuple[Fingerprint, int]]
                ) -> list[tuple[str | None, int]] | None:
    """Per sub-window the nearest regime within tau(rows) (None: none); None when too few."""
    floor = state.config.min_rows  # a smaller sub-window is noise, not evidence of a switch
    labels: list[tuple[str | None, int]] = []
    for fp, rows in subs:
        if rows < floor:
            if labels:  # too small to judge: it goes with its neighbour
                labels[-1] = (labels[-1][0], labels[-1][1] + rows)
            continue
        near = nearest(state, fp)
        ok = bool(near) and near[0][1] <= state.config.threshold(rows)
        labels.append((near[0][0] if ok else None, rows))
    return labels if len(labels) > 1 else None


def _segments(labels: list[tuple[str | None, int]], sizes: list[int]) -> tuple[Segment, ...]:
    out: list[Segment] = []
    for sub, ((label, rows), _) in enumerate(zip(labels, sizes, strict=False)):
        if out and out[-1].regime == label:
            last = out[-1]
            out[-1] = Segment(last.first_sub, sub, label, last.rows + rows)
        else:
            out.append(Segment(sub, sub, label, rows))
    return tuple(out)


def step(state: State, window: Fingerprint, rows: int,
         subs: Sequence[tuple[Fingerprint, int]] | None = None) -> tuple[State, Assignment]:
    """Advance discovery by one complete window (time order). `subs`, optional, are the
    window's sub-windows (fingerprint, rows) in time order: a window whose sub-windows match
    different regimes (or a regime and none) while the whole does not is `mixed`."""
    cfg = state.config
    index, state = state.seen, replace(state, seen=state.seen + 1)
    tau = cfg.threshold(rows)
    if rows < cfg.min_rows:
        return _hold(state, index), Assignment(index, None, "too-few-rows", tau)
    near = nearest(state, window)
    matched = bool(near) and near[0][1] <= tau
    if subs and not matched and state.regimes:
        labels = _sub_labels(state, subs)
        kinds = {label for label, _ in labels} if labels else set()
        if len(kinds) > 1 and kinds != {None}:
            segments = _segments(labels, [r for _, r in labels])
            state = _hold(state, index)
            if None in kinds:
                state = replace(state, mixed_unknown=index)
            return state, Assignment(index, None, "mixed", tau, near, segments=segments)
    if matched:
        rid, d1 = near[0]
        confident = len(near) < 2 or near[1][1] >= cfg.confident_ratio * d1
        regimes = []
        for regime in state.regimes:
            if regime.id == rid:
                fp = (blend(regime.fingerprint, window, cfg.refresh_weight) if confident
                      else regime.fingerprint)
                regime = replace(regime, fingerprint=fp, windows=regime.windows + 1,
                                 refreshes=regime.refreshes + int(confident))
            regimes.append(regime)
        candidates = _expire(state.candidates, index, cfg.candidate_memory)
        state = replace(state, regimes=tuple(regimes), candidates=candidates)
        return state, Assignment(index, rid, "matched", tau, near, confident=confident)
    return _unmatched(state, window, rows, index, tau, near)


def _hold(state: State, index: int) -> State:
    """A window that says nothing about candidates (too few rows, mixed) keeps them alive."""
    return replace(state, candidates=tuple(replace(c, last=index) for c in state.candidates))


def _expire(candidates: tuple[Candidate, ...], index: int, memory: int
            ) -> tuple[Candidate, ...]:
    return tuple(c for c in candidates if index - c.last <= memory)


def _unmatched(state: State, window: Fingerprint, rows: int, index: int, tau: float,
               near: tuple) -> tuple[State, Assignment]:
    cfg = state.config
    candidates = list(_expire(state.candidates, index, max(cfg.candidate_memory, 1)))
    scored = sorted((distance(window, c.fingerprint), i) for i, c in enumerate(candidates))
    if scored and scored[0][0] <= tau:
        i = scored[0][1]
        c = candidates[i]
        weight = rows / (c.fingerprint.rows + rows)
        candidates[i] = Candidate((*c.windows, index), blend(c.fingerprint, window, weight),
                                  index)
    else:
        if cfg.candidate_memory == 0:
            candidates = []  # consecutive rule: a disagreeing window starts the run again
        candidates = candidates[-(MAX_CANDIDATES - 1):]
        candidates.append(Candidate((index,), window, index))
        i = len(candidates) - 1
    c = candidates[i]
    if len(c.windows) < cfg.new_regime_windows:
        state = replace(state, candidates=tuple(candidates))
        return state, Assignment(index, None, "candidate", tau, near, candidate=len(c.windows))
    taken = {r.name for r in state.regimes} | {r.id for r in state.regimes}
    counter = state.counter + 1
    while f"{cfg.names}{counter}" in taken:
        counter += 1
    rid = f"{cfg.names}{counter}"
    regime = Regime(rid, rid, c.fingerprint, windows=len(c.windows))
    del candidates[i]
    before = (state.mixed_unknown,) if state.mixed_unknown == c.windows[0] - 1 else ()
    state = replace(state, regimes=(*state.regimes, regime), counter=counter,
                    candidates=tuple(candidates))
    return state, Assignment(index, rid, "created", tau, near, candidate=len(c.windows),
                             created=c.windows, created_segments=before)


def reset_reference(state: State, regime_id: str, fp: Fingerprint) -> State:
    """A regime's reference becomes `fp` (its new champion's training data)."""
    state.regime(regime_id)
    return replace(state, regimes=tuple(replace(r, fingerprint=fp) if r.id == regime_id else r
                                        for r in state.regimes))


def add_regime(state: State, name: str, fp: Fingerprint) -> State:
    """A known regime with its reference (e.g. from a labelled period); id = name."""
    if any(name in (r.id, r.name) for r in state.regimes):
        raise ValueError(f"regime {name} exists")
    return replace(state, regimes=(*state.regimes, Regime(name, name, fp)))


def rename(state: State, regime_id: str, name: str) -> State:
    """Display name only; the id never changes."""
    state.regime(regime_id)
    return replace(state, regimes=tuple(replace(r, name=name) if r.id == regime_id else r
                                        for r in state.regimes))

"""Regimes without a column: fingerprints, a distance, and the discovery state machine. Pure:
row sets come in as arrays, states go out as values (no store, no I/O).

- **Fingerprint and distance** `D` (core/regime_fingerprint.py): per feature quantiles and a
  robust scale, or category shares; `D` is the RMS over features of the trimmed Wasserstein
  distance in the reference's robust sds (Cohen's h for categories).
- **Threshold** `tau(n) = max(distance, noise / sqrt(n))`: sampling noise of `D` grows like
  1/sqrt(rows), so small windows get a wider threshold (noise 3.6: 0.51 at 50 rows). A regime
  whose own windows vary more (its spread: the RMS of `D` over its confidently matched windows,
  exponentially weighted) gets `tau_R(n) = max(tau(n), min(spread_factor * spread, spread_cap))`,
  so natural day-to-day variation does not split it into many regimes.
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
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

from mlops_tui.core.regime_fingerprint import (  # noqa: F401  (the matcher's public names)
    LEVELS,
    MAX_FEATURE_DISTANCE,
    MISSING,
    Fingerprint,
    blend,
    distance,
    feature_distances,
    fingerprint,
    fingerprint_from_profile,
)

MAX_CANDIDATES = 16


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
    spread_factor: float = 2.5  # tau_R widens to this many times R's spread (0: off)
    spread_weight: float = 0.1  # the spread's exponential update
    spread_cap: float = 1.0  # tau_R never widens beyond this

    def threshold(self, rows: int) -> float:
        return max(self.distance, self.noise / math.sqrt(max(rows, 1)))

    def regime_threshold(self, regime: Regime, rows: int) -> float:
        widened = min(self.spread_factor * regime.spread, self.spread_cap)
        return max(self.threshold(rows), widened)


@dataclass(frozen=True)
class Regime:
    id: str  # stable: the name given at creation
    name: str
    fingerprint: Fingerprint
    windows: int = 0  # windows assigned so far
    refreshes: int = 0
    spread: float = 0.0  # RMS distance of its confidently matched windows (natural variation)


@dataclass(frozen=True)
class Candidate:
    windows: tuple[int, ...]  # window numbers (State.seen at their step)
    fingerprint: Fingerprint
    last: int
    members: tuple[Fingerprint, ...] = ()


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


def _ranked(state: State, fp: Fingerprint, rows: int
            ) -> tuple[tuple[tuple[str, float], ...], list[tuple[float, str]]]:
    """The nearest two regimes (id, D), and (D, id) of every regime within its own
    threshold, nearest first."""
    cfg = state.config
    found = sorted(((distance(fp, r.fingerprint), r) for r in state.regimes),
                   key=lambda pair: (pair[0], pair[1].id))
    near = tuple((r.id, d) for d, r in found[:2])
    return near, [(d, r.id) for d, r in found if d <= cfg.regime_threshold(r, rows)]


def nearest(state: State, fp: Fingerprint) -> tuple[tuple[str, float], ...]:
    """The two regimes nearest to a fingerprint, nearest first."""
    return _ranked(state, fp, 0)[0]


def match(state: State, fp: Fingerprint, rows: int) -> tuple[str | None, tuple]:
    """Read-only: the regime a row set belongs to (None when none is within its threshold)
    and the nearest two regimes."""
    near, within = _ranked(state, fp, rows)
    if rows < state.config.min_rows or not within:
        return None, near
    return within[0][1], near


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
        ok = bool(near) and near[0][1] <= state.config.regime_threshold(
            state.regime(near[0][0]), rows)
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
    near, within = _ranked(state, window, rows)
    matched = bool(within)
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
        d1, rid = within[0]
        others = [d for r, d in near if r != rid]
        confident = not others or others[0] >= cfg.confident_ratio * d1
        regimes = []
        for regime in state.regimes:
            if regime.id == rid:
                tau = cfg.regime_threshold(regime, rows)
                if confident:
                    w = cfg.spread_weight
                    regime = replace(
                        regime, fingerprint=blend(regime.fingerprint, window, cfg.refresh_weight),
                        refreshes=regime.refreshes + 1,
                        spread=math.sqrt((1 - w) * regime.spread ** 2 + w * d1 ** 2))
                regime = replace(regime, windows=regime.windows + 1)
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
                                  index, (*c.members, window))
    else:
        if cfg.candidate_memory == 0:
            candidates = []  # consecutive rule: a disagreeing window starts the run again
        candidates = candidates[-(MAX_CANDIDATES - 1):]
        candidates.append(Candidate((index,), window, index, (window,)))
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
    k = len(c.members)
    spread = math.sqrt(sum(distance(m, c.fingerprint) ** 2 for m in c.members) / max(k - 1, 1))
    regime = Regime(rid, rid, c.fingerprint, windows=len(c.windows), spread=spread)
    del candidates[i]
    before = ((state.mixed_unknown,) if 0 <= state.mixed_unknown == c.windows[0] - 1
              else ())
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


def state_to_dict(state: State) -> dict:
    """A JSON-able checkpoint of the whole state (the config included)."""
    return {"config": asdict(state.config), "counter": state.counter, "seen": state.seen,
            "mixed_unknown": state.mixed_unknown,
            "regimes": [{"id": r.id, "name": r.name, "fingerprint": r.fingerprint.to_dict(),
                         "windows": r.windows, "refreshes": r.refreshes, "spread": r.spread}
                        for r in state.regimes],
            "candidates": [{"windows": list(c.windows), "fingerprint": c.fingerprint.to_dict(),
                            "last": c.last, "members": [m.to_dict() for m in c.members]}
                           for c in state.candidates]}


def state_from_dict(data: dict) -> State:
    regimes = tuple(Regime(r["id"], r["name"], Fingerprint.from_dict(r["fingerprint"]),
                           r["windows"], r["refreshes"], r["spread"]) for r in data["regimes"])
    candidates = tuple(Candidate(tuple(c["windows"]), Fingerprint.from_dict(c["fingerprint"]),
                                 c["last"], tuple(Fingerprint.from_dict(m) for m in c["members"]))
                       for c in data["candidates"])
    return State(MatchConfig(**data["config"]), regimes, data["counter"], data["seen"],
                 candidates, data["mixed_unknown"])

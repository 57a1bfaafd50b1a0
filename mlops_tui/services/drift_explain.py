"""Explaining one feature in one window: reference vs current shares, bin by bin."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from mlops_tui.core.drift import CATEGORICAL, FeatureDrift, WindowDrift
from mlops_tui.core.errors import NotFoundError
from mlops_tui.core.names import not_found
from mlops_tui.core.regimes import SUBWINDOWS
from mlops_tui.services.drift_compute import compute_drift
from mlops_tui.services.drift_inputs import (
    aligned,
    category_map,
    count_key,
    count_plan,
    counts_cache,
    read_known,
    window_spec,
)
from mlops_tui.services.references import profile_problem
from mlops_tui.services.workspace import Workspace
from mlops_tui.store import counts as counts_sql


@dataclass(frozen=True)
class Explanation:
    """Reference vs current shares of one feature in one window, bin by bin."""

    window: WindowDrift
    feature: str
    test: str
    labels: tuple[str, ...]
    reference: tuple[float, ...]
    current: tuple[float, ...]
    result: FeatureDrift
    note: str = ""


def explain(workspace: Workspace, window_start: datetime, feature: str,
            max_bins: int = 20, regime: str | None = None) -> Explanation:
    """Histogram of `feature` in the window starting at (or containing) `window_start`; of
    a window split at a regime switch, `regime`'s part (default: the first)."""
    if feature not in workspace.config.data.features:
        raise not_found("feature", feature, list(workspace.config.data.features))
    window = window_spec(workspace.config.data, read_known(workspace).ranges)
    moment = window_start if window_start.tzinfo else window_start.replace(tzinfo=UTC)
    start = aligned(window, moment) if not window.rows else None
    until = start + timedelta(microseconds=window.period_us) if start else None
    # The whole history up to the window: its reference depends on the windows before it.
    report = compute_drift(workspace, features=[feature], until=until, with_metrics=False)
    matches = [w for w in report.windows if w.start <= moment < w.end or w.start == moment]
    if not matches:
        raise NotFoundError(f"no window starts at or contains {moment.isoformat()}")
    if regime is not None and any(w.split for w in matches):
        matches = [w for w in matches if not w.split or w.regime.regime == regime]
        if not matches:
            raise NotFoundError(f"the window at {moment.isoformat()} has no part of regime "
                                f"{regime}")
    found = matches[0]
    result = found.features[feature]
    known = read_known(workspace)
    version = known.versions.get(found.reference.version) if found.reference.version else None
    profile = known.profiles.get(version.train_snapshot) if version else None
    fp = profile.features.get(feature) if profile else None
    if fp is None or profile_problem(fp):
        return Explanation(found, feature, result.test, (), (), (), result,
                           note=result.reason or "no reference profile")
    if found.split:  # the part's rows only: those of its regime label
        plan = count_plan({profile.snapshot: profile}, (feature,), known.regimes)
        code = known.regimes.index(found.regime.regime) + 1 if found.regime.regime else 0
        counts = counts_sql.regime_counts(known.files, workspace.config.data, window, plan,
                                          code, [(found.start, found.end)])
    else:
        plan = count_plan({profile.snapshot: profile}, (feature,), None)
        counts = counts_sql.window_counts(known.files, workspace.config.data, window, plan,
                                          since=found.start if not window.rows else None,
                                          until=found.end if not window.rows else None,
                                          cache=counts_cache(workspace))
    if counts is None:
        raise NotFoundError(f"no observations in the window at {found.start.isoformat()}")
    if window.rows:  # row windows are numbered from the first row: keep this one's subs
        index = report.windows.index(found)
        counts = _slice_subs(counts, index * SUBWINDOWS - counts.first_sub, SUBWINDOWS)
    if fp.dtype == CATEGORICAL:
        raw = counts.categorical[feature].sum(axis=0)
        current = raw @ category_map(fp, plan.categories[feature])
        labels = ("(unseen)", *fp.categories)
        reference = fp.reference_counts()
    else:
        current = counts.numeric[count_key(profile.snapshot, feature)].sum(axis=0)[:-1]
        reference = fp.reference_counts()
        left, right = fp.grid.bin_edges()
        labels, reference, current = _coarsen(left, right, reference, current, max_bins)
    total_ref, total_cur = max(reference.sum(), 1), max(current.sum(), 1)
    return Explanation(found, feature, result.test, tuple(labels),
                       tuple(float(v) for v in reference / total_ref),
                       tuple(float(v) for v in current / total_cur), result)


def _slice_subs(counts, start: int, length: int):
    part = slice(max(start, 0), max(start + length, 0))
    return counts_sql.WindowCounts(
        counts.first_sub + part.start, counts.rows[part],
        {k: v[part] for k, v in counts.numeric.items()},
        {k: v[part] for k, v in counts.categorical.items()},
        counts.regime[part] if counts.regime is not None else None)


def _coarsen(left, right, reference, current, max_bins):
    """Merge fine bins into about `max_bins` groups of equal reference mass for display."""
    used = (reference + current) > 0
    first, last = int(np.argmax(used)), len(used) - int(np.argmax(used[::-1]))
    left, right = left[first:last], right[first:last]
    reference, current = reference[first:last], current[first:last]
    share = np.cumsum(reference) / max(reference.sum(), 1)
    group = np.minimum((share * max_bins).astype(int), max_bins - 1)
    group = np.maximum.accumulate(group)
    starts = np.flatnonzero(np.r_[True, np.diff(group) != 0])
    ref = np.add.reduceat(reference, starts)
    cur = np.add.reduceat(current, starts)
    ends = np.r_[starts[1:], len(left)] - 1
    labels = [f"[{left[s]:.4g}, {right[e]:.4g}]" for s, e in zip(starts, ends, strict=True)]
    return labels, ref, cur

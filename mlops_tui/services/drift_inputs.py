"""What a drift computation reads: the store's state in one read unit, the count plan for
the references in play, and each feature's counts under one reference.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from mlops_tui.core import regimes as regime_core
from mlops_tui.core.drift import CATEGORICAL
from mlops_tui.core.models import DeploymentKind, ModelVersion
from mlops_tui.core.profiles import FeatureProfile, Profile
from mlops_tui.core.regimes import SUBWINDOWS, WindowSpec
from mlops_tui.services.workspace import Workspace
from mlops_tui.store import counts as counts_sql
from mlops_tui.store import deployments as deployment_sql
from mlops_tui.store import drift as drift_sql
from mlops_tui.store import observations as observation_sql
from mlops_tui.store import registry as registry_sql

# -- what the store knows, read once ---------------------------------------------------------


@dataclass(frozen=True)
class Known:
    """What the store knows for a report, read in one read unit."""

    files: list[Path]
    ranges: list[tuple[Path, datetime | None, datetime | None]]  # per batch: first, last time
    regimes: tuple[str, ...]
    champions: dict[str, int]
    regime_versions: dict[str, ModelVersion]  # per regime: the champion, else its newest
    versions: dict[int, ModelVersion]
    deployments: list[tuple[datetime, int]]  # the target's active versions, oldest first
    profiles: dict[str, Profile]


def read_known(workspace: Workspace) -> Known:
    """Batches, regimes, champions, the target's deployments and the profiles in play."""
    target = workspace.config.serving.default_target
    with workspace.store.read() as tx:
        ranges = [(workspace.root / p, low, high) for p, low, high
                  in observation_sql.batch_ranges(tx)]
        files = [path for path, _, _ in ranges]
        regimes = tuple(registry_sql.regime_names(tx))
        current = deployment_sql.current_all(tx)
        champions = {e.subject: e.to_version for e in current
                     if e.kind is DeploymentKind.CHAMPION}
        events = deployment_sql.history(tx, kind=DeploymentKind.ACTIVE, subject=target,
                                        limit=None)
        # what served when, at data time: a change serves the windows from the newest
        # observation it acted on (old rows without one: the wall clock)
        deployments = [(e.timeline_at, e.to_version)
                       for e in sorted(events, key=lambda e: (e.timeline_at, e.seq))]
        numbers = set(champions.values()) | {v for _, v in deployments}
        versions = {n: v for n in numbers if (v := registry_sql.get_version(tx, n))}
        regime_versions: dict[str, ModelVersion] = {}
        for regime in regimes:
            number = champions.get(regime)
            if number is not None and number in versions:
                regime_versions[regime] = versions[number]
                continue
            newest = registry_sql.list_versions(tx, regime=regime, limit=1)
            if newest:
                regime_versions[regime] = versions.setdefault(newest[0].number, newest[0])
        snapshots = sorted({v.train_snapshot for v in versions.values() if v.train_snapshot})
        profiles = drift_sql.get_profiles(tx, snapshots)
    return Known(files, ranges, regimes, champions, regime_versions, versions, deployments,
                 profiles)


# -- counting --------------------------------------------------------------------------------


def count_key(snapshot: str, feature: str) -> str:
    """The name of a numeric feature's counts under one reference snapshot's grid."""
    return f"{snapshot}/{feature}"


def category_map(profile: FeatureProfile, union: tuple[str, ...]) -> np.ndarray:
    """(len(union) + 2, len(categories) + 1): union codes -> the profile's codes (0 unseen);
    the missing column maps nowhere."""
    index = {c: i + 1 for i, c in enumerate(profile.categories)}
    matrix = np.zeros((len(union) + 2, len(profile.categories) + 1))
    matrix[0, 0] = 1.0
    for u, category in enumerate(union, start=1):
        matrix[u, index.get(category, 0)] = 1.0
    return matrix


@dataclass(frozen=True)
class FeatureCounts:
    """One feature's counts under one reference profile, per sub-window and per window."""

    sub: np.ndarray  # (windows * SUBWINDOWS, bins)
    window: np.ndarray  # (windows, bins)
    missing: np.ndarray  # (windows,)


def counts_for(profile: FeatureProfile, snapshot: str, counts, union, pad) -> FeatureCounts:
    """`profile`'s counts out of the window counts, padded to whole windows by `pad`."""
    if profile.dtype == CATEGORICAL:
        raw = counts.categorical[profile.name]
        present = pad(raw @ category_map(profile, union[profile.name]))
        missing = pad(raw[:, -1])
    else:
        raw = pad(counts.numeric[count_key(snapshot, profile.name)])
        present, missing = raw[:, :-1], raw[:, -1]
    windows = present.shape[0] // SUBWINDOWS
    return FeatureCounts(
        present, present.reshape(windows, SUBWINDOWS, -1).sum(axis=1),
        missing.reshape(windows, SUBWINDOWS).sum(axis=1))


def counts_cache(workspace: Workspace) -> Path | None:
    """Where per-batch counts are kept (None when the workspace cannot be written)."""
    folder = workspace.data_root / "counts"
    return folder if os.access(workspace.data_root, os.W_OK) else None


def overlapping(known: Known, since: datetime | None, until: datetime | None) -> list[Path]:
    """Batches with rows in [since, until) (by their recorded time range)."""
    def naive(moment: datetime | None) -> datetime | None:
        return moment.astimezone(UTC).replace(tzinfo=None) if moment else None

    low, high = naive(since), naive(until)
    return [path for path, first, last in known.ranges
            if first is None or last is None
            or ((low is None or last >= low) and (high is None or first < high))]


def first_observation(ranges) -> datetime | None:
    """The first observation of the first batch ingested (batches in ingest order): what
    `window_origin` anchors to, so a later batch, even one with earlier rows, never moves
    the windows already seen."""
    return next((low for _, low, _ in ranges if low is not None), None)


def window_spec(contract, ranges) -> WindowSpec:
    """`[data] window` on the grid `[data] window_origin` fixes for this store."""
    origin = regime_core.window_origin(contract.window_origin, contract.window,
                                       first_observation(ranges))
    return regime_core.parse_window(contract.window, origin)


def aligned(window: WindowSpec, moment: datetime | None) -> datetime | None:
    """Period windows start at a window boundary, so no window is cut in two."""
    if moment is None:
        return None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if window.rows:
        return moment
    return window.start(window.index_of(moment))


def window_times(window: WindowSpec, first_window: int, n_windows: int, counts, lead: int,
                 pad) -> tuple[list[datetime], list[datetime]]:
    """Each window's start and end (row windows: their first and last row's time)."""
    if not window.rows:
        starts = [window.start(first_window + w) for w in range(n_windows)]
        return starts, [s + timedelta(microseconds=window.period_us) for s in starts]
    epoch = regime_core.EPOCH
    sub_start = pad(counts.sub_start.astype(np.float64)).reshape(n_windows, SUBWINDOWS)
    sub_end = pad(counts.sub_end.astype(np.float64)).reshape(n_windows, SUBWINDOWS)
    sub_rows = pad(counts.rows).reshape(n_windows, SUBWINDOWS)
    has = sub_rows > 0
    start_us = np.where(has, sub_start, np.inf).min(axis=1)
    end_us = np.where(has, sub_end, -np.inf).max(axis=1)
    starts = [epoch + timedelta(microseconds=float(s)) for s in start_us]
    ends = [epoch + timedelta(microseconds=float(e)) for e in end_us]
    return starts, ends


def count_plan(profiles: dict[str, Profile], features: tuple[str, ...],
               regimes) -> counts_sql.CountPlan:
    """What to count for `features` under every profile in play, and the regime labels."""
    numeric, categories = {}, {}
    for snapshot, profile in profiles.items():
        for feature in features:
            fp = profile.features.get(feature)
            if fp is None:
                continue
            if fp.dtype == CATEGORICAL:
                union = categories.setdefault(feature, [])
                union.extend(c for c in fp.categories if c not in union)
            elif fp.grid is not None:
                numeric[count_key(snapshot, feature)] = (feature, fp.grid)
    return counts_sql.CountPlan(numeric=numeric,
                                categories={f: tuple(c) for f, c in categories.items()},
                                regime_labels=tuple(regimes) if regimes is not None else None)

"""Computing drift over time and recording it.

`compute_drift` reads the store once (batches, deployments, champions, profiles), asks the
store for every window's bin counts in one query, identifies each window's regime, picks
each window's reference (the serving version's training snapshot), and judges every feature
with the test fixed in that reference's profile. `record_drift` keeps a report in the store,
so the dashboard and CT read the same numbers.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np

from mlops_tui.core import regimes as regime_core
from mlops_tui.core.drift import (
    CATEGORICAL,
    INCONCLUSIVE,
    DriftReport,
    FeatureDrift,
    WindowDrift,
    dataset_verdict,
    get_test,
    inconclusive_reasons,
    judge_feature,
)
from mlops_tui.core.names import not_found, validate_name
from mlops_tui.core.profiles import FeatureProfile, Profile
from mlops_tui.core.regimes import SUBWINDOWS, ReferenceChoice
from mlops_tui.services.drift_inputs import (
    FeatureCounts,
    Known,
    aligned,
    count_plan,
    counts_cache,
    counts_for,
    overlapping,
    read_known,
    window_spec,
    window_times,
)
from mlops_tui.services.drift_metrics import window_metrics
from mlops_tui.services.drift_read import judged_features
from mlops_tui.services.references import profile_problem, threshold_for
from mlops_tui.services.workspace import Workspace
from mlops_tui.store import counts as counts_sql
from mlops_tui.store import drift as drift_sql


def _distance(feature: FeatureProfile, counts: np.ndarray) -> np.ndarray:
    """Per row: Wasserstein / std (numeric, on at most 128 merged bins: regime matching needs
    no fine grid) or Jensen-Shannon (categorical); NaN for rows without values."""
    reference = feature.reference_counts()
    if feature.dtype == CATEGORICAL:
        values = get_test("jensenshannon").compute(reference, counts).statistic
    else:
        starts, bins = feature.grid.coarse()
        values = get_test("wasserstein").compute(
            np.add.reduceat(reference, starts), np.add.reduceat(counts, starts, axis=-1), bins,
            np.asarray(feature.std)).statistic
    return np.where(counts.sum(axis=-1) > 0, values, np.nan)


def reference_versions(workspace: Workspace) -> dict[str, tuple[int, bool, Profile | None]]:
    """Per regime: (reference version, whether it is the champion, its reference profile)."""
    known = read_known(workspace)
    return {name: (v.number, known.champions.get(name) == v.number,
                   known.profiles.get(v.train_snapshot) if v.train_snapshot else None)
            for name, v in known.regime_versions.items()}


def compute_drift(workspace: Workspace, *, regime: str | None = None,
                  features: list[str] | None = None, since: datetime | None = None,
                  until: datetime | None = None, with_metrics: bool = True) -> DriftReport:
    """Judge every window of the observations (or of [since, until)) against its reference.

    With labels (in the batches or ingested late) and `with_metrics`, each window also gets
    the serving version's metric on its labelled rows."""
    config = workspace.config
    contract, settings = config.data, config.drift
    chosen = judged_features(workspace, features)
    known = read_known(workspace)
    window = window_spec(contract, known.ranges)
    if regime is not None:
        validate_name(regime, "regime")
        if regime not in known.regimes:
            raise not_found("regime", regime, list(known.regimes))
    since, until = aligned(window, since), aligned(window, until)
    now = datetime.now(UTC)
    notes: list[str] = []

    regime_profiles = {name: known.profiles[v.train_snapshot]
                       for name, v in known.regime_versions.items()
                       if v.train_snapshot in known.profiles}
    for name, version in known.regime_versions.items():
        if name not in regime_profiles:
            notes.append(f"regime {name}: {version.id} has no reference profile")
    in_play = {v.train_snapshot: known.profiles[v.train_snapshot]
               for v in known.versions.values() if v.train_snapshot in known.profiles}
    matching = tuple(f for f in contract.features if f not in set(settings.ignore))
    plan = count_plan(in_play, chosen + tuple(f for f in matching if f not in chosen),
                      known.regimes if contract.regime_column else None)
    # One window before `since` too: its regime decides what auto-deploy served next.
    lookback = since - timedelta(microseconds=window.period_us) if since and window.period_us \
        else since
    counts = counts_sql.window_counts(overlapping(known, lookback, until), contract, window,
                                      plan, since=lookback, until=until,
                                      cache=counts_cache(workspace))
    if counts is None:
        return DriftReport(contract.window, chosen, [], now, regime,
                           tuple(notes + ["no observations in this range"]))
    first_window = counts.first_sub // SUBWINDOWS
    lead = counts.first_sub - first_window * SUBWINDOWS
    total_subs = -(-(lead + counts.subs) // SUBWINDOWS) * SUBWINDOWS
    n_windows = total_subs // SUBWINDOWS

    def pad(matrix: np.ndarray) -> np.ndarray:
        out = np.zeros((total_subs,) + matrix.shape[1:])
        out[lead:lead + matrix.shape[0]] = matrix
        return out

    sub_rows = pad(counts.rows)
    rows = sub_rows.reshape(n_windows, SUBWINDOWS).sum(axis=1)
    starts, ends = window_times(window, first_window, n_windows, counts, lead, pad)

    memo: dict[tuple[str, str], FeatureCounts] = {}

    def counts_of(feature: FeatureProfile, snapshot: str) -> FeatureCounts:
        if (snapshot, feature.name) not in memo:
            memo[snapshot, feature.name] = counts_for(feature, snapshot, counts,
                                                      plan.categories, pad)
        return memo[snapshot, feature.name]

    # Regimes: distances from every (sub-)window to each regime's reference profile.
    names = tuple(sorted(regime_profiles))
    sub_distance, window_distance = _regime_distances(
        [regime_profiles[n] for n in names], matching, counts_of, n_windows)
    threshold = settings.regime_distance
    if contract.regime_column:
        labels = pad(counts.regime).reshape(n_windows, SUBWINDOWS, -1).sum(axis=1)
        window_regimes = regime_core.from_column(labels, known.regimes, window_distance, names,
                                                 threshold)
    else:
        window_regimes = regime_core.from_profiles(
            window_distance, sub_distance.reshape(n_windows, SUBWINDOWS, len(names)), names,
            threshold, rows, sub_rows.reshape(n_windows, SUBWINDOWS), settings.min_rows)

    champions = {name: v.number for name, v in known.regime_versions.items()}
    choices = regime_core.reference_plan(starts, window_regimes, known.deployments, champions,
                                         requested_regime=regime)
    selected = np.array([(regime is None or (r.regime == regime and not r.mixed))
                         and (since is None or window.rows > 0 or start >= since)
                         for r, start in zip(window_regimes, starts, strict=True)], dtype=bool)

    mixed = np.array([r.mixed for r in window_regimes], dtype=bool)
    # With a regime column, a window holding two labels is judged per label instead.
    split = mixed if contract.regime_column and window.period_us else np.zeros_like(mixed)
    results, thresholds = _judge(workspace, known, chosen, choices,
                                 np.flatnonzero(selected & ~split), rows, mixed, counts_of)
    segments: dict[int, list[WindowDrift]] = {}
    if split.any():
        segments = _segments(workspace, known, window, plan, chosen, matching, regime,
                             np.flatnonzero(split & _from(starts, since)), labels, starts,
                             ends, first_window, n_windows, thresholds)

    metrics = window_metrics(workspace, known, window, counts, first_window, n_windows,
                             since, until, notes) if with_metrics else {}
    windows = []
    for w in np.flatnonzero(selected | split):
        if split[w]:
            windows.extend(segments.get(int(w), []))
            continue
        share, verdict = dataset_verdict(list(results[w].values()), settings.dataset_share)
        version = known.versions.get(choices[w].version) if choices[w].version else None
        windows.append(WindowDrift(
            start=starts[w], end=ends[w], rows=int(rows[w]), regime=window_regimes[w],
            reference=choices[w],
            reference_snapshot=version.train_snapshot if version else None,
            features=results[w], drift_share=share, verdict=verdict,
            metric=metrics.get(int(w))))
    return DriftReport(contract.window, chosen, windows, now, regime, tuple(notes), thresholds)


def _from(starts: list, since: datetime | None) -> np.ndarray:
    return np.array([since is None or s >= since for s in starts], dtype=bool)


def _segments(workspace: Workspace, known: Known, window, plan, chosen: tuple[str, ...],
              matching: tuple[str, ...], requested: str | None, split: np.ndarray,
              label_counts: np.ndarray,
              starts: list, ends: list, first_window: int, n_windows: int,
              thresholds: dict[str, str]) -> dict[int, list[WindowDrift]]:
    """Each window of `split` cut into one part per regime label (its rows only), each
    judged like a window of that regime: against the regime's reference version, with its
    own row count. Returns the parts per window, in the order their regimes appear."""
    if split.size == 0:
        return {}
    contract, settings = workspace.config.data, workspace.config.drift
    files = overlapping(known, starts[split[0]], ends[split[-1]])
    labels = known.regimes
    base = first_window * SUBWINDOWS
    total_subs = n_windows * SUBWINDOWS
    names = tuple(sorted(n for n, v in known.regime_versions.items()
                         if v.train_snapshot in known.profiles))
    parts: dict[int, list[tuple[int, str, WindowDrift]]] = {}
    for code in range(len(labels) + 1):
        name = labels[code - 1] if code else None
        holding = [w for w in split if label_counts[w, code] > 0]
        if not holding or (requested is not None and name != requested):
            continue
        counts = counts_sql.regime_counts(files, contract, window, plan, code,
                                          [(starts[w], ends[w]) for w in holding])
        if counts is None:
            continue

        def pad(matrix: np.ndarray, counts=counts) -> np.ndarray:
            out = np.zeros((total_subs,) + matrix.shape[1:])
            at = counts.first_sub - base
            lo, hi = max(at, 0), min(at + matrix.shape[0], total_subs)
            if hi > lo:
                out[lo:hi] = matrix[lo - at:hi - at]
            return out

        window_rows = pad(counts.rows).reshape(n_windows, SUBWINDOWS).sum(axis=1)
        members = np.array([w for w in split if window_rows[w] > 0], dtype=np.int64)
        if members.size == 0:
            continue

        # only the member windows, in their order: statistics for them and no others
        def compact(matrix: np.ndarray, pad=pad, members=members) -> np.ndarray:
            full = pad(matrix)
            return full.reshape((n_windows, SUBWINDOWS) + full.shape[1:])[members].reshape(
                (members.size * SUBWINDOWS,) + full.shape[1:])

        sub_rows = compact(counts.rows).reshape(members.size, SUBWINDOWS)
        rows = sub_rows.sum(axis=1)
        memo: dict[tuple[str, str], FeatureCounts] = {}

        def counts_of(feature: FeatureProfile, snapshot: str, counts=counts, compact=compact,
                      memo=memo) -> FeatureCounts:
            if (snapshot, feature.name) not in memo:
                memo[snapshot, feature.name] = counts_for(feature, snapshot, counts,
                                                          plan.categories, compact)
            return memo[snapshot, feature.name]

        _, distance = _regime_distances(
            [known.profiles[known.regime_versions[n].train_snapshot] for n in names],
            matching, counts_of, members.size)
        own_labels = compact(counts.regime).reshape(members.size, SUBWINDOWS, -1).sum(axis=1)
        regimes = regime_core.from_column(own_labels, labels, distance, names,
                                          settings.regime_distance)
        version = known.regime_versions.get(name) if name else None
        if version is not None:
            choice = ReferenceChoice(
                version.number, "requested" if requested else "regime",
                f"part of a window that spans a regime switch: {name}'s reference")
        else:
            choice = ReferenceChoice(None, "none", f"regime {name} has no version" if name
                                     else "label not in the store")
        results, found = _judge(workspace, known, chosen, [choice] * members.size,
                                np.arange(members.size), rows,
                                np.zeros(members.size, dtype=bool), counts_of)
        for key, value in found.items():
            thresholds.setdefault(key, value)
        for m, w in enumerate(members):
            share, verdict = dataset_verdict(list(results[m].values()), settings.dataset_share)
            first_sub = int(np.flatnonzero(sub_rows[m])[0])
            parts.setdefault(int(w), []).append((first_sub, name or "", WindowDrift(
                start=starts[w], end=ends[w], rows=int(rows[m]), regime=regimes[m],
                reference=choice,
                reference_snapshot=version.train_snapshot if version else None,
                features=results[m], drift_share=share, verdict=verdict, split=True)))
    return {w: [p[2] for p in sorted(found)] for w, found in parts.items()}


def _judge(workspace: Workspace, known: Known, chosen: tuple[str, ...],
           choices: list[ReferenceChoice], selected: np.ndarray, rows: np.ndarray,
           mixed: np.ndarray, counts_of) -> tuple[list[dict[str, FeatureDrift]], dict[str, str]]:
    """Per window and feature, the verdict against the window's reference: windows sharing a
    reference are judged together, one vectorised test call per feature."""
    settings = workspace.config.drift
    results: list[dict[str, FeatureDrift]] = [{} for _ in range(len(rows))]
    thresholds: dict[str, str] = {}
    by_version: dict[int | None, list[int]] = {}
    for w in selected:
        by_version.setdefault(choices[w].version, []).append(int(w))
    for number, members in by_version.items():
        version = known.versions.get(number) if number is not None else None
        profile = known.profiles.get(version.train_snapshot) if version and \
            version.train_snapshot else None
        index = np.array(members)
        for feature in chosen:
            fp = profile.features.get(feature) if profile else None
            if profile is None:
                problem = (f"{version.id} has no reference profile" if version
                           else choices[members[0]].note or "no reference version")
                for w in members:
                    results[w][feature] = FeatureDrift(feature, "-", None, None, None,
                                                       INCONCLUSIVE, problem)
                continue
            problem = profile_problem(fp)
            test = get_test(fp.test) if fp else get_test("wasserstein")
            if problem:
                for w in members:
                    results[w][feature] = FeatureDrift(feature, test.name, None, None, None,
                                                       INCONCLUSIVE, problem)
                continue
            current = counts_of(fp, profile.snapshot).window[index]
            reasons = inconclusive_reasons(rows[index], current.sum(axis=1), mixed[index],
                                           settings.min_rows)
            limit = threshold_for(workspace, test, fp, version, np.median(rows[index]))
            thresholds[f"{version.id}/{feature}"] = limit.note or f"fixed {limit.value}"
            verdicts = judge_feature(feature, test, fp.reference_counts(), current, limit,
                                     reasons, bins=fp.grid.bins() if fp.grid else None,
                                     scale=fp.std, min_effect=settings.min_effect)
            for w, verdict in zip(members, verdicts, strict=True):
                results[w][feature] = verdict
    return results, thresholds


def _regime_distances(profiles: list[Profile], matching: tuple[str, ...], counts_of,
                      n_windows: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean per-feature distance to each profile: (sub-windows, profiles), (windows, profiles).
    Features a window has no values for are left out of its mean."""
    subs = n_windows * SUBWINDOWS
    sub_out = np.full((subs, len(profiles)), np.nan)
    window_out = np.full((n_windows, len(profiles)), np.nan)
    for column, profile in enumerate(profiles):
        sub_parts, window_parts = [], []
        for feature in matching:
            fp = profile.features.get(feature)
            if profile_problem(fp):
                continue
            fc = counts_of(fp, profile.snapshot)
            sub_parts.append(_distance(fp, fc.sub))
            window_parts.append(_distance(fp, fc.window))
        for parts, out in ((sub_parts, sub_out), (window_parts, window_out)):
            if parts:
                stacked = np.stack(parts)
                valid = np.isfinite(stacked).sum(axis=0)
                total = np.where(np.isfinite(stacked), stacked, 0.0).sum(axis=0)
                out[:, column] = np.where(valid > 0, total / np.maximum(valid, 1), np.nan)
    return sub_out, window_out


# -- recording ------------------------------------------------------------------------------


def record_drift(workspace: Workspace, report: DriftReport) -> str:
    """Keep a report in the store (one write unit); return its run id."""
    run_id = str(uuid.uuid4())
    window_rows, feature_rows = [], []
    for w in report.windows:
        metric = w.metric
        window_rows.append((
            _naive(w.start), _naive(w.end), w.rows, w.regime.label, w.regime.method,
            w.regime.distance, w.regime.mixed, w.regime.warning, w.reference.version,
            w.reference.basis, w.reference_snapshot, w.drift_share, w.verdict,
            metric.version if metric else None, metric.metric if metric else None,
            metric.value if metric else None, metric.rows if metric else None))
        for f in w.features.values():
            feature_rows.append((
                w.regime.regime, _naive(w.start), _naive(w.end), f.feature, f.test,
                f.statistic, f.threshold, f.verdict, f.reason, f.p_value, w.rows,
                w.reference_snapshot))
    settings = {"window": report.window, "regime": report.regime,
                "features": list(report.features), "notes": list(report.notes),
                "thresholds": report.thresholds,
                # the parts of split windows (start, regime): the table has no column for it
                "split": [[_naive(w.start).isoformat(), w.regime.label]
                          for w in report.windows if w.split]}
    with workspace.store.write("drift") as tx:
        drift_sql.insert_run(tx, run_id, settings, window_rows, feature_rows)
    return run_id


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment

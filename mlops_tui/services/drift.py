"""Drift over time: reference profiles, the per-window drift report, and recording it.

`compute_drift` reads the store once (batches, deployments, champions, profiles), asks the
store for every window's bin counts in one query, identifies each window's regime, picks
each window's reference (the serving version's training snapshot), and judges every feature
with the test fixed in that reference's profile. `record_drift` keeps a report in the store,
so the dashboard and CT read the same numbers.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from mlops_tui.core import regimes as regime_core
from mlops_tui.core.drift import (
    CATEGORICAL,
    INCONCLUSIVE,
    DriftReport,
    FeatureDrift,
    Threshold,
    WindowDrift,
    dataset_verdict,
    get_test,
    inconclusive_reasons,
    judge_feature,
    reference_threshold,
)
from mlops_tui.core.errors import NotFoundError, UsageError
from mlops_tui.core.models import DataSnapshot, DeploymentKind, ModelVersion
from mlops_tui.core.names import not_found, validate_name
from mlops_tui.core.profiles import FeatureProfile, Profile, build_profile
from mlops_tui.core.regimes import (
    SUBWINDOWS,
    ReferenceChoice,
    WindowMetric,
    WindowRegime,
    WindowSpec,
    parse_window,
)
from mlops_tui.services.workspace import Workspace
from mlops_tui.store import (
    deployments as deployment_sql,
)
from mlops_tui.store import (
    drift as drift_sql,
)
from mlops_tui.store import (
    observations as observation_sql,
)
from mlops_tui.store import (
    registry as registry_sql,
)

# -- reference profiles ----------------------------------------------------------------------


def profile_snapshot(workspace: Workspace, snapshot: DataSnapshot | None) -> Profile | None:
    """The reference profile of a training snapshot (None when it has no readable file)."""
    if snapshot is None or not snapshot.path:
        return None
    path = workspace.root / snapshot.path
    if not path.is_file():
        return None
    contract, settings = workspace.config.data, workspace.config.drift
    columns = drift_sql.read_columns(path, contract.numeric, contract.categorical)
    return build_profile(snapshot.fingerprint, columns, contract.numeric, contract.categorical,
                         regime=snapshot.regime, numeric_test=settings.numeric_test,
                         categorical_test=settings.categorical_test)


def ensure_profiles(workspace: Workspace) -> int:
    """Profile every version's training snapshot that has none yet; return how many."""
    with workspace.store.read() as tx:
        versions = registry_sql.list_versions(tx, limit=None)
        wanted = {v.train_snapshot for v in versions if v.train_snapshot}
        have = set(drift_sql.get_profiles(tx, sorted(wanted)))
        snapshots = [registry_sql.get_data_snapshot(tx, s) for s in sorted(wanted - have)]
    made = [p for p in (profile_snapshot(workspace, s) for s in snapshots) if p is not None]
    if made:
        with workspace.store.write("profiles") as tx:
            for profile in made:
                drift_sql.put_profile(tx, profile)
    return len(made)


# -- what the store knows, read once ---------------------------------------------------------


@dataclass(frozen=True)
class _Known:
    files: list[Path]
    ranges: list[tuple[Path, datetime | None, datetime | None]]  # per batch: first, last time
    regimes: tuple[str, ...]
    champions: dict[str, int]
    regime_versions: dict[str, ModelVersion]  # per regime: the champion, else its newest
    versions: dict[int, ModelVersion]
    deployments: list[tuple[datetime, int]]  # the target's active versions, oldest first
    profiles: dict[str, Profile]


def _read_known(workspace: Workspace) -> _Known:
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
        deployments = [(e.at, e.to_version) for e in sorted(events, key=lambda e: e.seq)]
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
    return _Known(files, ranges, regimes, champions, regime_versions, versions, deployments,
                  profiles)


# -- the report ------------------------------------------------------------------------------


def _key(snapshot: str, feature: str) -> str:
    return f"{snapshot}/{feature}"


def _features(workspace: Workspace, only: list[str] | None) -> tuple[str, ...]:
    contract, ignored = workspace.config.data, set(workspace.config.drift.ignore)
    features = tuple(f for f in contract.features if f not in ignored)
    if only:
        for name in only:
            if name not in contract.features:
                raise not_found("feature", name, list(contract.features))
        features = tuple(f for f in contract.features if f in only)  # asked for: judged
    return features


def _category_map(profile: FeatureProfile, union: tuple[str, ...]) -> np.ndarray:
    """(len(union) + 2, len(categories) + 1): union codes -> the profile's codes (0 unseen);
    the missing column maps nowhere."""
    index = {c: i + 1 for i, c in enumerate(profile.categories)}
    matrix = np.zeros((len(union) + 2, len(profile.categories) + 1))
    matrix[0, 0] = 1.0
    for u, category in enumerate(union, start=1):
        matrix[u, index.get(category, 0)] = 1.0
    return matrix


@dataclass(frozen=True)
class _FeatureCounts:
    """One feature's counts under one reference profile, per sub-window and per window."""

    sub: np.ndarray  # (windows * SUBWINDOWS, bins)
    window: np.ndarray  # (windows, bins)
    missing: np.ndarray  # (windows,)


def _counts_for(profile: FeatureProfile, snapshot: str, counts, union, pad) -> _FeatureCounts:
    if profile.dtype == CATEGORICAL:
        raw = counts.categorical[profile.name]
        present = pad(raw @ _category_map(profile, union[profile.name]))
        missing = pad(raw[:, -1])
    else:
        raw = pad(counts.numeric[_key(snapshot, profile.name)])
        present, missing = raw[:, :-1], raw[:, -1]
    windows = present.shape[0] // SUBWINDOWS
    return _FeatureCounts(
        present, present.reshape(windows, SUBWINDOWS, -1).sum(axis=1),
        missing.reshape(windows, SUBWINDOWS).sum(axis=1))


def _profile_problem(feature: FeatureProfile | None) -> str:
    if feature is None:
        return "the reference profile has no such feature"
    if feature.present == 0:
        return "the reference has no values for this feature"
    if feature.constant:
        return "constant in the reference: no distribution to compare with"
    return ""


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
    known = _read_known(workspace)
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
    window = parse_window(contract.window)
    chosen = _features(workspace, features)
    known = _read_known(workspace)
    if regime is not None:
        validate_name(regime, "regime")
        if regime not in known.regimes:
            raise not_found("regime", regime, list(known.regimes))
    since, until = _aligned(window, since), _aligned(window, until)
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
    plan = _plan(in_play, chosen + tuple(f for f in matching if f not in chosen),
                 known.regimes if contract.regime_column else None)
    # One window before `since` too: its regime decides what auto-deploy served next.
    lookback = since - timedelta(microseconds=window.period_us) if since and window.period_us \
        else since
    counts = drift_sql.window_counts(_overlapping(known, lookback, until), contract, window,
                                     plan, since=lookback, until=until, cache=_cache(workspace))
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
    starts, ends = _window_times(window, first_window, n_windows, counts, lead, pad)

    memo: dict[tuple[str, str], _FeatureCounts] = {}

    def counts_of(feature: FeatureProfile, snapshot: str) -> _FeatureCounts:
        if (snapshot, feature.name) not in memo:
            memo[snapshot, feature.name] = _counts_for(feature, snapshot, counts,
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
    results, thresholds = _judge(workspace, known, chosen, choices, np.flatnonzero(selected),
                                 rows, mixed, counts_of)

    metrics = _window_metrics(workspace, known, window, counts, first_window, n_windows,
                              since, until, notes) if with_metrics else {}
    windows = []
    for w in np.flatnonzero(selected):
        share, verdict = dataset_verdict(list(results[w].values()), settings.dataset_share)
        version = known.versions.get(choices[w].version) if choices[w].version else None
        windows.append(WindowDrift(
            start=starts[w], end=ends[w], rows=int(rows[w]), regime=window_regimes[w],
            reference=choices[w],
            reference_snapshot=version.train_snapshot if version else None,
            features=results[w], drift_share=share, verdict=verdict,
            metric=metrics.get(int(w))))
    return DriftReport(contract.window, chosen, windows, now, regime, tuple(notes), thresholds)


def _judge(workspace: Workspace, known: _Known, chosen: tuple[str, ...],
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
            problem = _profile_problem(fp)
            test = get_test(fp.test) if fp else get_test("wasserstein")
            if problem:
                for w in members:
                    results[w][feature] = FeatureDrift(feature, test.name, None, None, None,
                                                       INCONCLUSIVE, problem)
                continue
            current = counts_of(fp, profile.snapshot).window[index]
            reasons = inconclusive_reasons(rows[index], current.sum(axis=1), mixed[index],
                                           settings.min_rows)
            limit = _threshold(workspace, test, fp, version, np.median(rows[index]))
            thresholds[f"{version.id}/{feature}"] = limit.note or f"fixed {limit.value}"
            verdicts = judge_feature(feature, test, fp.reference_counts(), current, limit,
                                     reasons, bins=fp.grid.bins() if fp.grid else None,
                                     scale=fp.std)
            for w, verdict in zip(members, verdicts, strict=True):
                results[w][feature] = verdict
    return results, thresholds


def _cache(workspace: Workspace) -> Path | None:
    """Where per-batch counts are kept (None when the workspace cannot be written)."""
    folder = workspace.data_root / "counts"
    return folder if os.access(workspace.data_root, os.W_OK) else None


def _overlapping(known: _Known, since: datetime | None, until: datetime | None) -> list[Path]:
    """Batches with rows in [since, until) (by their recorded time range)."""
    def naive(moment: datetime | None) -> datetime | None:
        return moment.astimezone(UTC).replace(tzinfo=None) if moment else None

    low, high = naive(since), naive(until)
    return [path for path, first, last in known.ranges
            if first is None or last is None
            or ((low is None or last >= low) and (high is None or first < high))]


def _aligned(window: WindowSpec, moment: datetime | None) -> datetime | None:
    """Period windows start at a window boundary, so no window is cut in two."""
    if moment is None:
        return None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if window.rows:
        return moment
    return window.start(window.index_of(moment))


def _window_times(window: WindowSpec, first_window: int, n_windows: int, counts, lead: int,
                  pad) -> tuple[list[datetime], list[datetime]]:
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


def _plan(profiles: dict[str, Profile], features: tuple[str, ...], regimes) -> drift_sql.CountPlan:
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
                numeric[_key(snapshot, feature)] = (feature, fp.grid)
    return drift_sql.CountPlan(numeric=numeric,
                               categories={f: tuple(c) for f, c in categories.items()},
                               regime_labels=tuple(regimes) if regimes is not None else None)


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
            if _profile_problem(fp):
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


def _threshold(workspace: Workspace, test, feature: FeatureProfile, version: ModelVersion,
               window_rows: float) -> Threshold:
    settings = workspace.config.drift
    fixed = settings.p_value if test.kind == "p_value" else settings.distance
    if settings.threshold_mode != "reference" or test.kind == "p_value":
        return Threshold(fixed, "fixed")
    chunk_rows = max(int(window_rows), 1)
    chunks = feature.rows // chunk_rows
    if chunks < 5:
        return reference_threshold(test, np.zeros((chunks, 1)), fixed, chunk_rows=chunk_rows)
    values = _reference_values(workspace, version, feature)
    if values is None:
        return Threshold(fixed, "fixed", f"fixed {fixed}: the reference snapshot is not readable")
    usable = values[: chunks * chunk_rows]
    if feature.dtype == CATEGORICAL:
        from mlops_tui.core.profiles import category_codes

        codes = category_codes(feature, usable)
        width = len(feature.categories) + 2
        matrix = np.bincount(np.repeat(np.arange(chunks), chunk_rows) * width + codes,
                             minlength=chunks * width).reshape(chunks, width)[:, :-1]
        return reference_threshold(test, matrix.astype(np.float64), fixed,
                                   chunk_rows=chunk_rows)
    codes = feature.grid.assign_codes(np.asarray(usable, dtype=np.float64))
    width = feature.grid.code_count + 1
    matrix = np.bincount(np.repeat(np.arange(chunks), chunk_rows) * width + codes,
                         minlength=chunks * width).reshape(chunks, width)
    return reference_threshold(test, feature.grid.group(matrix.astype(np.float64)), fixed,
                               feature.grid.bins(), np.asarray(feature.std), chunk_rows)


def _reference_values(workspace: Workspace, version: ModelVersion, feature: FeatureProfile):
    with workspace.store.read() as tx:
        snapshot = registry_sql.get_data_snapshot(tx, version.train_snapshot)
    if snapshot is None or not snapshot.path or not (workspace.root / snapshot.path).is_file():
        return None
    numeric = (feature.name,) if feature.dtype != CATEGORICAL else ()
    categorical = (feature.name,) if feature.dtype == CATEGORICAL else ()
    return drift_sql.read_columns(workspace.root / snapshot.path, numeric, categorical
                                  )[feature.name]


def _window_metrics(workspace: Workspace, known: _Known, window: WindowSpec, counts,
                    first_window: int, n_windows: int, since: datetime | None,
                    until: datetime | None, notes: list[str]) -> dict[int, WindowMetric]:
    """Per window, the serving version's metric on its labelled rows (computed on the host).

    Each labelled row is scored by the production target's active version at the row's
    time (deployment history); one model load and one predict call per version."""
    contract, metric = workspace.config.data, workspace.config.pipeline.metric
    if not known.deployments:
        return {}
    with workspace.store.read() as tx:
        labelled = drift_sql.labelled_rows(tx, known.files, contract, window, since=since,
                                           until=until)
    if labelled.num_rows == 0:
        return {}
    row_seconds = labelled.column("ts").to_numpy().astype("datetime64[us]").astype(
        np.int64) / 1e6
    event_seconds = np.array([at.timestamp() for at, _ in known.deployments])
    serving_index = np.searchsorted(event_seconds, row_seconds, side="right") - 1
    window_of = labelled.column("sub").to_numpy().astype(np.int64) // SUBWINDOWS - first_window
    truth = labelled.column("label").to_numpy(zero_copy_only=False).astype(np.float64)
    predicted = np.full(truth.shape, np.nan)
    scored = np.zeros(truth.shape, dtype=bool)
    frame = None
    for event in np.unique(serving_index[serving_index >= 0]):
        number = known.deployments[int(event)][1]
        rows = serving_index == event
        try:
            estimator = _estimator(workspace, number)
            if frame is None:
                frame = labelled.select(list(contract.features)).to_pandas()
            predicted[rows] = np.asarray(estimator.predict(frame[rows]), dtype=np.float64)
            scored[rows] = True
        except Exception as error:  # noqa: BLE001 - a model that cannot score gets no metric
            notes.append(f"v{number} could not score its windows: {error}"[:200])
    if not scored.any():
        return {}
    versions = np.array([known.deployments[int(i)][1] if i >= 0 else -1
                         for i in serving_index])
    return window_metric_values(metric, truth[scored], predicted[scored], window_of[scored],
                                versions[scored], n_windows)


def _estimator(workspace: Workspace, number: int):
    from mlops_tui.services.registry import load_estimator, require_version

    with workspace.store.read() as tx:
        version = require_version(tx, f"v{number}")
        env = registry_sql.get_env(tx, version.env_hash)
    return load_estimator(workspace, version, env)


def window_metric_values(metric: str, truth: np.ndarray, predicted: np.ndarray,
                         window_of: np.ndarray, versions: np.ndarray, n_windows: int
                         ) -> dict[int, WindowMetric]:
    """One metric per window from per-row truth and predictions, with bincount sums."""
    inside = (window_of >= 0) & (window_of < n_windows)
    truth, predicted = truth[inside], predicted[inside]
    window_of, versions = window_of[inside], versions[inside]
    n = np.bincount(window_of, minlength=n_windows).astype(np.float64)

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(window_of, weights=values, minlength=n_windows)

    with np.errstate(all="ignore"):
        if metric in ("r2", "mae", "rmse"):
            error = truth - predicted
            if metric == "mae":
                values = total(np.abs(error)) / n
            elif metric == "rmse":
                values = np.sqrt(total(error ** 2) / n)
            else:
                spread = total(truth ** 2) - total(truth) ** 2 / np.maximum(n, 1)
                values = np.where(spread > 0, 1 - total(error ** 2) / spread, np.nan)
        elif metric == "accuracy":
            values = total((truth == predicted).astype(np.float64)) / n
        else:  # macro f1 over the classes present in the window (truth or prediction)
            classes, codes = np.unique(np.r_[truth, predicted], return_inverse=True)
            true_code, pred_code = codes[: len(truth)], codes[len(truth):]
            width = len(classes)

            def per_class(mask: np.ndarray, code: np.ndarray) -> np.ndarray:
                return np.bincount(window_of[mask] * width + code[mask],
                                   minlength=n_windows * width).reshape(n_windows, width)

            hit = true_code == pred_code
            tp = per_class(hit, true_code)
            fp = per_class(~hit, pred_code)
            fn = per_class(~hit, true_code)
            present = (tp + fp + fn) > 0
            f1 = np.where(present, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
            values = f1.sum(axis=1) / np.maximum(present.sum(axis=1), 1)
    out = {}
    for w in np.flatnonzero(n > 0):
        in_window = versions[window_of == w]
        serving = int(np.bincount(in_window - in_window.min()).argmax() + in_window.min())
        value = float(values[w])
        out[int(w)] = WindowMetric(serving, metric, value if np.isfinite(value) else None,
                                   int(n[w]), "" if np.isfinite(value)
                                   else "undefined (constant labels in the window)")
    return out


# -- recording and reading back --------------------------------------------------------------


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
                "thresholds": report.thresholds}
    with workspace.store.write("drift") as tx:
        drift_sql.insert_run(tx, run_id, settings, window_rows, feature_rows)
    return run_id


def latest_drift(workspace: Workspace) -> DriftReport | None:
    """The most recently recorded report, read back without recomputing (None: never run)."""
    with workspace.store.read() as tx:
        latest = drift_sql.latest_run(tx)
        if latest is None:
            return None
        run_id, computed_at, settings = latest
        window_rows = drift_sql.run_windows(tx, run_id)
        feature_rows = drift_sql.run_features(tx, run_id)
    by_start: dict[datetime, dict[str, FeatureDrift]] = {}
    for row in feature_rows:
        by_start.setdefault(row[2], {})[row[4]] = FeatureDrift(
            feature=row[4], test=row[5], statistic=row[6], p_value=row[11], threshold=row[7],
            verdict=row[8], reason=row[9])
    windows = []
    for row in window_rows:
        (_, start, end, rows, regime, method, distance, mixed, warning, version, basis,
         snapshot, share, verdict, serving, metric, value, labelled) = row
        windows.append(WindowDrift(
            start=start.replace(tzinfo=UTC), end=end.replace(tzinfo=UTC), rows=rows,
            regime=WindowRegime(None if mixed or regime == regime_core.UNKNOWN else regime,
                                method, distance, mixed, warning),
            reference=ReferenceChoice(version, basis), reference_snapshot=snapshot,
            features=by_start.get(start, {}), drift_share=share, verdict=verdict,
            metric=WindowMetric(serving, metric, value, labelled) if metric else None))
    return DriftReport(settings.get("window", ""), tuple(settings.get("features", ())), windows,
                       computed_at.replace(tzinfo=UTC), settings.get("regime"),
                       tuple(settings.get("notes", ())), settings.get("thresholds", {}), run_id)


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


# -- explain ---------------------------------------------------------------------------------


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
            max_bins: int = 20) -> Explanation:
    """Histogram of `feature` in the window starting at (or containing) `window_start`."""
    if feature not in workspace.config.data.features:
        raise not_found("feature", feature, list(workspace.config.data.features))
    window = parse_window(workspace.config.data.window)
    moment = window_start if window_start.tzinfo else window_start.replace(tzinfo=UTC)
    start = _aligned(window, moment) if not window.rows else None
    until = start + timedelta(microseconds=window.period_us) if start else None
    # The whole history up to the window: its reference depends on the windows before it.
    report = compute_drift(workspace, features=[feature], until=until, with_metrics=False)
    matches = [w for w in report.windows if w.start <= moment < w.end or w.start == moment]
    if not matches:
        raise NotFoundError(f"no window starts at or contains {moment.isoformat()}")
    found = matches[0]
    result = found.features[feature]
    known = _read_known(workspace)
    version = known.versions.get(found.reference.version) if found.reference.version else None
    profile = known.profiles.get(version.train_snapshot) if version else None
    fp = profile.features.get(feature) if profile else None
    if fp is None or _profile_problem(fp):
        return Explanation(found, feature, result.test, (), (), (), result,
                           note=result.reason or "no reference profile")
    plan = _plan({profile.snapshot: profile}, (feature,), None)
    counts = drift_sql.window_counts(known.files, workspace.config.data, window, plan,
                                     since=found.start if not window.rows else None,
                                     until=found.end if not window.rows else None,
                                     cache=_cache(workspace))
    if counts is None:
        raise NotFoundError(f"no observations in the window at {found.start.isoformat()}")
    if window.rows:  # row windows are numbered from the first row: keep this one's subs
        index = report.windows.index(found)
        counts = _slice_subs(counts, index * SUBWINDOWS - counts.first_sub, SUBWINDOWS)
    if fp.dtype == CATEGORICAL:
        raw = counts.categorical[feature].sum(axis=0)
        current = raw @ _category_map(fp, plan.categories[feature])
        labels = ("(unseen)", *fp.categories)
        reference = fp.reference_counts()
    else:
        current = counts.numeric[_key(profile.snapshot, feature)].sum(axis=0)[:-1]
        reference = fp.reference_counts()
        left, right = fp.grid.bin_edges()
        labels, reference, current = _coarsen(left, right, reference, current, max_bins)
    total_ref, total_cur = max(reference.sum(), 1), max(current.sum(), 1)
    return Explanation(found, feature, result.test, tuple(labels),
                       tuple(float(v) for v in reference / total_ref),
                       tuple(float(v) for v in current / total_cur), result)


def _slice_subs(counts, start: int, length: int):
    part = slice(max(start, 0), max(start + length, 0))
    return drift_sql.WindowCounts(
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


def parse_window_start(text: str) -> datetime:
    """A window start as the CLI takes it: ISO-8601, UTC unless a zone is given."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"invalid window {text[:40]!r}: give its start, e.g. "
                         "2026-01-13T18:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


__all__ = ["ReferenceChoice", "WindowRegime", "compute_drift", "ensure_profiles", "explain",
           "latest_drift", "profile_snapshot", "record_drift"]

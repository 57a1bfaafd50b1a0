"""Reference profiles and the thresholds they give.

A version's reference is the profile of its training snapshot: built when it is registered
(or by `ensure_profiles` for older versions), kept in the store, never changed. With
`threshold_mode = "reference"`, every test's threshold comes from the reference itself (the
99th percentile of its statistic over chunks of the reference the size of the window).
"""

from __future__ import annotations

import numpy as np

from mlops_tui.core.drift import (
    CATEGORICAL,
    MAX_REFERENCE_CHUNKS,
    MIN_REFERENCE_CHUNKS,
    Threshold,
    reference_threshold,
)
from mlops_tui.core.models import DataSnapshot, ModelVersion
from mlops_tui.core.profiles import FeatureProfile, Profile, build_profile
from mlops_tui.services.workspace import Workspace
from mlops_tui.store import counts as counts_sql
from mlops_tui.store import drift as drift_sql
from mlops_tui.store import registry as registry_sql


def profile_snapshot(workspace: Workspace, snapshot: DataSnapshot | None) -> Profile | None:
    """The reference profile of a training snapshot (None when it has no readable file)."""
    if snapshot is None or not snapshot.path:
        return None
    path = workspace.root / snapshot.path
    if not path.is_file():
        return None
    contract, settings = workspace.config.data, workspace.config.drift
    columns = counts_sql.read_columns(path, contract.numeric, contract.categorical)
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


def profile_problem(feature: FeatureProfile | None) -> str:
    """Why a reference feature cannot be compared with ("" when it can)."""
    if feature is None:
        return "the reference profile has no such feature"
    if feature.present == 0:
        return "the reference has no values for this feature"
    if feature.constant:
        return "constant in the reference: no distribution to compare with"
    return ""


def threshold_for(workspace: Workspace, test, feature: FeatureProfile, version: ModelVersion,
                  window_rows: float) -> Threshold:
    """The threshold `test` uses on `feature` for windows of about `window_rows` rows.

    With `threshold_mode = "reference"` (every test): the reference's rows in file order (a
    snapshot is written in time order) are cut into chunks of the window's size, each chunk
    is judged against the rest of the reference, and the 99th percentile of the statistic is
    the threshold; more than 200 chunks use 200 evenly spaced ones."""
    settings = workspace.config.drift
    fixed = settings.p_value if test.kind == "p_value" else settings.distance
    if settings.threshold_mode != "reference":
        return Threshold(fixed, "fixed")
    chunk_rows = max(int(window_rows), 1)
    chunks = feature.rows // chunk_rows
    if chunks < MIN_REFERENCE_CHUNKS:
        return reference_threshold(test, np.zeros((chunks, 1)), fixed, chunk_rows=chunk_rows)
    values = reference_values(workspace, version, feature)
    if values is None:
        return Threshold(fixed, "fixed", f"fixed {fixed}: the reference snapshot is not readable")
    usable = values[: chunks * chunk_rows]
    chunk_of = np.repeat(np.arange(chunks), chunk_rows)
    if feature.dtype == CATEGORICAL:
        from mlops_tui.core.profiles import category_codes

        codes = category_codes(feature, usable)
        width = len(feature.categories) + 2
        matrix = np.bincount(chunk_of * width + codes,
                             minlength=chunks * width).reshape(chunks, width)[:, :-1]
        bins, scale = None, None
    else:
        codes = feature.grid.assign_codes(np.asarray(usable, dtype=np.float64))
        width = feature.grid.code_count + 1
        matrix = feature.grid.group(np.bincount(chunk_of * width + codes, minlength=chunks * width
                                                ).reshape(chunks, width).astype(np.float64))
        bins, scale = feature.grid.bins(), np.asarray(feature.std)
    matrix = np.asarray(matrix, dtype=np.float64)
    total = matrix.sum(axis=0)
    if chunks > MAX_REFERENCE_CHUNKS:
        matrix = matrix[np.linspace(0, chunks - 1, MAX_REFERENCE_CHUNKS).round().astype(int)]
    return reference_threshold(test, matrix, fixed, bins, scale, chunk_rows, total=total)


def reference_values(workspace: Workspace, version: ModelVersion, feature: FeatureProfile):
    """One feature's values in the version's training snapshot (None: not readable)."""
    with workspace.store.read() as tx:
        snapshot = registry_sql.get_data_snapshot(tx, version.train_snapshot)
    if snapshot is None or not snapshot.path or not (workspace.root / snapshot.path).is_file():
        return None
    numeric = (feature.name,) if feature.dtype != CATEGORICAL else ()
    categorical = (feature.name,) if feature.dtype == CATEGORICAL else ()
    return counts_sql.read_columns(workspace.root / snapshot.path, numeric, categorical
                                   )[feature.name]

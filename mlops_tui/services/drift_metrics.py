"""Per window, the serving version's metric on its labelled rows (computed on the host)."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from mlops_tui.core.regimes import SUBWINDOWS, WindowMetric, WindowSpec
from mlops_tui.services.drift_inputs import Known
from mlops_tui.services.registry import load_estimator, require_version
from mlops_tui.services.workspace import Workspace
from mlops_tui.store import counts as counts_sql
from mlops_tui.store import registry as registry_sql


def window_metrics(workspace: Workspace, known: Known, window: WindowSpec, counts,
                   first_window: int, n_windows: int, since: datetime | None,
                   until: datetime | None, notes: list[str]) -> dict[int, WindowMetric]:
    """Per window, the serving version's metric on its labelled rows (computed on the host).

    Each labelled row is scored by the production target's active version at the row's
    time (deployment history); one model load and one predict call per version."""
    contract, metric = workspace.config.data, workspace.config.pipeline.metric
    if not known.deployments:
        return {}
    with workspace.store.read() as tx:
        labelled = counts_sql.labelled_rows(tx, known.files, contract, window, since=since,
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

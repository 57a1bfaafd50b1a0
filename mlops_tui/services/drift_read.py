"""Reading drift back: the latest recorded report, the features a report judges, and a
window start as the CLI takes it.

Light on purpose: the dashboard reads the recorded report before its first paint, so this
module imports no numpy (the report's types are imported when one is read).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mlops_tui.core.errors import UsageError
from mlops_tui.core.names import not_found
from mlops_tui.services.workspace import Workspace
from mlops_tui.store import drift as drift_sql

if TYPE_CHECKING:
    from mlops_tui.core.drift import DriftReport


def judged_features(workspace: Workspace, only: list[str] | None) -> tuple[str, ...]:
    """The features a report judges: `only` (each must be a feature), else all not ignored."""
    contract, ignored = workspace.config.data, set(workspace.config.drift.ignore)
    features = tuple(f for f in contract.features if f not in ignored)
    if only:
        for name in only:
            if name not in contract.features:
                raise not_found("feature", name, list(contract.features))
        features = tuple(f for f in contract.features if f in only)  # asked for: judged
    return features


def latest_drift(workspace: Workspace) -> DriftReport | None:
    """The most recently recorded report, read back without recomputing (None: never run)."""
    from mlops_tui.core.drift import DriftReport, FeatureDrift, WindowDrift
    from mlops_tui.core.regimes import UNKNOWN, ReferenceChoice, WindowMetric, WindowRegime

    with workspace.store.read() as tx:
        latest = drift_sql.latest_run(tx)
        if latest is None:
            return None
        run_id, computed_at, settings = latest
        window_rows = drift_sql.run_windows(tx, run_id)
        feature_rows = drift_sql.run_features(tx, run_id)
    # a split window's parts share its start: features are keyed by start and regime
    by_start: dict[tuple[datetime, str | None], dict[str, FeatureDrift]] = {}
    split = {(start, regime) for start, regime in settings.get("split", [])}
    for row in feature_rows:
        by_start.setdefault((row[2], row[1]), {})[row[4]] = FeatureDrift(
            feature=row[4], test=row[5], statistic=row[6], p_value=row[11], threshold=row[7],
            verdict=row[8], reason=row[9])
    windows = []
    for row in window_rows:
        (_, start, end, rows, regime, method, distance, mixed, warning, version, basis,
         snapshot, share, verdict, serving, metric, value, labelled) = row
        name = None if mixed or regime == UNKNOWN else regime
        windows.append(WindowDrift(
            start=start.replace(tzinfo=UTC), end=end.replace(tzinfo=UTC), rows=rows,
            regime=WindowRegime(name, method, distance, mixed, warning),
            reference=ReferenceChoice(version, basis), reference_snapshot=snapshot,
            features=by_start.get((start, name), {}), drift_share=share, verdict=verdict,
            metric=WindowMetric(serving, metric, value, labelled) if metric else None,
            split=(start.isoformat(), regime) in split))
    return DriftReport(settings.get("window", ""), tuple(settings.get("features", ())), windows,
                       computed_at.replace(tzinfo=UTC), settings.get("regime"),
                       tuple(settings.get("notes", ())), settings.get("thresholds", {}), run_id)


def parse_window_start(text: str) -> datetime:
    """A window start as the CLI takes it: ISO-8601, UTC unless a zone is given."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"invalid window {text[:40]!r}: give its start, e.g. "
                         "2026-01-13T18:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

"""The drift view's data, as small typed values the widgets draw (heatmap, timeline,
histogram), read through the drift service and the deployment history.

Widgets depend only on these values, not on the service's own types, so the view keeps
working while the service grows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from mlops_tui.services.workspace import Workspace


@dataclass(frozen=True)
class DriftCell:
    """One feature in one window: the statistic, its threshold and the verdict word."""

    feature: str
    window_start: datetime
    statistic: float | None
    threshold: float | None
    verdict: str  # drift, ok, inconclusive
    test: str
    reason: str = ""


@dataclass(frozen=True)
class DriftMarker:
    """A serving change on the drift timeline: deploy, rollback, promote, auto-deploy."""

    at: datetime
    action: str
    label: str

    @property
    def symbol(self) -> str:
        return "R" if "rollback" in self.action else "D" if "deploy" in self.action else "P"


@dataclass(frozen=True)
class DriftGrid:
    """Features × windows for one regime (or all data), plus the serving changes."""

    regime: str | None
    regimes: tuple[str, ...]
    features: tuple[str, ...]
    windows: tuple[datetime, ...]
    cells: Mapping[tuple[str, datetime], DriftCell]
    markers: tuple[DriftMarker, ...] = ()
    note: str = ""
    source: str = ""

    def cell(self, feature: str, window: datetime) -> DriftCell | None:
        return self.cells.get((feature, window))

    def series(self, feature: str) -> list[tuple[datetime, float | None, str]]:
        """(window, statistic, verdict) of one feature over time."""
        out = []
        for window in self.windows:
            cell = self.cells.get((feature, window))
            out.append((window, cell.statistic if cell else None,
                        cell.verdict if cell else "missing"))
        return out


@dataclass(frozen=True)
class DriftHistogram:
    """Reference vs current shares per bin for one feature and window."""

    feature: str
    window_start: datetime
    labels: tuple[str, ...]
    reference: tuple[float, ...]
    current: tuple[float, ...]
    note: str = ""


@dataclass(frozen=True)
class RegimeDrift:
    """The newest window's verdict for a regime, for the overview."""

    window_start: datetime | None
    drifted: int
    features: int
    inconclusive: int = 0
    details: tuple[str, ...] = field(default=())

    @property
    def label(self) -> str:
        if self.features == 0:
            return "- no data"
        if self.drifted:
            return f"▲ drift {self.drifted}/{self.features}"
        if self.inconclusive == self.features:
            return "? inconclusive"
        return f"· ok 0/{self.features}"


def report_for(workspace: Workspace, regime: str | None):
    """(report, source): the latest recorded drift report (what CT and `drift show` read),
    narrowed to `regime`'s windows; computed now only when none has been recorded."""
    from dataclasses import replace

    from mlops_tui.services.drift_compute import compute_drift
    from mlops_tui.services.drift_read import latest_drift

    recorded = latest_drift(workspace)
    if recorded is not None and recorded.regime in (None, regime):
        windows = [w for w in recorded.windows if not w.split and (regime is None or (
            w.regime.regime == regime and not w.regime.mixed))]
        return replace(recorded, windows=windows), f"recorded {recorded.computed_at:%m-%d %H:%M}"
    # the grid has one column per window: the parts of split windows are for `drift show`
    computed = compute_drift(workspace, regime=regime)
    return replace(computed, windows=[w for w in computed.windows if not w.split]), \
        "computed now (none recorded)"


def serving_markers(workspace: Workspace, regime: str | None) -> tuple[DriftMarker, ...]:
    """Deployments and rollbacks of the serving target, and the regime's champion changes, at
    the data time each acted on (the wall clock for rows recorded without one)."""
    from mlops_tui.core.models import DeploymentKind
    from mlops_tui.services.deployment_reads import history

    events = history(workspace, target=workspace.config.serving.default_target, limit=500)
    if regime is not None:
        events += history(workspace, regime=regime, limit=500)
    markers = []
    for event in sorted(events, key=lambda e: (e.timeline_at, e.seq)):
        what = "production" if event.kind is DeploymentKind.ACTIVE else f"{event.subject} champion"
        source = f"v{event.from_version}" if event.from_version is not None else "-"
        markers.append(DriftMarker(event.timeline_at, event.action,
                                   f"{what} {source}→v{event.to_version}"))
    return tuple(markers)


def grid_from_report(report, regime: str | None, regimes: tuple[str, ...],
                     markers: tuple[DriftMarker, ...], source: str = "") -> DriftGrid:
    """Features × windows from a drift report (core.drift.DriftReport)."""
    cells: dict[tuple[str, datetime], DriftCell] = {}
    windows = []
    for window in report.windows:
        windows.append(window.start)
        for name, result in window.features.items():
            cells[(name, window.start)] = DriftCell(
                name, window.start, result.statistic, result.threshold, result.verdict,
                result.test, result.reason)
    note = "; ".join(report.notes) if not report.windows else ""
    return DriftGrid(regime, regimes, tuple(report.features), tuple(windows), cells, markers,
                     note=note or ("" if report.windows else "no windows to judge yet"),
                     source=source)


def load_grid(workspace: Workspace, regime: str | None) -> DriftGrid:
    """`regime`'s windows (None: every window), judged against the serving references."""
    from mlops_tui.services.status import status

    regimes = tuple(status(workspace).regimes)
    if regime is None and regimes:
        regime = regimes[0]
    markers = serving_markers(workspace, regime)
    report, source = report_for(workspace, regime)
    return grid_from_report(report, regime, regimes, markers, source)


def load_histogram(workspace: Workspace, regime: str | None, feature: str,
                   window: datetime) -> DriftHistogram:
    """Reference vs current shares of `feature` in the window starting at `window`."""
    from mlops_tui.services.drift_explain import explain

    explanation = explain(workspace, window, feature)
    return DriftHistogram(feature, window, tuple(explanation.labels),
                          tuple(explanation.reference), tuple(explanation.current),
                          note=explanation.note)


def summaries_from_report(report) -> dict[str, RegimeDrift]:
    """Each regime's newest window: how many features drifted."""
    newest: dict[str, object] = {}
    for window in report.windows:
        regime = window.regime.regime
        if regime is not None and not window.regime.mixed and not window.split:
            newest[regime] = window
    summaries = {}
    for regime, window in newest.items():
        verdicts = [f.verdict for f in window.features.values()]
        drifted = tuple(f.feature for f in window.features.values() if f.verdict == "drift")
        summaries[regime] = RegimeDrift(window.start, len(drifted), len(verdicts),
                                        verdicts.count("inconclusive"), drifted)
    return summaries


def regime_drift_summaries(workspace: Workspace) -> dict[str, RegimeDrift]:
    """Each regime's newest window verdict in the latest recorded report (what CT reads);
    empty until drift is recorded (`mlops-tui drift show`): the overview never computes it
    on a refresh, which on a large store would take seconds of CPU every time."""
    from mlops_tui.services.drift_read import latest_drift

    recorded = latest_drift(workspace)
    return summaries_from_report(recorded) if recorded is not None else {}


def latest_decisions(workspace: Workspace) -> dict[str, str]:
    """Each regime's latest CT decision as one line (empty until CT records decisions)."""
    return {}

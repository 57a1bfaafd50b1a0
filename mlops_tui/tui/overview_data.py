"""The overview's data, read through the services without Textual: the dashboard starts
this read before it imports Textual, so the first paint has its data sooner."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from mlops_tui.core.models import DeploymentEvent, JobRecord
from mlops_tui.services.status import Status
from mlops_tui.services.workspace import Workspace

TREND_POINTS = 12
TREND_SCAN_MAX = 120  # the newest versions read for the trends, in one query
RECENT_EVENTS = 12


@dataclass(frozen=True)
class RegimeSummary:
    regime: str
    champion: DeploymentEvent | None
    versions: int
    metric_values: tuple[float, ...]  # the regime's newest versions, oldest first
    decision: str | None


@dataclass(frozen=True)
class OverviewData:
    status: Status
    regimes: tuple[RegimeSummary, ...]
    jobs: tuple[JobRecord, ...]
    metric: str
    serving_regimes: dict[str, str]  # target -> regime of its active version
    recent: tuple[DeploymentEvent, ...]


def fetch_overview(workspace) -> OverviewData:
    """Four reads: status, the newest versions (trends), unfinished jobs, recent changes.
    Drift comes from its own worker after the first paint (the drift service loads numpy)."""
    from mlops_tui.services.deployment_reads import history
    from mlops_tui.services.jobs import list_jobs
    from mlops_tui.services.registry import list_versions, show_version
    from mlops_tui.services.status import status as read_status
    from mlops_tui.tui.drift_data import latest_decisions

    status = read_status(workspace)
    metric = workspace.config.pipeline.metric
    decisions = latest_decisions(workspace)
    scan = min(TREND_SCAN_MAX, TREND_POINTS * max(1, len(status.regimes)))
    newest = list_versions(workspace, limit=scan).versions
    trends: dict[str, list[float]] = {}
    for version in reversed(newest):  # oldest first
        if metric in version.metrics:
            trends.setdefault(version.regime, []).append(version.metrics[metric])
    regimes = [RegimeSummary(regime, status.champions.get(regime),
                             status.versions_by_regime.get(regime, 0),
                             tuple(trends.get(regime, [])[-TREND_POINTS:]), decisions.get(regime))
               for regime in status.regimes]
    jobs = tuple(list_jobs(workspace, unfinished_only=True, limit=20))
    champions = {event.to_version: regime for regime, event in status.champions.items()}
    serving_regimes = {
        target: champions.get(event.to_version)
        or show_version(workspace, f"v{event.to_version}").version.regime
        for target, event in status.active.items()}
    recent = tuple(history(workspace, limit=RECENT_EVENTS))
    return OverviewData(status, tuple(regimes), jobs, metric, serving_regimes, recent)


class Prefetched:
    """`fetch_overview` running in a thread from the moment the dashboard is launched."""

    def __init__(self, workspace: Workspace) -> None:
        self._data: OverviewData | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(workspace,),
                                        name="overview-prefetch", daemon=True)
        self._thread.start()

    def _run(self, workspace: Workspace) -> None:
        try:
            self._data = fetch_overview(workspace)
        except BaseException as error:  # noqa: BLE001 - re-raised where it is taken
            self._error = error

    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self) -> OverviewData:
        """The data (waiting for it), or the read's error raised here."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._data is not None
        return self._data

"""Overview: what serves now (and since when), each regime's champion with its drift status,
performance trend, pin and latest decision, and the jobs still running."""

from __future__ import annotations

import time

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable

from mlops_tui.core.errors import MlopsError
from mlops_tui.tui.actions import ActionContext
from mlops_tui.tui.drift_data import RegimeDrift
from mlops_tui.tui.messages import DataLoaded, DetailLoaded, VersionChosen
from mlops_tui.tui.overview_data import OverviewData, RegimeSummary, fetch_overview
from mlops_tui.tui.screens.base import DashboardScreen
from mlops_tui.tui.text import JOB_SYMBOLS, age, sparkline, stamp, trend_arrow
from mlops_tui.tui.widgets.status import Plain
from mlops_tui.tui.widgets.tables import RowTable, refill, selected_key

LOWER_IS_BETTER = ("mae", "rmse")
DRIFT_REFRESH_SECONDS = 60.0
DRIFT_AFTER_PAINT_SECONDS = 0.3  # drift summaries change when drift is computed, not each tick


class OverviewScreen(DashboardScreen):
    """Targets and their active versions; regimes; running jobs."""

    VIEW = "overview"
    ACTIONS = frozenset({"cancel-job", "deploy", "retrain", "rollback"})
    VIEW_TITLE = "Overview"
    FILTER_HINT = "filter regimes by name (esc clears)"
    BINDINGS = [
        Binding("enter", "open_selected", "Open", id="overview-open",
                tooltip="Regime: its drift view; target: its active version's lineage"),
        Binding("tab", "app.focus_next", "Next pane", show=False, id="overview-next-pane",
                tooltip="Move between serving, jobs and regimes"),
    ]

    def __init__(self, argument: str | None = None) -> None:
        super().__init__(argument)
        self.data: OverviewData | None = None
        self.drift: dict[str, RegimeDrift] | None = None
        self.drift_loaded_at: float | None = None

    def compose_body(self) -> ComposeResult:
        yield Plain("", id="serving-banner")  # serving/current behind the store
        with Vertical(id="serving-pane", classes="pane"):
            yield Plain("Serving", classes="pane-title")
            yield RowTable(id="serving")
        with Vertical(id="regimes-pane", classes="pane"):
            yield Plain("Regimes", classes="pane-title", id="regimes-title")
            yield RowTable(id="regimes")
        with Vertical(id="jobs-pane", classes="pane"):
            yield Plain("Running jobs", classes="pane-title", id="jobs-title")
            yield RowTable(id="running-jobs")
        with Vertical(id="recent-pane", classes="pane"):
            yield Plain("Recent serving changes", classes="pane-title")
            yield RowTable(id="recent")
        yield Plain("loading…", id="overview-summary", classes="summary")

    def on_mount(self) -> None:
        self.query_one("#serving", DataTable).add_columns(
            "target", "active", "regime", "since (UTC)", "pin")
        self.query_one("#running-jobs", DataTable).add_columns("job", "regime", "state", "age")
        metric = self.app.workspace.config.pipeline.metric
        self.query_one("#regimes", DataTable).add_columns(
            "regime", "champion", "drift (newest window)", f"{metric} trend", "pin",
            "latest decision")
        self.query_one("#recent", DataTable).add_columns(
            "at (UTC)", "subject", "change", "action", "reason")
        super().on_mount()
        self.query_one("#regimes", DataTable).focus()

    def focus_body(self) -> None:
        self.query_one("#regimes", DataTable).focus()

    @property
    def settled(self) -> bool:
        return self.loaded_once and self.drift is not None

    def show_ready_data(self) -> bool:
        """The launch-time read, when it has finished: the first frame has the data."""
        early = self.app.take_prefetched()
        if early is None:
            return False
        if early.done():
            try:
                data = early.result()
            except MlopsError:
                self.reload()
                return True
            # after the tables' first layout: rows added before it can keep header widths
            self.call_after_refresh(self.post_message, DataLoaded(data))
            return True
        self.app.return_prefetched(early)  # still reading: the worker waits for it
        return False

    def fetch(self, request: object) -> OverviewData:
        early = self.app.take_prefetched()  # the first read, started before Textual loaded
        return early.result() if early is not None else fetch_overview(self.app.workspace)

    def show(self, data: OverviewData) -> None:
        self.data = data
        now = self.app.clock()
        status = data.status
        serving_rows = []
        for target, event in sorted(status.active.items()):
            serving_rows.append((target, (
                target, f"v{event.to_version}", data.serving_regimes.get(target, "?"),
                f"{stamp(event.at)} ({age(event.at, now)} ago)",
                "pinned" if event.pinned else "-")))
        refill(self.query_one("#serving", DataTable), serving_rows)
        banner = self.query_one("#serving-banner", Plain)
        if status.serving_problems:
            from mlops_tui.services.serving_check import mismatch_warning

            banner.update(f"⚠ {mismatch_warning(status.serving_problems)}")
        banner.set_class(bool(status.serving_problems), "visible")
        recent_rows = []
        for event in data.recent:
            subject = event.subject if event.kind.value == "active" else f"{event.subject} ★"
            source = f"v{event.from_version}" if event.from_version is not None else "-"
            recent_rows.append((str(event.seq), (
                stamp(event.at), subject, f"{source} → v{event.to_version}", event.action,
                event.reason)))
        refill(self.query_one("#recent", DataTable), recent_rows)
        job_rows = [(job.id, (job.short_id, job.regime,
                              f"{JOB_SYMBOLS.get(job.state.value, '')} {job.state.value}",
                              age(job.state_at, now)))
                    for job in data.jobs]
        refill(self.query_one("#running-jobs", DataTable), job_rows)
        self.query_one("#jobs-title", Plain).update(
            f"Running jobs ({len(data.jobs)})" if data.jobs else "Running jobs: none")
        self.query_one("#jobs-pane").set_class(not data.jobs, "empty")
        self._show_regimes()
        if self.drift_loaded_at is None or (
                time.monotonic() - self.drift_loaded_at > DRIFT_REFRESH_SECONDS):
            self.drift_loaded_at = time.monotonic()
            self.set_timer(DRIFT_AFTER_PAINT_SECONDS, self.load_drift)  # the paint goes first
        counts = status.counts
        self.query_one("#overview-summary", Plain).update(
            f"{counts.get('model_versions', 0):,} versions · {len(status.regimes)} regimes · "
            f"{counts.get('deployment_events', 0):,} serving changes · enter opens · "
            ": views · ? keys")

    @work(thread=True, exclusive=True, exit_on_error=False, group="drift")
    def load_drift(self) -> None:
        from mlops_tui.tui.drift_data import regime_drift_summaries

        try:
            summaries = regime_drift_summaries(self.app.workspace)
        except MlopsError:
            summaries = self.drift or {}  # the next refresh tries again; keep what it had
        self.post_message(DetailLoaded("drift", summaries))

    def on_detail_loaded(self, message: DetailLoaded) -> None:
        message.stop()
        self.drift = message.detail
        self._show_regimes()

    def _show_regimes(self) -> None:
        if self.data is None:
            return
        higher_is_better = self.data.metric not in LOWER_IS_BETTER
        rows = []
        for summary in self.data.regimes:
            if self.filter_text and self.filter_text.lower() not in summary.regime.lower():
                continue
            champion = summary.champion
            values = summary.metric_values
            trend = "-" if not values else (
                f"{sparkline(values, 10)} {values[-1]:.3f} {trend_arrow(values, higher_is_better)}")
            rows.append((summary.regime, (
                summary.regime,
                f"v{champion.to_version}" if champion else "none",
                self._drift_label(summary.regime),
                trend,
                "pinned" if champion and champion.pinned else "-",
                summary.decision or "-",
            )))
        refill(self.query_one("#regimes", DataTable), rows)
        shown = len(rows)
        total = len(self.data.regimes)
        title = f"Regimes ({shown} of {total}, filter {self.filter_text!r})" if (
            self.filter_text) else f"Regimes ({total})"
        self.query_one("#regimes-title", Plain).update(title)

    def _drift_label(self, regime: str) -> str:
        if self.drift is None:
            return "… reading"
        found = self.drift.get(regime)
        return found.label if found else "- not recorded"

    def apply_filter(self, text: str) -> None:
        self._show_regimes()

    # -- selection -------------------------------------------------------------------------

    def _regime_summary(self) -> RegimeSummary | None:
        key = selected_key(self.query_one("#regimes", DataTable))
        if self.data is None or key is None:
            return None
        return next((s for s in self.data.regimes if s.regime == key), None)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id != "regimes":
            return
        summary = self._regime_summary()
        if summary is not None and summary.champion is not None:
            self.post_message(VersionChosen(f"v{summary.champion.to_version}", summary.regime))
        elif summary is not None:
            self.app.selected_regime = summary.regime

    def action_context(self) -> ActionContext:
        summary = self._regime_summary()
        target = selected_key(self.query_one("#serving", DataTable))
        job = selected_key(self.query_one("#running-jobs", DataTable))
        jobs_focused = self.query_one("#running-jobs", DataTable).has_focus
        regime = summary.regime if summary else None
        champion = summary.champion if summary else None
        return ActionContext(
            regime=regime,
            version_id=f"v{champion.to_version}" if champion else None,
            target=target,
            job_id=job if jobs_focused else None,
        )

    def action_open_selected(self) -> None:
        focused = self.focused
        if isinstance(focused, DataTable) and focused.id == "serving" and self.data:
            target = selected_key(focused)
            event = self.data.status.active.get(target or "")
            if event is not None:
                self.app.open_view("lineage", f"v{event.to_version}")
            return
        if isinstance(focused, DataTable) and focused.id == "running-jobs":
            self.app.open_view("jobs", selected_key(focused))
            return
        summary = self._regime_summary()
        if summary is not None:
            self.app.open_view("drift", summary.regime)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_selected()

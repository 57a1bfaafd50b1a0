"""Drift: a regime's features × windows heatmap; the selected feature's statistic over time
with deployments and rollbacks on the same time axis; the selected window's histogram."""

from __future__ import annotations

from datetime import datetime

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.worker import get_current_worker

from mlops_tui.core.errors import MlopsError
from mlops_tui.tui.actions import ActionContext
from mlops_tui.tui.drift_data import DriftGrid
from mlops_tui.tui.messages import DetailLoaded
from mlops_tui.tui.screens.base import DashboardScreen
from mlops_tui.tui.text import DRIFT_SYMBOLS
from mlops_tui.tui.widgets.drift import DriftHeatmap, DriftTimeline, HistogramChart
from mlops_tui.tui.widgets.status import Plain


class DriftScreen(DashboardScreen):
    """`:drift REGIME`: arrows move in the heatmap; ] and [ step through the regimes."""

    VIEW = "drift"
    ACTIONS = frozenset({"retrain"})
    VIEW_TITLE = "Drift"
    FILTER_HINT = "filter features by name"
    BINDINGS = [
        Binding("right_square_bracket", "step_regime(1)", "Next regime", id="drift-regime",
                tooltip="Show the next regime's drift"),
        Binding("left_square_bracket", "step_regime(-1)", "Previous regime",
                id="drift-regime-previous", show=False,
                tooltip="Show the previous regime's drift"),
    ]

    def __init__(self, argument: str | None = None) -> None:
        super().__init__(argument)
        self.grid: DriftGrid | None = None
        self.histogram_key = ""  # the cell whose histogram is wanted now

    def compose_body(self) -> ComposeResult:
        yield Plain("loading…", id="drift-title", classes="pane-title")
        yield DriftHeatmap(id="heatmap")
        yield Plain("", id="drift-cell", classes="summary")
        with Horizontal(id="drift-charts"):
            yield DriftTimeline(id="timeline")
            yield HistogramChart(id="histogram")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one(DriftHeatmap).focus()

    def focus_body(self) -> None:
        self.query_one(DriftHeatmap).focus()

    def fetch_request(self) -> str | None:
        return self.argument or self.app.selected_regime

    def fetch(self, request: str | None) -> DriftGrid:
        from mlops_tui.tui.drift_data import load_grid

        return load_grid(self.app.workspace, request)

    def show(self, data: DriftGrid) -> None:
        self.grid = data
        if data.regime:
            self.argument = data.regime
            self.app.selected_regime = data.regime
        self._show_grid()

    def _features(self) -> tuple[str, ...]:
        if self.grid is None:
            return ()
        needle = self.filter_text.lower()
        return tuple(f for f in self.grid.features if needle in f.lower())

    def _show_grid(self) -> None:
        if self.grid is None:
            return
        heatmap = self.query_one(DriftHeatmap)
        heatmap.set_grid(self.grid, self._features())
        self._show_title()

    def _show_title(self) -> None:
        grid = self.grid
        if grid is None:
            return
        drifted = sum(1 for c in grid.cells.values() if c.verdict == "drift")
        regime = grid.regime or "all data"
        others = f" (]: {', '.join(r for r in grid.regimes if r != grid.regime)})" if len(
            grid.regimes) > 1 else ""
        position = self.query_one(DriftHeatmap).position_text()
        self.query_one("#drift-title", Plain).update(
            f"Drift of {regime}{others} · {len(grid.features)} features · {position} · "
            f"{drifted} drifted · {grid.source} · ▲ drift · ok ? inconclusive")

    def apply_filter(self, text: str) -> None:
        self._show_grid()

    def on_drift_heatmap_cell_selected(self, message: DriftHeatmap.CellSelected) -> None:
        message.stop()
        grid = self.grid
        if grid is None:
            return
        cell = grid.cell(message.feature, message.window)
        if cell is not None:
            statistic = "-" if cell.statistic is None else f"{cell.statistic:.4g}"
            threshold = "-" if cell.threshold is None else f"{cell.threshold:.4g}"
            self.query_one("#drift-cell", Plain).update(
                f"{message.feature} · window {message.window:%Y-%m-%d %H:%M} · "
                f"{DRIFT_SYMBOLS.get(cell.verdict, '?')} {cell.verdict} · {cell.test} "
                f"{statistic} (threshold {threshold})" + (f" · {cell.reason}" if cell.reason else ""))
        else:
            self.query_one("#drift-cell", Plain).update(
                f"{message.feature} · window {message.window:%Y-%m-%d %H:%M} · no result")
        thresholds = [c.threshold for (f, _), c in grid.cells.items()
                      if f == message.feature and c.threshold is not None]
        self.query_one(DriftTimeline).show_series(
            f"{message.feature}: {cell.test if cell else 'statistic'} per window · ┄ threshold"
            " · D deploy R rollback P promote ^ this window",
            grid.series(message.feature), thresholds[-1] if thresholds else None,
            grid.markers, message.window)
        self._show_title()
        self.histogram_key = f"{message.feature}@{message.window.isoformat()}"
        self.query_one(HistogramChart).show_loading(message.feature, message.window)
        self.load_histogram(grid.regime, message.feature, message.window)

    @work(thread=True, exclusive=True, exit_on_error=False, group="detail")
    def load_histogram(self, regime: str | None, feature: str, window: datetime) -> None:
        from mlops_tui.tui.drift_data import load_histogram

        try:
            histogram = load_histogram(self.app.workspace, regime, feature, window)
        except MlopsError:
            histogram = None
        if not get_current_worker().is_cancelled:
            self.post_message(DetailLoaded(f"{feature}@{window.isoformat()}", histogram))

    def on_detail_loaded(self, message: DetailLoaded) -> None:
        message.stop()
        if message.key == self.histogram_key:  # an answer for a cell left since is dropped
            self.query_one(HistogramChart).show_histogram(message.detail)

    def action_step_regime(self, step: int) -> None:
        grid = self.grid
        if grid is None or not grid.regimes:
            return
        index = grid.regimes.index(grid.regime) if grid.regime in grid.regimes else -1
        self.set_argument(grid.regimes[(index + step) % len(grid.regimes)])

    def action_context(self) -> ActionContext:
        regime = self.grid.regime if self.grid else self.app.selected_regime
        return ActionContext(regime=regime)

"""Drift widgets: the features × windows heatmap, a feature's statistic over time with the
serving changes on the same time axis, and a reference-vs-current histogram.

Every state is a symbol as well as a colour (▲ drift, · ok, ? inconclusive; D deploy,
R rollback, P promote), so the pictures read the same with NO_COLOR and in 16 colours. Only
visible cells are drawn, so a year of hourly windows costs what one screen costs.
"""

from __future__ import annotations

import math
from datetime import datetime

from rich.cells import set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from mlops_tui.core.text import printable
from mlops_tui.tui.drift_data import DriftGrid, DriftHistogram, DriftMarker
from mlops_tui.tui.text import DRIFT_SYMBOLS

CELL_WIDTH = 6
LABEL_WIDTH = 16  # at most; shorter when every feature name is
BLOCKS = " ▁▂▃▄▅▆▇█"


def format_statistic(value: float | None) -> str:
    """Four cells: 0.31, 12.4, 199, 1234, or ≫ for larger; ' -  ' for no value."""
    if value is None or not math.isfinite(value):
        return " -  "
    size = abs(value)
    if size < 9.995:
        return f"{value:.2f}"[:4]
    if size < 99.95:
        return f"{value:.1f}"
    if size < 9999.5:
        return f"{value:>4.0f}"
    return "  ≫ "


def window_label(window: datetime, spacing_seconds: float) -> str:
    """Five cells naming a window start: the day for daily windows, else day and hour."""
    return f"{window:%m-%d}" if spacing_seconds >= 86400 else f"{window:%dT%H}"


class DriftHeatmap(Widget, can_focus=True):
    """Rows are features, columns are windows (newest at the right)."""

    COMPONENT_CLASSES = {
        "drift-heatmap--header", "drift-heatmap--label", "drift-heatmap--drift",
        "drift-heatmap--ok", "drift-heatmap--inconclusive", "drift-heatmap--cursor",
    }
    BINDINGS = [
        Binding("left", "move(0, -1)", "Earlier window", show=False, id="heatmap-left",
                tooltip="The window before"),
        Binding("right", "move(0, 1)", "Later window", show=False, id="heatmap-right",
                tooltip="The window after"),
        Binding("up", "move(-1, 0)", "Previous feature", show=False, id="heatmap-up",
                tooltip="The feature above"),
        Binding("down", "move(1, 0)", "Next feature", show=False, id="heatmap-down",
                tooltip="The feature below"),
        Binding("home", "edge(-1)", "Oldest window", show=False, id="heatmap-home",
                tooltip="The oldest window"),
        Binding("end", "edge(1)", "Newest window", show=False, id="heatmap-end",
                tooltip="The newest window"),
    ]

    row: reactive[int] = reactive(0)
    column: reactive[int] = reactive(0)

    class CellSelected(Message):
        """The cursor moved to (feature, window)."""

        def __init__(self, feature: str, window: datetime) -> None:
            super().__init__()
            self.feature = feature
            self.window = window

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.grid: DriftGrid | None = None
        self.features: tuple[str, ...] = ()
        self.first_column = 0

    def set_grid(self, grid: DriftGrid, features: tuple[str, ...]) -> None:
        """New data: keep the cursor on the same feature and window when they still exist."""
        old = self.selected()
        same_regime = self.grid is not None and self.grid.regime == grid.regime
        self.grid = grid
        self.features = features
        if same_regime and old and old[0] in features and old[1] in grid.windows:
            self.row = features.index(old[0])
            self.column = grid.windows.index(old[1])
        else:  # another regime: its newest window at the right edge, not the old scroll
            self.row = 0
            self.column = max(0, len(grid.windows) - 1)
            self.first_column = max(0, self.column - self._visible_columns() + 1)
        self._keep_visible()
        self.refresh(layout=True)
        self._announce()

    def selected(self) -> tuple[str, datetime] | None:
        if not self.grid or not self.features or not self.grid.windows:
            return None
        return (self.features[min(self.row, len(self.features) - 1)],
                self.grid.windows[min(self.column, len(self.grid.windows) - 1)])

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self.features) + 1 if self.features else 1

    @property
    def label_width(self) -> int:
        return min(LABEL_WIDTH, max((len(f) for f in self.features), default=7) + 2)

    def _visible_columns(self) -> int:
        return max(1, (self.content_size.width - self.label_width) // CELL_WIDTH)

    def _keep_visible(self) -> None:
        count = self._visible_columns()
        if self.column < self.first_column:
            self.first_column = self.column
        elif self.column >= self.first_column + count:
            self.first_column = self.column - count + 1
        self.first_column = max(0, self.first_column)

    def action_move(self, rows: int, columns: int) -> None:
        if not self.grid or not self.features:
            return
        self.row = min(max(0, self.row + rows), len(self.features) - 1)
        self.column = min(max(0, self.column + columns), len(self.grid.windows) - 1)
        self._moved()

    def action_edge(self, direction: int) -> None:
        if not self.grid:
            return
        self.column = 0 if direction < 0 else max(0, len(self.grid.windows) - 1)
        self._moved()

    def _moved(self) -> None:
        self._keep_visible()
        self.refresh()
        self._announce()

    def _announce(self) -> None:
        selected = self.selected()
        if selected is not None:
            self.post_message(self.CellSelected(*selected))

    def on_resize(self) -> None:
        self._keep_visible()

    def position_text(self) -> str:
        if not self.grid or not self.grid.windows:
            return ""
        last = min(len(self.grid.windows), self.first_column + self._visible_columns())
        return f"windows {self.first_column + 1}–{last} of {len(self.grid.windows)}"

    def render_line(self, y: int) -> Strip:
        width = self.content_size.width
        base = self.rich_style
        grid = self.grid
        if grid is None or not self.features or not grid.windows:
            text = printable(grid.note) if grid is not None and grid.note else "no drift results"
            return Strip([Segment(set_cell_size(text if y == 0 else "", width), base)])
        if y > len(self.features):
            return Strip.blank(width, base)
        count = self._visible_columns()
        columns = range(self.first_column, min(len(grid.windows), self.first_column + count))
        spacing = ((grid.windows[1] - grid.windows[0]).total_seconds()
                   if len(grid.windows) > 1 else 86400.0)
        if y == 0:
            style = base + self.get_component_rich_style("drift-heatmap--header")
            segments = [Segment(set_cell_size("feature", self.label_width), style)]
            for index in columns:
                mark = "▼" if index == self.column else " "
                segments.append(Segment(
                    mark + set_cell_size(window_label(grid.windows[index], spacing), 5), style))
        else:
            feature = self.features[y - 1]
            mark = "▶" if y - 1 == self.row else " "
            label_style = base + self.get_component_rich_style("drift-heatmap--label")
            name = set_cell_size(printable(feature), self.label_width - 2)
            segments = [Segment(mark + name + " ", label_style)]
            for index in columns:
                cell = grid.cell(feature, grid.windows[index])
                verdict = cell.verdict if cell else "missing"
                text = (DRIFT_SYMBOLS.get(verdict, "?")
                        + format_statistic(cell.statistic if cell else None) + " ")
                style = base + self._verdict_style(verdict)
                if y - 1 == self.row and index == self.column:
                    style += self.get_component_rich_style("drift-heatmap--cursor")
                segments.append(Segment(text, style))
        strip = Strip(segments)
        return strip.crop_extend(0, width, base)

    def _verdict_style(self, verdict: str) -> Style:
        name = {"drift": "drift", "ok": "ok", "inconclusive": "inconclusive"}.get(verdict)
        return self.get_component_rich_style(f"drift-heatmap--{name}") if name else Style()


class DriftTimeline(Widget):
    """A feature's statistic per window as bars, the threshold as ┄, and the serving changes
    (D deploy, R rollback, P promote) on the same time axis below."""

    COMPONENT_CLASSES = {"drift-timeline--bar", "drift-timeline--drift",
                         "drift-timeline--threshold", "drift-timeline--marker"}

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.title = ""
        self.series: list[tuple[datetime, float | None, str]] = []
        self.threshold: float | None = None
        self.markers: tuple[DriftMarker, ...] = ()
        self.selected_window: datetime | None = None

    def show_series(self, title: str, series: list[tuple[datetime, float | None, str]],
                    threshold: float | None, markers: tuple[DriftMarker, ...],
                    selected_window: datetime | None) -> None:
        self.title = printable(title)
        self.series = series
        self.threshold = threshold
        self.markers = markers
        self.selected_window = selected_window
        self.refresh()

    def render(self) -> Text:
        width, height = self.content_size.width, self.content_size.height
        lines = [self.title]
        plotted = [(t, v, verdict) for t, v, verdict in self.series if v is not None]
        if not plotted or width < 20 or height < 5:
            lines.append("no statistic to plot for this feature")
            return Text("\n".join(lines))
        axis = 7
        plot_width = width - axis
        rows = max(1, height - 5)  # title, drift row, serving row, time axis, legend
        start, end = self.series[0][0], self.series[-1][0]
        span = max(1.0, (end - start).total_seconds())

        def x_of(moment: datetime) -> int:
            return round((moment - start).total_seconds() / span * (plot_width - 1))

        top = max([v for _, v, _ in plotted] + [self.threshold or 0.0]) * 1.1 or 1.0
        columns: dict[int, float] = {}
        drifted: set[int] = set()
        for moment, value, verdict in plotted:
            x = x_of(moment)
            columns[x] = max(value, columns.get(x, value))
            if verdict == "drift":
                drifted.add(x)
        threshold_row = None
        if self.threshold is not None:
            threshold_row = rows - 1 - min(rows - 1, int(self.threshold / top * rows))
        text = Text(self.title + "\n", no_wrap=True, overflow="crop")
        bar_style = self.get_component_rich_style("drift-timeline--bar")
        drift_style = self.get_component_rich_style("drift-timeline--drift")
        line_style = self.get_component_rich_style("drift-timeline--threshold")
        marker_style = self.get_component_rich_style("drift-timeline--marker")
        for row in range(rows):
            label = f"{top * (rows - row) / rows:>5.2f}" if row in (0, rows - 1) or (
                row == threshold_row) else ""
            text.append(f"{label:>6}│")
            for x in range(plot_width):
                eighths = 0
                if x in columns:
                    filled = columns[x] / top * rows * 8
                    eighths = int(min(8, max(0, filled - (rows - 1 - row) * 8)))
                if eighths:
                    text.append(BLOCKS[eighths], drift_style if x in drifted else bar_style)
                elif row == threshold_row:
                    text.append("┄", line_style)
                else:
                    text.append(" ")
            text.append("\n")
        text.append(f"{'drift':>6}│")
        text.append("".join("▲" if x in drifted else " " for x in range(plot_width)),
                    drift_style)
        text.append("\n")
        marks = [" "] * plot_width
        for marker in self.markers:
            if start <= marker.at <= end:
                marks[x_of(marker.at)] = marker.symbol
        if self.selected_window is not None and start <= self.selected_window <= end:
            position = x_of(self.selected_window)
            if marks[position] == " ":
                marks[position] = "^"
        text.append(f"{'serve':>6}│")
        text.append("".join(marks), marker_style)
        text.append("\n")
        left, right = f"{start:%Y-%m-%d %H:%M}", f"{end:%Y-%m-%d %H:%M}"
        gap = max(1, plot_width - len(left) - len(right))
        text.append(" " * axis + left + " " * gap + right + "\n")
        shown = [m for m in self.markers if start <= m.at <= end][-3:]
        legend = " · ".join(f"{m.symbol} {m.at:%m-%d %H:%M} {printable(m.label)}"
                            for m in shown)
        text.append(legend or "no deployments or rollbacks in this range")
        return text


class HistogramChart(Widget):
    """Reference (█) vs current (▒) share per bin for the selected feature and window."""

    COMPONENT_CLASSES = {"histogram-chart--reference", "histogram-chart--current"}

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.histogram: DriftHistogram | None = None
        self.loading = ""  # what is being read, shown instead of stale bars

    def show_histogram(self, histogram: DriftHistogram | None) -> None:
        self.histogram = histogram
        self.loading = ""
        self.refresh()

    def show_loading(self, feature: str, window: datetime) -> None:
        """Until the selected cell's histogram arrives: never the previous cell's bars."""
        self.histogram = None
        self.loading = f"{printable(feature)} {window:%m-%d %H:%M} · loading…"
        self.refresh()

    def render(self) -> Text:
        histogram = self.histogram
        if histogram is None:
            return Text(self.loading or "select a cell in the heatmap")
        title = (f"{printable(histogram.feature)} {histogram.window_start:%m-%d %H:%M}"
                 " · ref █ · now ▒")
        if not histogram.labels:
            return Text(title + "\n" + printable(histogram.note or "no histogram for this window"))
        width, height = self.content_size.width, self.content_size.height
        labels, reference, current = _merge_bins(histogram, max(1, height - 1))
        labels = [printable(label) for label in labels]  # category values come from data
        label_width = min(16, max(len(label) for label in labels))
        bar_width = max(4, (width - label_width - 16) // 2)
        top = max(max(reference), max(current), 1e-12)
        text = Text(title + "\n", no_wrap=True, overflow="crop")
        ref_style = self.get_component_rich_style("histogram-chart--reference")
        cur_style = self.get_component_rich_style("histogram-chart--current")
        for label, ref, cur in zip(labels, reference, current, strict=True):
            text.append(set_cell_size(label, label_width) + " ")
            text.append(_bar(ref / top, bar_width, "█"), ref_style)
            text.append(f"{ref:>6.1%} ")
            text.append(_bar(cur / top, bar_width, "▒"), cur_style)
            text.append(f"{cur:>6.1%}\n")
        text.rstrip()
        return text


def _bar(fraction: float, width: int, glyph: str) -> str:
    cells = max(0.0, min(1.0, fraction)) * width
    whole = int(cells)
    return (glyph * whole + ("▏" if cells - whole >= 0.5 and whole < width else "")).ljust(width)


def _merge_bins(histogram: DriftHistogram, lines: int
                ) -> tuple[list[str], list[float], list[float]]:
    """At most `lines` bins: neighbours are merged (labels keep the first and last)."""
    count = len(histogram.labels)
    if count <= lines:
        return list(histogram.labels), list(histogram.reference), list(histogram.current)
    size = math.ceil(count / lines)
    labels, reference, current = [], [], []
    for start in range(0, count, size):
        stop = min(count, start + size)
        first, last = histogram.labels[start], histogram.labels[stop - 1]
        labels.append(first if first == last else f"{first}…")
        reference.append(sum(histogram.reference[start:stop]))
        current.append(sum(histogram.current[start:stop]))
    return labels, reference, current

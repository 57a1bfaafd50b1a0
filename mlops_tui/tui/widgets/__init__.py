"""Widgets the views are built from; each knows nothing of the store."""

from __future__ import annotations

from mlops_tui.tui.widgets.drift import DriftHeatmap, DriftTimeline, HistogramChart
from mlops_tui.tui.widgets.paged_table import PagedTable
from mlops_tui.tui.widgets.status import FilterBar, StaleBanner, StatusHeader
from mlops_tui.tui.widgets.tables import RowTable

ALL_WIDGETS = (DriftHeatmap, DriftTimeline, HistogramChart, PagedTable, FilterBar, StaleBanner,
               StatusHeader, RowTable)

__all__ = ["ALL_WIDGETS"]

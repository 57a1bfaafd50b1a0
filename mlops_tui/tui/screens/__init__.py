"""One screen per area of the dashboard, reachable with `:NAME`."""

from __future__ import annotations

from mlops_tui.tui.screens.base import DashboardScreen
from mlops_tui.tui.screens.drift import DriftScreen
from mlops_tui.tui.screens.envdiff import EnvDiffScreen
from mlops_tui.tui.screens.history import HistoryScreen
from mlops_tui.tui.screens.jobs import JobsScreen
from mlops_tui.tui.screens.lineage import LineageScreen
from mlops_tui.tui.screens.modals import (
    CommandLineScreen,
    ConfirmScreen,
    ErrorScreen,
    KeysScreen,
    TooSmallScreen,
)
from mlops_tui.tui.screens.models import ModelsScreen
from mlops_tui.tui.screens.overview import OverviewScreen

VIEWS: dict[str, type[DashboardScreen]] = {
    screen.VIEW: screen
    for screen in (OverviewScreen, ModelsScreen, DriftScreen, LineageScreen, EnvDiffScreen,
                   JobsScreen, HistoryScreen)
}
ALL_SCREENS = (DashboardScreen, *VIEWS.values(), ConfirmScreen, CommandLineScreen, KeysScreen,
               ErrorScreen, TooSmallScreen)

__all__ = ["ALL_SCREENS", "VIEWS", "DashboardScreen"]

"""The dashboard application: an overview of serving state, regimes and model versions."""

from __future__ import annotations

from dataclasses import dataclass

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from mlops_tui.core.errors import MlopsError
from mlops_tui.core.models import ModelVersion
from mlops_tui.services.status import Status
from mlops_tui.services.workspace import Workspace


@dataclass
class OverviewData:
    status: Status
    versions: list[ModelVersion]


class OverviewLoaded(Message):
    def __init__(self, data: OverviewData) -> None:
        super().__init__()
        self.data = data


class StoreFailed(Message):
    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message


class OverviewScreen(Screen):
    """Targets and their active versions, regimes and champions, recent versions."""

    BINDINGS = [
        Binding("r", "refresh", "Refresh", id="refresh", tooltip="Reload from the store"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="banner")
        with Horizontal(id="top"):
            with Vertical(id="serving-pane"):
                yield Static("Serving", classes="pane-title")
                yield DataTable(id="serving", cursor_type="row")
            with Vertical(id="regimes-pane"):
                yield Static("Regimes", classes="pane-title")
                yield DataTable(id="regimes", cursor_type="row")
        yield Static("Model versions", classes="pane-title")
        yield DataTable(id="versions", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#serving", DataTable).add_columns("target", "active", "since")
        self.query_one("#regimes", DataTable).add_columns("regime", "champion", "versions")
        self.query_one("#versions", DataTable).add_columns(
            "version", "regime", "trigger", "runner", "metric", "created")
        self.action_refresh()
        self.set_interval(self.app.workspace.config.tui.refresh_seconds, self.action_refresh)

    def action_refresh(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="overview")
    def load(self) -> None:
        from mlops_tui.services.registry import list_versions
        from mlops_tui.services.status import status

        try:
            workspace = self.app.workspace
            data = OverviewData(status(workspace), list_versions(workspace, limit=200).versions)
        except MlopsError as error:
            self.post_message(StoreFailed(error.message))
            return
        self.post_message(OverviewLoaded(data))

    def on_store_failed(self, message: StoreFailed) -> None:
        banner = self.query_one("#banner", Static)
        banner.update(f"⚠ store unavailable, showing the last data (stale): {message.message}")
        banner.add_class("visible")

    def on_overview_loaded(self, message: OverviewLoaded) -> None:
        self.query_one("#banner", Static).remove_class("visible")
        status = message.data.status
        metric = self.app.workspace.config.pipeline.metric
        self.app.sub_title = f"{status.workspace} · runner {status.runner}"
        serving = self.query_one("#serving", DataTable)
        serving.clear()
        for target, event in sorted(status.active.items()):
            serving.add_row(target, f"v{event.to_version}" + (" (pinned)" if event.pinned else ""),
                            f"{event.at:%Y-%m-%d %H:%M}")
        regimes = self.query_one("#regimes", DataTable)
        regimes.clear()
        for regime in status.regimes:
            champion = status.champions.get(regime)
            regimes.add_row(regime, f"v{champion.to_version}" if champion else "none",
                            str(status.versions_by_regime.get(regime, 0)))
        versions = self.query_one("#versions", DataTable)
        versions.clear()
        for v in message.data.versions:
            value = v.metrics.get(metric)
            versions.add_row(v.id, v.regime, v.trigger.value, v.runner,
                             f"{metric}={value:.3f}" if value is not None else "-",
                             f"{v.created_at:%Y-%m-%d %H:%M}")


class MlopsApp(App):
    """mlops-tui's dashboard."""

    CSS_PATH = "mlops.tcss"
    TITLE = "mlops-tui"
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit", tooltip="Leave the dashboard"),
        Binding("question_mark", "help", "Keys", id="help", tooltip="Show the keys of this view"),
    ]

    def __init__(self, workspace: Workspace, readonly: bool = False) -> None:
        super().__init__()
        self.workspace = workspace
        self.readonly = readonly

    def on_mount(self) -> None:
        self.push_screen(OverviewScreen())

    def action_help(self) -> None:
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

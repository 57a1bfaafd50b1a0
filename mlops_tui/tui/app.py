"""The dashboard application: views reachable with `:`, a refresh timer that reconciles
jobs, store health, key remapping and the "too small" guard (its exits: tui/terminal.py).

The App holds only what views share (workspace, mode, clock, store health, what the operator
last selected); each view is a screen under tui/screens/ that owns its handlers.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from textual import work
from textual.app import App
from textual.reactive import reactive
from textual.worker import Worker, WorkerState

from mlops_tui.core.errors import MlopsError
from mlops_tui.core.text import printable
from mlops_tui.services.workspace import Workspace
from mlops_tui.tui.actions import ActionContext
from mlops_tui.tui.keys import app_bindings
from mlops_tui.tui.messages import JobsReconciled, VersionChosen
from mlops_tui.tui.overview_data import Prefetched
from mlops_tui.tui.palette import DashboardCommands
from mlops_tui.tui.screens import VIEWS
from mlops_tui.tui.screens.base import DashboardScreen
from mlops_tui.tui.screens.modals import (
    MIN_HEIGHT,
    MIN_WIDTH,
    CommandLineScreen,
    ErrorScreen,
    TooSmallScreen,
)
from mlops_tui.tui.terminal import INTERRUPT_EXIT_CODE, StoreWrites
from mlops_tui.tui.widgets.status import StoreHealth

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


SIXTEEN_COLOUR_THEME = "ansi-dark"


class MlopsApp(App[None], inherit_bindings=False):
    """mlops-tui's dashboard."""

    CSS_PATH = "mlops.tcss"
    TITLE = "mlops-tui"
    BINDINGS = app_bindings()
    COMMANDS = App.COMMANDS | {DashboardCommands}

    health: reactive[StoreHealth] = reactive(StoreHealth, always_update=True)

    def __init__(self, workspace: Workspace, readonly: bool = False, *,
                 clock: Clock = utc_now, refresh_seconds: float | None = None,
                 prefetched: Prefetched | None = None) -> None:
        super().__init__()
        self._prefetched = prefetched
        self.workspace = workspace
        self.readonly = readonly
        self.clock = clock
        self.refresh_seconds = refresh_seconds or workspace.config.tui.refresh_seconds
        self.runner_label = workspace.config.runner.kind
        self.selected_version: str | None = None
        self.selected_regime: str | None = None
        self._job_handles: list[Any] = []
        self.store_writes = StoreWrites()  # leaving waits for these, never for reads
        self.filter_history: list[str] = []  # kept `/` filters, shared by every view
        if self.console.color_system == "standard":
            # 16 colours (TERM=screen, the Linux console): the theme's own colours round to
            # bright red and read as errors; the terminal's ANSI palette keeps its contrast
            self.theme = SIXTEEN_COLOUR_THEME

    # -- start and stop --------------------------------------------------------------------

    def on_mount(self) -> None:
        if self.workspace.config.keymap:
            self.set_keymap(self.workspace.config.keymap)
        self.push_screen(VIEWS["overview"]())
        self.set_interval(self.refresh_seconds, self.refresh_tick, name="refresh")
        self.check_size()

    def take_prefetched(self) -> Prefetched | None:
        """The launch-time read of the overview, once (later reads go to the store)."""
        early, self._prefetched = self._prefetched, None
        return early

    def return_prefetched(self, early: Prefetched) -> None:
        self._prefetched = early

    def get_driver_class(self) -> Any:
        if sys.platform == "win32" or os.environ.get("TEXTUAL_DRIVER"):
            return super().get_driver_class()
        from mlops_tui.tui.terminal import WatchfulDriver

        return WatchfulDriver

    def action_interrupt(self) -> None:
        """ctrl+c: leave at once with the status of an interrupted command."""
        self.exit(return_code=INTERRUPT_EXIT_CODE)

    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Every toast shows its text literally: messages carry reasons and names from the
        store, so markup is off and control characters are escaped."""
        super().notify(printable(message, multiline=True), title=printable(title),
                       severity=severity, timeout=timeout, markup=False)

    # -- terminal size ---------------------------------------------------------------------

    def check_size(self) -> None:
        """Cover the views with a notice while the terminal is below 80×24."""
        width, height = self.size
        small = width < MIN_WIDTH or height < MIN_HEIGHT
        covered = isinstance(self.screen, TooSmallScreen)
        if small and not covered:
            self.push_screen(TooSmallScreen())
        elif covered and not small:
            self.pop_screen()

    # -- views -----------------------------------------------------------------------------

    def open_command_line(self) -> None:
        words = list(VIEWS) + ["quit"]
        self.push_screen(CommandLineScreen(words), self.run_command_line)

    def run_command_line(self, text: str | None) -> None:
        """`models`, `lineage v12`, `env v3 host`, `drift sedan`, `q`."""
        if not text:
            return
        word, _, argument = text.strip().partition(" ")
        word = word.lower()
        if word in ("q", "quit", "q!"):
            self.exit()
            return
        matches = [name for name in VIEWS if name.startswith(word)]
        if word in VIEWS:
            matches = [word]
        if len(matches) != 1:
            self.notify(f"unknown view {word!r}: one of {', '.join(VIEWS)}",
                        severity="error", title=":" + word, markup=False)
            return
        self.open_view(matches[0], argument.strip() or None)

    def open_view(self, name: str, argument: str | None = None) -> None:
        """Show view `name`; a view already open is brought back rather than stacked."""
        for screen in self.screen_stack:
            if isinstance(screen, DashboardScreen) and screen.VIEW == name:
                while self.screen is not screen:
                    self.pop_screen()
                if argument:
                    screen.set_argument(argument)
                return
        self.push_screen(VIEWS[name](argument))

    def go_back(self) -> None:
        views = [s for s in self.screen_stack if isinstance(s, DashboardScreen)]
        if len(views) > 1 and self.screen is views[-1]:
            self.pop_screen()

    def on_version_chosen(self, message: VersionChosen) -> None:
        self.selected_version = message.version_id
        if message.regime:
            self.selected_regime = message.regime

    def default_context(self) -> ActionContext:
        return ActionContext(regime=self.selected_regime, version_id=self.selected_version)

    # -- refresh, store health, jobs ---------------------------------------------------------

    def refresh_tick(self) -> None:
        """Every [tui] refresh_seconds: reconcile jobs (not read-only), then re-read."""
        if self.readonly:
            self.refresh_all()
        else:
            self.reconcile_jobs()

    def refresh_all(self) -> None:
        screen = self._current_view()
        if screen is not None:
            screen.reload()

    def _current_view(self) -> DashboardScreen | None:
        for screen in reversed(self.screen_stack):
            if isinstance(screen, DashboardScreen):
                return screen
        return None

    def keep_job_handle(self, handle: Any) -> None:
        """A job started here: poll its handle so its finished process is reaped."""
        self._job_handles.append(handle)

    @work(thread=True, exclusive=True, exit_on_error=False, group="reconcile")
    def reconcile_jobs(self) -> None:
        from mlops_tui.services.jobs import reconcile

        self._job_handles = [h for h in self._job_handles if not h.status().finished]
        try:
            with self.store_writes.running():
                outcomes = reconcile(self.workspace)
        except MlopsError:
            outcomes = []  # the view's own read will report the store's state
        self.post_message(JobsReconciled([o.message for o in outcomes if o.message]))

    def on_jobs_reconciled(self, message: JobsReconciled) -> None:
        for text in message.messages:
            self.notify(text, title="jobs", markup=False)
        self.refresh_all()

    def store_read_ok(self) -> None:
        self.health = StoreHealth("ok", "", self.clock())

    def store_read_failed(self, kind: str, detail: str) -> None:
        self.health = StoreHealth(kind, detail, self.health.last_ok)

    # -- errors ----------------------------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place an unexpected worker error surfaces: a line, never a traceback."""
        if event.state is not WorkerState.ERROR:
            return
        error = event.worker.error
        text = (error.message if isinstance(error, MlopsError)
                else f"{type(error).__name__}: {error}")
        if event.worker.group in ("load", "page", "detail", "drift", "reconcile", "log"):
            self.store_read_failed("unavailable", text)
        else:
            self.push_screen(ErrorScreen("unexpected error", text))

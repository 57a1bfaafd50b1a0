"""What every view shares: the header, the stale banner, the filter bar and footer; loading
in a worker with busy-store handling; and the four dangerous actions (plan in a worker,
confirm in a modal whose default is Cancel, run the service in a worker, refresh).

A view subclass provides `compose_body`, `fetch_request` (UI thread: what to read, as a
plain value), `fetch` (a worker thread: services only, never widgets), `show` (UI thread:
put what `fetch` returned on screen), `apply_filter` and `action_context` (what is selected,
for the actions).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.screen import Screen
from textual.worker import get_current_worker

from mlops_tui.core.errors import MlopsError, StoreBusyError
from mlops_tui.tui.actions import ActionContext, ActionPlan, plan_action
from mlops_tui.tui.keys import ACTION_IDS, DANGEROUS, DANGEROUS_ACTIONS, with_view_bindings
from mlops_tui.tui.messages import (
    ActionFailed,
    ActionFinished,
    ActionPrepared,
    DataLoaded,
    StoreFailed,
)
from mlops_tui.tui.screens.modals import ConfirmScreen, ErrorScreen, KeysScreen
from mlops_tui.tui.widgets.footer import KeyFooter
from mlops_tui.tui.widgets.status import FilterBar, StaleBanner, StatusHeader, StoreHealth

if TYPE_CHECKING:
    from mlops_tui.tui.app import MlopsApp


PALETTE_HINT_WIDTH = 100  # the footer's `^p Palette` hint needs this many columns


def failure_kind(error: MlopsError) -> str:
    """Header word for a failed read: busy (another process holds the store) or unavailable."""
    return "busy" if isinstance(error, StoreBusyError) else "unavailable"


class DashboardScreen(Screen):
    """One area of the dashboard (a view reachable with `:NAME`)."""

    VIEW: ClassVar[str] = ""
    VIEW_TITLE: ClassVar[str] = ""
    FILTER_HINT: ClassVar[str] = "filter"
    # The dangerous actions (binding ids) this view offers, each on what its cursor selects;
    # the others are absent here (no key, no footer entry, no palette entry), so an action
    # never acts on a selection made in another view.
    ACTIONS: ClassVar[frozenset[str]] = frozenset()

    app: MlopsApp  # type: ignore[assignment]

    def __init__(self, argument: str | None = None) -> None:
        super().__init__(classes=f"view view-{self.VIEW}")
        self._bindings = with_view_bindings(self._bindings, dangerous=not self.app.readonly)
        self.argument = argument
        self.filter_text = ""
        self.loaded_once = False

    # -- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        app = self.app
        header = StatusHeader(str(app.workspace.root), app.runner_label, app.readonly,
                              id="status-header")
        header.view_title = self.VIEW_TITLE
        yield header
        yield StaleBanner(id="banner")
        yield from self.compose_body()
        yield FilterBar(self.FILTER_HINT, app.filter_history, id="filter-bar")
        yield KeyFooter(compact=True)

    def compose_body(self) -> ComposeResult:
        raise NotImplementedError

    def on_mount(self) -> None:
        self.watch(self.app, "health", self._health_changed, init=True)
        self.query_one(StatusHeader).filter_text = self.filter_text  # `:models sedan` sets one
        if not self.show_ready_data():
            self.reload()

    def show_ready_data(self) -> bool:
        """Show data that is already in hand (read before the screen existed); True if so."""
        return False

    def on_resize(self) -> None:
        self.set_class(self.size.width < 120, "narrow")
        # below 100 columns the keys need the room; ctrl+p still works and `?` lists it
        self.query_one(KeyFooter).show_command_palette = self.size.width >= PALETTE_HINT_WIDTH
        self.app.check_size()

    def set_argument(self, argument: str) -> None:
        """`:view ARGUMENT` on a view that is already open."""
        self.argument = argument
        self.reload()

    def _health_changed(self, health: StoreHealth) -> None:
        self.query_one(StatusHeader).health = health
        banner = self.query_one(StaleBanner)
        if health.stale:
            banner.show_problem(health)
        else:
            banner.clear_problem()
        self.set_class(health.stale, "stale")

    # -- loading ---------------------------------------------------------------------------

    @property
    def settled(self) -> bool:
        """The view shows all its data (tests and screenshots wait for this)."""
        return self.loaded_once

    def reload(self) -> None:
        """Read this view's data again (from the refresh timer, `r`, or after an action)."""
        self.load(self.fetch_request())

    def fetch_request(self) -> Any:
        """UI thread: everything `fetch` needs to know, so the worker reads no widget."""
        return self.argument

    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def load(self, request: Any) -> None:
        try:
            data = self.fetch(request)
        except MlopsError as error:
            if not get_current_worker().is_cancelled:
                self.post_message(StoreFailed(failure_kind(error), error.message))
            return
        if not get_current_worker().is_cancelled:
            self.post_message(DataLoaded(data))

    def fetch(self, request: Any) -> Any:
        """Runs in a worker thread: call services, return this view's data."""
        raise NotImplementedError

    def show(self, data: Any) -> None:
        """Runs on the UI thread: put `data` on screen."""
        raise NotImplementedError

    def on_data_loaded(self, message: DataLoaded) -> None:
        message.stop()
        self.loaded_once = True
        self.app.store_read_ok()
        self.show(message.data)

    def on_store_failed(self, message: StoreFailed) -> None:
        message.stop()
        self.app.store_read_failed(message.kind, message.message)

    # -- filter ----------------------------------------------------------------------------

    def action_filter(self) -> None:
        self.query_one(FilterBar).open()

    def on_input_changed(self, event: FilterBar.Changed) -> None:
        if isinstance(event.input, FilterBar):
            event.stop()
            self.filter_text = event.value.strip()
            self.query_one(StatusHeader).filter_text = self.filter_text
            self.apply_filter(self.filter_text)

    def on_filter_bar_closed(self, event: FilterBar.Closed) -> None:
        event.stop()
        self.focus_body()

    def apply_filter(self, text: str) -> None:
        """Show only what matches `text` (called on every keystroke)."""

    def focus_body(self) -> None:
        """Give the focus back to the view's main widget."""
        self.focus_next()

    # -- navigation and help ---------------------------------------------------------------

    def action_back(self) -> None:
        bar = self.query_one(FilterBar)
        if bar.has_class("visible"):
            bar.action_clear_filter()
            return
        self.app.go_back()

    def action_command_line(self) -> None:
        self.app.open_command_line()

    def action_reload(self) -> None:
        self.reload()

    def action_keys(self) -> None:
        self.app.push_screen(KeysScreen(self.VIEW_TITLE, self.key_rows()))

    def key_rows(self) -> list[tuple[str, str, str, str]]:
        """(key, description, tooltip, binding id) of every binding active here."""
        rows = []
        seen: set[tuple[str, str]] = set()
        # this view's and the app's keys first, then those of the focused widget
        ordered = sorted(self.active_bindings.values(),
                         key=lambda a: 0 if a.node is self else 1 if a.node is self.app else 2)
        for active in ordered:
            binding = active.binding
            if binding.system or not binding.description:
                continue
            display = self.app.get_key_display(binding)
            if (display, binding.action) in seen:
                continue
            seen.add((display, binding.action))
            rows.append((display, binding.description, binding.tooltip, binding.id or ""))
        for key, description in self.extra_keys():
            rows.append((key, description, "", ""))
        return rows

    def extra_keys(self) -> list[tuple[str, str]]:
        """Keys handled by a focused widget rather than a binding (e.g. tree arrows)."""
        return []

    # -- dangerous actions -----------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in DANGEROUS_ACTIONS:
            return not self.app.readonly and ACTION_IDS[action] in self.ACTIONS
        return True

    def action_context(self) -> ActionContext:
        """What is selected in this view (subclasses narrow it)."""
        return self.app.default_context()

    def action_retrain(self) -> None:
        self.prepare_action("retrain")

    def action_deploy(self) -> None:
        self.prepare_action("deploy")

    def action_rollback(self) -> None:
        self.prepare_action("rollback")

    def action_cancel_job(self) -> None:
        self.prepare_action("cancel-job")

    def prepare_action(self, action: str, context: ActionContext | None = None) -> None:
        if self.app.readonly:  # the bindings are gone; the palette and `:` are checked too
            self.notify("read-only mode: actions are disabled", severity="warning",
                        markup=False)
            return
        if action not in DANGEROUS:
            raise ValueError(f"unknown action {action}")
        if action not in self.ACTIONS:
            self.notify(f"{action} is not offered in the {self.VIEW_TITLE} view: open the view "
                        "whose rows it acts on", severity="warning", markup=False)
            return
        self._plan(action, context or self.action_context())

    @work(thread=True, exclusive=True, exit_on_error=False, group="action")
    def _plan(self, action: str, context: ActionContext) -> None:
        try:
            plan = plan_action(self.app.workspace, action, context)
        except MlopsError as error:
            self.post_message(ActionFailed(action, error.kind, error.message))
            return
        self.post_message(ActionPrepared(plan))

    def on_action_prepared(self, message: ActionPrepared) -> None:
        message.stop()
        plan: ActionPlan = message.plan

        def confirmed(answer: bool | None) -> None:
            if answer:
                self._perform(plan, self.fetch_request())
            else:
                self.notify(f"{plan.action}: cancelled, nothing changed", markup=False)

        self.app.push_screen(ConfirmScreen(plan.confirmation), confirmed)

    @work(thread=True, exclusive=True, exit_on_error=False, group="action")
    def _perform(self, plan: ActionPlan, request: Any) -> None:
        """Run the service, then re-read this view in the same worker: the operator sees
        the new state in the frame after the confirmation, with one hop."""
        try:
            with self.app.store_writes.running():  # quitting waits for this, not for reads
                outcome = plan.perform(self.app.workspace)
        except MlopsError as error:
            self.post_message(ActionFailed(plan.action, error.kind, error.message))
            return
        if outcome.handle is not None:
            self.app.call_from_thread(self.app.keep_job_handle, outcome.handle)
        try:
            self.post_message(DataLoaded(self.fetch(request)))
        except MlopsError as error:
            self.post_message(StoreFailed(failure_kind(error), error.message))
        self.post_message(ActionFinished(plan.action, outcome.message))

    def on_action_finished(self, message: ActionFinished) -> None:
        message.stop()
        self.notify(message.message, title=message.action, markup=False)

    def on_action_failed(self, message: ActionFailed) -> None:
        message.stop()
        self.app.push_screen(ErrorScreen(f"{message.action}: {message.kind}", message.message))

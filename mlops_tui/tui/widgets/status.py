"""The header line (workspace, view, store health, runner, mode), the stale-data banner and
the filter bar every view shares."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Input, Static

from mlops_tui.core.text import printable
from mlops_tui.tui.text import plain_text, short_path

HEALTH_SYMBOLS = {"ok": "✓", "loading": "…", "busy": "⌛", "unavailable": "✗"}


@dataclass(frozen=True)
class StoreHealth:
    """What the last store read said: ok, loading, busy or unavailable, and when."""

    state: str = "loading"
    detail: str = ""
    last_ok: datetime | None = None

    @property
    def stale(self) -> bool:
        return self.state in ("busy", "unavailable")


class StatusHeader(Static):
    """One line: product, view, workspace, store health, runner, read-only badge."""

    view_title: reactive[str] = reactive("", layout=False)
    health: reactive[StoreHealth] = reactive(StoreHealth, always_update=True)
    filter_text: reactive[str] = reactive("", layout=False)

    def __init__(self, workspace: str, runner: str, readonly: bool, **kwargs) -> None:
        super().__init__(markup=False, **kwargs)
        self.workspace_text = short_path(workspace)
        self.runner = runner
        self.readonly = readonly

    def render(self) -> str:
        health = self.health
        store = f"store {HEALTH_SYMBOLS.get(health.state, '?')} {health.state}"
        if health.last_ok is not None:
            store += f" {health.last_ok:%H:%M:%S}"
        parts = ["mlops-tui", self.view_title, self.workspace_text, store,
                 f"runner {self.runner}"]
        if self.filter_text:
            parts.insert(2, f"filter {self.filter_text!r}")  # next to the view it narrows
        if self.readonly:  # next to the view, so a narrow terminal never cuts it off
            parts.insert(2, "READ-ONLY")
        return printable(" │ ".join(p for p in parts if p))


class Plain(Static):
    """Static text that is never parsed as markup (data may contain brackets) and shows
    control characters as escapes (a stored string must not drive the terminal)."""

    def __init__(self, content: object = "", **kwargs) -> None:
        super().__init__(plain_text(content, multiline=True), markup=False, **kwargs)

    def update(self, content: object = "", *, layout: bool = True) -> None:
        super().update(plain_text(content, multiline=True), layout=layout)


class StaleBanner(Plain):
    """Shown while the store cannot be read: says why and that the data is stale."""

    def __init__(self, **kwargs) -> None:
        super().__init__("", **kwargs)

    def show_problem(self, health: StoreHealth) -> None:
        since = f" from {health.last_ok:%H:%M:%S}" if health.last_ok else ""
        self.update(f"⚠ store {health.state}: {health.detail} — showing the last data{since} "
                    "(STALE); retrying on every refresh")
        self.add_class("visible")

    def clear_problem(self) -> None:
        self.remove_class("visible")


class FilterBar(Input):
    """The `/` filter: typing filters live, enter keeps it, esc clears and closes it, up and
    down recall the filters kept earlier (in any view, newest first)."""

    BINDINGS = [
        Binding("escape", "clear_filter", "Clear", id="filter-clear",
                tooltip="Clear the filter and close it"),
        Binding("enter", "keep_filter", "Keep", id="filter-keep",
                tooltip="Keep the filter and go back to the rows"),
        Binding("up", "recall(1)", "Earlier", id="filter-earlier",
                tooltip="Recall the filter kept before this one"),
        Binding("down", "recall(-1)", "Later", id="filter-later", show=False,
                tooltip="Recall the filter kept after this one"),
    ]

    class Closed(Message):
        """The operator left the filter (kept or cleared)."""

    def __init__(self, placeholder: str, history: list[str], **kwargs) -> None:
        super().__init__(placeholder=placeholder, **kwargs)
        self.history = history  # shared by every view's bar, newest last
        self._recalled = 0  # 0: what is typed; n: the n-th newest kept filter

    def open(self) -> None:
        self.add_class("visible")
        self._recalled = 0
        self.focus()

    def action_clear_filter(self) -> None:
        self.value = ""
        self.remove_class("visible")
        self.post_message(self.Closed())

    def action_keep_filter(self) -> None:
        text = self.value.strip()
        if not text:
            self.remove_class("visible")
        elif text not in self.history[-1:]:
            if text in self.history:
                self.history.remove(text)
            self.history.append(text)
            del self.history[:-FILTER_HISTORY]
        self.post_message(self.Closed())

    def action_recall(self, step: int) -> None:
        position = min(max(self._recalled + step, 0), len(self.history))
        if position == self._recalled:
            return
        self._recalled = position
        self.value = self.history[-position] if position else ""
        self.cursor_position = len(self.value)


FILTER_HISTORY = 50  # kept filters remembered for up/down, per dashboard run

"""Modal screens: confirm a dangerous action, the `:` command line, the keys of a view, an
error, and the "terminal too small" notice. Each returns a typed result with `dismiss`."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input

from mlops_tui.tui.actions import Confirmation
from mlops_tui.tui.keys import DANGER
from mlops_tui.tui.widgets.status import Plain


class ConfirmScreen(ModalScreen[bool]):
    """A dangerous action's last stop. Cancel is chosen first; esc cancels.

    The choice is kept here, not read from the focus, because a focus change lands a
    moment after its key: a quick tab-enter must still do what the keys said.
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="confirm-cancel",
                tooltip="Do nothing and close"),
        Binding("left,right,tab,shift+tab", "toggle_focus", "Switch", show=False,
                id="confirm-switch", tooltip="Move between Cancel and the action"),
        Binding("enter", "choose", "Choose", priority=True, id="confirm-choose",
                tooltip="Press the highlighted button"),
    ]

    def __init__(self, confirmation: Confirmation) -> None:
        super().__init__(classes="dialog-screen")
        self.confirmation = confirmation
        self.choice = "cancel"

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="danger"):
            yield Plain(f"{DANGER} {self.confirmation.title}", id="dialog-title")
            yield Plain("\n".join(self.confirmation.lines), id="dialog-body")
            if self.confirmation.warning:
                yield Plain(self.confirmation.warning, id="dialog-warning")
            with Horizontal(id="dialog-buttons"):
                yield Button("Cancel", id="cancel", variant="primary")
                yield Button(f"{DANGER} {self.confirmation.confirm_label}", id="confirm",
                             variant="error")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def action_cancel(self) -> None:
        self.dismiss(False)

    def action_toggle_focus(self) -> None:
        self.choice = "confirm" if self.choice == "cancel" else "cancel"
        self.query_one(f"#{self.choice}", Button).focus()

    def action_choose(self) -> None:
        self.dismiss(self.choice == "confirm")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm")


class CommandLineScreen(ModalScreen[str | None]):
    """The `:` line at the bottom, k9s-style: `:models`, `:lineage v12`, `:env v3 host`."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="command-cancel", tooltip="Close the command line"),
    ]

    def __init__(self, words: Sequence[str]) -> None:
        super().__init__(classes="command-screen")
        self.words = list(words)

    def compose(self) -> ComposeResult:
        yield Input(placeholder="overview · models · drift · lineage · env · jobs · history",
                    id="command-input", suggester=SuggestFromList(self.words),
                    classes="command-input")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip().lstrip(":") or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class KeysScreen(ModalScreen[None]):
    """The keys of the view it was opened on, generated from that view's bindings."""

    BINDINGS = [
        Binding("escape,question_mark,q", "close", "Close", id="keys-close",
                tooltip="Close this list"),
    ]

    def __init__(self, view_title: str, rows: Sequence[tuple[str, str, str, str]]) -> None:
        super().__init__(classes="dialog-screen")
        self.view_title = view_title
        self.rows = list(rows)

    def compose(self) -> ComposeResult:
        width = max((len(key) for key, *_ in self.rows), default=3)
        # the binding id is what a [keymap] line names to move the key
        lines = [f"{key:>{width}}  {description}" + (f" — {tooltip}" if tooltip else "")
                 + (f"  [{binding_id}]" if binding_id else "")
                 for key, description, tooltip, binding_id in self.rows]
        with Vertical(id="dialog"):
            yield Plain(f"Keys of {self.view_title} ({DANGER} = dangerous, asks first; "
                        "[id] = the binding id for [keymap])",
                         id="dialog-title")
            with VerticalScroll(id="keys-list"):
                yield Plain("\n".join(lines), id="keys-body")

    def action_close(self) -> None:
        self.dismiss(None)


class ErrorScreen(ModalScreen[None]):
    """A refused or failed action: one line of what and why, never a traceback."""

    BINDINGS = [
        Binding("escape,enter", "close", "Close", id="error-close", tooltip="Close this message"),
    ]

    def __init__(self, title: str, message: str) -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="error"):
            yield Plain(f"✗ {self.title_text}", id="dialog-title")
            yield Plain(self.message, id="dialog-body")
            with Horizontal(id="dialog-buttons"):
                yield Button("Close", id="close", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)


MIN_WIDTH, MIN_HEIGHT = 80, 24


class TooSmallScreen(Screen[None]):
    """Covers everything while the terminal is smaller than 80×24; goes away on resize."""

    BINDINGS = [
        Binding("q", "app.quit", "Quit", id="too-small-quit", tooltip="Leave the dashboard"),
    ]

    def compose(self) -> ComposeResult:
        yield Plain("", id="too-small")

    def on_mount(self) -> None:
        self._describe()

    def on_resize(self) -> None:
        self._describe()
        self.app.check_size()  # type: ignore[attr-defined]

    def _describe(self) -> None:
        width, height = self.app.size
        self.query_one("#too-small", Plain).update(
            f"Terminal too small: {width}×{height}.\n"
            f"mlops-tui needs at least {MIN_WIDTH}×{MIN_HEIGHT}; resize it (q quits).")

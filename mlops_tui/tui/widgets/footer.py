"""The key footer: Textual's, showing only the keys that fit whole.

Textual's footer lays every key out in a row and lets the terminal's edge cut the last ones
mid-word (and, beside the palette hint, leaves stray letters). Here the keys come in the
order of the bindings (the view's own keys, then `: / ? q`, then the actions), and the first
one that does not fit ends the row, except `q Quit`, which always has room: what is shown
is whole, and `?` lists every key.
"""

from __future__ import annotations

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

PALETTE_ROOM = 12  # "^p Palette" and its gap, when the hint is shown
ALWAYS_SHOWN = frozenset({"app.quit"})  # room is kept for these whatever the view's keys


def _width(key: FooterKey) -> int:
    return cell_len(key.key_display) + 1 + cell_len(key.description)


class KeyFooter(Footer):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._laid_out_for = -1

    def compose(self) -> ComposeResult:
        room = self.size.width or self.app.size.width
        if self.show_command_palette:
            room -= PALETTE_ROOM
        widgets = list(super().compose())
        keys = [w for w in widgets
                if isinstance(w, FooterKey) and not w.has_class("-command-palette")]
        room -= sum(_width(key) + 1 for key in keys if key.action in ALWAYS_SHOWN)
        full = False
        for widget in widgets:
            if widget in keys and widget.action not in ALWAYS_SHOWN:
                full = full or _width(widget) > room
                if full:
                    continue
                room -= _width(widget) + 1
            yield widget
        self._laid_out_for = self.size.width

    def on_resize(self) -> None:
        if self.size.width != self._laid_out_for and self.is_attached:
            self.call_after_refresh(self.recompose)

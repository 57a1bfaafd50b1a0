"""Rich pieces for human output that show every string as text (mlops_tui.core.text):
no markup, no emoji codes, control characters as visible escapes. Imported lazily: rich
costs start-up time that --json output does not need."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from mlops_tui.core.text import printable


class TextConsole(Console):
    """A console that never interprets what it prints: strings are escaped and shown with
    markup off (a `[link=…]` in a reason stays those characters)."""

    def render_str(self, text: str, **kwargs) -> Text:
        kwargs["markup"] = False
        kwargs["emoji"] = False
        return super().render_str(printable(text, multiline=True), **kwargs)

    def render(self, renderable: RenderableType,
               options: ConsoleOptions | None = None) -> Iterable[Segment]:
        # the last line of defence for a Text built elsewhere: its segments are escaped too
        for segment in super().render(renderable, options):
            if segment.control or segment.text.isprintable() or segment.text == "\n":
                yield segment
            else:
                yield Segment(printable(segment.text, multiline=True), segment.style)


class TextTable(Table):
    """A table whose string cells are single-line text: a newline in a stored reason is
    shown as `\\n` instead of breaking the row."""

    def add_row(self, *renderables: RenderableType | None, **kwargs) -> None:
        super().add_row(*(printable(cell) if isinstance(cell, str) else cell
                          for cell in renderables), **kwargs)

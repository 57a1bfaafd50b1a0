"""A virtual table: it knows the row count, asks its parent for the pages it must draw,
and never holds more than the pages it has been given.

Textual's DataTable builds every row up front (seconds at 100,000 rows); this widget draws
only the visible lines (the Line API) and posts `PageWanted` for a missing page, which the
screen answers from SQL with LIMIT/OFFSET in a worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from mlops_tui.core.text import printable

PAGE_SIZE = 100
CURSOR_MARK = "▶ "
NO_MARK = "  "


def fit_cell(text: str, size: int) -> str:
    """`text` in exactly `size` cells; cut text ends with "…" so it never reads as whole."""
    if cell_len(text) <= size:
        return set_cell_size(text, size)
    return set_cell_size(text, size - 1) + "…" if size > 1 else "…"


@dataclass(frozen=True)
class Column:
    title: str
    width: int  # cells; the last column takes what is left


class PagedTable(ScrollView, can_focus=True):
    """Rows drawn from pages the parent supplies; a cursor with a visible ▶ mark."""

    COMPONENT_CLASSES = {"paged-table--header", "paged-table--cursor", "paged-table--pending"}
    BINDINGS = [
        Binding("up", "cursor_up", "Up", show=False, id="rows-up", tooltip="Previous row"),
        Binding("down", "cursor_down", "Down", show=False, id="rows-down", tooltip="Next row"),
        Binding("pageup", "page_up", "Page up", show=False, id="rows-page-up",
                tooltip="One screen of rows up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="rows-page-down",
                tooltip="One screen of rows down"),
        Binding("j", "cursor_down", "Down", show=False, id="rows-j", tooltip="Next row"),
        Binding("k", "cursor_up", "Up", show=False, id="rows-k", tooltip="Previous row"),
        Binding("home,g", "first", "First", show=False, id="rows-first",
                tooltip="The first row (newest)"),
        Binding("end,G", "last", "Last", show=False, id="rows-last",
                tooltip="The last row (oldest)"),
        Binding("enter", "choose", "Open", show=False, id="rows-choose",
                tooltip="Open the row under the cursor"),
    ]

    cursor: reactive[int] = reactive(0, always_update=True)

    class PageWanted(Message):
        """Draw needs rows [offset, offset + limit) of the current generation."""

        def __init__(self, table: PagedTable, generation: int, offset: int, limit: int) -> None:
            super().__init__()
            self.table = table
            self.generation = generation
            self.offset = offset
            self.limit = limit

    class RowHighlighted(Message):
        """The cursor is on row `index`; `key` is None until its page has arrived."""

        def __init__(self, table: PagedTable, index: int, key: str | None) -> None:
            super().__init__()
            self.table = table
            self.index = index
            self.key = key

    class RowChosen(Message):
        """Enter on a loaded row."""

        def __init__(self, table: PagedTable, index: int, key: str) -> None:
            super().__init__()
            self.table = table
            self.index = index
            self.key = key

    def __init__(self, columns: Sequence[Column] = (), **kwargs) -> None:
        super().__init__(**kwargs)
        self.columns: tuple[Column, ...] = tuple(columns)
        self.total = 0
        self.generation = 0
        self._rows: dict[int, tuple[str, ...]] = {}
        self._keys: dict[int, str] = {}
        self._fresh_pages: set[int] = set()
        self._pending_pages: set[int] = set()
        self._announced: tuple[int, str | None] | None = None

    # -- what the parent calls -----------------------------------------------------------

    def reset(self, total: int, columns: Sequence[Column] | None = None) -> int:
        """New rows entirely (a new filter): forget every page; return the new generation."""
        if columns is not None:
            self.columns = tuple(columns)
        self.generation += 1
        self.total = max(0, total)
        self._rows.clear()
        self._keys.clear()
        self._fresh_pages.clear()
        self._pending_pages.clear()
        self._announced = None
        self._resize_virtual()
        self.scroll_to(y=0, animate=False, immediate=True)
        self.cursor = 0
        self.refresh()
        return self.generation

    def invalidate(self, total: int) -> int:
        """Same rows, newer data (a refresh): keep drawing the old pages until new ones come."""
        self.generation += 1
        self.total = max(0, total)
        self._fresh_pages.clear()
        self._pending_pages.clear()
        self._resize_virtual()
        if self.cursor >= self.total:
            self.cursor = max(0, self.total - 1)
        self.refresh()
        return self.generation

    def put_page(self, generation: int, offset: int, rows: Sequence[tuple[str, ...]],
                 keys: Sequence[str]) -> None:
        """Rows for [offset, offset + len(rows)) of `generation` (older generations ignored)."""
        if generation != self.generation:
            return
        page = offset // PAGE_SIZE
        self._pending_pages.discard(page)
        self._fresh_pages.add(page)
        for index in range(page * PAGE_SIZE, (page + 1) * PAGE_SIZE):
            self._rows.pop(index, None)
            self._keys.pop(index, None)
        for index, (row, key) in enumerate(zip(rows, keys, strict=True), start=offset):
            self._rows[index] = row
            self._keys[index] = key
        self.refresh()
        self._announce()

    def page_failed(self, generation: int, offset: int) -> None:
        """A page could not be read: ask again on the next draw."""
        if generation == self.generation:
            self._pending_pages.discard(offset // PAGE_SIZE)

    def row_key(self, index: int | None = None) -> str | None:
        return self._keys.get(self.cursor if index is None else index)

    def row_values(self, index: int | None = None) -> tuple[str, ...] | None:
        return self._rows.get(self.cursor if index is None else index)

    def visible_rows(self) -> list[tuple[str, ...]]:
        """The loaded rows on screen now (for tests and screenshots)."""
        top = round(self.scroll_y)
        return [self._rows[i] for i in range(top, top + self._body_height())
                if i in self._rows]

    # -- cursor and scrolling ------------------------------------------------------------

    def _body_height(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def _resize_virtual(self) -> None:
        width = sum(c.width + 1 for c in self.columns) + len(CURSOR_MARK)
        self.virtual_size = Size(width, self.total + 1)

    def validate_cursor(self, value: int) -> int:
        return min(max(0, value), max(0, self.total - 1))

    def watch_cursor(self, value: int) -> None:
        top = round(self.scroll_y)
        height = self._body_height()
        if value < top:
            self.scroll_to(y=value, animate=False, immediate=True)
        elif value >= top + height:
            self.scroll_to(y=value - height + 1, animate=False, immediate=True)
        self.refresh()
        self._announce()

    def _announce(self) -> None:
        if self.total == 0:
            return
        state = (self.cursor, self._keys.get(self.cursor))
        if state != self._announced:
            self._announced = state
            self.post_message(self.RowHighlighted(self, state[0], state[1]))

    def action_cursor_up(self) -> None:
        self.cursor -= 1

    def action_cursor_down(self) -> None:
        self.cursor += 1

    def action_page_up(self) -> None:
        self.cursor -= self._body_height()

    def action_page_down(self) -> None:
        self.cursor += self._body_height()

    def action_first(self) -> None:
        self.cursor = 0

    def action_last(self) -> None:
        self.cursor = self.total - 1

    def action_choose(self) -> None:
        key = self._keys.get(self.cursor)
        if key is not None:
            self.post_message(self.RowChosen(self, self.cursor, key))

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            self.cursor = round(self.scroll_y) + event.y - 1

    def on_resize(self) -> None:
        self._resize_virtual()

    # -- drawing -------------------------------------------------------------------------

    def _line_text(self, cells: Sequence[str], width: int) -> str:
        parts = []
        used = 0
        for position, column in enumerate(self.columns):
            last = position == len(self.columns) - 1
            size = width - used if last else min(column.width, width - used)
            if size <= 0:
                break  # no room left: the columns further right are not shown
            cell = printable(cells[position]) if position < len(cells) else ""
            parts.append(fit_cell(cell, size))
            used += size + 1
        return " ".join(parts)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y == 0:
            style = self.get_component_rich_style("paged-table--header")
            text = NO_MARK + self._line_text([c.title for c in self.columns],
                                             width - len(NO_MARK))
            return Strip([Segment(set_cell_size(text, width), base + style)])
        index = round(self.scroll_y) + y - 1
        if index >= self.total:
            return Strip.blank(width, base)
        self._want(index)
        row = self._rows.get(index)
        mark = CURSOR_MARK if index == self.cursor else NO_MARK
        if row is None:
            style = self.get_component_rich_style("paged-table--pending")
            text = mark + "…"
        else:
            style = None
            text = mark + self._line_text(row, width - len(mark))
        if index == self.cursor:
            style = self.get_component_rich_style("paged-table--cursor")
        line_style = base + style if style is not None else base
        return Strip([Segment(set_cell_size(text, width), line_style)])

    def _want(self, index: int) -> None:
        page = index // PAGE_SIZE
        if page in self._fresh_pages or page in self._pending_pages:
            return
        self._pending_pages.add(page)
        self.post_message(self.PageWanted(self, self.generation, page * PAGE_SIZE, PAGE_SIZE))

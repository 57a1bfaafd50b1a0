"""Small tables: a DataTable with the keys of k9s and vim (j/k, g/G, Home/End on rows),
and helpers to refill one in place, keeping the row under the cursor."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from mlops_tui.tui.text import plain_text


class RowTable(DataTable):
    """A DataTable of rows; j/k move, g/G and Home/End go to the first and last row."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False, id="table-down",
                tooltip="Next row"),
        Binding("k", "cursor_up", "Up", show=False, id="table-up", tooltip="Previous row"),
        Binding("g,home", "scroll_top", "First row", show=False, id="table-first",
                tooltip="The first row"),
        Binding("G,end", "scroll_bottom", "Last row", show=False, id="table-last",
                tooltip="The last row"),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", **kwargs)


def cells_text(cells: Sequence[object]) -> list[Text]:
    """Cells as plain Text: DataTable would parse a str as markup (data has brackets), and
    a stored string may hold control characters (shown escaped, on one line)."""
    return [plain_text(cell) for cell in cells]


def selected_key(table: DataTable) -> str | None:
    """The key of the row under the cursor, or None for an empty table."""
    if table.row_count == 0:
        return None
    try:
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    except Exception:  # noqa: BLE001 - a cursor past the rows after a refill
        return None


def add_rows(table: DataTable, rows: Sequence[tuple[str, Sequence[object]]]) -> None:
    """Add rows (key, cells) and widen the columns to their widest cell at once.

    DataTable measures new rows on its next idle. A paint before that idle (a loaded
    machine) caches the rows cut to the header widths, and the cache outlives the
    measurement, so the table stayed cut until the cursor moved.
    """
    widest: dict[int, int] = {}
    for key, cells in rows:
        texts = cells_text(cells)
        table.add_row(*texts, key=key)
        for index, text in enumerate(texts):
            widest[index] = max(widest.get(index, 0), text.cell_len)
    for index, column in enumerate(table.ordered_columns):
        if column.auto_width and index in widest:
            column.content_width = max(column.content_width, widest[index])


def refill(table: DataTable, rows: Sequence[tuple[str, Sequence[object]]]) -> None:
    """Replace the rows (key, cells) and put the cursor back on the same key if it is there."""
    keep = selected_key(table)
    table.clear()
    add_rows(table, rows)
    keys = [key for key, _ in rows]
    if keep in keys:
        table.move_cursor(row=keys.index(keep), animate=False)

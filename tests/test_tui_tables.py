"""The dashboard's small tables: rows filled in place are drawn at their full width even
when a paint comes before the table's own idle (as it does on a loaded machine)."""

from __future__ import annotations

import asyncio

from textual.app import App, ComposeResult

from mlops_tui.tui.widgets.tables import RowTable, refill

ROWS = [("1", ("2026-12-02 20:10", "production", "v2 → v1", "rollback")),
        ("2", ("2026-12-02 20:09", "production", "v1 → v2", "deploy"))]


class OneTable(App):
    def compose(self) -> ComposeResult:
        yield RowTable()

    def on_mount(self) -> None:
        self.query_one(RowTable).add_columns("at (UTC)", "subject", "change", "action")


def drawn(table: RowTable) -> list[str]:
    return [table.render_line(y).text for y in range(len(ROWS) + 1)]  # header and rows


def on_a_filled_table(check) -> None:
    """Run `check(pilot, table)` on a mounted table just filled with ROWS."""
    async def scenario() -> None:
        app = OneTable()
        async with app.run_test(size=(100, 10)) as pilot:
            await pilot.pause()
            table = app.query_one(RowTable)
            refill(table, ROWS)
            await check(pilot, table)

    asyncio.run(scenario())


def test_rows_are_drawn_whole_when_painted_before_the_table_measures_them():
    async def check(pilot, table: RowTable) -> None:
        early = drawn(table)  # no await since the refill: the table has not idled
        assert any("2026-12-02 20:10" in line for line in early), early
        await pilot.pause()
        late = drawn(table)
        assert any("2026-12-02 20:10" in line and "rollback" in line for line in late), late

    on_a_filled_table(check)


def test_a_refill_keeps_the_row_under_the_cursor():
    async def check(pilot, table: RowTable) -> None:
        await pilot.press("j")
        assert table.cursor_row == 1
        refill(table, [("0", ("2026-12-02 20:11", "staging", "- → v3", "deploy")), *ROWS])
        await pilot.pause()
        assert table.cursor_row == 2  # still on row "2", now one lower

    on_a_filled_table(check)

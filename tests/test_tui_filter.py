"""The `/` filter, driven with Pilot on plant-a: the input is visible while typing (above the
footer, not under it), every view's header names the filter in force, esc clears it and up
and down recall the filters kept earlier, in any view."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.widgets import Footer
from tui_helpers import (
    clean_terminal_environment,
    copy_workspace,
    keys_for,
    make_app,
    plant_template,
    screen_text,
    settle,
)

from mlops_tui.services.workspace import Workspace
from mlops_tui.tui.widgets.status import FilterBar, StatusHeader


@pytest.fixture(autouse=True)
def terminal_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_terminal_environment(monkeypatch, tmp_path)


@pytest.fixture
def plant(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return copy_workspace(plant_template(tmp_path_factory), tmp_path / "plant-a")


async def jump(pilot, command: str) -> None:
    await pilot.press("colon", *keys_for(command), "enter")
    await settle(pilot)


def header_line(app) -> str:
    return screen_text(app).splitlines()[0]


@pytest.mark.parametrize("size", [(80, 24), (120, 35)])
def test_the_typed_filter_is_on_screen_above_the_footer(plant, size):
    async def scenario():
        app = make_app(plant)
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            await jump(pilot, "history")
            await pilot.press("slash", *"rollback")
            await settle(pilot)
            bar = app.screen.query_one(FilterBar)
            footer = app.screen.query_one(Footer)
            assert bar.region.height == 1 and footer.region.height == 1
            assert not bar.region.overlaps(footer.region), (bar.region, footer.region)
            rows = screen_text(app).splitlines()
            assert "rollback" in rows[bar.region.y], rows[bar.region.y]
            assert 'filter \'rollback\'' in rows[0], rows[0]

    asyncio.run(scenario())


def test_every_view_names_its_filter_and_esc_clears_it(plant):
    async def scenario():
        app = make_app(plant)
        async with app.run_test(size=(160, 40)) as pilot:
            await settle(pilot)
            for view, text in (("overview", "sedan"), ("jobs", "failed"),
                               ("history", "pickup"), ("models", "suv")):
                if view != "overview":
                    await jump(pilot, view)
                assert "filter" not in header_line(app), (view, header_line(app))
                await pilot.press("slash", *text, "enter")  # enter keeps it
                await settle(pilot)
                assert f"filter {text!r}" in header_line(app), (view, header_line(app))
                assert app.screen.query_one(StatusHeader).filter_text == text
                await pilot.press("escape")  # the bar is still open with the kept text
                await settle(pilot)
                assert "filter" not in header_line(app), (view, header_line(app))
                assert not app.screen.query_one(FilterBar).has_class("visible")

    asyncio.run(scenario())


def test_up_and_down_recall_the_filters_kept_in_any_view(plant):
    async def scenario():
        app = make_app(plant)
        async with app.run_test(size=(120, 35)) as pilot:
            await settle(pilot)
            await jump(pilot, "history")
            for text in ("deploy", "pickup", "deploy"):  # the repeat moves to the newest
                await pilot.press("slash", *["backspace"] * 10, *text, "enter")
                await settle(pilot)
            await pilot.press("escape")
            await jump(pilot, "jobs")  # another view: the same history
            await pilot.press("slash")
            bar = app.screen.query_one(FilterBar)
            recalled = []
            for _ in range(3):  # the third press stays on the oldest
                await pilot.press("up")
                recalled.append(bar.value)
            assert recalled == ["deploy", "pickup", "pickup"]
            await pilot.press("down")
            assert bar.value == "deploy"
            await pilot.press("down")
            assert bar.value == ""  # back to what was typed: nothing
            await pilot.press("up", "enter")
            await settle(pilot)
            assert "filter 'deploy'" in header_line(app)

    asyncio.run(scenario())

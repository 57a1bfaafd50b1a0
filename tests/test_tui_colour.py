"""Colours in terminals with few of them: under a 16-colour TERM (screen, the Linux console)
the dashboard uses the terminal's own ANSI palette, so section titles and key letters do not
round to bright red and read as errors; with 256 colours or more the usual theme stays."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.widgets._footer import FooterKey
from tui_helpers import clean_terminal_environment, copy_workspace, make_app, plant_template, settle

from mlops_tui.services.workspace import Workspace

RED_ANSI = {1, 9}


@pytest.fixture(autouse=True)
def terminal_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_terminal_environment(monkeypatch, tmp_path)
    monkeypatch.delenv("COLORTERM", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)


@pytest.fixture
def plant(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return copy_workspace(plant_template(tmp_path_factory), tmp_path / "plant-a")


@pytest.mark.parametrize("term", ["screen", "linux"])
def test_sixteen_colour_terminals_get_the_ansi_palette_and_no_red_titles(plant, monkeypatch,
                                                                          term):
    monkeypatch.setenv("TERM", term)

    async def scenario():
        app = make_app(plant)
        assert app.console.color_system == "standard"
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            assert app.theme == "ansi-dark"
            titles = list(app.screen.query(".pane-title"))
            assert titles
            for title in titles:
                colour = title.styles.color
                assert colour.ansi is not None and colour.ansi not in RED_ANSI, colour
            for key in app.screen.query(FooterKey):
                letter = key.get_component_rich_style("footer-key--key")
                assert letter.color is None or letter.color.number not in RED_ANSI, letter

    asyncio.run(scenario())


def test_a_256_colour_terminal_keeps_the_usual_theme(plant, monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")

    async def scenario():
        app = make_app(plant)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            assert app.theme == "textual-dark"

    asyncio.run(scenario())

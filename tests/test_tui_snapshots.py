"""SVG snapshots of every view at 80×24 and 160×48, and one in monochrome (NO_COLOR).

Each test also asserts the view's key text is on screen and that no error modal is open, so
a picture of an error can never be accepted as the expected one. The workspace is plant-a
built in a frozen world and the dashboard's clock is frozen (tests/tui_helpers.py), so the
pictures are the same on every run. Update them with `--snapshot-update` only after looking.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_helpers import (
    clean_terminal_environment,
    copy_workspace,
    error_modal_open,
    keys_for,
    make_app,
    plant_template,
    screen_text,
    settle,
)

from mlops_tui.services.workspace import Workspace

# view -> (command line, keys after it, text that must be on screen)
VIEW_SCRIPTS: dict[str, tuple[str | None, tuple[str, ...], tuple[str, ...]]] = {
    "overview": (None, (), ("production", "Regimes", "▲ drift", "Recent serving changes")),
    "models": ("models", (), ("Versions: 7", "v7", "sedan")),
    "drift": ("drift sedan", ("down",), ("Drift of sedan", "oven_temp_c", "▲")),
    "lineage": ("lineage v7", (), ("Lineage of v7", "parent v3")),
    "env": ("env v1 v7", (), ("INCOMPATIBLE", "breaking", "scikit-learn")),
    "jobs": ("jobs", (), ("cancelled", "failed", "Log of job")),
    "history": ("history", (), ("Deployment events", "rollback", "Audit")),
    # typing a filter: the input above the footer, the header naming it
    "filtering": ("history", ("slash", *"rollback"), ("filter 'rollback'", "Deployment events")),
}
SIZES = {"80x24": (80, 24), "160x48": (160, 48)}


@pytest.fixture(autouse=True)
def terminal_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No NO_COLOR, COLORTERM or TEXTUAL_* from the shell; `~` is the test's folder."""
    clean_terminal_environment(monkeypatch, tmp_path)


@pytest.fixture
def plant(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return copy_workspace(plant_template(tmp_path_factory), tmp_path / "plant-a")


def prepare(app, view: str):
    command, keys, expected = VIEW_SCRIPTS[view]

    async def run_before(pilot) -> None:
        await settle(pilot)
        if command:
            await pilot.press("colon", *keys_for(command), "enter")
            await settle(pilot)
        if keys:
            await pilot.press(*keys)
            await settle(pilot)
        text = screen_text(app)
        for fragment in expected:
            assert fragment in text, f"{view}: {fragment!r} not on screen:\n{text}"
        assert not error_modal_open(app), text
        # A loaded machine has shown a table drawn at its header widths although its
        # columns were measured (lines rendered before the measure, kept in the table's
        # cache): draw every table afresh before the picture is taken.
        from textual.widgets import DataTable

        for table in app.screen.query(DataTable):
            table._clear_caches()
            table.refresh(layout=True)
        await settle(pilot)
        assert "✗ unavailable" not in text and "STALE" not in text, text

    return run_before


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("view", VIEW_SCRIPTS)
def test_view(view: str, size: str, plant: Workspace, snap_compare) -> None:
    app = make_app(plant)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=prepare(app, view))


def test_overview_in_monochrome(plant: Workspace, snap_compare, monkeypatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(plant)
    assert app.no_color
    assert snap_compare(app, terminal_size=(80, 24), run_before=prepare(app, "overview"))

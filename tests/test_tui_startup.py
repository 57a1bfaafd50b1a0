"""Startup and scale: the first paint is the overview with its data and loads no heavy
library; the models view reaches the oldest of 100,000 versions by paging from SQL."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tui_helpers import (
    clean_terminal_environment,
    copy_workspace,
    make_app,
    plant_template,
    screen_text,
    settle,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("scipy", "sklearn", "skops", "docker", "pandas", "matplotlib", "plotly", "plotext",
         "seaborn", "bokeh", "altair")

# Runs the real app headless; at its first paint of the overview WITH data (after the frame
# that shows it), records what is imported and quits.
FIRST_PAINT_PROBE = """
import json, sys
from mlops_tui.services.workspace import open_workspace
from mlops_tui.tui.launch import build_app

app = build_app(open_workspace(sys.argv[1]))  # what `mlops-tui` runs
from mlops_tui.tui.screens.overview import OverviewScreen

seen = {}
show = OverviewScreen.show

def first_show(self, data):
    show(self, data)
    if seen:
        return
    seen["regimes"] = [r.regime for r in data.regimes]
    seen["active"] = {t: e.to_version for t, e in data.status.active.items()}

    def painted():
        seen["modules"] = sorted({name.split(".")[0] for name in sys.modules})
        self.app.exit()

    self.app.call_after_refresh(painted)

OverviewScreen.show = first_show
app.run(headless=True, size=(100, 30))
print(json.dumps(seen))
"""


@pytest.fixture(autouse=True)
def terminal_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_terminal_environment(monkeypatch, tmp_path)


def test_first_paint_shows_the_overview_data_before_any_heavy_import(tmp_path, tmp_path_factory):
    workspace = copy_workspace(plant_template(tmp_path_factory), tmp_path / "plant-a")
    environment = dict(os.environ, PYTHONPATH=str(REPO_ROOT))  # this checkout's code
    done = subprocess.run([sys.executable, "-c", FIRST_PAINT_PROBE, str(workspace.root)],
                          capture_output=True, text=True, timeout=120, check=False,
                          env=environment)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["regimes"] == ["pickup", "sedan", "suv"]
    assert seen["active"] == {"production": 7}
    assert "textual" in seen["modules"] and "duckdb" in seen["modules"]  # the probe works
    assert [name for name in HEAVY if name in seen["modules"]] == []


def _build_store_module():
    spec = importlib.util.spec_from_file_location(
        "build_store", REPO_ROOT / "benchmarks" / "build_store.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def store_100k(tmp_path_factory) -> Path:
    """100,000 versions: ten trained for real, the rest inserted in one write unit."""
    root = tmp_path_factory.mktemp("scale") / "ws100k"
    return _build_store_module().build_workspace(root, 100_000)


def test_models_scrolls_to_the_oldest_of_100000_versions(store_100k):
    from mlops_tui.services.workspace import open_workspace

    async def scenario():
        app = make_app(open_workspace(store_100k))
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            await pilot.press("colon", *"models", "enter")
            await settle(pilot)
            table = app.screen.query_one("PagedTable")
            assert table.total == 100_000
            assert "Versions: 100,000" in screen_text(app)
            assert table.row_key() == "v100000"
            await pilot.press("end")
            await settle(pilot)
            assert table.row_key() == "v1"
            assert table.visible_rows()[-1][0] == "v1"
            assert "▶ v1 " in screen_text(app)
            loaded = len(table._rows)
            assert loaded <= 3 * 100  # pages, not 100,000 row objects
            await pilot.press("pageup")
            await settle(pilot)
            assert table.row_key() not in (None, "v1")

    asyncio.run(scenario())

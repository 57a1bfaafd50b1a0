"""Pilot tests of the dashboard: every view and every action, keys pressed for real, the
effect checked in the store (events and audit rows) through the services.

Each test drives the app built by the same constructor the CLI uses, on a private copy of
plant-a (tests/tui_helpers.py): a real DuckDB store, real artifacts and snapshots.
"""

from __future__ import annotations

import asyncio
import hashlib
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

from mlops_tui.services.deployment_reads import audit_log, history, serving_state
from mlops_tui.services.workspace import Workspace
from mlops_tui.tui.screens import VIEWS
from mlops_tui.tui.screens.modals import (
    CommandLineScreen,
    ConfirmScreen,
    ErrorScreen,
    KeysScreen,
    TooSmallScreen,
)

SIZE = (110, 34)


@pytest.fixture(autouse=True)
def terminal_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_terminal_environment(monkeypatch, tmp_path)


@pytest.fixture
def plant(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return copy_workspace(plant_template(tmp_path_factory), tmp_path / "plant-a")


def run(scenario) -> None:
    asyncio.run(scenario())


async def jump(pilot, command: str) -> None:
    """`:command` + enter, then wait for the view's data."""
    await pilot.press("colon", *keys_for(command), "enter")
    await settle(pilot)


def active(workspace: Workspace) -> str:
    return f"v{serving_state(workspace).active['production'].to_version}"


# -- views -------------------------------------------------------------------------------------


def test_first_paint_is_the_overview_with_serving_regimes_drift_and_history(plant):
    async def scenario():
        app = make_app(plant)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            text = screen_text(app)
            assert type(app.screen) is VIEWS["overview"]
            assert "~/plant-a" in text and "store ✓ ok" in text  # header: workspace, health
            assert "production  v7      sedan" in text and "pinned" in text
            for regime, champion in (("pickup", "v6"), ("sedan", "v3"), ("suv", "v4")):
                assert f"{regime:<8}{champion}" in text
            assert "▲ drift" in text and "… reading" not in text  # drift arrived
            assert "▇" in text or "█" in text  # trend sparklines
            assert "Running jobs: none" in text
            assert "rollback" in text and "v6 rejects good parts" in text, text
            assert not error_modal_open(app)

    run(scenario)


def test_colon_reaches_every_view_and_escape_goes_back(plant):
    async def scenario():
        app = make_app(plant)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            for name, screen_class in VIEWS.items():
                await jump(pilot, name)
                assert type(app.screen) is screen_class, name
                assert screen_class.VIEW_TITLE in screen_text(app).splitlines()[0]
                assert not error_modal_open(app), screen_text(app)
            views = [s for s in app.screen_stack if type(s) in VIEWS.values()]
            assert len(views) == len(VIEWS)
            await pilot.press("escape")  # back to where we came from
            await settle(pilot)
            assert type(app.screen) is VIEWS["jobs"]
            # a view already open is brought back, not stacked: the stack stays short
            await jump(pilot, "models")
            assert [type(s) for s in app.screen_stack[1:]] == [VIEWS["overview"],
                                                                VIEWS["models"]]
            await pilot.press("escape")
            await settle(pilot)
            assert type(app.screen) is VIEWS["overview"]
            await pilot.press("escape")  # the overview is the root: esc stays
            await settle(pilot)
            assert type(app.screen) is VIEWS["overview"]
            await pilot.press("colon", *"nope", "enter")
            await settle(pilot)
            assert type(app.screen) is VIEWS["overview"]  # unknown view: a notification only
            assert any("unknown view 'nope'" in str(n.message) for n in app._notifications)

    run(scenario)


@pytest.mark.parametrize("view", list(VIEWS))
def test_at_80_columns_the_footer_keeps_quit_and_shows_no_cut_off_key(plant, view):
    async def scenario():
        app = make_app(plant)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            if view != "overview":
                await jump(pilot, {"env": "env v1 v7", "lineage": "lineage v7"}.get(view, view))
            footer = screen_text(app).splitlines()[-1]
            assert "q Quit" in footer, footer
            assert "Palette" not in footer, footer  # no room: ctrl+p still works
            # every key shown is whole: its description is complete, not cut at the edge
            from textual.widgets._footer import FooterKey

            keys = list(app.screen.query(FooterKey))
            assert keys and all(key.region.right <= 80 for key in keys if key.region.width)
            shown = [key for key in keys if key.region.width]
            for key in shown:
                assert key.description in footer, (key.description, footer)

    run(scenario)


@pytest.mark.parametrize("width", [80, 120, 159])
def test_models_keeps_the_columns_an_operator_decides_on_and_marks_cut_text(plant, width):
    async def scenario():
        app = make_app(plant)
        async with app.run_test(size=(width, 35)) as pilot:
            await settle(pilot)
            await jump(pilot, "models")
            lines = screen_text(app).splitlines()
            header = next(line for line in lines if "version" in line and "regime" in line)
            for title in ("version", "regime", "status", "r2", "created (UTC)"):
                assert title in header, (title, header)
            v7 = next(line for line in lines if line.startswith("▶ v7"))
            assert "●production" in v7 and "0.7955" in v7 and "2026-02-06 00:00" in v7, v7
            table = app.screen.query_one("PagedTable")
            shown = v7[:table.region.width]
            if "runner" not in header:  # cut at the table's edge: the cut shows
                assert shown.rstrip().endswith("…"), shown

    run(scenario)


@pytest.mark.parametrize("view", ["history", "models"])  # a RowTable and a PagedTable
def test_j_k_g_and_shift_g_move_in_every_table(plant, view):
    async def scenario():
        app = make_app(plant)
        async with app.run_test(size=(120, 35)) as pilot:
            await settle(pilot)
            await jump(pilot, view)
            table = app.screen.focused

            def row() -> int:
                return table.cursor if hasattr(table, "total") else table.cursor_row

            rows = table.total if hasattr(table, "total") else table.row_count
            assert rows > 2 and row() == 0
            await pilot.press("j", "j")
            assert row() == 2
            await pilot.press("k")
            assert row() == 1
            await pilot.press("G")
            await settle(pilot)
            assert row() == rows - 1
            await pilot.press("g")
            assert row() == 0

    run(scenario)


def test_question_mark_lists_the_keys_of_the_current_view(plant):
    async def scenario():
        app = make_app(plant)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("question_mark")
            await pilot.pause()
            assert isinstance(app.screen, KeysScreen)
            overview_keys = screen_text(app)
            for word in ("⚠Retrain", "⚠Deploy", "⚠Rollback", "⚠Cancel", "Filter", "View", "Quit"):
                assert word in overview_keys
            assert "Next change" not in overview_keys
            await pilot.press("escape")
            await jump(pilot, "env v1 v7")
            await pilot.press("question_mark")
            await pilot.pause()
            env_keys = {description for _, description, _, _ in app.screen.rows}
            assert ("n", "Next change") in {(k, d) for k, d, _, _ in app.screen.rows}
            listed = str(app.screen.query_one("#keys-body").render())
            assert "Next change" in listed and "[env-next]" in listed, listed  # for [keymap]
            assert {"Next change", "Identical", "⚠Deploy"} <= env_keys
            assert not {"⚠Rollback", "⚠Retrain", "⚠Cancel"} & env_keys  # not on these rows

    run(scenario)


@pytest.mark.parametrize("where", ["overview", "filter", "keys list"])
def test_ctrl_c_leaves_with_130_wherever_the_focus_is(plant, where):
    """ctrl+c is the app's priority key: the filter's input or a dialog does not take it,
    and `?` names it."""
    async def scenario():
        app = make_app(plant)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("question_mark")
            await pilot.pause()
            rows = {key: (description, tooltip)
                    for key, description, tooltip, _ in app.screen.rows}
            assert rows["^c"][0] == "Interrupt" and "130" in rows["^c"][1]
            await pilot.press("escape")
            if where == "filter":
                await pilot.press("slash", *"sedan")
            elif where == "keys list":
                await pilot.press("question_mark")
            await pilot.pause()
            await pilot.press("ctrl+c")
            await pilot.pause()
        assert app.return_code == 130

    run(scenario)


def test_models_pages_filters_and_shows_the_detail_of_a_version(plant):
    async def scenario():
        app = make_app(plant)
        async with app.run_test(size=(160, 40)) as pilot:
            await settle(pilot)
            await jump(pilot, "models")
            table = app.screen.query_one("PagedTable")
            assert table.total == 7 and table.row_key() == "v7"
            detail = screen_text(app)
            for fact in ("artifact  sha256", "code ", "env ", "needs", "train ", "holdout ",
                         "metrics   r2="):
                assert fact in detail, fact
            await pilot.press("slash", *"sedan")
            await settle(pilot)
            rows = table.visible_rows()
            assert [r[0] for r in rows] == ["v7", "v3", "v1"]
            await pilot.press(*keys_for(" drift"))
            await settle(pilot)
            assert [r[0] for r in table.visible_rows()] == ["v7"]
            await pilot.press("enter")  # keep the filter, back to the rows
            await pilot.press("slash", *["backspace"] * 11, *"status=champion")
            await settle(pilot)
            assert [r[0] for r in table.visible_rows()] == ["v6", "v4", "v3"]
            await pilot.press(*keys_for(" banana"))
            await settle(pilot)
            assert "ignored 'banana'" in screen_text(app)
            await pilot.press("escape")  # clears the filter
            await settle(pilot)
            assert table.total == 7

    run(scenario)


def test_lineage_is_a_tree_of_ancestry_and_inputs(plant):
    async def scenario():
        app = make_app(plant)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await jump(pilot, "lineage v7")
            text = screen_text(app)
            assert "Lineage of v7: 2 ancestors" in text
            assert "v7 regime sedan, drift" in text and "parent v3 regime sedan" in text
            for node in ("code ", "weights sha256", "environment ", "train data", "holdout data",
                         "image mlops-tui-trainer"):
                assert node in text, node
            tree = app.screen.query_one("Tree")
            labels = [str(n.label) for n in tree.root.children]
            assert any(label.startswith("parent v3") for label in labels)

    run(scenario)


def test_env_diff_labels_each_change_gives_the_verdict_and_steps_through(plant):
    async def scenario():
        app = make_app(plant)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await jump(pilot, "env v1 v7")
            text = screen_text(app)
            assert "v1 → v7: ✗ INCOMPATIBLE" in text
            assert "because scikit-learn 1.5.2 -> 1.6.1" in text
            for label in ("breaking", "upgraded", "added", "removed"):
                assert label in text, label
            assert "same" not in text  # identical packages hidden by default
            table = app.screen.query_one("DataTable")
            rows = table.row_count
            await pilot.press("n")
            assert table.cursor_row == 1
            await pilot.press("p")
            assert table.cursor_row == 0
            await pilot.press("i")
            await pilot.pause()
            assert table.row_count > rows and "same" in screen_text(app)
            await pilot.press("s")  # swap sides
            await settle(pilot)
            assert "v7 → v1:" in screen_text(app)

    run(scenario)


def test_env_diff_against_a_requirements_file_survives_a_refresh(plant, tmp_path):
    """The view used to re-ask for the file by its label ("requirements.txt") on the
    refresh, fail, and turn into "store unavailable … STALE"."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "requirements.txt").write_text("scikit-learn==1.5.2\nnumpy==2.1.3\n")

    async def scenario():
        app = make_app(plant)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await jump(pilot, f"env v1 {folder / 'requirements.txt'}")
            verdict = str(app.screen.query_one("#env-verdict").render())
            assert "v1 → requirements.txt" in verdict, verdict
            for _ in range(2):
                await pilot.press("r")  # what the refresh timer does
                await settle(pilot)
            text = screen_text(app)
            assert "STALE" not in text and "unavailable" not in text, text
            assert str(app.screen.query_one("#env-verdict").render()) == verdict

    run(scenario)


def test_drift_heatmap_timeline_with_deploys_and_rollbacks_and_histogram(plant):
    async def scenario():
        app = make_app(plant)
        async with app.run_test(size=(140, 44)) as pilot:
            await settle(pilot)
            await jump(pilot, "drift sedan")
            text = screen_text(app)
            assert "Drift of sedan" in text and " features · windows " in text
            assert "▲" in text and "·" in text  # symbols, not colour alone
            await pilot.press("down")  # oven_temp_c: the sensor that drifts
            await settle(pilot)
            text = screen_text(app)
            cell = next(line for line in text.splitlines() if "oven_temp_c · window " in line)
            assert "(threshold " in cell
            serve_row = next(line for line in text.splitlines() if "serve│" in line)
            assert "D" in serve_row and "R" in serve_row and "^" in serve_row
            drift_row = next(line for line in text.splitlines() if "drift│" in line)
            assert "▲" in drift_row  # the oven's sensor drift, marked on the same time axis
            assert "oven_temp_c 02-08 18:00 · ref █ · now ▒" in text and "%" in text
            await pilot.press("left")  # the window before: the old bars must not stay
            chart = app.screen.query_one("HistogramChart")
            assert "oven_temp_c 02-08 18:00 · ref" not in str(chart.render())
            await settle(pilot)
            await pilot.press("right_square_bracket")  # next regime (g is free for k9s' top)
            await settle(pilot)
            text = screen_text(app)
            assert "Drift of suv" in text
            # the newest window at the right edge, the screen full of windows
            heatmap = app.screen.query_one("DriftHeatmap")
            grid = heatmap.grid
            first, last = heatmap.first_column, heatmap.first_column + heatmap._visible_columns()
            assert min(last, len(grid.windows)) == len(grid.windows)
            assert len(grid.windows) - first == min(len(grid.windows), heatmap._visible_columns())
            await pilot.press("left_square_bracket")
            await settle(pilot)
            assert "Drift of sedan" in screen_text(app)

    run(scenario)


def test_the_demo_timeline_shows_its_deploys_and_rollback_at_data_time(shared_demo):
    """The demo's history is recorded at the scenario's data times, so every serving change
    lies on the drift timeline (recorded by the wall clock, all of them fell after it), and
    each regime's view shows the changes within its own windows."""
    from mlops_tui.services.status import status
    from mlops_tui.services.workspace import open_workspace
    from mlops_tui.tui.drift_data import load_grid

    workspace = open_workspace(shared_demo[0])
    grids = [load_grid(workspace, regime) for regime in status(workspace).regimes]
    start = min(g.windows[0] for g in grids)
    end = max(g.windows[-1] for g in grids)
    for grid in grids:
        production = [m.symbol for m in grid.markers if m.label.startswith("production")]
        assert production == ["D", "D", "R", "D", "D"], grid.regime
        for marker in grid.markers:
            assert start <= marker.at <= end, (marker, start, end)
        shown = [m for m in grid.markers if grid.windows[0] <= m.at <= grid.windows[-1]]
        assert shown, grid.regime  # on the regime's own timeline
    assert len({m.at for m in grids[0].markers if m.label.startswith("production")}) == 5


def test_jobs_lists_past_jobs_with_their_states(plant):
    async def scenario():
        app = make_app(plant)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await jump(pilot, "jobs")
            text = screen_text(app)
            assert "✗ failed" in text and "■ cancelled" in text
            assert "Log of job" in text

    run(scenario)


def test_history_shows_events_and_audit(plant):
    async def scenario():
        app = make_app(plant)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await jump(pilot, "history")
            text = screen_text(app)
            assert "Deployment events (14)" in text and "target production  v6 → v5" in text, text
            assert "Audit (21)" in text and "from=v3, to=v7, reason=try" in text

    run(scenario)


# -- actions -----------------------------------------------------------------------------------


async def confirm(pilot) -> None:
    """Cancel has the focus: tab to the action, enter."""
    await pilot.press("tab", "enter")
    await settle(pilot)


def test_rollback_from_history_row_asks_with_the_verdict_first_then_writes_event_and_audit(
        plant):
    async def scenario():
        app = make_app(plant)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await jump(pilot, "history")
            events = app.screen.query_one("#events")
            seqs = [int(str(key.value)) for key in events.rows]
            rolled_to_v5 = seqs.index(next(e.seq for e in history(plant, limit=None)
                                           if e.action == "rollback"))
            events.move_cursor(row=rolled_to_v5)
            await pilot.press("b")
            await settle(pilot)
            assert isinstance(app.screen, ConfirmScreen)
            assert app.screen.focused.id == "cancel"
            body = str(app.screen.query_one("#dialog-body").render())
            assert body.splitlines()[0].startswith("environment v5 → image:mlops-trainer:a: ✓")
            await pilot.press("enter")  # the default is Cancel: nothing happens
            await settle(pilot)
            assert active(plant) == "v7"
            await pilot.press("b")
            await settle(pilot)
            await confirm(pilot)
            assert not error_modal_open(app)
            assert active(plant) == "v5"
            event = history(plant, target="production", limit=1)[0]
            assert (event.action, event.from_version, event.to_version) == ("rollback", 7, 5)
            audit = audit_log(plant, limit=1)[0]
            assert (audit.action, audit.subject, audit.event_seq) == (
                "rollback", "active:production", event.seq)
            assert audit.detail["reason"] == "requested from the dashboard"
            assert "v7 → v5" in screen_text(app)  # the view refreshed

    run(scenario)


def test_rollback_on_a_champion_row_of_history_is_refused_naming_the_row(plant):
    async def scenario():
        app = make_app(plant)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await jump(pilot, "history")
            events = app.screen.query_one("#events")
            seqs = [int(str(key.value)) for key in events.rows]
            champion_row = next(e for e in history(plant, limit=None)
                                if e.kind.value == "champion" and e.subject == "pickup")
            events.move_cursor(row=seqs.index(champion_row.seq))
            before = [e.seq for e in history(plant, limit=None)]
            await pilot.press("b")
            await settle(pilot)
            assert not isinstance(app.screen, ConfirmScreen)
            assert error_modal_open(app)
            text = screen_text(app)
            assert f"event #{champion_row.seq} is a champion change of regime pickup" in text
            assert [e.seq for e in history(plant, limit=None)] == before
            assert active(plant) == "v7"

    run(scenario)


@pytest.mark.parametrize(("view", "absent"), [
    ("jobs", ("deploy", "rollback")), ("drift sedan", ("deploy", "rollback", "cancel-job")),
    ("env v1 v7", ("retrain", "rollback", "cancel-job")),
    ("history", ("retrain", "deploy", "cancel-job")), ("models", ("rollback", "cancel-job")),
])
def test_a_view_offers_only_the_actions_on_its_own_rows(plant, view, absent):
    """`d` in Jobs used to deploy the version last clicked in Models: an action a view's rows
    cannot take is not bound there, not in its footer and not in its palette."""
    from mlops_tui.tui.keys import DANGEROUS
    from mlops_tui.tui.palette import DashboardCommands

    async def scenario():
        app = make_app(plant)
        async with app.run_test(size=(160, 40)) as pilot:
            await settle(pilot)
            await jump(pilot, "models")  # a selection made elsewhere must not leak
            await jump(pilot, view)
            footer = screen_text(app).splitlines()[-1]
            palette = [title for title, _, _ in DashboardCommands(app.screen)._entries()]
            for binding_id in absent:
                key, description, _, _ = DANGEROUS[binding_id]
                assert description not in footer, (binding_id, footer)
                assert description.replace("⚠", "⚠ ") not in palette, (binding_id, palette)
                await pilot.press(key)
                await settle(pilot)
                assert not isinstance(app.screen, ConfirmScreen), binding_id
            assert active(plant) == "v7"

    run(scenario)


def test_rollback_from_the_overview_restores_the_previous_version(plant):
    async def scenario():
        app = make_app(plant)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("b")
            await settle(pilot)
            assert "Roll production back to v3?" in screen_text(app)
            await confirm(pilot)
            assert active(plant) == "v3"
            assert "production  v3" in screen_text(app)

    run(scenario)


def test_deploy_the_selected_version(plant):
    async def scenario():
        app = make_app(plant)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await jump(pilot, "models")
            table = app.screen.query_one("PagedTable")
            table.cursor = 5  # v2: suv, trained on image A like the serving environment
            await settle(pilot)
            await pilot.press("d")
            await settle(pilot)
            assert "Deploy v2 to production?" in screen_text(app)
            await confirm(pilot)
            assert active(plant) == "v2"
            audit = audit_log(plant, limit=1)[0]
            assert (audit.action, audit.detail["to"]) == ("deploy", "v2")
            # the detail pane follows at once, without moving the cursor
            detail = str(app.screen.query_one("#version-detail").render())
            assert "active on production" in detail, detail

    run(scenario)



def test_deploy_refused_by_the_environment_gate_shows_an_error_and_writes_nothing(plant):
    async def scenario():
        app = make_app(plant)
        before = (len(history(plant, limit=None)), len(audit_log(plant, limit=None)))
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await jump(pilot, "models")
            app.screen.query_one("PagedTable").cursor = 1  # v6: image B, sklearn 1.6.1
            await settle(pilot)
            await pilot.press("d")
            await settle(pilot)
            assert "INCOMPATIBLE with the serving environment" in screen_text(app)
            await confirm(pilot)
            assert isinstance(app.screen, ErrorScreen)
            assert "environment gate refused v6" in screen_text(app)
            assert "Traceback" not in screen_text(app)
        assert active(plant) == "v7"
        assert (len(history(plant, limit=None)), len(audit_log(plant, limit=None))) == before

    run(scenario)


def test_retrain_starts_a_job_followed_live_then_cancel_stops_it(plant):
    from mlops_tui.services.jobs import get_job, list_jobs

    # The job must still run when it is cancelled: hold the pipeline until then.
    train_py = plant.root / "pipeline" / "train.py"
    train_py.write_text(train_py.read_text() + (
        "\n\nimport time as _time\n_fit = train\n\n\n"
        "def train(frame, params):\n    _time.sleep(120)\n    return _fit(frame, params)\n"))

    async def scenario():
        app = make_app(plant)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            regimes = app.screen.query_one("#regimes")
            regimes.move_cursor(row=[str(k.value) for k in regimes.rows].index("sedan"))
            await pilot.press("t")
            await settle(pilot)
            assert "Retrain regime sedan?" in screen_text(app)
            await confirm(pilot)
            job = list_jobs(plant, limit=1)[0]
            assert job.regime == "sedan" and job.state.value == "running"
            await jump(pilot, "jobs")
            for _ in range(100):  # the harness writes its first line within a second or two
                if "train rows" in screen_text(app) or "regime sedan" in screen_text(app):
                    break
                await pilot.pause(0.1)
            assert f"Log of job {job.short_id}" in screen_text(app)
            assert "job " + job.id in screen_text(app) or "regime sedan" in screen_text(app)
            await pilot.press("x")
            await settle(pilot)
            assert f"Cancel job {job.short_id} (sedan)?" in screen_text(app)
            await confirm(pilot)
            assert get_job(plant, job.id).state.value == "cancelled"

    run(scenario)


def test_a_refresh_reconciles_a_finished_retrain_into_a_new_version(plant):
    from mlops_tui.runners.base import wait_for
    from mlops_tui.services.registry import list_versions

    async def scenario():
        app = make_app(plant)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("t")
            await settle(pilot)
            await confirm(pilot)
            assert len(app._job_handles) == 1
            handle = app._job_handles[0]
            await asyncio.get_running_loop().run_in_executor(None, wait_for, handle, 120)
            app.refresh_tick()  # what the timer does: reconcile, then re-read
            await settle(pilot)
            newest = list_versions(plant, limit=1).versions[0]
            assert newest.id == "v8" and newest.job_id == handle.job_id
            assert any("registered v8" in str(n.message) for n in app._notifications)
            assert app._job_handles == []  # its process was reaped

    run(scenario)


def test_command_palette_offers_views_and_actions(plant):
    async def scenario():
        app = make_app(plant)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("ctrl+p", *"open :lineage")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await settle(pilot)
            assert type(app.screen) is VIEWS["lineage"]
            shown = app.screen.root_node.attributes["regime"]  # the lineage's own version
            await pilot.press("ctrl+p", *"retrain")  # lineage offers retrain and deploy
            await pilot.pause(0.3)
            await pilot.press("enter")
            await settle(pilot)
            assert isinstance(app.screen, ConfirmScreen)
            assert app.screen.confirmation.title == f"Retrain regime {shown}?"

    run(scenario)


def test_keymap_from_config_rebinds_an_action(plant):
    from mlops_tui.services.workspace import open_workspace

    config = plant.config_path.read_text()
    plant.config_path.write_text(config.replace('# rollback = "ctrl+r"', 'rollback = "ctrl+b"'))
    workspace = open_workspace(plant.root)
    assert workspace.config.keymap == {"rollback": "ctrl+b"}

    async def scenario():
        app = make_app(workspace)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("b")
            await settle(pilot)
            assert not isinstance(app.screen, ConfirmScreen)  # b is free now
            await pilot.press("ctrl+b")
            await settle(pilot)
            assert isinstance(app.screen, ConfirmScreen)

    run(scenario)


def test_an_unknown_keymap_id_is_one_clear_error(plant):
    from mlops_tui.core.config import ConfigError
    from mlops_tui.services.workspace import open_workspace
    from mlops_tui.tui.launch import check_keymap

    config = plant.config_path.read_text()
    plant.config_path.write_text(config.replace('# rollback = "ctrl+r"', 'rolback = "ctrl+b"'))
    with pytest.raises(ConfigError, match=r"mlops.toml: \[keymap\] binding id 'rolback' "
                                          r"\(did you mean rollback"):
        check_keymap(open_workspace(plant.root))


# -- read-only, busy store, small terminal -------------------------------------------------------


def store_digest(workspace: Workspace) -> str:
    return hashlib.sha256(workspace.store_path.read_bytes()).hexdigest()


def test_readonly_has_no_dangerous_binding_and_writes_nothing(plant):
    before = store_digest(plant)
    jobs_before = sorted(p.name for p in plant.jobs_root.iterdir())

    async def scenario():
        app = make_app(plant, readonly=True)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert "READ-ONLY" in screen_text(app)
            for name in VIEWS:
                await jump(pilot, name)
                actions = {b.binding.action for b in app.screen.active_bindings.values()}
                assert not actions & {"retrain", "deploy", "rollback", "cancel_job"}, name
                for key in ("t", "d", "b", "x"):
                    await pilot.press(key)
                    await settle(pilot)
                    assert not isinstance(app.screen, (ConfirmScreen, ErrorScreen)), (name, key)
                assert "⚠" not in screen_text(app)  # no dangerous action in the footer
            await pilot.press("ctrl+p", *"rollback")
            await pilot.pause(0.3)
            assert "Rollback" not in screen_text(app)
            await pilot.press("escape")
            app.refresh_tick()  # the timer: re-read only, no reconcile
            await settle(pilot)
            assert not [w for w in app.workers if w.group == "reconcile"]
    run(scenario)
    assert store_digest(plant) == before
    assert sorted(p.name for p in plant.jobs_root.iterdir()) == jobs_before


def test_a_busy_store_shows_a_banner_and_keeps_the_last_data_marked_stale(plant, monkeypatch):
    from mlops_tui.store.lock import hold_lock

    monkeypatch.setenv("MLOPS_TUI_LOCK_TIMEOUT", "0.3")

    async def scenario():
        app = make_app(plant)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            with hold_lock(plant.store.lock_path, exclusive=True, timeout=1,
                           command="mlops-tui ingest big.parquet"):
                await pilot.press("r")
                await settle(pilot)
                text = screen_text(app)
                assert "store ⌛ busy" in text and "STALE" in text
                assert "mlops-tui ingest big.parquet" in text  # who holds it
                assert "production  v7" in text  # the last data is still there
                assert app.screen.has_class("stale")
            await pilot.press("r")
            await settle(pilot)
            assert "store ✓ ok" in screen_text(app) and "STALE" not in screen_text(app)

    run(scenario)


def test_a_too_small_terminal_gets_a_message_until_resized(plant):
    async def scenario():
        app = make_app(plant)
        async with app.run_test(size=(70, 20)) as pilot:
            await settle(pilot)
            assert isinstance(app.screen, TooSmallScreen)
            assert "Terminal too small: 70×20" in screen_text(app)
            await pilot.resize_terminal(80, 24)
            await settle(pilot)
            assert type(app.screen) is VIEWS["overview"]
            assert "production" in screen_text(app)

    run(scenario)


def test_command_line_is_a_modal_with_view_names(plant):
    async def scenario():
        app = make_app(plant)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("colon")
            await pilot.pause()
            assert isinstance(app.screen, CommandLineScreen)
            await pilot.press("escape")
            await pilot.pause()
            assert type(app.screen) is VIEWS["overview"]

    run(scenario)

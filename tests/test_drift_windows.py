"""Windows that follow the data: `[data] window_origin` (the first observation floored to the
window's unit by default, calendar anchors, an ISO timestamp), a late earlier batch that
does not move the grid, and a window spanning a regime switch judged per regime."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import run_cli
from drift_helpers import BYOD_CONFIG, byod_table, champion

from mlops_tui.services.drift_compute import compute_drift, record_drift, reference_versions
from mlops_tui.services.drift_read import latest_drift
from mlops_tui.services.ingest import ingest_file
from mlops_tui.services.workspace import Workspace, init_workspace

FIRST = datetime(2026, 3, 5, 13, 17, tzinfo=UTC)  # a Thursday


def _config(window: str, origin: str | None = None) -> str:
    text = re.sub(r'window = "1h"', f'window = "{window}"', BYOD_CONFIG)
    if origin is not None:
        text = text.replace("[data]\n", f'[data]\nwindow_origin = "{origin}"\n', 1)
    return text


def _ingest(workspace: Workspace, table, name: str) -> None:
    path = workspace.root.parent / f"{workspace.root.name}-{name}.parquet"
    pq.write_table(table, path)
    ingest_file(workspace, path)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """Three days from 2026-03-05 13:17, 20 rows an hour, no references (windows only)."""
    workspace = init_workspace(tmp_path_factory.mktemp("origin") / "ws",
                               config_text=_config("1d"))
    _ingest(workspace, byod_table(FIRST, [("alpha", 72)], rows_per_hour=20), "first")
    return workspace


def _starts(workspace: Workspace, window: str, origin: str | None = None) -> list[str]:
    workspace.config_path.write_text(_config(window, origin), encoding="utf-8")
    code, out, err = run_cli("drift", "show", "--json", "--no-record", workspace=workspace)
    assert code == 0, err
    return [w["start"] for w in json.loads(out)["windows"]]


@pytest.mark.parametrize(("window", "origin", "first_start"), [
    ("1d", None, "2026-03-05T00:00:00+00:00"),  # the default: floored to the day
    ("6h", None, "2026-03-05T13:00:00+00:00"),  # ... to the hour (epoch's grid: 12:00)
    ("30d", None, "2026-03-05T00:00:00+00:00"),  # epoch's grid: 2026-02-06
    ("30d", "epoch", "2026-02-06T00:00:00+00:00"),
    ("6h", "midnight", "2026-03-05T12:00:00+00:00"),
    ("7d", "monday", "2026-03-02T00:00:00+00:00"),
    ("7d", "month-start", "2026-03-01T00:00:00+00:00"),
    ("6h", "2026-01-01T06:30", "2026-03-05T12:30:00+00:00"),
    ("6h", "2026-01-01T06:30+02:00", "2026-03-05T10:30:00+00:00"),
])
def test_windows_start_where_the_origin_says(history: Workspace, window: str,
                                             origin: str | None, first_start: str) -> None:
    starts = _starts(history, window, origin)
    assert starts[0] == first_start
    step = {"1d": timedelta(days=1), "6h": timedelta(hours=6), "30d": timedelta(days=30),
            "7d": timedelta(days=7)}[window]
    moments = [datetime.fromisoformat(s) for s in starts]
    assert all(b - a == step for a, b in zip(moments, moments[1:], strict=False))
    assert moments[0] <= FIRST < moments[0] + step


def test_row_windows_ignore_the_origin(history: Workspace) -> None:
    assert _starts(history, "500rows", "monday")[0] == FIRST.isoformat()


def test_a_late_earlier_batch_keeps_the_grid(tmp_path: Path) -> None:
    workspace = init_workspace(tmp_path / "ws", config_text=_config("6h"))
    _ingest(workspace, byod_table(FIRST, [("alpha", 30)], rows_per_hour=20), "first")
    before = compute_drift(workspace, with_metrics=False)
    assert before.windows[0].start == datetime(2026, 3, 5, 13, tzinfo=UTC)
    # a batch with rows a day earlier arrives later: the origin stays the first batch's
    earlier = FIRST - timedelta(days=1, minutes=40)  # 2026-03-04 12:37
    _ingest(workspace, byod_table(earlier, [("alpha", 12)], rows_per_hour=20,
                                  first_id=900_000), "earlier")
    after = compute_drift(workspace, with_metrics=False)
    assert after.windows[0].start == datetime(2026, 3, 4, 7, tzinfo=UTC)  # 13:00 - 6h
    seen = {w.start: (w.end, w.rows) for w in before.windows}
    assert {w.start: (w.end, w.rows) for w in after.windows if w.start in seen} == seen
    assert all((w.start - before.windows[0].start) % timedelta(hours=6) == timedelta(0)
               for w in after.windows)


@pytest.fixture(scope="module")
def switching(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """2h windows; alpha for 3 hours, then beta for 3: the window 02:00-04:00 holds an hour
    of each. Each recipe's champion is trained on its own rows from another seed."""
    workspace = init_workspace(tmp_path_factory.mktemp("switch") / "ws",
                               config_text=_config("2h"))
    start = datetime(2026, 3, 5, tzinfo=UTC)
    for recipe, seed in (("alpha", 1), ("beta", 2)):
        champion(workspace, recipe, byod_table(start - timedelta(days=3), [(recipe, 8)],
                                               seed=seed))
    _ingest(workspace, byod_table(start, [("alpha", 3), ("beta", 3)], seed=3), "line")
    return workspace


def test_a_window_spanning_a_switch_is_judged_per_regime(switching: Workspace) -> None:
    report = compute_drift(switching, with_metrics=False)
    at = datetime(2026, 3, 5, 2, tzinfo=UTC)
    parts = [w for w in report.windows if w.start == at]
    assert [(w.regime.label, w.rows, w.split) for w in parts] == [("alpha", 120, True),
                                                                ("beta", 120, True)]
    champions = {name: number for name, (number, _, _) in reference_versions(switching).items()}
    for part in parts:
        assert not part.regime.mixed and not part.regime.warning
        assert part.reference.version == champions[part.regime.label]  # its own regime's
        assert part.reference.basis == "regime"
        assert "inconclusive" not in {f.verdict for f in part.features.values()}
        assert part.verdict == "ok"
    # beta's part matches beta's reference; the next (beta) window, judged against what
    # auto-deploy served then (alpha's champion), is far from it
    beta = parts[1].features["pressure_bar"].statistic
    after = next(w for w in report.windows if w.start == at + timedelta(hours=2))
    assert after.reference.version == champions["alpha"]
    assert beta < 0.3 < after.features["pressure_bar"].statistic
    assert all(not w.split for w in report.windows if w.start != at)
    assert len(report.windows) == 4


def test_split_windows_in_drift_show_and_the_recorded_run(switching: Workspace) -> None:
    code, out, err = run_cli("drift", "show", "--json", "--no-record", workspace=switching)
    assert code == 0, err
    windows = json.loads(out)["windows"]
    assert [(w["start"][11:16], w["regime"]["name"], w["split"], w["rows"]) for w in windows] \
        == [("00:00", "alpha", False, 240), ("02:00", "alpha", True, 120),
            ("02:00", "beta", True, 120), ("04:00", "beta", False, 240)]
    code, out, err = run_cli("drift", "show", "--no-record", workspace=switching)
    assert code == 0, err
    assert out.count("(part)") == 2 and "split: 2026-03-05 02:00" in out
    code, out, err = run_cli("drift", "show", "--json", "--no-record", "--regime", "beta",
                             workspace=switching)
    assert code == 0, err
    assert [(w["start"][11:16], w["split"]) for w in json.loads(out)["windows"]] == [
        ("02:00", True), ("04:00", False)]
    computed = compute_drift(switching, with_metrics=False)
    record_drift(switching, computed)
    recorded = latest_drift(switching)
    assert [(w.start, w.regime.label, w.split, w.rows, w.verdict) for w in recorded.windows] \
        == [(w.start, w.regime.label, w.split, w.rows, w.verdict) for w in computed.windows]
    assert [{n: f.verdict for n, f in w.features.items()} for w in recorded.windows] == [
        {n: f.verdict for n, f in w.features.items()} for w in computed.windows]


def test_min_rows_applies_to_each_part(switching: Workspace) -> None:
    before = switching.config_path.read_text(encoding="utf-8")
    try:  # 150: more than a part's 120 rows, fewer than a whole window's 240
        switching.config_path.write_text(before.replace("min_rows = 20", "min_rows = 150"),
                                         encoding="utf-8")
        code, out, err = run_cli("drift", "show", "--json", "--no-record", workspace=switching)
    finally:
        switching.config_path.write_text(before, encoding="utf-8")
    assert code == 0, err
    for window in json.loads(out)["windows"]:
        verdicts = {f["verdict"] for f in window["features"].values()}
        if window["split"]:
            assert verdicts == {"inconclusive"} and window["rows"] == 120
            assert all("150" in f["reason"] for f in window["features"].values())
        else:
            assert "inconclusive" not in verdicts


def test_explain_shows_one_part_of_a_split_window(switching: Workspace) -> None:
    for regime in ("alpha", "beta"):
        code, out, err = run_cli("drift", "explain", "2026-03-05T02:00", "pressure_bar",
                                 "--regime", regime, "--json", workspace=switching)
        assert code == 0, err
        document = json.loads(out)
        assert document["window"]["split"] and document["window"]["regime"]["name"] == regime
        assert document["window"]["rows"] == 120
        # the part's own rows: its shares sit on its reference's (the whole window's would
        # put half the mass at the other recipe's pressure, 2.5 bar away)
        apart = sum(abs(b["reference"] - b["current"]) for b in document["bins"]) / 2
        assert apart < 0.3, document["bins"]
    code, out, err = run_cli("drift", "explain", "2026-03-05T02:00", "pressure_bar",
                             workspace=switching)
    assert code == 0 and "regime alpha, its part of a split window" in out, err


@pytest.mark.parametrize("value", ["tuesday", "2026-02-30", "Monday"])
def test_a_bad_origin_is_refused_naming_the_key(history: Workspace, value: str) -> None:
    before = history.config_path.read_text(encoding="utf-8")
    try:
        history.config_path.write_text(_config("1d", value), encoding="utf-8")
        code, out, err = run_cli("drift", "show", "--no-record", workspace=history)
    finally:
        history.config_path.write_text(before, encoding="utf-8")
    assert code == 2 and not out
    assert f"[data] window_origin = '{value}': must be one of first, midnight" in err

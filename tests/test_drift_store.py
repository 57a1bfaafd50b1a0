"""The drift store: SQL binning agrees with the numpy reference binning, profiles are kept
per training snapshot (made at registration), and the v4 migration."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from drift_helpers import snapshot_of

from mlops_tui.core.config import DataContract
from mlops_tui.core.profiles import (
    Profile,
    build_profile,
    category_codes,
    numeric_grid,
)
from mlops_tui.core.regimes import parse_window
from mlops_tui.services.references import ensure_profiles
from mlops_tui.store import counts as counts_sql
from mlops_tui.store import drift as drift_sql
from mlops_tui.store.db import Store
from mlops_tui.store.schema import CURRENT_SCHEMA, MIGRATIONS

START = datetime(2026, 5, 1, tzinfo=UTC)


def _observations(path: Path, values: np.ndarray, colours: list[str | None]) -> None:
    n = len(values)
    pq.write_table(pa.table({
        "id": [f"r{i}" for i in range(n)],
        "ts": pa.array([START + timedelta(minutes=i) for i in range(n)],
                       type=pa.timestamp("us")),
        "x": pa.array(values, mask=np.isnan(values)),
        "colour": colours,
    }), path)


def test_sql_binning_equals_numpy_binning(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(10, 2, 20_000)
    grid = numeric_grid(reference)
    small = numeric_grid(np.round(rng.normal(0, 1, 300), 1))
    assert grid.kind == "quantile" and small.kind == "exact"
    edges = grid.lattice_low + np.array(grid.cuts[:50]) * grid.cell_width
    values = np.concatenate([
        rng.normal(10, 3, 3000), edges, [grid.lattice_low, grid.lattice_high, grid.low,
                                         grid.high, -1e12, 1e12, 1e-9, np.nan, np.nan],
        np.array(small.values[:20]), np.nextafter(np.array(small.values[:20]), -np.inf)])
    colours = rng.choice(np.array(["red", "blue", "teal", None], dtype=object),
                         len(values)).tolist()
    _observations(tmp_path / "obs.parquet", values, colours)
    contract = DataContract(id_column="id", timestamp_column="ts", numeric=("x",),
                            categorical=("colour",), window="1h")
    profile = build_profile("s", {"colour": ["red", "blue"]}, (), ("colour",)).features["colour"]
    plan = counts_sql.CountPlan(numeric={"q": ("x", grid), "e": ("x", small)},
                                categories={"colour": profile.categories})
    counts = counts_sql.window_counts([tmp_path / "obs.parquet"], contract, parse_window("1h"),
                                      plan)
    hours = np.arange(len(values)) // 60
    for key, g in (("q", grid), ("e", small)):
        codes = g.assign_codes(values)
        expected = np.zeros((hours.max() + 1, len(g.bin_starts()) + 1))
        lookup = g.bin_of_code()
        np.add.at(expected, (hours, lookup[codes]), 1)
        subs = counts.first_sub + np.arange(counts.subs)
        by_window = np.zeros_like(expected)
        np.add.at(by_window, subs // 4 - counts.first_sub // 4, counts.numeric[key])
        assert np.array_equal(by_window, expected), key
    expected_colours = np.bincount(category_codes(profile, colours), minlength=4)
    assert counts.categorical["colour"].sum(axis=0).tolist() == expected_colours.tolist()
    assert counts.rows.sum() == len(values)


def test_profiles_round_trip_through_json() -> None:
    rng = np.random.default_rng(1)
    profile = build_profile("abc", {"x": rng.normal(size=5000), "k": ["a", "b", None] * 10,
                                    "z": np.full(50, 3.0)}, ("x", "z"), ("k",), regime="r1")
    again = Profile.from_dict(json.loads(json.dumps(profile.to_dict())))
    assert again == profile
    assert again.features["z"].constant and not again.features["x"].constant


def test_registration_profiles_the_training_snapshot(workspace, tmp_path: Path) -> None:
    from conftest import register_real_version

    text = workspace.config_path.read_text().replace("numeric = []", 'numeric = ["x"]')
    workspace.config_path.write_text(text)
    from mlops_tui.services.workspace import open_workspace

    ws = open_workspace(workspace.root)
    table = pa.table({"x": np.arange(2000, dtype=float)})
    version = register_real_version(ws, train=snapshot_of(ws, table, "a"))
    with ws.store.read() as tx:
        stored = drift_sql.get_profiles(tx, [version.train_snapshot])
    profile = stored[version.train_snapshot]
    assert profile.rows == 2000 and profile.features["x"].test == "wasserstein"
    missing = register_real_version(ws, seed=1, with_data=True)  # snapshot rows, no file
    with ws.store.read() as tx:
        assert drift_sql.get_profiles(tx, [missing.train_snapshot]) == {}
    assert ensure_profiles(ws) == 0  # nothing readable left to profile


def test_migration_from_schema_3_adds_the_drift_tables(tmp_path: Path, monkeypatch) -> None:
    from mlops_tui.store import db as store_db

    monkeypatch.setattr(store_db, "MIGRATIONS", {k: v for k, v in MIGRATIONS.items() if k <= 3})
    monkeypatch.setattr(store_db, "CURRENT_SCHEMA", 3)
    store = Store(tmp_path / "store.duckdb")
    store.create()
    with store.write("seed") as tx:
        tx.execute("INSERT INTO drift_results VALUES ('old', NULL, ?, ?, 'f', 'ks', 0.1, 0.05, "
                   "'ok', '', ?)", [datetime(2026, 1, 1), datetime(2026, 1, 2), datetime(2026, 1, 2)])
    monkeypatch.undo()
    assert store.migrate() == (3, CURRENT_SCHEMA)
    with store.read() as tx:
        assert tx.scalar("SELECT count(*) FROM drift_results WHERE p_value IS NULL") == 1
        for table in ("drift_runs", "drift_windows", "label_files"):
            assert tx.scalar(f"SELECT count(*) FROM {table}") == 0
    with store.write("drift") as tx:
        drift_sql.insert_run(tx, "r1", {"window": "1h"},
                             [(datetime(2026, 1, 1), datetime(2026, 1, 1, 1), 10, "a", "column",
                               0.2, False, "", 1, "deployed", "snap", 0.0, "ok", 1, "r2", 0.9,
                               10)],
                             [("a", datetime(2026, 1, 1), datetime(2026, 1, 1, 1), "x", "ks", 0.1,
                               0.05, "ok", "", 0.7, 10, "snap")])
    with store.read() as tx:
        assert drift_sql.latest_run(tx)[0] == "r1"
        assert drift_sql.run_features(tx, "r1")[0][11] == pytest.approx(0.7)

"""The sample scenario: deterministic data, consistent ground truth, real regimes and drift."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import tomllib
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops_tui import sample
from mlops_tui.sample import generator

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DATA = REPO / "sample_data"
PIPELINE_DIR = REPO / "mlops_tui" / "sample" / "pipeline"
WINDOW = timedelta(hours=6)


def _when(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _sha256(text: str | bytes) -> str:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def generated() -> tuple[pa.Table, dict, str]:
    table, truth = generator.generate()
    return table, truth, generator.csv_text()


@pytest.fixture(scope="module")
def frame(generated: tuple[pa.Table, dict, str]) -> pd.DataFrame:
    return generated[0].to_pandas()


@pytest.fixture(scope="module")
def train_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "sample_pipeline_train", PIPELINE_DIR / "train.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _params(truth: dict) -> dict:
    return {
        "features_numeric": truth["features_numeric"],
        "features_categorical": truth["features_categorical"],
        "label": truth["label"],
    }


def _stretches(frame: pd.DataFrame, truth: dict) -> list[tuple[str, pd.DataFrame]]:
    out = []
    for period in truth["periods"]:
        rows = (frame["ts"] >= pd.Timestamp(period["start"])) & (
            frame["ts"] < pd.Timestamp(period["end"])
        )
        out.append((period["regime"], frame[rows]))
    return out


# --- determinism and committed copies -------------------------------------------------------


def test_generation_is_deterministic(generated: tuple[pa.Table, dict, str]) -> None:
    table, truth, text = generated
    table2, truth2 = generator.generate(7)
    assert table.equals(table2)
    assert truth == truth2
    assert _sha256(generator.csv_text(7)) == _sha256(text)


def test_other_seed_changes_values_not_timeline(generated: tuple[pa.Table, dict, str]) -> None:
    table, truth, _ = generated
    other, other_truth = generator.generate(8)
    assert not other.column("oven_temp_c").equals(table.column("oven_temp_c"))
    assert other.column("car_model").equals(table.column("car_model"))
    assert {**other_truth, "seed": 7} == truth


def test_committed_files_match_fresh_generation(generated: tuple[pa.Table, dict, str]) -> None:
    table, truth, text = generated
    committed_csv = (SAMPLE_DATA / "observations.csv").read_bytes()
    assert _sha256(committed_csv) == _sha256(text)
    assert pq.read_table(SAMPLE_DATA / "observations.parquet").equals(table)
    truth_text = (SAMPLE_DATA / "ground_truth.json").read_text("utf-8")
    assert truth_text == generator.ground_truth_json(truth)
    assert (SAMPLE_DATA / "README.md").is_file()


def test_packaged_copy_matches_fresh_generation(generated: tuple[pa.Table, dict, str]) -> None:
    table, truth, _ = generated
    assert pq.read_table(sample.packaged_observations_path()).equals(table)
    assert sample.packaged_ground_truth() == truth
    pipeline = sample.packaged_pipeline_dir()
    assert {"train.py", "requirements.txt", "params.toml"} <= {p.name for p in pipeline.iterdir()}


def test_write_and_cli_produce_identical_files(tmp_path: Path) -> None:
    first = generator.write(tmp_path / "a")
    assert set(first) == {"csv", "parquet", "ground_truth"}
    assert generator.main(["--out", str(tmp_path / "b"), "--seed", "7"]) == 0
    for name in ("observations.csv", "ground_truth.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        assert (tmp_path / "a" / name).read_bytes() == (SAMPLE_DATA / name).read_bytes()
    only = generator.write(tmp_path / "c", include_csv=False)
    assert set(only) == {"parquet", "ground_truth"}
    assert not (tmp_path / "c" / "observations.csv").exists()


def test_csv_parses_back_to_the_table(generated: tuple[pa.Table, dict, str]) -> None:
    import pyarrow.csv as pacsv

    table, _, _ = generated
    parsed = pacsv.read_csv(
        SAMPLE_DATA / "observations.csv",
        convert_options=pacsv.ConvertOptions(
            column_types={"ts": pa.timestamp("us", tz="UTC"), "obs_id": pa.string()}
        ),
    )
    assert parsed.equals(table)


# --- shape of the data ----------------------------------------------------------------------


def test_columns_and_basic_shape(generated: tuple[pa.Table, dict, str]) -> None:
    table, truth, _ = generated
    assert table.column_names == list(generator.COLUMNS)
    assert table.num_rows == truth["rows"] == 35 * 24 * 60
    ids = table.column("obs_id").to_pylist()
    assert ids[0] == "obs-0000001" and len(set(ids)) == len(ids)
    ts = table.column("ts").to_numpy()
    assert (np.diff(ts) > np.timedelta64(0, "us")).all()
    assert str(table.schema.field("ts").type) == "timestamp[us, tz=UTC]"
    missing = table.column("humidity_pct").null_count / table.num_rows
    assert 0 < missing <= 0.02
    for name in truth["features_numeric"]:
        if name != "humidity_pct":
            assert table.column(name).null_count == 0
    assert set(table.column("shift").to_pylist()) == {"day", "late", "night"}
    assert set(table.column("supplier").to_pylist()) == {"acme", "borealis", "cobalt"}


def test_shift_follows_hour_of_day(frame: pd.DataFrame) -> None:
    hour = frame["ts"].dt.hour
    expected = np.where(
        (hour >= 6) & (hour < 14), "day", np.where(hour.between(14, 21), "late", "night")
    )
    assert (frame["shift"].to_numpy() == expected).all()


# --- ground truth consistency ---------------------------------------------------------------


def test_periods_cover_rows_and_match_regime_column(
    frame: pd.DataFrame, generated: tuple[pa.Table, dict, str]
) -> None:
    truth = generated[1]
    periods = truth["periods"]
    assert [p["regime"] for p in periods] == ["sedan", "suv", "sedan", "pickup", "sedan"]
    assert periods[0]["start"] == truth["start"] == "2026-01-05T00:00:00Z"
    assert periods[-1]["end"] == truth["end"]
    for before, after in pairwise(periods):
        assert before["end"] == after["start"]
    lengths = {_when(p["end"]) - _when(p["start"]) for p in periods}
    assert len(lengths) == len(periods)
    covered = 0
    for regime, rows in _stretches(frame, truth):
        assert len(rows) > 0 and (rows["car_model"] == regime).all()
        covered += len(rows)
    assert covered == len(frame)


def test_changes_point_at_the_right_windows(generated: tuple[pa.Table, dict, str]) -> None:
    truth = generated[1]
    start = _when(truth["start"])
    assert truth["window"] == "6h"
    kinds = [c["kind"] for c in truth["changes"]]
    assert kinds.count("regime-switch") == 4 and kinds.count("drift-start") == 1
    assert [c["at"] for c in truth["changes"]] == sorted(c["at"] for c in truth["changes"])
    windows = truth["windows"]
    for change in truth["changes"]:
        at = _when(change["at"])
        first, detect = change["first_window"], change["detectable_by_window"]
        for ref in (first, detect):
            assert _when(ref["start"]) == start + ref["index"] * WINDOW
        assert _when(first["start"]) <= at < _when(first["start"]) + WINDOW
        assert detect["index"] >= first["index"]
        if change["kind"] == "regime-switch":
            assert detect["index"] == first["index"] + 1
            assert windows[first["index"]]["mixed"]
            assert windows[detect["index"]]["regime"] == change["to_regime"]
            assert not windows[detect["index"]]["mixed"]
        else:
            assert change["feature"] == "oven_temp_c"
            assert windows[detect["index"]]["drift_shift_std"] >= 1.0
            assert windows[detect["index"] - 1]["drift_shift_std"] < 1.0


def test_windows_complete_and_mixed_flags_match_data(
    frame: pd.DataFrame, generated: tuple[pa.Table, dict, str]
) -> None:
    truth = generated[1]
    start = pd.Timestamp(truth["start"])
    index = ((frame["ts"] - start) // pd.Timedelta(hours=6)).to_numpy()
    n_windows = int(index.max()) + 1
    windows = truth["windows"]
    assert [w["index"] for w in windows] == list(range(n_windows))
    counts = frame.groupby([index, frame["car_model"]]).size().unstack(fill_value=0)
    for window in windows:
        row = counts.loc[window["index"]]
        assert window["mixed"] == bool((row > 0).sum() > 1)
        assert window["regime"] == row.idxmax()
        assert window["rows"] == int(row.sum())
        assert pd.Timestamp(window["start"]) == start + window["index"] * pd.Timedelta(hours=6)
    assert sum(w["mixed"] for w in windows) == 4


# --- regimes and drift ----------------------------------------------------------------------


def test_regime_feature_distributions_differ(frame: pd.DataFrame) -> None:
    numeric = list(generator.FEATURES_NUMERIC)
    stable = frame[frame["ts"] < pd.Timestamp(generator.DRIFT_START)]
    stats = stable.groupby("car_model")[numeric].agg(["mean", "var"])
    regimes = list(generator.REGIMES)
    for i, a in enumerate(regimes):
        for b in regimes[i + 1 :]:
            separated = 0
            for feature in numeric:
                pooled = np.sqrt(
                    (stats.loc[a, (feature, "var")] + stats.loc[b, (feature, "var")]) / 2
                )
                gap = abs(stats.loc[a, (feature, "mean")] - stats.loc[b, (feature, "mean")])
                separated += gap > pooled
            assert separated >= 2, (a, b)


@pytest.mark.parametrize("regime_index", [0, 1, 3])
def test_model_fits_its_regime_and_fails_on_others(
    frame: pd.DataFrame,
    generated: tuple[pa.Table, dict, str],
    train_module: ModuleType,
    regime_index: int,
) -> None:
    from sklearn.metrics import r2_score

    truth = generated[1]
    params = _params(truth)
    stretches = _stretches(frame, truth)
    regime, rows = stretches[regime_index]
    cut = int(len(rows) * 0.7)
    model = train_module.train(rows.iloc[:cut], params)
    held_out = rows.iloc[cut:]
    own = r2_score(held_out[truth["label"]], train_module.predict(model, held_out))
    assert own >= 0.8, (regime, own)
    others = {name: part for name, part in stretches[:4] if name != regime}
    for name, part in others.items():
        other = r2_score(part[truth["label"]], train_module.predict(model, part))
        assert other <= own - 0.3, (regime, name, own, other)


def test_drift_in_last_sedan_stretch(
    frame: pd.DataFrame, generated: tuple[pa.Table, dict, str]
) -> None:
    truth = generated[1]
    stretches = _stretches(frame, truth)
    first_sedan, last_sedan = stretches[0][1], stretches[-1][1]
    feature = truth["drift"]["feature"]
    reference_mean = first_sedan[feature].mean()
    reference_std = first_sedan[feature].std()
    last_window = last_sedan[last_sedan["ts"] >= last_sedan["ts"].max().floor("6h")]
    assert len(last_window) == 360
    assert last_window[feature].mean() >= reference_mean + 1.5 * reference_std
    before_drift = last_sedan[last_sedan["ts"] < pd.Timestamp(truth["drift"]["start"])]
    assert abs(before_drift[feature].mean() - reference_mean) < 0.2 * reference_std
    detect = next(c for c in truth["changes"] if c["kind"] == "drift-start")
    window = frame[
        (frame["ts"] >= pd.Timestamp(detect["detectable_by_window"]["start"]))
        & (frame["ts"] < pd.Timestamp(detect["detectable_by_window"]["start"]) + WINDOW)
    ]
    assert window[feature].mean() - reference_mean >= 0.8 * reference_std
    # the drift is in the sensor reading only: other features stay put
    assert (
        abs(last_window["torque_nm"].mean() - first_sedan["torque_nm"].mean())
        < 0.2 * first_sedan["torque_nm"].std()
    )


# --- the default pipeline -------------------------------------------------------------------


def test_pipeline_imports_only_portable_modules() -> None:
    tree = ast.parse((PIPELINE_DIR / "train.py").read_text("utf-8"))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            roots.add((node.module or "").split(".")[0])
    assert roots <= {"__future__", "typing", "numpy", "pandas", "sklearn"}, roots


def test_params_toml_matches_defaults(train_module: ModuleType) -> None:
    params = tomllib.loads((PIPELINE_DIR / "params.toml").read_text("utf-8"))
    assert params == train_module.DEFAULTS


def test_requirements_pin_exact_versions() -> None:
    lines = (PIPELINE_DIR / "requirements.txt").read_text("utf-8").split()
    pins = dict(line.split("==") for line in lines)
    # pyarrow: the harness reads the Parquet snapshots with pandas
    assert set(pins) == {"scikit-learn", "numpy", "scipy", "pandas", "skops", "pyarrow"}
    assert all(version and version[0].isdigit() for version in pins.values())


def test_pipeline_estimator_round_trips_through_skops(
    frame: pd.DataFrame, generated: tuple[pa.Table, dict, str], train_module: ModuleType
) -> None:
    import skops.io as sio
    from sklearn.pipeline import Pipeline

    truth = generated[1]
    rows = frame.iloc[:5000]
    model = train_module.train(rows, _params(truth))
    assert isinstance(model, Pipeline)
    data = sio.dumps(model)
    untrusted = sio.get_untrusted_types(data=data)
    assert set(untrusted) <= {"numpy.dtype"}
    loaded = sio.loads(data, trusted=untrusted)
    np.testing.assert_array_equal(
        train_module.predict(loaded, rows), train_module.predict(model, rows)
    )
    with_nan = rows.assign(supplier="unknown-supplier", humidity_pct=np.nan)
    assert np.isfinite(train_module.predict(model, with_nan)).all()


def test_pipeline_rejects_missing_params(frame: pd.DataFrame, train_module: ModuleType) -> None:
    with pytest.raises(KeyError):
        train_module.train(frame.iloc[:100], {"label": "paint_adhesion_mpa"})


def test_ground_truth_json_is_stable_text() -> None:
    text = (SAMPLE_DATA / "ground_truth.json").read_text("utf-8")
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"

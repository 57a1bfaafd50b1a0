"""`predict`: the active version or each row's regime champion, loaded through the verified
path, streamed in batches, with the version used written beside every prediction.

The models are the sample pipeline fitted for real on slices of the sample scenario.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from conftest import register_real_version, run_cli

from mlops_tui.core.errors import ConflictError, IntegrityError, NotFoundError, UsageError
from mlops_tui.services.deployment_reads import audit_log
from mlops_tui.services.deployments import deploy
from mlops_tui.services.predict import predict_file
from mlops_tui.services.workspace import init_workspace, open_workspace
from mlops_tui.store import registry as registry_sql

REGIMES = ("sedan", "suv", "pickup")


def sample_pipeline():
    from mlops_tui.sample import packaged_pipeline_dir

    spec = importlib.util.spec_from_file_location(
        "sample_train_for_tests", packaged_pipeline_dir() / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sample_table() -> pa.Table:
    from mlops_tui.sample import packaged_observations_path

    return pq.read_table(packaged_observations_path())


@pytest.fixture(scope="module")
def scored_ws(tmp_path_factory):
    """The sample contract; v1..v3 = one fitted model per regime (champions); production
    serves v2 (suv)."""
    from mlops_tui.services.demo import sample_config_text

    root = tmp_path_factory.mktemp("predict") / "ws"
    ws = init_workspace(root, config_text=sample_config_text())
    pipeline = sample_pipeline()
    contract = ws.config.data
    params = {"features_numeric": list(contract.numeric),
              "features_categorical": list(contract.categorical), "label": contract.label_column}
    frame = sample_table().to_pandas()
    for seed, regime in enumerate(REGIMES, 1):
        rows = frame[frame[contract.regime_column] == regime].iloc[::20]
        register_real_version(ws, regime=regime, seed=seed,
                              estimator=pipeline.train(rows, params))
        deploy(ws, f"v{seed}", champion_of=regime)
    deploy(ws, "v2", reason="the line runs suv")
    return ws


@pytest.fixture
def ws(scored_ws, tmp_path):
    """A private copy, so a test may write (audit rows, tampered files)."""
    copy = tmp_path / "copy"
    shutil.copytree(scored_ws.root, copy, symlinks=True)
    return open_workspace(copy)


def estimator(workspace, number: int):
    from mlops_tui.services.registry import load_estimator

    with workspace.store.read() as tx:
        version = registry_sql.get_version(tx, number)
        env = registry_sql.get_env(tx, version.env_hash)
    return load_estimator(workspace, version, env)


def write_input(path: Path, rows: int = 1000, start: int = 0) -> pa.Table:
    table = sample_table().slice(start, rows)
    if path.suffix == ".csv":
        pacsv.write_csv(table, path)
    else:
        pq.write_table(table, path)
    return table


def test_predict_scores_with_the_active_version_in_batches(ws, tmp_path):
    source = tmp_path / "in.parquet"
    table = write_input(source, rows=1000, start=20000)
    seen = []
    result = predict_file(ws, source, batch_rows=128, progress=seen.append)
    assert seen == [min(128 * i, 1000) for i in range(1, 9)]  # streamed: 8 batches
    assert result.rows == 1000 and result.rows_by_version == {"v2": 1000}
    assert result.output == str(tmp_path / "in.predictions.parquet")
    out = pq.read_table(result.output)
    assert out.column_names == ["obs_id", "prediction", "version"]
    assert out.column("obs_id").to_pylist() == table.column("obs_id").to_pylist()
    assert set(out.column("version").to_pylist()) == {"v2"}
    frame = table.to_pandas()
    expected = estimator(ws, 2).predict(frame[list(ws.config.data.features)])
    np.testing.assert_allclose(out.column("prediction").to_numpy(), expected, rtol=1e-12)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_by_regime_routes_each_row_to_its_champion(ws, tmp_path):
    table = sample_table()
    picks = [0, 15000, 30000, 40000, 1, 15001]  # sedan, suv, sedan, pickup, ...
    chosen = table.take(picks).to_pandas()
    chosen.loc[4, "car_model"] = "van"  # a regime without a champion
    chosen.loc[5, "car_model"] = None
    source = tmp_path / "mixed.parquet"
    pq.write_table(pa.Table.from_pandas(chosen, preserve_index=False), source)
    result = predict_file(ws, source, out=tmp_path / "routed.parquet", by_regime=True,
                          batch_rows=4)
    out = pq.read_table(result.output).to_pandas()
    regimes = [None if pd.isna(r) else r for r in chosen["car_model"]]
    assert [None if pd.isna(r) else r for r in out["car_model"]] == regimes
    number = {"sedan": 1, "suv": 2, "pickup": 3}
    for index, regime in enumerate(regimes):
        if regime in number:
            assert out.loc[index, "version"] == f"v{number[regime]}"
            expected = estimator(ws, number[regime]).predict(
                chosen.iloc[[index]][list(ws.config.data.features)])[0]
            assert out.loc[index, "prediction"] == pytest.approx(expected, rel=1e-12)
        else:
            assert pd.isna(out.loc[index, "version"]) and np.isnan(out.loc[index, "prediction"])
    assert result.unrouted == {"van": 1, "": 1}
    assert sum(result.rows_by_version.values()) == 4


def test_predict_cli_reads_and_writes_csv(ws, tmp_path):
    source = tmp_path / "in.csv"
    write_input(source, rows=300, start=100)
    code, out, err = run_cli("predict", str(source), "--out", str(tmp_path / "out.csv"),
                             "--json", workspace=ws)
    assert code == 0, err
    document = json.loads(out)
    assert document["rows"] == 300 and document["rows_by_version"] == {"v2": 300}
    written = pacsv.read_csv(tmp_path / "out.csv")
    assert written.column_names == ["obs_id", "prediction", "version"]
    assert written.num_rows == 300


def test_bad_input_writes_nothing(ws, tmp_path):
    source = tmp_path / "in.parquet"
    write_input(source, rows=50)
    broken = sample_table().slice(0, 50).drop_columns(["oven_temp_c", "shift"])
    pq.write_table(broken, tmp_path / "missing.parquet")
    (tmp_path / "in.json").write_text("{}")
    bad_value = sample_table().slice(0, 5).to_pandas()
    bad_value["oven_temp_c"] = bad_value["oven_temp_c"].astype(str)
    bad_value.loc[3, "oven_temp_c"] = "hot"
    pacsv.write_csv(pa.Table.from_pandas(bad_value, preserve_index=False),
                    tmp_path / "badvalue.csv")
    before = sorted(p.name for p in tmp_path.iterdir())

    cases = [
        (tmp_path / "missing.parquet", {}, "missing column(s) oven_temp_c, shift"),
        (tmp_path / "nope.parquet", {}, "no such file"),
        (tmp_path, {}, "is a directory"),
        (tmp_path / "in.json", {}, "must be .csv or .parquet"),
        (source, {"out": tmp_path / "out.txt"}, "--out must be .csv or .parquet"),
        (source, {"out": source}, "would overwrite the input"),
        (tmp_path / "badvalue.csv", {}, "badvalue.csv"),
        (source, {"target": "../x"}, "invalid target"),
        (source, {"by_regime": True, "target": "production"}, "takes no --target"),
    ]
    for path, options, message in cases:
        with pytest.raises(UsageError) as raised:
            predict_file(ws, path, **options)
        assert message in raised.value.message, (path, raised.value.message)
    with pytest.raises(NotFoundError, match="unknown target 'prodution'.*production"):
        predict_file(ws, source, target="prodution")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no output, no temp file

    code, out, err = run_cli("predict", str(tmp_path / "missing.parquet"), workspace=ws)
    assert code == 2 and out == "" and err.startswith("error: ") and "oven_temp_c" in err


def test_by_regime_needs_a_regime_column(workspace, tmp_path):
    register_real_version(workspace, seed=1)
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"x": [1.0]}), source)
    with pytest.raises(ConflictError, match="target production serves no version yet"):
        predict_file(workspace, source)
    deploy(workspace, "v1", champion_of="a")
    with pytest.raises(UsageError, match="regime_column is not set"):
        predict_file(workspace, source, by_regime=True)


def test_a_tampered_artifact_is_refused_with_one_audit_row(ws, tmp_path):
    source = tmp_path / "in.parquet"
    write_input(source, rows=20)
    with ws.store.read() as tx:
        blob = ws.root / registry_sql.get_version(tx, 2).artifact.path
        audit_rows = registry_sql.counts(tx)["audit"]
    os.chmod(blob, 0o644)
    blob.write_bytes(blob.read_bytes() + b"\0")
    code, out, err = run_cli("predict", str(source), "--json", workspace=ws)
    assert code == 5, err
    assert json.loads(out)["error"]["kind"] == "integrity"
    assert "does not match the recorded" in err
    assert not (tmp_path / "in.predictions.parquet").exists()
    with ws.store.read() as tx:
        assert registry_sql.counts(tx)["audit"] == audit_rows + 1
    refusal = audit_log(ws, limit=1)[0]
    assert (refusal.action, refusal.subject) == ("predict-refused", "v2")
    with pytest.raises(IntegrityError):
        predict_file(ws, source, by_regime=True)  # v2 is also suv's champion


def test_predict_follows_a_rollback(ws, tmp_path):
    from mlops_tui.services.deployments import rollback

    source = tmp_path / "in.parquet"
    write_input(source, rows=10)
    deploy(ws, "v3", reason="pickup now")
    assert predict_file(ws, source).rows_by_version == {"v3": 10}
    rollback(ws, reason="pickup model misbehaves")
    assert predict_file(ws, source).rows_by_version == {"v2": 10}

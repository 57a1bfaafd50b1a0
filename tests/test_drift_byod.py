"""Bring your own data: a differently named data set with small references (KS, chi-square,
z-test end to end through the store), late labels, the serving version's metric per window,
and row-count windows."""

from __future__ import annotations

import importlib.util
import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from conftest import run_cli
from drift_helpers import BYOD_CONFIG, byod_table, champion, next_hour
from scipy import stats

from mlops_tui.core.errors import UsageError
from mlops_tui.core.models import DeploymentKind
from mlops_tui.sample import packaged_pipeline_dir
from mlops_tui.services.deployments import record_deployment
from mlops_tui.services.drift_compute import compute_drift
from mlops_tui.services.drift_explain import explain
from mlops_tui.services.drift_metrics import window_metric_values
from mlops_tui.services.ingest import ingest_file, ingest_labels
from mlops_tui.services.workspace import init_workspace

NUMERIC = ("pressure_bar", "flow_lpm", "temp_k")
CATEGORICAL = ("line", "valve")
SCHEDULE = [("alpha", 4), ("beta", 3), ("alpha", 5)]


def _fit(table: pa.Table):
    spec = importlib.util.spec_from_file_location("byod_train", packaged_pipeline_dir() / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.train(table.to_pandas(), {"features_numeric": list(NUMERIC),
                                            "features_categorical": list(CATEGORICAL),
                                            "label": "yield_pct"})


@pytest.fixture(scope="module")
def bottling(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("byod")
    workspace = init_workspace(root / "ws", config_text=BYOD_CONFIG)
    start = next_hour(2)  # after the deployment recorded below
    references = {recipe: byod_table(start - timedelta(days=3), [(recipe, hours)], seed=seed)
                  for recipe, hours, seed in (("alpha", 6, 1), ("beta", 5, 2))}
    versions = {recipe: champion(workspace, recipe, table, estimator=_fit(table))
                for recipe, table in references.items()}
    record_deployment(workspace, kind=DeploymentKind.ACTIVE, subject="production",
                      version_id=versions["alpha"].id, action="deploy", reason="test")
    observed = byod_table(start, SCHEDULE, seed=3, pressure_drift_from=7, first_id=100_000)
    without_labels = observed.drop_columns(["yield_pct"])
    pacsv.write_csv(without_labels, root / "line.csv")
    ingest_file(workspace, root / "line.csv")
    labelled = observed.select(["row_key", "yield_pct"]).take(np.arange(0, observed.num_rows, 2))
    pq.write_table(labelled, root / "lab.parquet")
    return workspace, references, versions, observed, root


def test_tests_follow_the_reference_size_and_dtype(bottling) -> None:
    workspace, references, _, _, _ = bottling
    report = compute_drift(workspace, with_metrics=False)
    assert report.features == NUMERIC + CATEGORICAL
    assert len(report.windows) == sum(hours for _, hours in SCHEDULE)
    tests = {name: f.test for name, f in report.windows[0].features.items()}
    assert tests == {"pressure_bar": "ks", "flow_lpm": "ks", "temp_k": "ks", "line": "chi2",
                     "valve": "z"}
    regimes = [w.regime.regime for w in report.windows]
    assert regimes == [r for r, hours in SCHEDULE for _ in range(hours)]
    assert {w.reference.basis for w in report.windows} == {"deployed"}


def test_small_reference_statistics_match_scipy_on_raw_values(bottling) -> None:
    workspace, references, _, observed, _ = bottling
    report = compute_drift(workspace, with_metrics=False)
    reference = references["alpha"].to_pandas()
    frame = observed.to_pandas()
    hour = (frame["event_time"] - frame["event_time"].min()).dt.total_seconds() // 3600
    for index in (0, 5, 10):
        window = frame[hour == index]
        result = report.windows[index].features
        for name in NUMERIC:
            expected = stats.ks_2samp(reference[name], window[name])
            assert result[name].statistic == pytest.approx(expected.statistic, abs=1e-12)
        table = np.array([[(reference["line"] == c).sum() for c in ("l1", "l2", "l3")],
                          [(window["line"] == c).sum() for c in ("l1", "l2", "l3")]])
        expected = stats.chi2_contingency(table, correction=False)
        assert result["line"].p_value == pytest.approx(expected.pvalue, rel=1e-9)


def test_drift_where_the_data_changed(bottling) -> None:
    workspace, *_ = bottling
    report = compute_drift(workspace, with_metrics=False)
    verdicts = [w.verdict for w in report.windows]
    assert verdicts[:4] == ["ok"] * 4  # alpha served by alpha's model
    assert verdicts[4:7] == ["drift"] * 3  # beta data reaching alpha's model
    pressure = [w.features["pressure_bar"].verdict for w in report.windows]
    assert pressure[-1] == "drift"  # (p < 0.05 may also fire by chance elsewhere)
    assert report.windows[-1].features["pressure_bar"].p_value < 1e-3


def test_late_labels_give_the_serving_version_metric_per_window(bottling) -> None:
    workspace, _, versions, observed, root = bottling
    assert all(w.metric is None for w in compute_drift(workspace).windows)
    first = ingest_labels(workspace, root / "lab.parquet")
    assert first.new and first.rows == first.matched == observed.num_rows // 2
    again = ingest_labels(workspace, root / "lab.parquet")
    assert not again.new and "already" in again.message
    report = compute_drift(workspace)
    from mlops_tui.services.drift_metrics import _estimator

    model = _estimator(workspace, versions["alpha"].number)
    frame = observed.to_pandas()
    labelled = frame.iloc[::2]
    hour = ((labelled["event_time"] - frame["event_time"].min()).dt.total_seconds()
            // 3600).astype(int)
    from sklearn.metrics import r2_score

    for index in (0, 5, 11):
        rows = labelled[hour == index]
        expected = r2_score(rows["yield_pct"], model.predict(rows[list(NUMERIC + CATEGORICAL)]))
        metric = report.windows[index].metric
        assert metric.version == versions["alpha"].number and metric.metric == "r2"
        assert metric.rows == len(rows)
        assert metric.value == pytest.approx(expected, rel=1e-9)


def test_window_metric_values_by_hand() -> None:
    truth = np.array([1.0, 2.0, 3.0, 1.0, 1.0, 0.0])
    predicted = np.array([1.0, 2.0, 4.0, 0.0, 1.0, 1.0])
    windows = np.array([0, 0, 0, 1, 1, 1])
    versions = np.array([3, 3, 4, 5, 5, 5])
    mae = window_metric_values("mae", truth, predicted, windows, versions, 2)
    assert mae[0].value == pytest.approx(1 / 3) and mae[0].version == 3
    assert mae[1].value == pytest.approx(2 / 3) and mae[1].rows == 3
    accuracy = window_metric_values("accuracy", truth, predicted, windows, versions, 2)
    assert accuracy[0].value == pytest.approx(2 / 3)
    f1 = window_metric_values("f1", truth, predicted, windows, versions, 2)
    from sklearn.metrics import f1_score

    assert f1[1].value == pytest.approx(f1_score(truth[3:], predicted[3:], average="macro"))
    constant = window_metric_values("r2", np.ones(3), np.ones(3), np.zeros(3, dtype=int),
                                    np.ones(3, dtype=int), 1)
    assert constant[0].value is None and "constant" in constant[0].note


def test_label_files_are_validated(bottling, tmp_path: Path) -> None:
    workspace, *_ = bottling
    bad = tmp_path / "bad.csv"
    bad.write_text("row_key,yield_pct\nk100000,1.5\nk100001,lots\n")
    with pytest.raises(UsageError, match=r"bad.csv: line 3, column yield_pct: 'lots' is not"):
        ingest_labels(workspace, bad)
    twice = tmp_path / "twice.csv"
    twice.write_text("row_key,yield_pct\nk1,1.0\nk1,2.0\n")
    with pytest.raises(UsageError, match=r"1 duplicate ids, e.g. 'k1' at line 2, line 3"):
        ingest_labels(workspace, twice)
    extra = tmp_path / "extra.csv"
    extra.write_text("row_key,yield_pct,note\nk1,1.0,x\n")
    code, out, err = run_cli("labels", "ingest", str(extra), "--json", workspace=workspace)
    assert code == 2 and json.loads(out)["error"]["code"] == 2
    assert "unexpected [note]" in err
    with workspace.store.read() as tx:
        assert tx.scalar("SELECT count(*) FROM label_files") <= 1


def test_row_count_windows(tmp_path: Path) -> None:
    text = BYOD_CONFIG.replace('window = "1h"', 'window = "100rows"')
    workspace = init_workspace(tmp_path / "ws", config_text=text)
    start = next_hour(2)
    champion(workspace, "alpha", byod_table(start - timedelta(days=1), [("alpha", 6)], seed=1))
    observed = byod_table(start, [("alpha", 3)], seed=4, rows_per_hour=110)
    pq.write_table(observed, tmp_path / "rows.parquet")
    ingest_file(workspace, tmp_path / "rows.parquet")
    report = compute_drift(workspace, with_metrics=False)
    assert [w.rows for w in report.windows] == [100, 100, 100, 30]
    assert report.windows[1].start == observed.column("event_time")[100].as_py()
    assert report.windows[-1].features["temp_k"].verdict == "ok"
    explanation = explain(workspace, report.windows[1].start, "valve")
    assert explanation.window.rows == 100 and explanation.labels == ("(unseen)", "open",
                                                                      "closed")
    values = observed.column("valve").to_pylist()[100:200]
    assert explanation.current[1] == pytest.approx(values.count("open") / 100)


def test_late_labels_reach_the_training_snapshots(bottling, tmp_path: Path) -> None:
    from mlops_tui.store import exports as export_sql
    from mlops_tui.store import labels as label_sql
    from mlops_tui.store import observations as observation_sql

    workspace, _, _, observed, root = bottling
    ingest_labels(workspace, root / "lab.parquet")  # a no-op when an earlier test did it
    with workspace.store.read() as tx:
        files = [workspace.root / p for p in observation_sql.batch_paths(tx)]
        labels = [workspace.root / p for p in label_sql.label_paths(tx)]
    split = export_sql.export_split(
        files, workspace.config.data, regime="beta", since=None, until=None,
        holdout_share=0.2, train_path=tmp_path / "t.parquet", holdout_path=tmp_path / "h.parquet",
        label_files=labels)
    frame = observed.to_pandas().iloc[::2]
    expected = frame[frame["recipe"] == "beta"].set_index("row_key")["yield_pct"]
    exported = pq.read_table(tmp_path / "t.parquet").to_pandas()
    assert split.train_rows + split.holdout_rows == len(expected)
    assert exported.set_index("row_key")["yield_pct"].to_dict() == {
        k: expected[k] for k in exported["row_key"]}

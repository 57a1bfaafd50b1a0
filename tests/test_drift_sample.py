"""Acceptance on the sample scenario: drift flags where the ground truth says, regimes
recovered with and without the regime column, and on a second generator seed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli
from drift_helpers import build_sample

from mlops_tui.services.drift_compute import compute_drift, record_drift
from mlops_tui.services.drift_explain import explain
from mlops_tui.services.drift_read import latest_drift
from mlops_tui.services.regimes import list_regimes, show_regime

DRIFT_FEATURE = "oven_temp_c"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory):
    workspace, truth = build_sample(tmp_path_factory.mktemp("sample") / "ws")
    return workspace, truth, compute_drift(workspace)


def _by_index(report, truth) -> dict[int, object]:
    """Each window by its index; of a window split at a regime switch, the part of the
    regime the truth gives it (the one holding most rows)."""
    rows = {w["start"]: w for w in truth["windows"]}
    out = {}
    for w in report.windows:
        row = rows[w.start.strftime("%Y-%m-%dT%H:%M:%SZ")]
        if not w.split or w.regime.regime == row["regime"]:
            out[row["index"]] = w
    return out


def test_every_window_of_the_scenario_is_judged(sample) -> None:
    workspace, truth, report = sample
    windows = _by_index(report, truth)
    assert sorted(windows) == [w["index"] for w in truth["windows"]]
    assert all(w.rows == 360 for w in report.windows if not w.split)
    parts: dict[object, list[int]] = {}
    for w in report.windows:
        if w.split:
            parts.setdefault(w.start, []).append(w.rows)
    assert len(parts) == 4 and all(sum(p) == 360 and len(p) == 2 for p in parts.values())
    assert report.features == tuple(f for f in workspace.config.data.features if f != "shift")
    for window in report.windows:
        for result in window.features.values():  # never NaN: a number or a reason
            assert (result.statistic is not None) != (result.verdict == "inconclusive")
            assert result.test in ("wasserstein", "jensenshannon", "ks")


def test_first_flags_fall_between_each_change_and_its_detectable_window(sample) -> None:
    _, truth, report = sample
    windows = _by_index(report, truth)
    changes = truth["changes"]
    for number, change in enumerate(changes):
        first = change["first_window"]["index"]
        detectable = change["detectable_by_window"]["index"]
        stop = changes[number + 1]["first_window"]["index"] if number + 1 < len(changes) \
            else len(windows)
        if change["kind"] == "regime-switch":
            flagged = [i for i in range(first, stop) if windows[i].verdict == "drift"]
        else:  # the sensor drift: its feature, after the preceding switch has settled
            settled = changes[number - 1]["detectable_by_window"]["index"] + 1
            flagged = [i for i in range(settled, stop)
                       if windows[i].features[change["feature"]].verdict == "drift"]
            assert not flagged or flagged[0] >= first, "flagged before the drift started"
        assert flagged, f"{change['kind']} at {change['at']} never flagged"
        assert first <= flagged[0] <= detectable, (change, flagged[:3])


def test_stable_stretches_raise_no_flag(sample) -> None:
    _, truth, report = sample
    windows = _by_index(report, truth)
    switching = set()
    for change in truth["changes"]:
        if change["kind"] == "regime-switch":
            switching |= set(range(change["first_window"]["index"],
                                   change["detectable_by_window"]["index"] + 1))
    drift_start = next(c for c in truth["changes"] if c["kind"] == "drift-start")
    stable = [i for i in windows if i not in switching]
    assert [i for i in stable if windows[i].verdict == "drift"] == []
    before = [i for i in stable if i < drift_start["first_window"]["index"]]
    # The oven feature alone: the 99th percentile over 61 reference chunks lets a stable
    # window past it about once in 60 (window 82 here, 0.1172 vs 0.1170); never two in a row.
    oven = [i for i in before if windows[i].features[DRIFT_FEATURE].verdict == "drift"]
    assert len(oven) <= 1 and all(i + 1 not in oven for i in oven), oven
    # Single-feature verdicts at 360 rows per window are noisy; the reference-derived
    # thresholds keep those isolated alarms rare (and no dataset flag comes of them).
    tests = [(i, f) for i in stable if i < drift_start["first_window"]["index"]
             for f in windows[i].features.values() if f.verdict != "inconclusive"]
    alarms = [t for t in tests if t[1].verdict == "drift"]
    assert len(alarms) / len(tests) < 0.015


def test_regimes_from_the_column_match_the_truth(sample) -> None:
    _, truth, report = sample
    windows = _by_index(report, truth)
    for row in truth["windows"]:
        regime = windows[row["index"]].regime
        assert regime.method == "column"
        if row["mixed"]:  # split: each regime's part judged on its own rows
            assert windows[row["index"]].split and not regime.mixed
            assert regime.regime == row["regime"] and windows[row["index"]].rows > 180
            assert not any(f.verdict == "inconclusive"
                           for f in windows[row["index"]].features.values())
        else:
            assert regime.regime == row["regime"]
            assert regime.distance is not None and regime.distance < 1.0


def test_references_follow_what_auto_deploy_would_serve(sample) -> None:
    _, truth, report = sample
    windows = _by_index(report, truth)
    first_suv = next(c for c in truth["changes"] if c.get("to_regime") == "suv")
    after = windows[first_suv["detectable_by_window"]["index"]]
    assert after.regime.regime == "suv" and after.reference.basis == "auto-deploy"
    settled = windows[first_suv["detectable_by_window"]["index"] + 1]
    assert settled.reference.version != after.reference.version
    assert windows[0].reference.basis == "regime"


@pytest.mark.parametrize("seed", [7, 2])
def test_regimes_are_inferred_without_the_column(tmp_path: Path, seed: int) -> None:
    workspace, truth = build_sample(tmp_path / "ws", seed=seed, regime_column=False)
    report = compute_drift(workspace, with_metrics=False)
    windows = _by_index(report, truth)
    plain = [w for w in truth["windows"] if not w["mixed"]]
    recovered = [w for w in plain if windows[w["index"]].regime.regime == w["regime"]]
    assert all(windows[w["index"]].regime.method == "profile" for w in plain)
    assert len(recovered) / len(plain) >= 0.95
    mixed = [w["index"] for w in truth["windows"] if w["mixed"]]
    assert [i for i, w in windows.items() if w.regime.mixed] == mixed


def test_explain_shows_reference_and_current_shares(sample) -> None:
    workspace, truth, report = sample
    drifted = next(w for w in report.windows if w.features[DRIFT_FEATURE].verdict == "drift"
                   and w.regime.regime == "sedan" and w.reference.basis == "auto-deploy"
                   and w.start.day > 2 and w.start.month == 2)
    explanation = explain(workspace, drifted.start, DRIFT_FEATURE)
    expected = drifted.features[DRIFT_FEATURE]
    assert explanation.result.verdict == expected.verdict == "drift"
    assert explanation.result.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert explanation.window.reference == drifted.reference
    assert sum(explanation.reference) == pytest.approx(1.0)
    assert sum(explanation.current) == pytest.approx(1.0)
    assert len(explanation.labels) <= 25
    supplier = explain(workspace, drifted.start, "supplier")
    assert supplier.labels[0] == "(unseen)" and "acme" in supplier.labels


def test_regimes_list_and_show(sample) -> None:
    workspace, truth, _ = sample
    summaries, other = list_regimes(workspace)
    assert [s.name for s in summaries] == ["pickup", "sedan", "suv"]
    counts = {s.name: s.windows for s in summaries}
    expected = {}
    for row in truth["windows"]:
        if not row["mixed"]:
            expected[row["regime"]] = expected.get(row["regime"], 0) + 1
    assert counts == expected and other["mixed"] == 4
    detail = show_regime(workspace, "suv")
    assert detail.summary.champion and {f.name for f in detail.features} >= {"torque_nm"}


def test_cli_drift_show_explain_and_regimes(sample) -> None:
    workspace, _, _ = sample
    code, out, err = run_cli("drift", "show", "--since", "2026-02-03", "--until",
                             "2026-02-04", "--feature", DRIFT_FEATURE, "--json",
                             workspace=workspace)
    assert code == 0, err
    document = json.loads(out)
    assert len(document["windows"]) == 4 and document["run_id"]
    cell = document["windows"][0]["features"][DRIFT_FEATURE]
    assert set(cell) >= {"test", "statistic", "threshold", "verdict", "effect"}
    assert cell["test"] == "wasserstein"
    code, out, err = run_cli("drift", "show", "--since", "2026-02-03", "--until",
                             "2026-02-03T12:00", workspace=workspace)
    assert code == 0 and "oven_temp_c" in out and "wasserstein" in out
    code, out, err = run_cli("drift", "explain", "2026-02-04T06:00", DRIFT_FEATURE,
                             workspace=workspace)
    assert code == 0 and "reference" in out and "%" in out
    code, out, err = run_cli("drift", "explain", "2026-02-04T06:00", "no_such_feature",
                             "--json", workspace=workspace)
    assert code == 2 and json.loads(out)["error"]["kind"] == "not-found"
    assert "no_such_feature" in err
    code, out, _ = run_cli("regimes", "list", "--json", workspace=workspace)
    assert code == 0 and {r["name"] for r in json.loads(out)["regimes"]} == {
        "sedan", "suv", "pickup"}


def test_record_drift_keeps_the_run(sample) -> None:
    from mlops_tui.store import drift as drift_sql

    workspace, _, report = sample
    run_id = record_drift(workspace, report)
    with workspace.store.read() as tx:
        latest = drift_sql.latest_run(tx)
        windows = drift_sql.run_windows(tx, run_id)
        features = drift_sql.run_features(tx, run_id)
    assert latest[0] == run_id
    assert len(windows) == len(report.windows)
    assert len(features) == len(report.windows) * len(report.features)
    verdicts = {row[8] for row in features}
    assert verdicts <= {"drift", "ok", "inconclusive"}
    again = latest_drift(workspace)
    assert again.run_id == run_id and len(again.windows) == len(report.windows)
    for stored, computed in zip(again.windows, report.windows, strict=True):
        assert stored.start == computed.start and stored.verdict == computed.verdict
        assert stored.regime.label == computed.regime.label
        for name, result in computed.features.items():
            assert stored.features[name].verdict == result.verdict
            assert stored.features[name].statistic == result.statistic


def test_batch_counts_are_kept_and_reused(sample) -> None:
    workspace, _, report = sample
    kept = sorted((workspace.data_root / "counts").glob("*.npz"))
    assert len(kept) == 1  # one batch, one window size
    stamp = kept[0].stat().st_mtime_ns
    again = compute_drift(workspace, with_metrics=False)
    assert kept[0].stat().st_mtime_ns == stamp  # read, not rewritten
    assert [w.drift_share for w in again.windows] == [w.drift_share for w in report.windows]
    kept[0].write_bytes(b"damaged")  # a damaged cache file is recomputed, not trusted
    rebuilt = compute_drift(workspace, with_metrics=False)
    assert [w.verdict for w in rebuilt.windows] == [w.verdict for w in report.windows]

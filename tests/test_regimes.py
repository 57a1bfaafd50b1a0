"""Regime identification and reference choice (pure), and windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from mlops_tui.core.regimes import (
    UNKNOWN,
    WindowRegime,
    from_column,
    from_profiles,
    parse_window,
    reference_plan,
)

REGIMES = ("a", "b")


def test_parse_window() -> None:
    six = parse_window("6h")
    assert six.period_us == 6 * 3600 * 10**6 and not six.rows
    moment = datetime(2026, 1, 13, 14, 30, tzinfo=UTC)
    assert six.start(six.index_of(moment)) == datetime(2026, 1, 13, 12, tzinfo=UTC)
    week = parse_window("1w")
    monday = week.start(week.index_of(datetime(2026, 1, 15, tzinfo=UTC)))  # a Thursday
    assert monday == datetime(2026, 1, 12, tzinfo=UTC) and monday.weekday() == 0
    assert parse_window("5000rows").rows == 5000
    for bad in ("0h", "6x", "2rows", "rows"):
        with pytest.raises(ValueError):
            parse_window(bad)


def test_from_column_labels_mixed_and_mismatched_windows() -> None:
    # columns: unknown label, a, b, missing
    labels = np.array([[0, 10, 0, 0], [0, 6, 4, 0], [0, 0, 10, 0], [0, 10, 0, 0],
                       [0, 0, 0, 0], [3, 0, 0, 0], [0, 10, 0, 0]], dtype=float)
    distances = np.array([[0.1, 3.0], [1.5, 1.5], [3.0, 0.2], [2.5, 3.0], [np.nan, np.nan],
                          [np.nan, np.nan], [0.8, 0.3]])
    found = from_column(labels, REGIMES, distances, REGIMES, threshold=1.0)
    assert [r.label for r in found] == ["a", "mixed", "b", "a", UNKNOWN, UNKNOWN, "a"]
    assert found[0].distance == pytest.approx(0.1) and not found[0].warning
    assert found[1].mixed and found[1].method == "column"
    assert "does not match regime a's profile (distance 2.500 > 1.0)" in found[3].warning
    assert found[4].method == "none"
    assert found[5].warning == "label not in the store"
    assert "labelled a but nearer to b's profile" in found[6].warning


def test_from_profiles_nearest_within_threshold_else_unknown() -> None:
    window = np.array([[0.2, 3.0], [2.8, 0.3], [1.8, 1.9], [0.4, 2.0], [np.nan, np.nan]])
    sub = np.repeat(window[:, None, :], 4, axis=1)
    sub[3] = [[0.2, 3.0], [0.3, 3.0], [3.0, 0.2], [3.0, 0.3]]  # a then b: a switch
    rows = np.array([360, 360, 360, 360, 0])
    found = from_profiles(window, sub, REGIMES, 1.0, rows, np.repeat(rows[:, None] / 4, 4, 1),
                          min_rows=30)
    assert [r.label for r in found] == ["a", "b", UNKNOWN, "mixed", UNKNOWN]
    assert found[2].nearest == "a" and "nearest profile a at 1.800 > 1.0" in found[2].warning
    assert found[3].mixed and "a, b" in found[3].warning
    assert all(r.method == "profile" for r in found[:4])
    nothing = from_profiles(np.zeros((2, 0)), np.zeros((2, 4, 0)), (), 1.0, rows[:2],
                            np.ones((2, 4)), 30)
    assert all("no regime has a reference profile" in r.warning for r in nothing)


def test_reference_plan_prefers_the_deployment_history() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    starts = [start + timedelta(hours=h) for h in range(5)]
    regimes = [WindowRegime("a", "column", 0.1), WindowRegime(None, "column", None, mixed=True),
               WindowRegime("b", "column", 0.1), WindowRegime("b", "column", 0.1),
               WindowRegime("b", "column", 0.1)]
    champions = {"a": 1, "b": 2}
    plan = reference_plan(starts, regimes, [], champions)
    assert [(c.version, c.basis) for c in plan] == [
        (1, "regime"), (1, "auto-deploy"), (1, "auto-deploy"), (2, "auto-deploy"),
        (2, "auto-deploy")]
    deployed = reference_plan(starts, regimes, [(starts[3], 7)], champions)
    assert [(c.version, c.basis) for c in deployed][3:] == [(7, "deployed"), (7, "deployed")]
    requested = reference_plan(starts, regimes, [(starts[0], 7)], champions,
                               requested_regime="b")
    assert {(c.version, c.basis) for c in requested} == {(2, "requested")}
    none = reference_plan(starts[:1], regimes[:1], [], {})
    assert none[0].version is None and none[0].basis == "none"

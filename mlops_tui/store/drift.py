"""Drift tables: reference profiles (one per training snapshot) and recorded drift runs.

The bulk counting over observation files is in store/counts.py.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mlops_tui.store.db import Tx, utcnow

if TYPE_CHECKING:
    from mlops_tui.core.profiles import Profile


# -- profiles --------------------------------------------------------------------------------

def has_profile(tx: Tx, snapshot: str) -> bool:
    return tx.scalar("SELECT count(*) FROM profiles WHERE snapshot = ?", [snapshot]) > 0


def put_profile(tx: Tx, profile: Profile) -> None:
    """Insert once per snapshot (a snapshot's data never changes)."""
    if has_profile(tx, profile.snapshot):
        return
    profile_id = int(tx.scalar("SELECT coalesce(max(id), 0) + 1 FROM profiles"))
    tx.execute("INSERT INTO profiles VALUES (?, ?, ?, ?)",
               [profile_id, profile.snapshot, utcnow(), json.dumps(profile.to_dict())])


def get_profiles(tx: Tx, snapshots: Sequence[str]) -> dict[str, Profile]:
    from mlops_tui.core.profiles import Profile  # numpy: not for the run readers

    if not snapshots:
        return {}
    rows = tx.all("SELECT snapshot, profile FROM profiles WHERE list_contains(?, snapshot)",
                  [list(snapshots)])
    return {snapshot: Profile.from_dict(json.loads(text)) for snapshot, text in rows}


# -- drift results ---------------------------------------------------------------------------

FEATURE_COLUMNS = ("run_id, regime, window_start, window_end, feature, test, statistic, "
                   "threshold, verdict, reason, computed_at, p_value, rows, reference")
WINDOW_COLUMNS = ("run_id, window_start, window_end, rows, regime, regime_method, "
                  "regime_distance, mixed, warning, reference_version, reference_basis, "
                  "reference, drift_share, verdict, serving_version, metric, metric_value, "
                  "labelled_rows")


def insert_run(tx: Tx, run_id: str, settings: dict[str, Any], windows: list[tuple],
               features: list[tuple]) -> None:
    """One drift run: its settings, one row per window, one row per window and feature."""
    now = utcnow()
    tx.execute("INSERT INTO drift_runs VALUES (?, ?, ?)", [run_id, now, json.dumps(settings)])
    _insert_many(tx, "drift_windows", WINDOW_COLUMNS, [(run_id, *w) for w in windows])
    _insert_many(tx, "drift_results", FEATURE_COLUMNS,
                 [(run_id, *f[:9], now, *f[9:]) for f in features])


def _insert_many(tx: Tx, table: str, columns: str, rows: list[tuple], chunk: int = 200) -> None:
    """Multi-row VALUES in chunks: one parameterised statement per chunk."""
    if not rows:
        return
    width = len(rows[0])
    marks = "(" + ", ".join("?" for _ in range(width)) + ")"
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        tx.execute(f"INSERT INTO {table} ({columns}) VALUES " + ", ".join(marks for _ in part),
                   [value for row in part for value in row])


def latest_run(tx: Tx) -> tuple[str, datetime, dict] | None:
    row = tx.one("SELECT run_id, computed_at, settings FROM drift_runs "
                 "ORDER BY computed_at DESC, run_id DESC LIMIT 1")
    return (row[0], row[1], json.loads(row[2])) if row else None


def run_windows(tx: Tx, run_id: str) -> list[tuple]:
    return tx.all(f"SELECT {WINDOW_COLUMNS} FROM drift_windows WHERE run_id = ? "
                  "ORDER BY window_start", [run_id])


def run_features(tx: Tx, run_id: str) -> list[tuple]:
    return tx.all(f"SELECT {FEATURE_COLUMNS} FROM drift_results WHERE run_id = ? "
                  "ORDER BY window_start, feature", [run_id])

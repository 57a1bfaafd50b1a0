"""Acceptance on the demo workspace: a rollback through the real CLI switches production,
shows in the history with actor and reason, is what `predict` then uses, and a second
identical rollback says there is nothing to do.

The demo is built once per session (shared with the training tests behind the same lock)
and copied, because this test changes it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
from conftest import run_cli

from mlops_tui.services.actor import current_actor
from mlops_tui.services.deployment_reads import audit_log, history, serving_state
from mlops_tui.services.maintenance import verify_store
from mlops_tui.services.workspace import open_workspace


def cli(workspace: Path, *args: str) -> dict:
    code, out, err = run_cli(*args, "--json", workspace=workspace)
    assert code == 0, err
    return json.loads(out)


def test_rollback_on_the_demo_workspace(shared_demo, tmp_path):
    demo = tmp_path / "demo"
    shutil.copytree(shared_demo[0], demo, symlinks=True)
    ws = open_workspace(demo)
    before = history(ws, target="production")
    assert [e.action for e in before].count("rollback") == 1  # the demo's own rollback
    assert any(e.action == "resume" for e in audit_log(ws))
    champions = {r: f"v{e.to_version}" for r, e in serving_state(ws).champions.items()}
    serving, restored = f"v{before[0].to_version}", f"v{before[0].from_version}"
    assert serving == champions["sedan"]  # the line ended on sedan

    code, out, err = run_cli("rollback", "--target", "production", "--reason",
                             "pickup line restarted", workspace=demo)
    assert code == 0, err
    assert f"rolled back: {serving} -> {restored}" in out
    assert restored == champions["pickup"]

    events = cli(demo, "deployments", "history", "--target", "production")["events"]
    newest = events[0]
    assert len(events) == len(before) + 1
    assert (newest["action"], newest["from"], newest["to"]) == ("rollback", serving, restored)
    assert newest["actor"] == current_actor() and newest["reason"] == "pickup line restarted"
    assert newest["pinned"] is True

    from mlops_tui.sample import packaged_observations_path

    rows = tmp_path / "tail.parquet"
    pq.write_table(pq.read_table(packaged_observations_path()).slice(45000, 2000), rows)
    predicted = cli(demo, "predict", str(rows), "--out", str(tmp_path / "scored.parquet"))
    assert predicted["rows_by_version"] == {restored: 2000}
    assert set(pq.read_table(tmp_path / "scored.parquet").column("version").to_pylist()) == {
        restored}

    code, out, err = run_cli("rollback", "--target", "production", "--reason",
                             "pickup line restarted", workspace=demo)
    assert code == 0, err
    assert "nothing to do" in out
    assert len(history(ws, target="production")) == len(events)
    assert verify_store(ws).ok

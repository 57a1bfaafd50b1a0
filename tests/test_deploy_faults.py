"""SIGKILL at every fault point of deploy and rollback, in a real `mlops-tui` process.

Points: the store's (after BEGIN, before COMMIT, after COMMIT) and the serving folder's
(generation built, symlink staged). Afterwards the store holds the old state or the new one,
never a mix; the serving folder still shows a complete generation (the old one: the swap
never happened); and after reconcile the folder matches the store.
"""

from __future__ import annotations

import shutil
import signal

import pytest
from conftest import register_real_version, run_cli

from mlops_tui.services import serving
from mlops_tui.services.deployment_reads import serving_state
from mlops_tui.services.deployments import deploy
from mlops_tui.services.maintenance import verify_store
from mlops_tui.services.workspace import init_workspace, open_workspace
from mlops_tui.store import deployments as deployment_sql
from mlops_tui.store import registry as registry_sql
from mlops_tui.store.db import FAULT_POINTS

POINTS = FAULT_POINTS + serving.FAULT_POINTS
COMMITTED = {"after_commit", *serving.FAULT_POINTS}  # killed after the store committed


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """v1, v2 of regime a; production serves v1; a's champion is v1."""
    ws = init_workspace(tmp_path_factory.mktemp("faults") / "ws")
    register_real_version(ws, seed=1)
    register_real_version(ws, seed=2)
    deploy(ws, "v1")
    deploy(ws, "v1", champion_of="a")
    return ws


def snapshot(ws) -> tuple[int, int, int]:
    with ws.store.read() as tx:
        counts = registry_sql.counts(tx)
    return (serving_state(ws).active["production"].to_version, counts["deployment_events"],
            counts["audit"])


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("action", ["deploy", "rollback"])
def test_sigkill_leaves_old_or_new_and_reconcile_repairs_the_folder(template, tmp_path, action,
                                                                    point):
    root = tmp_path / "ws"
    shutil.copytree(template.root, root, symlinks=True)
    ws = open_workspace(root)
    if action == "deploy":
        old, new, args = 1, 2, ("deploy", "v2", "--reason", "crash test")
    else:
        deploy(ws, "v2")
        old, new, args = 2, 1, ("rollback", "--target", "production", "--reason", "crash test")
    active, events, audit = snapshot(ws)
    assert active == old

    code, out, err = run_cli(*args, workspace=ws, env={"MLOPS_TUI_FAULT": f"{point}@{action}"})
    assert code == -signal.SIGKILL, (code, out, err)

    committed = point in COMMITTED
    assert snapshot(ws) == ((new, events + 1, audit + 1) if committed else (old, events, audit))
    with ws.store.read() as tx:
        assert deployment_sql.events_without_audit(tx) == []
    manifest = serving.current_manifest(ws)  # the swap never happened: still the old one
    assert manifest is not None and manifest["targets"]["production"]["version"] == f"v{old}"
    assert bool(serving.inspect(ws)) == committed

    result = serving.sync(ws, unit="reconcile")
    assert result.changed == committed
    assert serving.inspect(ws) == []
    expected = f"v{new if committed else old}"
    assert serving.current_manifest(ws)["targets"]["production"]["version"] == expected
    assert not list(ws.serving_root.glob(".current-*"))
    assert not list((ws.serving_root / "generations").glob(".build-*"))
    report = verify_store(ws)
    assert report.ok and report.repaired == [], report.problems

    again = run_cli(*args, workspace=ws)  # and the next command just works
    assert again[0] == 0, again

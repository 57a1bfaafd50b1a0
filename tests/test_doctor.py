"""`mlops-tui doctor`: one check per concern, each problem with its fix, the documented exit
code (0 healthy, 3 warnings, 5 integrity, 6 a required dependency unavailable), and nothing
written: the whole workspace is hashed before and after every run.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from conftest import register_real_version, run_cli
from test_serving_mismatch import tree_digest

from mlops_tui.services.deployments import deploy
from mlops_tui.services.doctor import mount_of
from mlops_tui.store import registry as registry_sql
from mlops_tui.store.lock import hold_lock

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


@pytest.fixture
def served(workspace):
    register_real_version(workspace, seed=1)
    register_real_version(workspace, seed=2)
    deploy(workspace, "v1")
    return workspace


def doctor(ws, env: dict | None = None) -> tuple[int, dict, str]:
    """Run doctor --json, checking that it wrote nothing; (exit code, report, stderr)."""
    before = tree_digest(ws.root)
    code, out, err = run_cli("doctor", "--json", workspace=ws, env=env)
    assert tree_digest(ws.root) == before, "doctor wrote to the workspace"
    assert "Traceback" not in err, err
    report = json.loads(out)
    assert report["exit_code"] == code, (code, report)
    return code, report, err


def by_name(report: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for check in report["checks"]:
        found.setdefault(check["name"], []).append(check)
    return found


def set_runner(ws, key: str, value: str) -> None:
    text = ws.config_path.read_text()
    lines = [f'{key} = "{value}"' if line.startswith(f"{key} =") else line
             for line in text.splitlines()]
    ws.config_path.write_text("\n".join(lines) + "\n")


@pytest.mark.docker
def test_a_healthy_workspace_exits_0_and_names_every_check(served):
    code, report, _ = doctor(served)
    assert code == 0 and report["ok"], report
    checks = by_name(report)
    for name in ("store", "schema", "invariants", "artifact hashes", "leftovers", "serving",
                 "lock", "disk", "docker", "base image", "trainer images", "local runner"):
        assert name in checks, name
    assert checks["artifact hashes"][0]["message"].startswith("2 artifacts")
    disk = checks["disk"][0]["detail"]
    assert disk["free_bytes"] > 0 and disk["filesystem"] != "unknown"
    assert {"workspace", "artifacts", "jobs", "serving"} <= set(disk["folders"])
    assert "version" in checks["docker"][0]["detail"]
    assert "live_restore" in checks["docker"][0]["detail"]
    note = checks["local runner"][0]
    assert note["status"] == "info" and "without isolation" in note["message"]

    code, out, err = run_cli("doctor", workspace=served)  # the human form
    assert code == 0 and "doctor: healthy" in out and "✓ store" in out, err


def test_a_crashed_publish_and_leftovers_are_warnings_with_their_fixes(served, tmp_path):
    code, _, err = run_cli("deploy", "v2", workspace=served,
                           env={"MLOPS_TUI_FAULT": "after_commit@deploy"})
    assert code == -signal.SIGKILL, err
    staging = served.data_root / "batches" / ".staging-999999999-killed.parquet"
    staging.parent.mkdir(parents=True, exist_ok=True)
    staging.write_bytes(b"PAR1")
    then = time.time() - 7200
    os.utime(staging, (then, then))

    code, report, _ = doctor(served, env=NO_ENGINE)  # and no engine, with the local runner
    assert code == 3, report
    checks = by_name(report)
    assert checks["serving"][0]["status"] == "warning"
    assert checks["serving"][0]["fix"] == "mlops-tui serving reconcile"
    assert checks["leftovers"][0]["status"] == "warning"
    assert checks["leftovers"][0]["fix"] == "mlops-tui store verify --repair"
    assert checks["docker"][0]["status"] == "warning"
    assert "start the Docker engine" in checks["docker"][0]["fix"]

    code, out, _ = run_cli("doctor", workspace=served, env=NO_ENGINE)
    assert code == 3 and "fix: mlops-tui serving reconcile" in out


def test_a_tampered_artifact_is_an_integrity_problem(served):
    with served.store.read() as tx:
        blob = served.root / registry_sql.get_version(tx, 2).artifact.path
    os.chmod(blob, 0o644)
    blob.write_bytes(blob.read_bytes()[:-4] + b"evil")
    code, report, _ = doctor(served, env=NO_ENGINE)
    assert code == 5, report
    [hashes] = by_name(report)["artifact hashes"]
    assert hashes["status"] == "integrity" and "v2" in hashes["message"]
    assert "backup" in hashes["fix"]


def test_the_configured_runners_engine_unavailable_exits_6(served):
    set_runner(served, "kind", "docker")
    code, report, _ = doctor(served, env=NO_ENGINE)
    assert code == 6, report
    [engine] = by_name(report)["docker"]
    assert engine["status"] == "unavailable" and "not reachable" in engine["message"]
    assert "local runner" not in by_name(report)  # no local-runner note for docker


@pytest.mark.docker
def test_a_missing_base_image_is_unavailable_for_the_docker_runner(served):
    set_runner(served, "kind", "docker")
    set_runner(served, "base_image", "mlops-base:no-such-tag")
    code, report, _ = doctor(served)
    assert code == 6, report
    [base] = by_name(report)["base image"]
    assert base["status"] == "unavailable" and "never pulled" in base["message"]


def test_the_lock_holder_is_named(served):
    with hold_lock(served.store.lock_path, exclusive=True, timeout=5, command="holder-test"):
        code, report, _ = doctor(served, env=NO_ENGINE | {"MLOPS_TUI_LOCK_TIMEOUT": "0.3"})
    checks = by_name(report)
    [lock] = checks["lock"]
    assert lock["detail"]["holder"]["pid"] == os.getpid()
    assert "holder-test" in lock["message"]
    assert checks["store"][0]["status"] == "warning" and code == 3  # busy: try again


def test_mount_of_picks_the_longest_mount_point(tmp_path):
    mounts = tmp_path / "mounts"
    mounts.write_text("rootfs / ext4 rw 0 0\nsrv /srv xfs rw 0 0\n"
                      "share /srv/mlops nfs4 rw 0 0\nother /srv/mlops-old ext4 rw 0 0\n")
    assert mount_of(Path("/srv/mlops/plant-a"), mounts) == ("/srv/mlops", "nfs4")
    assert mount_of(Path("/srv/other"), mounts) == ("/srv", "xfs")
    assert mount_of(Path("/home"), mounts) == ("/", "ext4")

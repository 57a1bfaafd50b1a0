"""Several real processes on one store: writers serialise, readers share, crashes are atomic."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from conftest import (
    TESTS_DIR,
    register_real_version,
    run_cli,
    train_pipeline,
    write_artifact,
    write_code_dir,
)

from mlops_tui.services.maintenance import verify_store
from mlops_tui.services.registry import list_versions
from mlops_tui.store import deployments as deployment_sql
from mlops_tui.store import registry as registry_sql

WORKER = TESTS_DIR / "proc_worker.py"


def start_worker(*args: str, env: dict[str, str] | None = None,
                 stdin: int | None = None) -> subprocess.Popen:
    environment = dict(os.environ) | (env or {})
    return subprocess.Popen([sys.executable, str(WORKER), *args], stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=environment)


def read_line(process: subprocess.Popen) -> dict:
    line = process.stdout.readline()
    if not line:
        process.wait(timeout=30)
        raise AssertionError(f"worker exited {process.returncode}: {process.stderr.read()}")
    return json.loads(line)


def finish(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def test_concurrent_writers_all_succeed_with_exact_counts(workspace):
    register_real_version(workspace, seed=1)
    register_real_version(workspace, seed=2)
    processes, units = 4, 25
    workers = [start_worker("deploy-loop", str(workspace.root), f"line-{i}", str(units),
                            env={"MLOPS_TUI_LOCK_TIMEOUT": "60"}, stdin=subprocess.PIPE)
               for i in range(processes)]
    try:
        for worker in workers:
            assert read_line(worker)["ready"]
        for worker in workers:  # start together, so the units really interleave
            worker.stdin.write("go\n")
            worker.stdin.flush()
        results = [finish(worker) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    assert [r["count"] for r in results] == [units] * processes
    # every process was still working when every other had started: real contention
    assert max(r["first"] for r in results) < min(r["last"] for r in results)

    with workspace.store.read() as tx:
        counts = registry_sql.counts(tx)
        missing_audit = deployment_sql.events_without_audit(tx)
        current = deployment_sql.current_all(tx)
        events = deployment_sql.history(tx, limit=None)
    assert counts["deployment_events"] == processes * units
    assert counts["audit"] == processes * units + 2  # plus two registrations
    assert missing_audit == []
    assert sorted(e.seq for e in events) == list(range(1, processes * units + 1))
    assert {e.subject: e.to_version for e in current} == {
        f"line-{i}": 1 for i in range(processes)}  # index 24 (even) deploys v1
    for i in range(processes):
        chain = sorted((e for e in events if e.subject == f"line-{i}"), key=lambda e: e.seq)
        assert chain[0].from_version is None
        for earlier, later in zip(chain, chain[1:], strict=False):
            assert later.from_version == earlier.to_version != later.to_version
    assert verify_store(workspace).ok


def stop(process: subprocess.Popen) -> None:
    """End a holder we started (its lock dies with it) once its part is done."""
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=30)


def test_readers_do_not_queue_behind_a_reader(workspace):
    holder = start_worker("hold-read", str(workspace.root), "30")  # stopped below
    try:
        assert read_line(holder)["ready"]
        reader = start_worker("read-once", str(workspace.root))
        result = finish(reader)
        assert holder.poll() is None, "the first reader must still hold its lock"
        assert result["elapsed"] < 0.5
        # the shared lock is real: a writer cannot get in while the reader holds it
        code, _, err = run_cli("store", "migrate", workspace=workspace,
                               env={"MLOPS_TUI_LOCK_TIMEOUT": "0.3"})
        assert holder.poll() is None
        assert code == 4, err
        assert "store is busy" in err
    finally:
        stop(holder)


def test_a_writer_times_out_behind_a_writer_and_names_it(workspace):
    holder = start_worker("hold-write", str(workspace.root), "30")  # killed below
    try:
        ready = read_line(holder)
        code, out, err = run_cli("store", "migrate", "--json", workspace=workspace,
                                 env={"MLOPS_TUI_LOCK_TIMEOUT": "0.5"})
        assert holder.poll() is None
        assert code == 4, err
        error = json.loads(out)["error"]
        assert error["code"] == 4 and error["kind"] == "busy"
        assert f"pid {ready['pid']}" in error["message"]
        assert "proc_worker hold-write" in error["message"]
        assert "gave up after 0.5s" in error["message"]
        assert f"pid {ready['pid']}" in err
        assert "Traceback" not in err
    finally:
        stop(holder)
    # once the holder is gone (killed mid-transaction) the same command goes through, and
    # the holder's uncommitted row is not there
    code, _, err = run_cli("store", "migrate", "--json", workspace=workspace)
    assert code == 0, err
    with workspace.store.read() as tx:
        assert registry_sql.regime_names(tx) == []


@pytest.mark.parametrize("point", ["after_begin", "before_commit", "after_commit"])
def test_sigkill_inside_a_registration_leaves_a_consistent_store(workspace, point):
    register_real_version(workspace, seed=1)  # v1 exists before the crash
    inputs = workspace.root.parent / "crash-inputs"
    artifact = write_artifact(inputs, train_pipeline(seed=7))
    code_dir = write_code_dir(inputs / "pipeline", "crash")
    worker = start_worker("register", str(workspace.root), "a", str(artifact), str(code_dir),
                          env={"MLOPS_TUI_FAULT": f"{point}@register"})
    out, err = worker.communicate(timeout=120)
    assert worker.returncode == -signal.SIGKILL, (worker.returncode, out, err)
    assert out == ""  # it never got to report a version

    report = verify_store(workspace)
    assert report.ok, report.problems
    numbers = [v.number for v in list_versions(workspace).versions]
    if point == "after_commit":
        assert numbers == [2, 1]
    else:
        assert numbers == [1]
    with workspace.store.read() as tx:
        counts = registry_sql.counts(tx)
        audit = deployment_sql.audit_entries(tx)
    assert counts["model_versions"] == len(numbers)
    assert len(audit) == len(numbers)  # the audit row commits with its version, or not at all

    follow_up = register_real_version(workspace, seed=8)
    assert follow_up.number == len(numbers) + 1
    assert verify_store(workspace).ok

"""Retrain jobs on the local runner, fault by fault, with real processes and real files.

Each fault ends with a clear message, its documented exit code and nothing half-registered:
the version count is unchanged, no artifact was stored, and `store verify` passes. The
pipelines misbehave for real (see training_helpers), the launcher is really SIGKILLed, and
the store's own fault hook kills the launcher between two units of work.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import run_cli
from training_helpers import (
    BASE_REGIME,
    base_workspace_root,
    copy_workspace,
    install_pipeline,
    job_state,
    kill_if_alive,
    only_job_dir,
    pid_gone,
    raises_pipeline,
    slow_pipeline,
    store_verifies,
    tamper_pipeline,
    version_count,
    versions_of_job,
    wait_until,
    write_sample_slice,
)

from mlops_tui.core.models import JobState
from mlops_tui.services.workspace import Workspace

START_TIMEOUT = 90  # seconds for a harness to import its stack and reach train()


@pytest.fixture
def trained(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A private copy of the base workspace: a small sample slice and a champion for suv."""
    return copy_workspace(base_workspace_root(tmp_path_factory), tmp_path / "ws")


def artifact_files(workspace: Workspace) -> list[Path]:
    return sorted(p for p in workspace.artifacts_root.rglob("*") if p.is_file())


def existing_jobs(workspace: Workspace) -> set[str]:
    return {p.name for p in workspace.jobs_root.iterdir()}


def assert_nothing_registered(workspace: Workspace, versions_before: int,
                              artifacts_before: list[Path]) -> None:
    assert version_count(workspace) == versions_before
    assert artifact_files(workspace) == artifacts_before
    assert store_verifies(workspace) == []


def start_detached_retrain(workspace: Workspace) -> str:
    """`retrain` without --wait: the launcher exits, the job runs on; its id."""
    code, out, err = run_cli("retrain", "--regime", BASE_REGIME, "--json", workspace=workspace)
    assert code == 0, err
    return json.loads(out)["id"]


# -- a pipeline that raises ---------------------------------------------------------------


def test_pipeline_that_raises_fails_the_job_with_its_traceback_and_wait_exits_3(
        trained: Workspace) -> None:
    install_pipeline(trained, raises_pipeline())
    before, artifacts = version_count(trained), artifact_files(trained)

    code, out, err = run_cli("retrain", "--regime", BASE_REGIME, "--wait", "--json",
                             workspace=trained, timeout=120)

    assert code == 3, err
    error = json.loads(out)["error"]
    assert error["kind"] == "conflict"
    assert "failed: ValueError: adhesion sensor calibration table is empty" in error["message"]
    assert "mlops-tui jobs logs" in error["message"]
    job_id = error["detail"]["job"]["id"]
    assert job_state(trained, job_id) is JobState.FAILED
    code, log, _ = run_cli("jobs", "logs", job_id[:8], workspace=trained)
    assert code == 0
    assert "Traceback (most recent call last)" in log
    assert 'raise ValueError("adhesion sensor calibration table is empty")' in log
    assert_nothing_registered(trained, before, artifacts)


# -- results that do not check out --------------------------------------------------------


@pytest.mark.parametrize(("kind", "expected"), [
    ("malformed-json", "result.json is not valid JSON"),
    ("invalid-schema", "metrics.r2: expected a number"),
    ("hash-mismatch", "does not match result.json's"),
])
def test_a_result_that_does_not_check_out_is_rejected_with_exit_5(
        trained: Workspace, kind: str, expected: str) -> None:
    install_pipeline(trained, tamper_pipeline(kind))
    before, artifacts = version_count(trained), artifact_files(trained)

    code, out, err = run_cli("retrain", "--regime", BASE_REGIME, "--wait", "--json",
                             workspace=trained, timeout=120)

    assert code == 5, err
    error = json.loads(out)["error"]
    assert error["kind"] == "integrity"
    assert "rejected" in error["message"] and expected in error["message"]
    assert f"error: job {error['detail']['job']['id'][:8]} rejected" in err
    job_id = error["detail"]["job"]["id"]
    assert job_state(trained, job_id) is JobState.REJECTED
    assert versions_of_job(trained, job_id) == []
    assert_nothing_registered(trained, before, artifacts)


def test_a_result_removed_after_success_is_rejected_by_reconcile_with_exit_5(
        trained: Workspace) -> None:
    """The launcher recorded success and died; the result vanished before anyone ingested."""
    from mlops_tui.runners.base import wait_for
    from mlops_tui.services.jobs import record_status
    from mlops_tui.services.retrain import RetrainRequest, start_retrain

    before, artifacts = version_count(trained), artifact_files(trained)
    started = start_retrain(trained, RetrainRequest(regime=BASE_REGIME))
    status = wait_for(started.handle, timeout=120)
    assert status.state == "succeeded"
    record_status(trained, started.job, status)
    (started.handle.job_dir / "work" / "result.json").unlink()

    code, out, err = run_cli("jobs", "reconcile", "--json", workspace=trained)

    assert code == 5, err
    error = json.loads(out)["error"]
    assert error["message"] == f"job {started.job.short_id} rejected: result.json is missing"
    assert [o["job"]["state"] for o in error["detail"]["outcomes"]] == ["rejected"]
    assert job_state(trained, started.job.id) is JobState.REJECTED
    assert_nothing_registered(trained, before, artifacts)
    code, out, _ = run_cli("jobs", "reconcile", "--json", workspace=trained)
    assert (code, json.loads(out)) == (0, {"outcomes": []})  # reported once, not every time


# -- cancel -------------------------------------------------------------------------------


def test_cancel_ends_the_jobs_whole_process_group(trained: Workspace) -> None:
    install_pipeline(trained, slow_pipeline(with_child=True))
    before, artifacts = version_count(trained), artifact_files(trained)
    job_id = start_detached_retrain(trained)
    work = trained.jobs_root / job_id / "work"  # the pipeline's cwd
    child_pid = int(wait_until(lambda: (work / "child.pid").exists()
                               and (work / "child.pid").read_text(), START_TIMEOUT,
                               "the pipeline to start its child process"))
    harness_pid = int((work / "harness.pid").read_text())
    try:
        assert not pid_gone(harness_pid) and not pid_gone(child_pid)

        code, out, err = run_cli("jobs", "cancel", job_id[:8], "--json", workspace=trained)

        assert code == 0, err
        assert json.loads(out)["state"] == "cancelled"
        wait_until(lambda: pid_gone(harness_pid) and pid_gone(child_pid), 10,
                   "the harness and its child to end")
        assert job_state(trained, job_id) is JobState.CANCELLED
        code, out, err = run_cli("jobs", "cancel", job_id[:8], workspace=trained)
        assert code == 3 and f"job {job_id[:8]} is already cancelled" in err
        code, out, _ = run_cli("jobs", "reconcile", "--json", workspace=trained)
        assert (code, json.loads(out)) == (0, {"outcomes": []})
        assert_nothing_registered(trained, before, artifacts)
    finally:
        kill_if_alive(harness_pid)
        kill_if_alive(child_pid)


def test_a_second_retrain_of_a_regime_with_one_running_exits_3_naming_it(
        trained: Workspace) -> None:
    install_pipeline(trained, slow_pipeline())
    old_jobs = existing_jobs(trained)
    first = start_detached_retrain(trained)
    try:
        code, out, err = run_cli("retrain", "--regime", BASE_REGIME, "--json", workspace=trained)

        assert code == 3, err
        error = json.loads(out)["error"]
        assert error["detail"] == {"job": first}
        assert f"a retrain for regime {BASE_REGIME} is already running: job {first}" in err
        assert existing_jobs(trained) == old_jobs | {first}  # the refusal left nothing
    finally:
        code, _, err = run_cli("jobs", "cancel", first, workspace=trained)
        assert code == 0, err
    second = start_detached_retrain(trained)  # once it is cancelled, the regime may retrain
    assert run_cli("jobs", "cancel", second, workspace=trained)[0] == 0


# -- the launcher dies --------------------------------------------------------------------


def test_a_sigkilled_launcher_is_followed_by_reconcile_which_ingests_exactly_once(
        trained: Workspace) -> None:
    install_pipeline(trained, slow_pipeline())
    before = version_count(trained)
    old_jobs = existing_jobs(trained)
    launcher = subprocess.Popen(
        [sys.executable, "-m", "mlops_tui.cli.main", "--workspace", str(trained.root),
         "retrain", "--regime", BASE_REGIME, "--wait"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    harness_pid = None
    try:
        job_dir = wait_until(lambda: only_job_dir(trained, old_jobs), 30, "the job folder")
        harness_pid = int(wait_until(lambda: (job_dir / "work" / "harness.pid").exists()
                                     and (job_dir / "work" / "harness.pid").read_text(),
                                     START_TIMEOUT, "the harness to reach train()"))
        launcher.send_signal(signal.SIGKILL)
        assert launcher.wait(timeout=10) == -signal.SIGKILL
        assert not pid_gone(harness_pid)  # the job outlives its launcher
        assert job_state(trained, job_dir.name) is JobState.RUNNING

        (job_dir / "work" / "release").write_text("go\n")
        wait_until(lambda: pid_gone(harness_pid), 60, "the harness to finish")
        reconcilers = [subprocess.Popen(
            [sys.executable, "-m", "mlops_tui.cli.main", "--workspace", str(trained.root),
             "jobs", "reconcile", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True) for _ in range(2)]
        documents = []
        for reconciler in reconcilers:
            out, err = reconciler.communicate(timeout=120)
            assert reconciler.returncode == 0, err
            documents.append(json.loads(out))
        code, out, err = run_cli("jobs", "reconcile", "--json", workspace=trained)
        assert code == 0, err
        documents.append(json.loads(out))
    finally:
        if launcher.poll() is None:
            launcher.kill()
        if harness_pid is not None:
            kill_if_alive(harness_pid)

    registered = versions_of_job(trained, job_dir.name)
    assert len(registered) == 1
    assert version_count(trained) == before + 1
    assert job_state(trained, job_dir.name) is JobState.INGESTED
    named = {o["version"] for d in documents for o in d["outcomes"]}
    assert named == set(registered)  # whoever reports the job names the one version
    assert documents[2] == {"outcomes": []}
    assert store_verifies(trained) == []


def test_a_launcher_killed_before_the_job_started_is_recorded_failed(
        trained: Workspace) -> None:
    """Killed by the store's fault hook right after the job was created, before launch."""
    old_jobs = existing_jobs(trained)
    code, _, _ = run_cli("retrain", "--regime", BASE_REGIME, workspace=trained,
                         env={"MLOPS_TUI_FAULT": "after_commit@job-created"})
    assert code == -signal.SIGKILL
    job_id = only_job_dir(trained, old_jobs).name
    assert job_state(trained, job_id) is JobState.CREATED

    code, out, err = run_cli("jobs", "reconcile", "--json", workspace=trained)

    assert code == 0, err
    (outcome,) = json.loads(out)["outcomes"]
    assert outcome["job"]["state"] == "failed"
    assert "its launcher stopped before the job started (while created)" in outcome["message"]
    again = start_detached_retrain(trained)  # the regime is not blocked by the dead request
    assert run_cli("jobs", "cancel", again, workspace=trained)[0] == 0


def test_a_job_whose_launcher_died_before_recording_it_running_is_followed(
        trained: Workspace) -> None:
    """Killed after the harness started but before `running` committed: not stuck in
    `created`; reconcile records it running, then ingests its result."""
    install_pipeline(trained, slow_pipeline())
    old_jobs = existing_jobs(trained)
    code, _, _ = run_cli("retrain", "--regime", BASE_REGIME, workspace=trained,
                         env={"MLOPS_TUI_FAULT": "before_commit@job-running"})
    assert code == -signal.SIGKILL
    job_dir = only_job_dir(trained, old_jobs)
    assert job_state(trained, job_dir.name) is JobState.CREATED
    runner = json.loads((job_dir / "runner.json").read_text())
    try:
        code, out, err = run_cli("jobs", "reconcile", "--json", workspace=trained)
        assert (code, json.loads(out)) == (0, {"outcomes": []}), err
        assert job_state(trained, job_dir.name) is JobState.RUNNING

        (job_dir / "work" / "release").write_text("go\n")
        wait_until(lambda: pid_gone(runner["pid"]), START_TIMEOUT + 60, "the harness to end")
        code, out, err = run_cli("jobs", "reconcile", "--json", workspace=trained)
    finally:
        kill_if_alive(runner["pid"])
    assert code == 0, err
    (outcome,) = json.loads(out)["outcomes"]
    assert outcome["job"]["state"] == "ingested" and outcome["version"]
    assert store_verifies(trained) == []


def test_reconcile_leaves_a_job_alone_while_its_launcher_prepares_it(
        trained: Workspace) -> None:
    """A requested job whose launcher lives is being prepared; one whose launcher is gone
    failed. (Rows written through the store's own SQL: the window is too short to catch.)"""
    from mlops_tui.runners.local import launcher_identity
    from mlops_tui.services.jobs import reconcile
    from mlops_tui.store import jobs as job_sql

    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    dead_launcher = launcher_identity() | {"pid": int(ended.stdout)}
    preparing, orphaned = str(uuid.uuid4()), str(uuid.uuid4())
    with trained.store.write("tests") as tx:
        job_sql.insert_job(tx, job_id=preparing, regime="sedan", runner="local",
                           spec={"launcher": launcher_identity()})
        job_sql.insert_job(tx, job_id=orphaned, regime="pickup", runner="local",
                           spec={"launcher": dead_launcher})

    outcomes = reconcile(trained)

    assert [(o.job.id, o.job.state) for o in outcomes] == [(orphaned, JobState.FAILED)]
    assert outcomes[0].job.reason == "its launcher stopped before the job started (while requested)"
    assert job_state(trained, preparing) is JobState.REQUESTED


# -- bad requests -------------------------------------------------------------------------


def test_an_unknown_regime_exits_2_with_did_you_mean(trained: Workspace) -> None:
    code, out, err = run_cli("retrain", "--regime", "suvv", "--json", workspace=trained)

    assert code == 2
    assert json.loads(out)["error"]["kind"] == "not-found"
    assert err.strip() == "error: unknown regime 'suvv' (did you mean suv?)"
    assert job_states(trained) == {JobState.INGESTED}  # only the base workspace's job


@pytest.mark.parametrize(("missing", "what"), [
    ("train.py", "entry point train(frame, params)"),
    ("requirements.txt", "dependency pins"),
])
def test_a_pipeline_without_its_entry_point_or_pins_exits_2_naming_the_file(
        trained: Workspace, missing: str, what: str) -> None:
    (trained.root / "pipeline" / missing).unlink()

    code, out, err = run_cli("retrain", "--regime", BASE_REGIME, workspace=trained)

    assert code == 2
    assert err.strip() == f"error: pipeline {trained.root / 'pipeline'} has no {missing} ({what})"
    assert job_states(trained) == {JobState.INGESTED}


def test_ingesting_the_same_file_twice_is_a_no_op_that_says_so(
        trained: Workspace, tmp_path: Path) -> None:
    # rows the base workspace did not ingest (it took every 12th from row 0)
    data = write_sample_slice(tmp_path / "again.parquet", every=96, first=6)
    code, out, err = run_cli("ingest", str(data), "--json", workspace=trained)
    assert code == 0, err
    (first,) = json.loads(out)["batches"]
    assert first["new"] and first["rows"] == 525

    code, out, err = run_cli("ingest", str(data), workspace=trained)

    assert code == 0, err
    assert err.strip() == (f"again.parquet: already ingested as batch {first['batch']} "
                           "(from again.parquet); nothing to do")
    code, out, _ = run_cli("ingest", str(data), "--json", workspace=trained)
    assert json.loads(out)["batches"][0] | {"message": ""} == first | {
        "new": False, "rows": 0, "message": ""}


def job_states(workspace: Workspace) -> set[JobState]:
    from mlops_tui.services.jobs import list_jobs

    return {job.state for job in list_jobs(workspace, limit=None)}

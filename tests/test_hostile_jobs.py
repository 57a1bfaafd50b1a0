"""A training job is untrusted: what it plants in its folder never reaches the host.

Real pipelines misbehave for real (tests/hostile_jobs.py): at exit they turn their log into a
link to a root-only file, plant links where the host used to write, leave a FIFO or a hard
link where result.json should be, grow a 10 GB log, swap their folders for links, report an
inflated metric, or hand back weights that are not a trusted model. Each runs on the local
runner here and, where a container changes what the job can do, on the Docker runner
(test_hostile_containers.py). After each: the secret file is unchanged and never shown or
stored, no file was created where a link pointed, the job ends with the reason named, and
nothing is registered unless the result is sound.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import run_cli
from hostile_jobs import (
    assert_host_untouched,
    hostile_pipeline,
    not_a_model_artifact,
    only_job,
    plant_secret,
    posix_system_artifact,
    retrain,
    shown_everywhere,
)
from training_helpers import (
    base_workspace_root,
    copy_workspace,
    install_pipeline,
    job_state,
    version_count,
)

from mlops_tui.core.models import JobState
from mlops_tui.services.workspace import Workspace


@pytest.fixture
def trained(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return copy_workspace(base_workspace_root(tmp_path_factory), tmp_path / "ws")


@pytest.fixture
def targets(tmp_path: Path) -> tuple[Path, Path]:
    """(a root-only secret file, a path that must never be created)."""
    return plant_secret(tmp_path / "host"), tmp_path / "host" / "created-by-the-job"


def test_symlinks_planted_by_a_succeeding_job_are_never_followed(trained, targets):
    secret, newfile = targets
    install_pipeline(trained, hostile_pipeline("symlinks", secret, newfile))
    before = version_count(trained)
    code, outcome, err = retrain(trained)
    assert code == 0, err  # the result itself is sound: the version registers
    assert outcome["job"]["state"] == "ingested" and version_count(trained) == before + 1
    job_id = outcome["job"]["id"]
    code, _, err = run_cli("jobs", "logs", job_id, workspace=trained)
    assert code == 0 and "job.log is a symlink: refused" in err
    assert_host_untouched(trained, secret, newfile, *shown_everywhere(trained, job_id))


def test_symlinked_log_and_failure_report_of_a_failing_job_are_refused(trained, targets):
    secret, newfile = targets
    install_pipeline(trained, hostile_pipeline("symlinks", secret, newfile, fail=True)
                     .replace('os.symlink(NEWFILE, job / "exit.json")',
                              '(job / "failure.json").unlink()\n'
                              '    os.symlink(SECRET, job / "failure.json")'))
    code, outcome, err = retrain(trained)
    assert code == 3, err
    job = only_job(trained)
    assert job["state"] == "failed"
    code, out, _ = run_cli("jobs", "show", job["id"], "--json", workspace=trained)
    shown = json.loads(out)
    assert shown["reason"] == "the harness failed (failure.json is a symlink: refused)"
    assert_host_untouched(trained, secret, newfile, out, err,
                          *shown_everywhere(trained, job["id"]))


@pytest.mark.parametrize(("kind", "reason"), [
    ("result-fifo", "result.json is a FIFO: refused"),
    ("result-hard-link", "result.json has 2 hard links: refused"),
    ("work-swapped", "job folder work/ is a symlink: refused"),
])
def test_a_planted_result_is_rejected_with_exit_5_and_one_audit_row(trained, targets, kind,
                                                                   reason):
    secret, newfile = targets
    install_pipeline(trained, hostile_pipeline(kind, secret, newfile))
    before = version_count(trained)
    started = time.monotonic()
    code, outcome, err = retrain(trained)
    assert time.monotonic() - started < 120  # a FIFO never blocks the host
    assert code == 5, err
    assert reason in outcome["error"]["message"]
    job = only_job(trained)
    assert job["state"] == "rejected" and reason in job["reason"]
    assert version_count(trained) == before
    code, out, _ = run_cli("audit", "--json", workspace=trained)
    rejections = [row for row in json.loads(out)["entries"] if row["action"] == "reject"]
    assert len(rejections) == 1 and rejections[0]["subject"] == f"job:{job['id']}"
    assert_host_untouched(trained, secret, newfile)


def test_a_fifo_log_never_blocks_the_host(trained, targets):
    secret, newfile = targets
    install_pipeline(trained, hostile_pipeline("log-fifo", secret, newfile))
    code, outcome, err = retrain(trained)
    assert code == 0, err
    started = time.monotonic()
    code, _, err = run_cli("jobs", "logs", outcome["job"]["id"], workspace=trained, timeout=30)
    assert code == 0 and "job.log is a FIFO: refused" in err
    assert time.monotonic() - started < 20


def test_a_10_gb_log_is_read_only_at_its_tail(trained, targets):
    secret, newfile = targets
    install_pipeline(trained, hostile_pipeline("huge-log", secret, newfile))
    code, outcome, err = retrain(trained)
    assert code == 0, err
    job_id = outcome["job"]["id"]
    started = time.monotonic()
    code, out, err = run_cli("jobs", "logs", job_id, workspace=trained, timeout=60)
    assert code == 0, err
    assert len(out) <= 16 * 2**20 + 1000  # its last 16 MB, not 10 GB
    assert "showing its last 16 MB" in err
    assert time.monotonic() - started < 30


def test_the_code_recorded_is_the_snapshot_taken_before_the_job_ran(trained, targets):
    from mlops_tui.artifacts.code import pipeline_files, snapshot
    from mlops_tui.services.registry import show_version

    secret, newfile = targets
    pipeline = install_pipeline(trained, hostile_pipeline("pipeline-swapped", secret, newfile))
    expected = snapshot(trained.root.parent / "scratch-code", pipeline)
    code, outcome, err = retrain(trained)
    assert code == 0, err
    detail = show_version(trained, outcome["version"])
    assert detail.code.hash == expected.hash
    assert sorted(f.path for f in detail.code.files) == sorted(
        p.relative_to(pipeline).as_posix() for p in pipeline_files(pipeline))
    assert_host_untouched(trained, secret, newfile)


def test_a_self_reported_metric_is_checked_against_the_hosts_score(trained, targets):
    secret, newfile = targets
    install_pipeline(trained, hostile_pipeline("inflated-metric", secret, newfile))
    before = version_count(trained)
    code, outcome, err = retrain(trained)
    assert code == 5, err
    message = outcome["error"]["message"]
    assert "the job reported r2 = 1e+308, the host scored 0.9" in message, message
    assert job_state(trained, only_job(trained)["id"]) is JobState.REJECTED
    assert version_count(trained) == before


def test_the_metrics_stored_are_the_hosts_scores(trained):
    code, outcome, err = retrain(trained)
    assert code == 0, err
    from mlops_tui.services import job_results
    from mlops_tui.services.jobs import get_job
    from mlops_tui.services.registry import load_estimator, show_version

    detail = show_version(trained, outcome["version"])
    job = get_job(trained, outcome["job"]["id"])
    estimator = load_estimator(trained, detail.version, detail.env)
    frame = job_results.holdout_frame(trained, job.spec)
    host = job_results.score_on_holdout(estimator, frame, job.spec, ["r2", "mae", "rmse"])
    assert {k: detail.version.metrics[k] for k in host} == host


@pytest.mark.parametrize(("artifact", "reason"), [
    (posix_system_artifact, "refused to load type posix.system"),
    (not_a_model_artifact, "holds a dict, not an estimator with predict()"),
    (lambda: b"PK\x05\x06" + bytes(18), "not a skops artifact"),
])
def test_untrusted_or_non_model_weights_are_rejected_before_registering(trained, targets,
                                                                        artifact, reason):
    secret, newfile = targets
    pipeline = install_pipeline(trained, hostile_pipeline("hostile-artifact", secret, newfile))
    (pipeline / "hostile.skops").write_bytes(artifact())
    before = version_count(trained)
    artifacts = sorted(p for p in trained.artifacts_root.rglob("*") if p.is_file())
    code, outcome, err = retrain(trained)
    assert code == 5, err
    assert reason in outcome["error"]["message"]
    assert version_count(trained) == before
    assert sorted(p for p in trained.artifacts_root.rglob("*") if p.is_file()) == artifacts
    code, out, _ = run_cli("serving", "status", "--json", workspace=trained)
    assert code == 0 and "posix" not in out
    code, out, _ = run_cli("audit", "--json", workspace=trained)
    assert [row["action"] for row in json.loads(out)["entries"]].count("reject") == 1

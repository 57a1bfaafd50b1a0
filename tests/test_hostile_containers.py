"""The same hostile jobs in a real container, and what the container itself forbids.

A job container runs as uid 10001 with no capabilities, no new privileges, a read-only root
filesystem (a tmpfs for /tmp), its input read-only and only its work folder writable; the
base image has no setuid binaries. A probe pipeline reports, from inside the real container,
what it could and could not do; the planted links of a hostile job are never followed by
the host (it runs as root here).
"""

from __future__ import annotations

import pytest
from hostile_jobs import (
    assert_host_untouched,
    hostile_pipeline,
    only_job,
    plant_secret,
    retrain,
    shown_everywhere,
)
from test_docker import base_root, engine, ws  # noqa: F401 - the real engine's fixtures
from training_helpers import WRAPPER_HEADER, install_pipeline, version_count

pytestmark = pytest.mark.docker

PROBE = WRAPPER_HEADER + '''

def train(frame, params):
    for target in ("/input/planted", "/input/pipeline/train.py", "/usr/planted", "/planted"):
        try:
            with open(target, "a") as handle:
                handle.write("x")
            print("WROTE", target)
        except OSError as error:
            print("DENIED", target, error.errno)
    with open("/tmp/scratch", "w") as handle:
        handle.write("ok")
    print("SCRATCH ok")
    for line in open("/proc/self/mounts"):
        device, point, kind, options = line.split()[:4]
        if point in ("/", "/tmp", "/input", "/job"):
            print("MOUNT", point, options.split(",")[0])
    for line in open("/proc/self/status"):
        if line.startswith(("CapEff", "CapPrm", "CapBnd", "NoNewPrivs", "Uid")):
            print("STATUS", " ".join(line.split()))
    found = subprocess.run(["find", "/", "-xdev", "-type", "f", "-perm", "/6000"],
                           capture_output=True, text=True).stdout.split()
    print("SETUID", len(found), found[:5])
    return sample_train(frame, params)
'''


@pytest.fixture
def targets(tmp_path):
    return plant_secret(tmp_path / "host"), tmp_path / "host" / "created-by-the-job"


def test_the_container_can_write_only_its_work_folder_and_tmp(ws):  # noqa: F811
    install_pipeline(ws, PROBE)
    code, outcome, err = retrain(ws)
    assert code == 0, err
    log = (ws.jobs_root / outcome["job"]["id"] / "work" / "job.log").read_text()
    for target in ("/input/planted", "/input/pipeline/train.py", "/usr/planted", "/planted"):
        assert f"DENIED {target}" in log, log
    assert "SCRATCH ok" in log
    for point, mode in (("/", "ro"), ("/input", "ro"), ("/tmp", "rw"), ("/job", "rw")):
        assert f"MOUNT {point} {mode}" in log, log
    assert "STATUS CapEff: 0000000000000000" in log
    assert "STATUS CapPrm: 0000000000000000" in log
    assert "STATUS NoNewPrivs: 1" in log
    assert "STATUS Uid: 10001 10001 10001 10001" in log
    assert "SETUID 0 []" in log  # the base image was built without setuid binaries


def test_links_planted_in_a_container_are_never_followed_by_the_host(ws, targets):  # noqa: F811
    secret, newfile = targets
    install_pipeline(ws, hostile_pipeline("symlinks", secret, newfile))
    before = version_count(ws)
    code, outcome, err = retrain(ws)
    assert code == 0, err
    assert version_count(ws) == before + 1
    assert_host_untouched(ws, secret, newfile, *shown_everywhere(ws, outcome["job"]["id"]))


def test_a_fifo_result_from_a_container_is_rejected(ws, targets):  # noqa: F811
    secret, newfile = targets
    install_pipeline(ws, hostile_pipeline("result-fifo", secret, newfile))
    code, outcome, err = retrain(ws)
    assert code == 5, err
    assert "result.json is a FIFO: refused" in outcome["error"]["message"]
    assert only_job(ws)["state"] == "rejected"
    assert_host_untouched(ws, secret, newfile)


def test_a_failing_container_job_with_a_symlinked_log_stores_no_secret(ws, targets):  # noqa: F811
    secret, newfile = targets
    install_pipeline(ws, hostile_pipeline("symlinks", secret, newfile, fail=True))
    code, outcome, err = retrain(ws)
    assert code == 3, err
    job = only_job(ws)
    assert job["state"] == "failed" and job["reason"] == "ValueError: calibration table is empty"
    assert_host_untouched(ws, secret, newfile, *shown_everywhere(ws, job["id"]))

"""What refused deploys and rollbacks leave behind, through the real CLI.

- Without --expect-current, a deploy or rollback still compares with what its own checks
  saw: when another writer changes the target while they run, it is refused (exit 3) and
  writes nothing; the other change stands.
- A deploy, rollback or predict refused because the weights fail verification (exit 5)
  writes exactly one audit row and nothing else.

To hold the CLI inside its checks for real, the host-environment cache the gate reads
(serving/.host-env.json) is replaced by a FIFO: the CLI blocks reading it while the test
makes the other change, then gets a stale cache (it captures the host again and carries on).
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time

import pytest
from conftest import register_real_version, run_cli

from mlops_tui.core.models import DeploymentKind
from mlops_tui.services.deployment_reads import audit_log, serving_state
from mlops_tui.services.deployments import deploy, record_deployment
from mlops_tui.services.gate import HOST_ENV_CACHE
from mlops_tui.store import registry as registry_sql


@pytest.fixture
def three(workspace):
    for seed in (1, 2, 3):
        register_real_version(workspace, seed=seed)
    return workspace


def counts(ws) -> tuple[int, int]:
    with ws.store.read() as tx:
        found = registry_sql.counts(tx)
    return found["deployment_events"], found["audit"]


def changed_during_checks(ws, *args: str) -> tuple[int, str]:
    """Run the CLI with its gate blocked on a FIFO, deploy v3 meanwhile, then release it."""
    cache = ws.serving_root / HOST_ENV_CACHE
    cache.unlink(missing_ok=True)
    os.mkfifo(cache)
    process = subprocess.Popen(
        [sys.executable, "-m", "mlops_tui.cli.main", "--workspace", str(ws.root), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    writer = None
    while writer is None:
        try:  # succeeds once the CLI has opened the FIFO: it is inside its checks now
            writer = os.open(cache, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:
            assert error.errno == errno.ENXIO, error
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail(f"the CLI never read {cache}: {process.communicate()}")
            time.sleep(0.005)
    try:
        record_deployment(ws, kind=DeploymentKind.ACTIVE, subject="production",
                          version_id="v3", action="deploy", reason="another operator",
                          pinned=True)
        os.write(writer, b"{}")  # a cache for another environment: it captures again
    finally:
        os.close(writer)
    _, err = process.communicate(timeout=60)
    return process.returncode, err


def test_a_deploy_without_expect_current_refuses_a_change_during_its_checks(three):
    ws = three
    deploy(ws, "v1")
    events, audit = counts(ws)
    code, err = changed_during_checks(ws, "deploy", "v2", "--reason", "mine")
    assert code == 3, err
    assert "production changed while checking (now v3" in err, err
    assert counts(ws) == (events + 1, audit + 1)  # only the other writer's change
    assert serving_state(ws).active["production"].to_version == 3


def test_a_rollback_without_expect_current_refuses_a_change_during_its_checks(three):
    ws = three
    deploy(ws, "v1")
    deploy(ws, "v2")
    events, audit = counts(ws)
    code, err = changed_during_checks(ws, "rollback", "--reason", "mine")
    assert code == 3, err
    assert "production changed while checking (now v3" in err, err
    assert counts(ws) == (events + 1, audit + 1)
    assert serving_state(ws).active["production"].to_version == 3


def test_each_refusal_of_unverified_weights_writes_exactly_one_audit_row(three, tmp_path):
    ws = three
    deploy(ws, "v1")
    with ws.store.read() as tx:
        blob = ws.root / registry_sql.get_version(tx, 2).artifact.path
    os.chmod(blob, 0o644)
    blob.write_bytes(blob.read_bytes()[:-4] + b"evil")
    for args, action in ((("deploy", "v2"), "deploy-refused"),
                         (("rollback", "--to", "v2"), "rollback-refused")):
        events, audit = counts(ws)
        code, out, err = run_cli(*args, "--json", workspace=ws)
        assert code == 5 and json.loads(out)["error"]["kind"] == "integrity", err
        assert counts(ws) == (events, audit + 1), args
        assert audit_log(ws, limit=1)[0].action == action

    deploy(ws, "v3")
    record_deployment(ws, kind=DeploymentKind.ACTIVE, subject="production", version_id="v2",
                      action="deploy", reason="forced for the test", pinned=True)
    events, audit = counts(ws)
    data = tmp_path / "rows.csv"
    data.write_text("f1,f2,f3\n1,2,3\n")
    code, _, err = run_cli("predict", str(data), "--out", str(tmp_path / "out.parquet"),
                           workspace=ws)
    assert code == 5, err
    assert counts(ws) == (events, audit + 1)
    assert audit_log(ws, limit=1)[0].action == "predict-refused"

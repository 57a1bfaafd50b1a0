"""Leftovers: files no store record points to. `store verify` reports each as a warning
(exit 0), the next write unit of any command removes what is safe to remove, and
`store verify --repair` removes the rest.

Every leftover is made the way it happens: an ingest killed (SIGKILL) in its write unit
(an orphan batch file), an ingest killed while staging (a `.staging-*` file), a retrain that
failed while exporting its snapshots (a job folder with its staging files), a blob written
by the artifact store that no version references (what a rejected result leaves). Files
are then aged past the grace period with os.utime, because waiting an hour is not a test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import run_cli, sha256_file

from mlops_tui.artifacts import blobs
from mlops_tui.services import leftovers
from mlops_tui.services.demo import sample_config_text
from mlops_tui.services.ingest import ingest_file
from mlops_tui.services.workspace import init_workspace
from mlops_tui.store import observations as observation_sql

HOURS_AGO = 2 * 3600


def sample_slice(path: Path, start: int, step: int) -> Path:
    from mlops_tui.sample import packaged_observations_path

    table = pq.read_table(packaged_observations_path())
    pq.write_table(table.take(list(range(start, table.num_rows, step))), path)
    return path


def age(path: Path, seconds: float = HOURS_AGO) -> None:
    """Move a file's (or a whole folder's) times into the past."""
    then = time.time() - seconds
    paths = [path] + (sorted(path.rglob("*")) if path.is_dir() else [])
    for item in paths:
        os.utime(item, (then, then), follow_symlinks=False)


def kill_while_staging(ws, source: Path) -> None:
    """Start `ingest` and SIGKILL it as soon as its staging file exists."""
    batches = ws.data_root / "batches"
    process = subprocess.Popen(
        [sys.executable, "-m", "mlops_tui.cli.main", "--workspace", str(ws.root), "ingest",
         str(source)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if list(batches.glob(".staging-*")):
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.0005)
    assert process.wait(timeout=30) == -signal.SIGKILL, "the ingest ended before staging"


@pytest.fixture
def littered(tmp_path):
    """A workspace with one good batch and one leftover of each kind, all aged."""
    from mlops_tui.sample import packaged_pipeline_dir

    ws = init_workspace(tmp_path / "ws", config_text=sample_config_text())
    shutil.copytree(packaged_pipeline_dir(), ws.root / "pipeline")
    ingest_file(ws, sample_slice(tmp_path / "good.parquet", 0, 50))

    code, _, err = run_cli("ingest", str(sample_slice(tmp_path / "orphan.parquet", 1, 50)),
                           workspace=ws, env={"MLOPS_TUI_FAULT": "after_begin@ingest"})
    assert code == -signal.SIGKILL, err
    kill_while_staging(ws, sample_slice(tmp_path / "big.parquet", 2, 1))

    code, _, err = run_cli("retrain", "--regime", "sedan", "--since", "2099-01-01",
                           "--runner", "local", workspace=ws)
    assert code == 2 and "nothing to train on" in err, err
    [failed_job] = [p for p in ws.jobs_root.iterdir()]

    blobs.put_bytes(ws.artifacts_root, b"weights of a rejected result", ".skops")
    unknown = ws.jobs_root / str(uuid.uuid4())
    (unknown / "work").mkdir(parents=True)
    (unknown / "work" / "job.log").write_text("a job this store never heard of\n")

    for path in (ws.data_root, ws.artifacts_root, ws.jobs_root):
        age(path)
    return ws, failed_job.name, unknown.name


def kinds(found: list[dict]) -> dict[str, int]:
    counted: dict[str, int] = {}
    for item in found:
        counted[item["kind"]] = counted.get(item["kind"], 0) + 1
    return counted


def test_verify_reports_the_write_unit_cleans_and_repair_removes_the_rest(littered, tmp_path):
    ws, failed_job, unknown = littered
    with ws.store.read() as tx:
        [batch] = observation_sql.batch_paths(tx)
    good = ws.root / batch
    good_sha = sha256_file(good)

    code, out, err = run_cli("store", "verify", "--json", workspace=ws)
    assert code == 0, err  # warnings, not integrity failures
    document = json.loads(out)
    assert kinds(document["leftovers"]) == {"orphan-batch": 1, "staging": 1,
                                            "orphan-artifact": 1, "job-folder": 1,
                                            "unknown-job-folder": 1}, document
    assert len(document["warnings"]) == 5 and err.count("warning: leftover") == 5
    paths = {item["path"] for item in document["leftovers"]}
    assert f"jobs/{failed_job}" in paths and f"jobs/{unknown}" in paths
    assert batch not in paths
    assert all((ws.root / p).exists() for p in paths)  # verify alone removes nothing

    # a staging file whose writer still runs (this test process) is never taken
    alive = ws.data_root / "batches" / f".staging-{os.getpid()}-inprogress.parquet"
    alive.write_bytes(b"PAR1")
    age(alive)
    fresh_sha, fresh = blobs.put_bytes(ws.artifacts_root, b"a result registering now", ".skops")

    # the next write unit of any command removes what is safe: here `ct resume`, which has
    # nothing to do but still opens a write unit
    code, out, err = run_cli("ct", "resume", "--target", "production", workspace=ws)
    assert code == 0, err
    left = {item.path: item for item in leftovers.find(ws)}
    assert set(left) == {f"jobs/{unknown}"}  # only what needs an operator's say-so
    assert alive.exists() and fresh.exists()  # a live writer and a fresh blob stay
    assert sha256_file(good) == good_sha

    code, out, err = run_cli("store", "verify", "--repair", "--json", workspace=ws)
    assert code == 0, err
    document = json.loads(out)
    assert document["leftovers"] == [] and document["warnings"] == []
    assert any(f"jobs/{unknown}" in r for r in document["repaired"])
    assert not (ws.jobs_root / unknown).exists()
    assert alive.exists() and fresh.exists() and sha256_file(good) == good_sha
    code, out, _ = run_cli("audit", "--json", workspace=ws)
    [repair] = [e for e in json.loads(out)["entries"] if e["action"] == "store-repair"]
    assert repair["detail"]["removed"] == [f"jobs/{unknown}"]


def test_fresh_leftovers_are_reported_by_nobody_and_left_alone(littered):
    """Within the grace period a file may belong to a registration or ingest in flight."""
    ws, _, _ = littered
    for path in (ws.data_root, ws.artifacts_root, ws.jobs_root):
        age(path, 0)  # now
    assert leftovers.find(ws) == []
    code, _, err = run_cli("ct", "resume", "--target", "production", workspace=ws)
    assert code == 0, err
    assert len(leftovers.find(ws, now=time.time() + HOURS_AGO)) == 5


def test_a_blob_written_again_is_fresh_again(tmp_path):
    """A registration that finds its blob already there (same bytes as a rejected result)
    makes it fresh, so a sweep between its copy and its commit does not take it."""
    ws = init_workspace(tmp_path / "ws")
    _, path = blobs.put_bytes(ws.artifacts_root, b"same weights", ".skops")
    age(path)
    assert [f.kind for f in leftovers.find(ws)] == ["orphan-artifact"]
    blobs.put_bytes(ws.artifacts_root, b"same weights", ".skops")
    assert leftovers.find(ws) == []


def test_an_ingest_refused_as_busy_leaves_an_orphan_batch_that_verify_reports(tmp_path):
    """Exit 4 after staging: another process holds the store file (a raw DuckDB connection,
    opened while the ingest stages) when the ingest wants to commit and to clean up."""
    import duckdb

    ws = init_workspace(tmp_path / "ws", config_text=sample_config_text())
    source = sample_slice(tmp_path / "big.parquet", 0, 1)
    batches = ws.data_root / "batches"
    environment = dict(os.environ, MLOPS_TUI_LOCK_TIMEOUT="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlops_tui.cli.main", "--workspace", str(ws.root), "ingest",
         str(source)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=environment)
    deadline = time.monotonic() + 60
    while not list(batches.glob(".staging-*")):
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.0005)
    holder = duckdb.connect(str(ws.store_path))  # an outside holder of the store file
    try:
        _, err = process.communicate(timeout=120)
    finally:
        holder.close()
    assert process.returncode == 4, err
    [orphan] = [p for p in batches.iterdir() if not p.name.startswith(".")]
    with ws.store.read() as tx:
        assert observation_sql.batch_paths(tx) == []
    age(orphan)
    found = leftovers.find(ws)
    assert [(f.kind, f.path) for f in found] == [
        ("orphan-batch", orphan.relative_to(ws.root).as_posix())]
    code, out, err = run_cli("store", "verify", "--repair", "--json", workspace=ws)
    assert code == 0 and not orphan.exists(), err

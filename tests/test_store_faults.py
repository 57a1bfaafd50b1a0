"""Store faults, produced for real: a corrupt store file (bytes flipped in its blocks), a
full disk (a small tmpfs mounted for the test), and a process outside mlops-tui holding
DuckDB's own lock on the store file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from conftest import run_cli

from mlops_tui.services.workspace import Workspace, init_workspace

CONFIG = """
[data]
id_column = "uid"
timestamp_column = "at"
label_column = "y"
numeric = ["a", "b"]
categorical = ["c"]
window = "1h"
max_file_mb = 100
"""
FULL = re.compile(r"^error: no space left on (\S+): [\d,.]+ MB free, [\d,.]+ MB needed")


def write_csv(path: Path, rows: int, start: int = 0) -> Path:
    """Observations with unique ids and rising timestamps; about 60 bytes a row."""
    lines = ["uid,at,a,b,c"]
    for i in range(start, start + rows):
        lines.append(f"id-{i:09d},2026-03-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:"
                     f"{i % 60:02d}Z,{i * 0.37 % 11:.6f},{i * 1.13 % 7:.6f},c{i % 5}")
    path.write_text("\n".join(lines) + "\n")
    return path


def leftovers(folder: Path) -> list[str]:
    """Temporary files: ingest staging, partial backups, DuckDB write-ahead logs of copies."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.name.startswith((".staging-", "tmp_")) or p.name.endswith((".tmp", ".tmp.wal")))


# -- a small disk ---------------------------------------------------------------------------


class SmallDisk:
    """A tmpfs of a few MB and a filler file that leaves a chosen number of bytes free."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.filler = root / "filler"

    def leave(self, free: int) -> None:
        self.release()
        size = self.free() - free
        if size > 0:
            with open(self.filler, "wb") as handle:
                handle.write(b"\0" * size)

    def free(self) -> int:
        info = os.statvfs(self.root)
        return info.f_bavail * info.f_frsize

    def release(self) -> None:
        self.filler.unlink(missing_ok=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    root = tmp_path / "disk"
    root.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16M", "tmpfs", str(root)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip("the disk-full cases need a small tmpfs and mounting one failed "
                    f"(not root, or no CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield SmallDisk(root)
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)


def test_ingest_of_a_batch_that_does_not_fit(small_disk: SmallDisk, tmp_path: Path) -> None:
    ws = init_workspace(small_disk.root / "ws", config_text=CONFIG)
    source = write_csv(tmp_path / "big.csv", 60_000)  # about 3.6 MB
    small_disk.leave(300 * 1024)
    code, out, err = run_cli("ingest", str(source), workspace=ws)
    assert code == 6, err
    assert FULL.match(err), err
    assert len(err.strip().splitlines()) == 1, err
    assert str(small_disk.root) in err and "nothing was ingested" in err
    assert leftovers(ws.root) == []
    with ws.store.read() as tx:
        assert tx.scalar("SELECT count(*) FROM batches") == 0
    assert not list((ws.data_root / "batches").glob("*.parquet"))
    small_disk.release()
    code, out, err = run_cli("ingest", str(source), workspace=ws)
    assert code == 0, err
    with ws.store.read() as tx:
        assert tx.scalar("SELECT sum(rows) FROM batches") == 60_000


def write_labels(path: Path, rows: int) -> Path:
    lines = ["uid,y"] + [f"id-{i:09d},{i * 0.25:.2f}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def wal_size_of_labels(ws: Workspace, staged: Path, probe_dir: Path) -> int:
    """The write-ahead log the labels insert makes, measured on a copy of the store."""
    probe = probe_dir / "probe.duckdb"
    probe.write_bytes(ws.store.db_path.read_bytes())
    connection = duckdb.connect(":memory:")
    connection.execute(f"ATTACH '{probe}' AS p")
    connection.execute("INSERT INTO p.labels SELECT obs_id, label, 'labels.csv', now()::TIMESTAMP"
                       " FROM read_parquet(?)", [str(staged)])
    size = Path(f"{probe}.wal").stat().st_size
    connection.close()
    for path in probe_dir.glob("probe.duckdb*"):
        path.unlink()
    return size


def test_a_commit_whose_checkpoint_fails_reports_that_it_committed(
        small_disk: SmallDisk, tmp_path: Path) -> None:
    """The labels commit fits in the write-ahead log, the checkpoint at DETACH does not:
    the change is committed, and the command must say so (it used to exit 1 with DuckDB's
    "CHECKPOINT during DETACH failed … invalidated")."""
    source = write_labels(tmp_path / "labels.csv", 20_000)
    rehearsal = init_workspace(tmp_path / "rehearsal", config_text=CONFIG)
    assert run_cli("labels", "ingest", str(source), workspace=rehearsal)[0] == 0
    staged = next((rehearsal.data_root / "labels").glob("*.parquet"))
    ws = init_workspace(small_disk.root / "ws", config_text=CONFIG)
    wal = wal_size_of_labels(ws, staged, small_disk.root)
    small_disk.leave(staged.stat().st_size + wal + 48 * 1024)  # the log fits, no new block
    code, out, err = run_cli("labels", "ingest", str(source), workspace=ws)
    assert code == 6, err
    assert FULL.match(err), err
    assert len(err.strip().splitlines()) == 1, err
    assert "the change was committed" in err and "CHECKPOINT" not in err
    assert leftovers(ws.root) == []
    small_disk.release()
    code, out, err = run_cli("labels", "ingest", str(source), workspace=ws)
    assert code == 0 and "already ingested" in err + out, err
    with ws.store.read() as tx:
        assert tx.scalar("SELECT count(*) FROM labels") == 20_000
    assert len(list((ws.data_root / "labels").glob("*.parquet"))) == 1
    assert run_cli("store", "verify", workspace=ws)[0] == 0
    assert run_cli("ingest", str(write_csv(tmp_path / "more.csv", 10)), workspace=ws)[0] == 0
    assert not Path(f"{ws.store.db_path}.wal").exists(), "the next write did not checkpoint"


@pytest.mark.slow
def test_retrain_wait_on_a_full_disk_tells_the_truth_and_reconcile_finishes(
        small_disk: SmallDisk) -> None:
    """`retrain --wait` used to exit 1 with "CHECKPOINT during DETACH failed … invalidated"
    although its writes were committed. Now: exit 6 saying what was committed; after space
    is freed, `jobs reconcile` follows the job to its end and a retrain works."""
    from training_helpers import new_sample_workspace

    ws = new_sample_workspace(small_disk.root / "ws")
    small_disk.leave(2000 * 1024)  # the job runs; the store's next checkpoint does not fit
    code, out, err = run_cli("retrain", "--regime", "suv", "--runner", "local", "--wait",
                             workspace=ws, timeout=300)
    assert code == 6, err
    line = err.strip().splitlines()[-1]
    assert re.match(r"^error: no space left on \S+: [\d,.]+ MB free", line), err
    assert "CHECKPOINT" not in err and "Traceback" not in err
    assert re.search(r"the change was committed|nothing was committed", line), line
    small_disk.release()
    code, out, err = run_cli("jobs", "reconcile", workspace=ws, timeout=300)
    assert code == 0, err
    with ws.store.read() as tx:
        versions = tx.scalar("SELECT count(*) FROM model_versions")
    if versions == 0:  # the job itself had not started: run it again
        code, out, err = run_cli("retrain", "--regime", "suv", "--runner", "local", "--wait",
                                 workspace=ws, timeout=300)
        assert code == 0, err
    with ws.store.read() as tx:
        assert tx.scalar("SELECT count(*) FROM model_versions") == 1
    assert run_cli("store", "verify", workspace=ws)[0] == 0
    assert leftovers(ws.root) == []


def test_a_write_that_does_not_fit_commits_nothing(small_disk: SmallDisk,
                                                   tmp_path: Path) -> None:
    source = write_labels(tmp_path / "labels.csv", 20_000)
    ws = init_workspace(small_disk.root / "ws", config_text=CONFIG)
    small_disk.leave(400 * 1024)  # the staged file fits, its rows in the log do not
    code, out, err = run_cli("labels", "ingest", str(source), workspace=ws)
    assert code == 6, err
    assert err.startswith(f"error: no space left on {ws.root}: "), err
    assert "nothing was ingested" in err
    assert leftovers(ws.root) == [] and not list((ws.data_root / "labels").glob("*"))
    small_disk.release()
    with ws.store.read() as tx:
        assert tx.scalar("SELECT count(*) FROM labels") == 0
    assert run_cli("labels", "ingest", str(source), workspace=ws)[0] == 0


def test_a_backup_that_does_not_fit_then_its_retry(small_disk: SmallDisk, tmp_path: Path,
                                                   workspace: Workspace) -> None:
    with workspace.store.write("fill") as tx:  # a store of a few MB
        tx.execute("INSERT INTO labels SELECT 'obs-' || range, range * 0.5, 'f.csv', "
                   "now()::TIMESTAMP FROM range(100000)")
    destination = small_disk.root / "backups" / "store-copy.duckdb"
    destination.parent.mkdir()
    small_disk.leave(512 * 1024)
    code, out, err = run_cli("store", "backup", str(destination), workspace=workspace)
    assert code == 6, err
    assert FULL.match(err) and str(destination.parent) in err, err
    assert "no backup was written" in err
    assert not destination.exists() and leftovers(small_disk.root) == []
    small_disk.release()
    code, out, err = run_cli("store", "backup", str(destination), workspace=workspace)
    assert code == 0, err  # not exit 3 "already exists"
    copy = duckdb.connect(str(destination), read_only=True)
    assert copy.execute("SELECT count(*) FROM labels").fetchone()[0] == 100_000
    copy.close()
    assert leftovers(small_disk.root) == []
    code, out, err = run_cli("store", "backup", str(destination), workspace=workspace)
    assert code == 3 and "already exists" in err, err  # a real backup is never replaced


def test_init_on_a_full_disk_leaves_nothing_that_blocks_its_retry(
        small_disk: SmallDisk) -> None:
    for free in (0, 300 * 1024):  # the schema's log does not fit / its checkpoint does not
        root = small_disk.root / f"ws-{free}"
        small_disk.leave(free)
        code, out, err = run_cli("init", str(root))
        assert code == 6, err
        assert err.startswith(f"error: no space left on {root}: "), err
        assert "no store was created" in err
        assert not (root / "store.duckdb").exists() and not (root / "store.duckdb.wal").exists()
        small_disk.release()
        code, out, err = run_cli("init", str(root))
        assert code == 0, err


def test_disk_full_is_one_kind_for_python_and_duckdb(small_disk: SmallDisk) -> None:
    from mlops_tui.store import space

    small_disk.leave(0)
    with pytest.raises(OSError) as python_error:
        (small_disk.root / "x").write_bytes(b"x" * 100_000)
    connection = duckdb.connect(":memory:")
    with pytest.raises(duckdb.Error) as duckdb_error:
        connection.execute(f"COPY (SELECT range FROM range(100000)) TO "
                           f"'{small_disk.root / 'y.parquet'}' (FORMAT parquet)")
    assert space.is_disk_full(python_error.value) and space.is_disk_full(duckdb_error.value)
    assert not space.is_disk_full(duckdb.IOException("IO Error: Could not set lock on file"))
    assert space.free_bytes(small_disk.root / "not" / "there") == small_disk.free()


# -- a corrupt store ----------------------------------------------------------------------

BLOCK = 256 * 1024
HEADERS = 3 * 4096  # the file header and two database headers come before the blocks


def flip(path: Path, offset: int, count: int = 16) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        data = handle.read(count)
        handle.seek(offset)
        handle.write(bytes(b ^ 0xFF for b in data))


def read_everything(ws: Workspace) -> None:
    """Every row of every table, so that every block in use is read and checksummed."""
    with ws.store.read() as tx:
        tables = [row[0] for row in tx.all(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()")]
        for table in tables:
            tx.all(f'SELECT * FROM "{table}"')


def test_bad_checksums_are_integrity_not_busy(register, workspace: Workspace) -> None:
    """Flip bytes inside each block of a real store after it was written: DuckDB reports
    'Corrupt database file: computed checksum … in block at location N' — "block" once
    matched a test for "lock" and was reported as exit 4, "open elsewhere"."""
    from mlops_tui.core.errors import MlopsError

    for seed in range(3):
        register(seed=seed, metrics={"r2": 0.5 + seed / 10})
    store = workspace.store.db_path
    pristine = store.read_bytes()
    assert not Path(f"{store}.wal").exists()
    header = 4096 + 100  # the first database header: read by every ATTACH
    corrupt = 0
    for offset in [header] + list(range(HEADERS + 1000, len(pristine), BLOCK)):
        store.write_bytes(pristine)
        flip(store, offset)
        try:
            read_everything(workspace)
        except MlopsError as error:  # a block no table uses goes unnoticed: no error
            assert error.code == 5, (offset, error.message)
            assert error.message.startswith(f"store {store} is corrupt: "), error.message
            assert "checksum" in error.message and "\n" not in error.message
            corrupt += 1
    assert corrupt >= 2, "flipped blocks went unnoticed"
    store.write_bytes(pristine)
    flip(store, header)
    code, out, err = run_cli("models", "list", workspace=workspace)
    assert code == 5, err
    assert err.startswith(f"error: store {store} is corrupt: ") and "open elsewhere" not in err
    assert len(err.strip().splitlines()) == 1
    code, out, err = run_cli("store", "verify", "--json", workspace=workspace)
    assert code == 5 and '"kind": "integrity"' in out.replace('":"', '": "'), out


# -- a process outside mlops-tui holding DuckDB's lock ------------------------------------

HOLDER = """
import sys, duckdb
connection = duckdb.connect(sys.argv[1])
print("held", flush=True)
sys.stdin.readline()
connection.close()
print("released", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def holder(workspace: Workspace) -> Iterator[subprocess.Popen]:
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(workspace.store.db_path)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def test_an_outside_holder_is_waited_for_then_named(workspace: Workspace,
                                                    holder: subprocess.Popen) -> None:
    started = time.monotonic()
    code, out, err = run_cli("models", "list", workspace=workspace,
                             env={"MLOPS_TUI_LOCK_TIMEOUT": "3"})
    elapsed = time.monotonic() - started
    assert code == 4, err
    assert f"pid {holder.pid}" in err and "gave up after 3s" in err, err
    assert len(err.strip().splitlines()) == 1
    assert 3.0 <= elapsed < 3.0 + 4.0, elapsed  # the timeout, plus the interpreter's start


def test_a_command_succeeds_when_the_outside_holder_lets_go(workspace: Workspace,
                                                            holder: subprocess.Popen) -> None:
    from conftest import ISOLATED_VARIABLES

    environment = {k: v for k, v in os.environ.items() if k not in ISOLATED_VARIABLES}
    started = time.monotonic()
    command = subprocess.Popen(
        [sys.executable, "-m", "mlops_tui.cli.main", "--workspace", str(workspace.root),
         "store", "backup", str(workspace.root.parent / "copy.duckdb")],
        env=environment | {"MLOPS_TUI_LOCK_TIMEOUT": "10"}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    time.sleep(2.0)
    assert command.poll() is None, command.communicate()  # still waiting, not failed at once
    holder.stdin.write("\n")
    holder.stdin.flush()
    assert holder.stdout.readline().strip() == "released"
    out, err = command.communicate(timeout=30)
    assert command.returncode == 0, err
    assert 2.0 <= time.monotonic() - started < 10.0
    assert (workspace.root.parent / "copy.duckdb").exists()

"""Helpers for the SIGKILL matrix and the contention run: prepared workspaces, the real CLI
with a kill switch, what the store holds, and the tally printed at the end of the session.

Everything goes through `python -m mlops_tui.cli.main` subprocesses and `store verify`; the
store is only read (in a read unit, under its lock) to compare what it holds with what the
commands reported, table by table, as plain rows.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import ISOLATED_VARIABLES
from crash_tally import Ran, Tally, describe

# The store's fault points (mlops_tui/store/db.py) and the serving folder's
# (mlops_tui/services/serving.py), spelled as MLOPS_TUI_FAULT takes them: "<point>@<unit>".
STORE_POINTS = ("after_begin", "before_commit", "after_commit")
SERVING_POINTS = ("generation_built", "link_staged")
# Killed at these, the store has committed the unit (the serving ones come after the commit).
COMMITTED_POINTS = frozenset({"after_commit", *SERVING_POINTS})
KILLED = -signal.SIGKILL
TIMEOUT = 180  # one command, however loaded the machine; a hang is a failure, not a wait
SETTLE_SECONDS = 120  # how long a pending job may take to finish after its launcher died

# -- prepared workspaces -------------------------------------------------------------------


def _cli_ok(root: Path, *args: str) -> str:
    ran = run(root, *args)
    assert ran.code == 0, describe(ran) + "\n" + ran.out + ran.err
    assert "Traceback" not in ran.err, ran.err
    return ran.out


def write_observations(path: Path, start: int, rows: int, *, csv: bool = False) -> Path:
    """Rows [start, start+rows) of the packaged sample scenario, in time order, as a file of
    their own: distinct ranges are distinct batches (different content, different ids)."""
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    from mlops_tui.sample import packaged_observations_path

    table = _sample_table(str(packaged_observations_path())).slice(start, rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    if csv:
        pa_csv.write_csv(table, path)
    else:
        pq.write_table(table, path)
    return path


_tables: dict[str, Any] = {}


def _sample_table(source: str):
    if source not in _tables:
        import pyarrow.parquet as pq

        _tables[source] = pq.read_table(source).sort_by("ts")
    return _tables[source]


BASE_ROWS = 1800  # rows 0..1799 are in the base workspace; ingest runs take later ones


def build_base(root: Path) -> None:
    """A small real workspace: the sample scenario's contract and pipeline, 1,800 rows,
    sedan v1 and v2 trained by the local runner, v1 active on production and sedan's
    champion. Small on purpose: a retrain takes seconds, not tens of seconds."""
    from mlops_tui.sample import packaged_pipeline_dir
    from mlops_tui.services.demo import sample_config_text

    _cli_ok(root, "init", str(root))
    (root / "mlops.toml").write_text(sample_config_text())
    shutil.copytree(packaged_pipeline_dir(), root / "pipeline",
                    ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
    batch = write_observations(root.parent / "base-batch.parquet", 0, BASE_ROWS)
    _cli_ok(root, "ingest", str(batch))
    for _ in range(2):
        _cli_ok(root, "retrain", "--regime", "sedan", "--wait", "--runner", "local")
    _cli_ok(root, "deploy", "v1", "--reason", "base")
    _cli_ok(root, "deploy", "v1", "--champion-of", "sedan", "--reason", "base")


def build_pending(base: Path, root: Path) -> None:
    """The base with a job whose harness finished but whose launcher was killed before it
    recorded the end: the store says running; `jobs reconcile` has a result to ingest."""
    copy_workspace(base, root)
    ran = run(root, "retrain", "--regime", "sedan", "--wait", "--runner", "local",
              fault="before_commit@job-finish")
    assert ran.code == KILLED, describe(ran) + "\n" + ran.out + ran.err


def build_behind(base: Path, root: Path) -> None:
    """The base with production moved to v2 in the store, killed before the serving folder
    followed: `serving reconcile` (or `store verify`) has a publish to do."""
    copy_workspace(base, root)
    ran = run(root, "deploy", "v2", "--reason", "behind", fault="after_commit@deploy")
    assert ran.code == KILLED, describe(ran) + "\n" + ran.out + ran.err


def copy_workspace(source: Path, destination: Path) -> Path:
    shutil.copytree(source, destination, symlinks=True)
    return destination


@contextmanager
def _shared_lock(path: Path) -> Iterator[None]:
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def prepared_template(shared: Path, name: str) -> Path:
    """base, pending or behind, built once per session (xdist workers share them): each
    behind its own lock, so one worker can start on the base while another builds."""
    builders = {"pending": build_pending, "behind": build_behind}
    base = shared / "crash-base"
    with _shared_lock(shared / "crash-base.lock"):
        if not (shared / "crash-base.done").exists():
            shutil.rmtree(base, ignore_errors=True)
            build_base(base)
            (shared / "crash-base.done").write_text("ok")
    if name == "base":
        return base
    root = shared / f"crash-{name}"
    with _shared_lock(shared / f"crash-{name}.lock"):
        if not (shared / f"crash-{name}.done").exists():
            shutil.rmtree(root, ignore_errors=True)
            builders[name](base, root)
            (shared / f"crash-{name}.done").write_text("ok")
    return root


class Templates:
    """The prepared workspaces, each built on first use."""

    def __init__(self, shared: Path) -> None:
        self.shared = shared

    def __getitem__(self, name: str) -> Path:
        return prepared_template(self.shared, name)


def templates_for(tmp_path_factory: Any) -> Templates:
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    return Templates(shared)


# -- what the store holds ------------------------------------------------------------------


@dataclass(frozen=True)
class StoreRows:
    """The append-only tables, row by row (seq order), and the current job states."""

    events: tuple[tuple, ...]  # (seq, kind, subject, to_version, reason)
    audit: tuple[tuple, ...]  # (seq, action, subject, event_seq)
    batches: tuple[tuple, ...]  # (id, sha256, source, path)
    versions: tuple[tuple, ...]  # (number, job_id, artifact_sha256)
    job_events: tuple[tuple, ...]  # (seq, job_id, state)
    jobs: dict[str, str]  # job id -> current state

    def current(self, kind: str, subject: str) -> int | None:
        found = [e[3] for e in self.events if e[1] == kind and e[2] == subject]
        return found[-1] if found else None

    def tagged(self, reason: str) -> list[tuple]:
        return [e for e in self.events if e[4] == reason]

    def unfinished(self) -> list[str]:
        return [j for j, s in self.jobs.items() if s in ("requested", "created", "running",
                                                          "succeeded")]

    def states_of(self, job_id: str) -> list[str]:
        return [e[2] for e in self.job_events if e[1] == job_id]

    def versions_of(self, job_id: str) -> list[int]:
        return [v[0] for v in self.versions if v[1] == job_id]


def read_rows(root: Path) -> StoreRows:
    from mlops_tui.services.workspace import open_workspace

    workspace = open_workspace(root, command="crash-matrix audit")
    with workspace.store.read() as tx:
        return StoreRows(
            events=tuple(tx.all("SELECT seq, kind, subject, to_version, reason "
                                "FROM deployment_events ORDER BY seq")),
            audit=tuple(tx.all("SELECT seq, action, subject, event_seq FROM audit ORDER BY seq")),
            batches=tuple(tx.all("SELECT id, sha256, source, path FROM batches ORDER BY id")),
            versions=tuple(tx.all("SELECT number, job_id, artifact_sha256 FROM model_versions "
                                  "ORDER BY number")),
            job_events=tuple(tx.all("SELECT seq, job_id, state FROM job_events ORDER BY seq")),
            jobs=dict(tx.all("SELECT id, state FROM current_jobs")),
        )


def lost_rows(before: StoreRows, after: StoreRows) -> list[str]:
    """Rows present before and gone (or changed) after: the tables only ever grow."""
    lost = []
    for name in ("events", "audit", "batches", "versions", "job_events"):
        old, new = getattr(before, name), getattr(after, name)
        if new[:len(old)] != old:
            missing = [row for row in old if row not in new]
            lost.append(f"{name}: {len(missing)} earlier row(s) gone or changed: {missing[:3]}")
    return lost


def serving_manifest(root: Path) -> dict | None:
    """serving/current/manifest.json, the file a serving process reads (None: none)."""
    try:
        return json.loads((root / "serving" / "current" / "manifest.json").read_text())
    except (OSError, ValueError):
        return None


def serving_mismatch(root: Path, rows: StoreRows) -> list[str]:
    """How the published manifest differs from the store's current versions."""
    manifest = serving_manifest(root)
    expected: dict[str, dict[str, str]] = {"targets": {}, "champions": {}}
    for _, kind, subject, to_version, _ in rows.events:
        section = "targets" if kind == "active" else "champions"
        expected[section][subject] = f"v{to_version}"
    if manifest is None:
        return [] if not rows.events else ["serving/current has no readable manifest"]
    problems = []
    latest = rows.events[-1][0] if rows.events else None
    if manifest.get("generation") != latest:
        problems.append(f"manifest generation {manifest.get('generation')}, store at {latest}")
    for section, wanted in expected.items():
        found = {k: (v or {}).get("version") for k, v in (manifest.get(section) or {}).items()}
        if found != wanted:
            problems.append(f"manifest {section} {found}, store {wanted}")
    return problems


# -- running commands ----------------------------------------------------------------------


def _environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k not in ISOLATED_VARIABLES}
    environment["COLUMNS"] = "200"
    environment["MLOPS_TUI_LOCK_TIMEOUT"] = os.environ.get("MLOPS_TUI_LOCK_TIMEOUT", "5")
    environment.update(extra or {})
    return environment


def cli_command(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "mlops_tui.cli.main", "--workspace", str(root), *args]


def run(root: Path, *args: str, fault: str = "") -> Ran:
    """One CLI command to its end (with MLOPS_TUI_FAULT=fault when given)."""
    started = time.monotonic()
    done = subprocess.run(cli_command(root, *args), capture_output=True, text=True,
                          env=_environment({"MLOPS_TUI_FAULT": fault} if fault else None),
                          timeout=TIMEOUT, check=False)
    return Ran(tuple(args), done.returncode, done.stdout, done.stderr,
               time.monotonic() - started, fault=fault)


def run_killed_after(root: Path, delay: float, *args: str) -> Ran:
    """Start a CLI command and SIGKILL it `delay` seconds later (unless it ended first)."""
    started = time.monotonic()
    process = subprocess.Popen(cli_command(root, *args), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=_environment())
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
    out, err = process.communicate(timeout=TIMEOUT)
    return Ran(tuple(args), process.returncode, out, err, time.monotonic() - started,
               delay=delay)


# -- one case: a workspace, its commands, their repair and verification --------------------


class Case:
    """A workspace that crash runs follow one another in, with what its store held last."""

    def __init__(self, root: Path, tally: Tally) -> None:
        self.root = root
        self.tally = tally
        self.rows = read_rows(root)

    def ok(self, *args: str) -> Ran:
        """A command that must succeed (setup, or timing a command for random kills)."""
        ran = run(self.root, *args)
        self.tally.saw(ran)
        if ran.code != 0:
            self.tally.violations.append(f"{self.tally.case}: {describe(ran)}: {ran.err[-400:]}")
        self.rows = read_rows(self.root)
        return ran

    def kill_at(self, fault: str, *args: str) -> Ran:
        ran = run(self.root, *args, fault=fault)
        self._count(ran)
        if ran.code != KILLED:
            self.tally.unreached.append(f"{self.tally.case}: {describe(ran)}: the command never "
                                        f"reached {fault} (renamed unit?) {ran.err[-300:]}")
        return ran

    def kill_after(self, delay: float, *args: str) -> Ran:
        ran = run_killed_after(self.root, delay, *args)
        self._count(ran)
        if ran.code not in (0, KILLED):
            self.tally.violations.append(f"{self.tally.case}: {describe(ran)}: {ran.err[-400:]}")
        return ran

    def _count(self, ran: Ran) -> None:
        self.tally.runs += 1
        self.tally.saw(ran)
        if ran.code == KILLED:
            self.tally.killed += 1
        elif ran.delay is not None:
            self.tally.finished_before_kill += 1

    def settle(self, ran: Ran) -> tuple[StoreRows, StoreRows]:
        """(rows right after the kill, rows after repair and verify). Repairs are the
        commands documented to finish what a crash left: `jobs reconcile` for unfinished
        jobs, `store verify` itself for a serving folder behind the store."""
        what = f"{self.tally.case}: after {describe(ran)}"
        crashed = read_rows(self.root)
        self.tally.violations.extend(f"{what}: {p}" for p in torn_units(crashed))
        if crashed.events and serving_manifest(self.root) is None:
            self.tally.violations.append(f"{what}: serving/current does not lead to a "
                                         "complete generation")
        rows = crashed
        deadline = time.monotonic() + SETTLE_SECONDS
        while rows.unfinished():
            repair = run(self.root, "jobs", "reconcile", "--json")
            self.tally.repairs += 1
            self.tally.saw(repair)
            if repair.code != 0:
                self.tally.violations.append(f"{what}: {describe(repair)}: {repair.err[-400:]}")
                break
            rows = read_rows(self.root)
            if rows.unfinished():
                if time.monotonic() > deadline:
                    self.tally.violations.append(f"{what}: jobs {rows.unfinished()} still "
                                                 f"unfinished after {SETTLE_SECONDS}s")
                    break
                time.sleep(1.0)  # the harness is still training
        # `store verify` rebuilds a serving folder a crash left behind (its documented
        # repair); should it only report that, `serving reconcile` is the repair to run.
        verify = run(self.root, "store", "verify", "--json")
        self.tally.saw(verify)
        if verify.code != 0 and serving_mismatch(self.root, read_rows(self.root)):
            repair = run(self.root, "serving", "reconcile", "--json")
            self.tally.repairs += 1
            self.tally.saw(repair)
            verify = run(self.root, "store", "verify", "--json")
            self.tally.saw(verify)
        if verify.code != 0:
            self.tally.violations.append(f"{what}: store verify exit {verify.code}: "
                                         f"{(verify.out + verify.err)[-600:]}")
        after = read_rows(self.root)
        self.tally.violations.extend(f"{what}: {p}" for p in serving_mismatch(self.root, after))
        self.tally.lost.extend(f"{what}: {p}" for p in lost_rows(self.rows, after))
        return crashed, after


def torn_units(rows: StoreRows) -> list[str]:
    """Halves of one write unit found without the other half."""
    problems = []
    audited = {a[3] for a in rows.audit if a[3] is not None}
    problems += [f"deployment event {e[0]} has no audit row" for e in rows.events
                 if e[0] not in audited]
    for number, job_id, _ in rows.versions:
        if job_id and rows.jobs.get(job_id) != "ingested":
            problems.append(f"v{number} registered from job {job_id[:8]}, which is "
                            f"{rows.jobs.get(job_id)}, not ingested")
    for job_id, state in rows.jobs.items():
        if state == "ingested" and len(rows.versions_of(job_id)) != 1:
            problems.append(f"job {job_id[:8]} ingested with versions "
                            f"{rows.versions_of(job_id)}")
    return problems

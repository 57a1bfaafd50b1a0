"""The SIGKILL matrix: deploy, rollback, ingest, retrain (local runner, --wait), jobs
reconcile and serving publish, each killed at every fault point of the store's test hook
(MLOPS_TUI_FAULT) and at seeded random times (a real `os.kill(pid, SIGKILL)`).

After every kill: what the kill left for a documented repair is repaired (`jobs reconcile`
for an unfinished job; `store verify` rebuilds a serving folder left behind the store, with
`serving reconcile` as the fallback should it only report it), `store verify` exits 0, the store's tables still hold every row they held before (nothing committed is
lost), the killed command's write is there completely or not at all (and there when its
fault point comes after the commit), the serving manifest matches the store, and no output
holds a Python traceback. Runs in one case follow one another in the same workspace, so each
also checks that the state the previous kill left is one the next command works on.

Random kills land between 30% and 105% of the command's measured duration: the first third
is interpreter start-up and imports, where nothing is written. CRASH_MATRIX_RANDOM_SCALE
(default 1) scales the number of random runs, for development; the figures are printed in
the terminal summary (and written to $CRASH_MATRIX_SUMMARY when set).
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import pytest
from crash_helpers import (
    BASE_ROWS,
    COMMITTED_POINTS,
    SERVING_POINTS,
    STORE_POINTS,
    Case,
    StoreRows,
    Templates,
    copy_workspace,
    templates_for,
    write_observations,
)
from crash_tally import MATRIX_PROPERTY, Ran, Tally, describe

pytestmark = pytest.mark.slow

SCALE = float(os.environ.get("CRASH_MATRIX_RANDOM_SCALE", "1"))


def points(*units: str, serving: bool = False) -> list[str]:
    found = [f"{point}@{unit}" for unit in units for point in STORE_POINTS]
    if serving:
        found += [f"{point}@{units[0]}" for point in SERVING_POINTS]
    return found


def randoms(count: int) -> int:
    return max(1, round(count * SCALE))


# (command, mode, fault points or number of random kills); the slow ones first, so xdist
# starts them early. Random cases are split so the two workers share the load evenly.
CASES: list[tuple[str, str, list[str] | int]] = [
    ("retrain", "points-start", points("retrain-request", "job-created", "job-running")),
    ("retrain", "points-end", points("job-finish", "register")),
    ("retrain", "random", randoms(3)),
    ("reconcile", "points", points("job-finish", "register")),
    ("reconcile", "random", randoms(4)),
    ("deploy", "points", points("deploy", serving=True) + ["after_begin@read"]),
    ("deploy", "points-expect", points("deploy", serving=True)),
    ("deploy", "points-champion", points("deploy", serving=True)),
    ("rollback", "points-to", points("rollback", serving=True) + ["after_begin@read"]),
    ("rollback", "points-undo", points("rollback", serving=True)),
    ("ingest", "points-parquet", points("ingest") + ["after_begin@read"]),
    ("ingest", "points-csv", points("ingest")),
    ("serving", "points", [f"{p}@reconcile" for p in SERVING_POINTS] + ["after_begin@read"]),
    *[("deploy", f"random-{how}", randoms(20))
      for how in ("target", "expect", "champion", "target-2")],
    *[("rollback", f"random-{i}", randoms(19)) for i in range(3)],
    *[("ingest", f"random-{i}", randoms(19)) for i in range(4)],
    *[("serving", f"random-{i}", randoms(14)) for i in range(2)],
]


def planned(plan: list[str] | int) -> int:
    return plan if isinstance(plan, int) else len(plan)


@pytest.fixture(scope="session")
def templates(tmp_path_factory) -> Templates:
    return templates_for(tmp_path_factory)


def test_the_matrix_plans_at_least_300_runs():
    if SCALE < 1:
        pytest.skip(f"CRASH_MATRIX_RANDOM_SCALE={SCALE}: a development run")
    assert sum(planned(plan) for _, _, plan in CASES) >= 300


@pytest.mark.parametrize(("command", "mode", "plan"), CASES,
                         ids=[f"{c}[{m}]" for c, m, _ in CASES])
def test_sigkill_matrix(command, mode, plan, templates, tmp_path, record_property):
    tally = Tally(f"{command}[{mode}]")
    try:
        RUNNERS[command](templates, tmp_path, plan, tally, random.Random(f"{command}-{mode}"),
                         mode)
    finally:
        record_property(MATRIX_PROPERTY, tally.document())
    assert tally.runs == planned(plan)
    tally.assert_clean()


def faulted(ran: Ran) -> tuple[bool | None, str]:
    """(whether the killed unit committed: None when unknown, its unit name)."""
    if ran.fault:
        point, _, unit = ran.fault.partition("@")
        return point in COMMITTED_POINTS, unit
    return (True if ran.code == 0 else None), ""


def delay(rng: random.Random, seconds: float) -> float:
    return rng.uniform(0.3, 1.05) * seconds


# -- deploy and rollback -------------------------------------------------------------------


def other(version: int | None) -> int:
    return 2 if version == 1 else 1


def change_args(rows: StoreRows, command: str, mode: str, tag: str
                ) -> tuple[tuple[str, ...], tuple[str, str, int]]:
    """The command line of one change and the (kind, subject, version) it must record."""
    if "champion" in mode:
        to = other(rows.current("champion", "sedan"))
        return (("deploy", f"v{to}", "--champion-of", "sedan", "--reason", tag, "--json"),
                ("champion", "sedan", to))
    current = rows.current("active", "production")
    to = other(current)
    if command == "rollback":
        return (("rollback", "--target", "production", "--to", f"v{to}", "--reason", tag,
                 "--json"), ("active", "production", to))
    expect = ("--expect-current", f"v{current}") if "expect" in mode else ()
    return (("deploy", f"v{to}", "--reason", tag, *expect, "--json"),
            ("active", "production", to))


def check_change(case: Case, ran: Ran, tag: str, expected: tuple[str, str, int]) -> None:
    crashed, after = case.settle(ran)
    committed, unit = faulted(ran)
    if unit == "read":
        committed = False
    what = f"{case.tally.case}: after {describe(ran)}"
    tagged = after.tagged(tag)
    new = after.events[len(case.rows.events):]
    if committed and not tagged:
        case.tally.lost.append(f"{what}: its deployment event is not in the store")
    if committed is False and tagged:
        case.tally.violations.append(f"{what}: killed before the commit, yet {tagged} is there")
    if len(tagged) > 1 or len(new) != len(tagged):
        case.tally.violations.append(f"{what}: events {new} appeared, expected {tagged}")
    if tagged and tuple(tagged[0][1:4]) != expected:
        case.tally.violations.append(f"{what}: recorded {tagged[0]}, expected {expected}")
    kind, subject, _ = expected
    if not tagged and after.current(kind, subject) != case.rows.current(kind, subject):
        case.tally.violations.append(f"{what}: {subject} changed without an event")
    case.rows = after


def run_changes(templates, tmp_path, plan, tally, rng, mode: str, *, command: str
                ) -> None:
    case = Case(copy_workspace(templates["base"], tmp_path / "ws"), tally)
    if isinstance(plan, list):
        for index, fault in enumerate(plan):
            tag = f"{command}-{mode}-{index}"
            if "undo" in mode:  # a fresh change to undo, then the killed plain rollback
                to = other(case.rows.current("active", "production"))
                case.ok("deploy", f"v{to}", "--reason", f"{tag}-setup")
                expected = ("active", "production", other(to))
                ran = case.kill_at(fault, "rollback", "--target", "production",
                                   "--reason", tag, "--json")
            else:
                args, expected = change_args(case.rows, command, mode, tag)
                ran = case.kill_at(fault, *args)
            check_change(case, ran, tag, expected)
        return
    args, _ = change_args(case.rows, command, mode, f"{command}-{mode}-timing")
    seconds = case.ok(*args).seconds
    for index in range(plan):
        tag = f"{command}-{mode}-{index}"
        args, expected = change_args(case.rows, command, mode, tag)
        ran = case.kill_after(delay(rng, seconds), *args)
        check_change(case, ran, tag, expected)


# -- ingest --------------------------------------------------------------------------------


def run_ingests(templates, tmp_path, plan, tally, rng, mode: str) -> None:
    case = Case(copy_workspace(templates["base"], tmp_path / "ws"), tally)
    files = tmp_path / "files"

    def batch(index: int, as_csv: bool) -> Path:
        suffix = "csv" if as_csv else "parquet"
        return write_observations(files / f"batch-{index}.{suffix}",
                                  BASE_ROWS + 40 * index, 40, csv=as_csv)

    def one(ran_for: Path, run) -> None:
        ran = run()
        crashed, after = case.settle(ran)
        committed, unit = faulted(ran)
        if unit == "read":
            committed = False
        what = f"{tally.case}: after {describe(ran)}"
        found = [b for b in after.batches if b[2] == ran_for.name]
        new = after.batches[len(case.rows.batches):]
        if committed and not found:
            tally.lost.append(f"{what}: batch {ran_for.name} is not in the store")
        if committed is False and found:
            tally.violations.append(f"{what}: killed before the commit, yet {found} is there")
        if len(found) > 1 or len(new) != len(found):
            tally.violations.append(f"{what}: batches {new} appeared, expected {found}")
        for _, _, _, path in found:
            if not (case.root / path).is_file():
                tally.lost.append(f"{what}: batch file {path} is missing")
        case.rows = after

    if isinstance(plan, list):
        as_csv = "csv" in mode
        for index, fault in enumerate(plan):
            source = batch(index, as_csv)
            one(source, lambda s=source, f=fault: case.kill_at(f, "ingest", str(s), "--json"))
        return
    seconds = case.ok("ingest", str(batch(0, False)), "--json").seconds
    for index in range(1, plan + 1):
        source = batch(index, rng.random() < 0.5)
        wait = delay(rng, seconds)
        one(source, lambda s=source, w=wait: case.kill_after(w, "ingest", str(s), "--json"))


# -- serving publish -----------------------------------------------------------------------


def run_serving(templates, tmp_path, plan, tally, rng, mode: str) -> None:
    """`serving reconcile` on a folder a crashed deploy left behind the store."""
    seconds = 0.0
    if not isinstance(plan, list):
        timing = Case(copy_workspace(templates["behind"], tmp_path / "timing"), tally)
        seconds = timing.ok("serving", "reconcile", "--json").seconds
    faults = plan if isinstance(plan, list) else [None] * plan
    for index, fault in enumerate(faults):
        root = copy_workspace(templates["behind"], tmp_path / f"ws-{index}")
        case = Case(root, tally)
        args = ("serving", "reconcile", "--json")
        ran = case.kill_at(fault, *args) if fault else case.kill_after(delay(rng, seconds), *args)
        crashed, after = case.settle(ran)
        if after.events != case.rows.events or after.audit != case.rows.audit:
            tally.violations.append(f"{tally.case}: after {describe(ran)}: publishing "
                                    "wrote to the store")
        shutil.rmtree(root)


# -- jobs: reconcile and retrain -----------------------------------------------------------


def check_jobs(case: Case, ran: Ran, before: StoreRows, crashed: StoreRows,
               after: StoreRows) -> None:
    """Every job ends final; a job that ran (its result exists) ends ingested with exactly
    one version; a rejected result or a second version is a violation."""
    what = f"{case.tally.case}: after {describe(ran)}"
    for job_id, state in after.jobs.items():
        if job_id in before.jobs and job_id not in before.unfinished():
            continue  # final before this run
        versions = after.versions_of(job_id)
        history = after.states_of(job_id)
        if state == "rejected":
            case.tally.violations.append(f"{what}: job {job_id[:8]} rejected: {history}")
        if state == "ingested" and len(versions) != 1:
            case.tally.violations.append(f"{what}: job {job_id[:8]} has versions {versions}")
        if state != "ingested" and ("running" in history or "succeeded" in history):
            case.tally.lost.append(f"{what}: job {job_id[:8]} ran but ended {state} "
                                   f"({history}), its result not registered")
        if ran.code == 0 and state != "ingested":
            case.tally.lost.append(f"{what}: exit 0 but job {job_id[:8]} is {state}")
    registered = sum(1 for j in after.jobs if after.versions_of(j)) - sum(
        1 for j in before.jobs if before.versions_of(j))
    if len(after.versions) - len(before.versions) != registered:
        case.tally.violations.append(f"{what}: versions {after.versions[len(before.versions):]} "
                                     "appeared without an ingested job")


def run_reconciles(templates, tmp_path, plan, tally, rng, mode: str) -> None:
    """`jobs reconcile` ingesting the result of a job whose launcher was killed."""
    seconds = 0.0
    if not isinstance(plan, list):
        timing = Case(copy_workspace(templates["pending"], tmp_path / "timing"), tally)
        seconds = timing.ok("jobs", "reconcile", "--json").seconds
    faults = plan if isinstance(plan, list) else [None] * plan
    for index, fault in enumerate(faults):
        root = copy_workspace(templates["pending"], tmp_path / f"ws-{index}")
        case = Case(root, tally)
        (pending,) = case.rows.unfinished()
        args = ("jobs", "reconcile", "--json")
        ran = case.kill_at(fault, *args) if fault else case.kill_after(delay(rng, seconds), *args)
        before = case.rows
        crashed, after = case.settle(ran)
        committed, unit = faulted(ran)
        if unit == "register" and committed and crashed.jobs[pending] != "ingested":
            tally.violations.append(f"{tally.case}: after {describe(ran)}: the register "
                                    "unit committed but the job is not ingested")
        if after.jobs.get(pending) != "ingested":
            tally.lost.append(f"{tally.case}: after {describe(ran)}: job {pending[:8]} "
                              f"is {after.jobs.get(pending)}, its result not registered")
        check_jobs(case, ran, before, crashed, after)
        shutil.rmtree(root)


RETRAIN = ("retrain", "--regime", "sedan", "--wait", "--runner", "local", "--json")


def run_retrains(templates, tmp_path, plan, tally, rng, mode: str) -> None:
    case = Case(copy_workspace(templates["base"], tmp_path / "ws"), tally)
    if isinstance(plan, list):
        runs = [(fault, None) for fault in plan]
    else:
        seconds = case.ok(*RETRAIN).seconds
        runs = [(None, delay(rng, seconds)) for _ in range(plan)]
    for fault, wait in runs:
        before = case.rows
        ran = case.kill_at(fault, *RETRAIN) if fault else case.kill_after(wait, *RETRAIN)
        crashed, after = case.settle(ran)
        new_jobs = [j for j in after.jobs if j not in before.jobs]
        committed, unit = faulted(ran)
        if unit == "retrain-request" and not committed and new_jobs:
            tally.violations.append(f"{tally.case}: after {describe(ran)}: a job was "
                                    "created although the request never committed")
        expect_job = ran.code == 0 or (unit and (unit != "retrain-request" or committed))
        if len(new_jobs) > 1 or (expect_job and not new_jobs):
            tally.violations.append(f"{tally.case}: after {describe(ran)}: new jobs "
                                    f"{new_jobs}")
        check_jobs(case, ran, before, crashed, after)
        case.rows = after


RUNNERS = {
    "deploy": lambda *a: run_changes(*a, command="deploy"),
    "rollback": lambda *a: run_changes(*a, command="rollback"),
    "ingest": run_ingests,
    "serving": run_serving,
    "reconcile": run_reconciles,
    "retrain": run_retrains,
}


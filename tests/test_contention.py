"""Contention: 8 real CLI processes at a time for 60 s on one workspace, mixing deploys (with
and without --expect-current), rollbacks, ingests, status and list reads and jobs reconcile.

Each of 8 threads runs one `mlops-tui` process after another and logs what it ran and what
it printed. Afterwards: no traceback anywhere, every exit is 0 (done), 3 (conflict) or 4
(busy), `store verify` passes, and the store holds exactly the writes the logs report: every
deployment event of an exit-0 command with its seq, version and one audit row, no event of
a refused one and none nobody reported; every new batch an exit-0 ingest reported, and no
other; the job left pending in the workspace ingested once, as one version.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from crash_helpers import (
    BASE_ROWS,
    Templates,
    copy_workspace,
    read_rows,
    run,
    serving_mismatch,
    templates_for,
    write_observations,
)
from crash_tally import CONTENTION_PROPERTY

pytestmark = pytest.mark.slow

PROCESSES = 8
SECONDS = float(os.environ.get("CONTENTION_SECONDS", "60"))  # shorter only to develop
ALLOWED_EXITS = {0, 3, 4}


@pytest.fixture(scope="session")
def templates(tmp_path_factory) -> Templates:
    return templates_for(tmp_path_factory)


@dataclass
class Logged:
    worker: int
    action: str
    args: tuple[str, ...]
    code: int | None
    out: str
    err: str
    started: float
    ended: float
    tag: str = ""

    def document(self) -> dict:
        return json_document(self.out)


def json_document(out: str) -> dict:
    """The one JSON document a --json command prints ({} when it printed none)."""
    try:
        return json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    except ValueError:
        return {}


ACTIONS = (("deploy", 20), ("deploy-expect", 15), ("rollback", 15), ("ingest", 20),
           ("read", 20), ("reconcile", 10))


def worker(index: int, root: Path, files: Path, deadline: float, log: list[Logged],
           lock: threading.Lock, errors: list[str]) -> None:
    try:
        worker_loop(index, root, files, deadline, log, lock)
    except Exception as error:  # noqa: BLE001 - a broken worker fails the test below
        errors.append(f"worker {index}: {type(error).__name__}: {error}")


def worker_loop(index: int, root: Path, files: Path, deadline: float,
                log: list[Logged], lock: threading.Lock) -> None:
    rng = random.Random(f"contention-{index}")
    names, weights = zip(*ACTIONS, strict=True)
    count = 0
    while time.monotonic() < deadline:
        action = rng.choices(names, weights)[0]
        tag = f"w{index}-{count}"
        count += 1
        if action == "deploy":
            args: tuple[str, ...] = ("deploy", f"v{rng.choice((1, 2))}", "--reason", tag,
                                     "--json")
        elif action == "deploy-expect":  # read what serves, then compare-and-set against it
            seen = run(root, "status", "--json")
            record(log, lock, index, "read", seen, tag)
            active = (json_document(seen.out).get("active") or {}).get("production") or {}
            expected = active.get("to") or "none"
            target = "v1" if expected == "v2" else "v2"
            args = ("deploy", target, "--expect-current", expected, "--reason", tag, "--json")
        elif action == "rollback":
            args = ("rollback", "--target", "production", "--to", f"v{rng.choice((1, 2))}",
                    "--reason", tag, "--json")
        elif action == "ingest":
            source = write_observations(files / f"{tag}.parquet",
                                        BASE_ROWS + 40 * (count * PROCESSES + index), 40)
            args = ("ingest", str(source), "--json")
        elif action == "read":
            args = rng.choice((("status", "--json"), ("models", "list", "--json"),
                               ("deployments", "history", "--json"), ("audit", "--json")))
        else:
            args = ("jobs", "reconcile", "--json")
        record(log, lock, index, action, run(root, *args), tag)


def record(log: list[Logged], lock: threading.Lock, index: int, action: str, ran, tag: str
           ) -> None:
    ended = time.monotonic()
    entry = Logged(index, action, ran.args, ran.code, ran.out, ran.err, ended - ran.seconds,
                   ended, tag)
    with lock:
        log.append(entry)


def max_overlap(log: list[Logged]) -> int:
    edges = sorted([(e.started, 1) for e in log] + [(e.ended, -1) for e in log])
    running = best = 0
    for _, step in edges:
        running += step
        best = max(best, running)
    return best


def test_eight_processes_for_a_minute_lose_nothing(templates, tmp_path, record_property):
    root = copy_workspace(templates["pending"], tmp_path / "ws")
    before = read_rows(root)
    (pending,) = before.unfinished()
    log: list[Logged] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + SECONDS
    threads = [threading.Thread(target=worker,
                                args=(i, root, tmp_path / "files", deadline, log, lock, errors))
               for i in range(PROCESSES)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started

    problems: list[str] = list(errors)
    tracebacks = [e for e in log if "Traceback (most recent call last)" in e.err + e.out]
    problems += [f"traceback: {' '.join(e.args)}: {e.err[-600:]}" for e in tracebacks]
    problems += [f"exit {e.code}: {' '.join(e.args)}: {e.err[-300:]}" for e in log
                 if e.code not in ALLOWED_EXITS]
    behind = serving_mismatch(root, read_rows(root))
    if behind:  # a publish that lost a race says so and names the repair
        repair = run(root, "serving", "reconcile", "--json")
        problems += [] if repair.code == 0 else [f"serving reconcile: {repair.err[-300:]}"]
    verify = run(root, "store", "verify", "--json")
    if verify.code != 0:
        problems.append(f"store verify exit {verify.code}: {verify.out}{verify.err}")
    after = read_rows(root)
    lost: list[str] = []

    # deployment events: exactly those the exit-0 changes reported
    changes = [e for e in log if e.action in ("deploy", "deploy-expect", "rollback")]
    reported = {}
    for entry in changes:
        event = entry.document().get("event") if entry.code == 0 else None
        if event:
            reported[entry.tag] = (event["seq"], event["to"])
    new_events = after.events[len(before.events):]
    stored = {e[4]: (e[0], f"v{e[3]}") for e in new_events}
    lost += [f"deployment {tag} {seen} reported, store has {stored.get(tag)}"
             for tag, seen in reported.items() if stored.get(tag) != seen]
    problems += [f"deployment event {e} that no exit-0 command reported" for e in new_events
                 if e[4] not in reported]
    audited = [a[3] for a in after.audit if a[3] is not None]
    problems += [f"event {e[0]} has {audited.count(e[0])} audit rows" for e in after.events
                 if audited.count(e[0]) != 1]

    # batches: exactly those the exit-0 ingests reported as new
    ingested = {}
    for entry in log:
        if entry.action == "ingest" and entry.code == 0:
            for batch in entry.document().get("batches", []):
                if batch.get("new"):
                    ingested[Path(batch["source"]).name] = batch["batch"]
    new_batches = {b[2]: b[0] for b in after.batches[len(before.batches):]}
    lost += [f"batch {name} (#{number}) reported, store has {new_batches.get(name)}"
             for name, number in ingested.items() if new_batches.get(name) != number]
    problems += [f"batch {name} that no exit-0 ingest reported" for name in new_batches
                 if name not in ingested]
    for _, _, _, path in after.batches:
        if not (root / path).is_file():
            lost.append(f"batch file {path} is missing")

    # the pending job: ingested once, one version; versions only from jobs
    if after.jobs.get(pending) != "ingested" or len(after.versions_of(pending)) != 1:
        lost.append(f"job {pending[:8]}: {after.jobs.get(pending)}, versions "
                    f"{after.versions_of(pending)}")
    if len(after.versions) != len(before.versions) + 1:
        problems.append(f"versions {after.versions[len(before.versions):]} appeared")
    registered = [a for a in after.audit[len(before.audit):] if a[1] == "register"]
    problems += [] if len(registered) == 1 else [f"register audit rows: {registered}"]

    exits: dict[str, int] = {}
    for entry in log:
        exits[str(entry.code)] = exits.get(str(entry.code), 0) + 1
    figures = {
        "processes": PROCESSES, "seconds": round(elapsed, 1), "commands": len(log),
        "max_concurrent": max_overlap(log), "exits": exits,
        "by_action": {a: sum(1 for e in log if e.action == a) for a, _ in ACTIONS},
        "events_written": len(new_events), "batches_written": len(new_batches),
        "refusal_audit_rows": len([a for a in after.audit[len(before.audit):]
                                   if a[3] is None and a[1] != "register"]),
        "serving_repaired": bool(behind),
        "violations": len(problems) - len(tracebacks), "lost_writes": len(lost),
        "tracebacks": len(tracebacks),
    }
    record_property(CONTENTION_PROPERTY, figures)
    assert not problems + lost, "\n".join((problems + lost)[:20])
    assert elapsed >= SECONDS
    assert figures["max_concurrent"] >= PROCESSES - 2, figures  # they really overlapped
    assert reported and ingested, figures  # both kinds of write got through

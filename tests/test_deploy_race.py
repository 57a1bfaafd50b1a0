"""Races: several real processes deploy and roll back the same targets and regimes at once.

Three processes call the deploy/rollback/resume services in a loop with views that go stale
on purpose; a fourth runs the `mlops-tui` CLI the same way. Afterwards every subject's
history is an unbroken chain (no lost update), every event has its audit row, the serving
folder matches the store without a repair, and `store verify` passes.

This file is also the worker: `python tests/test_deploy_race.py WORKSPACE SEED SECONDS MODE`.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time

from conftest import register_real_version

from mlops_tui.core.errors import ConflictError
from mlops_tui.core.models import DeploymentKind
from mlops_tui.services import serving
from mlops_tui.services.deployment_reads import history, serving_state
from mlops_tui.services.deployments import deploy, resume, rollback
from mlops_tui.services.maintenance import verify_store
from mlops_tui.services.workspace import open_workspace
from mlops_tui.store import deployments as deployment_sql

MIN_COMMITS = 8  # across all workers in a few seconds, even on a loaded 2-core machine
SECONDS = 4.0
HARD_CAP = 60.0  # seconds a worker races at most, waiting for MIN_COMMITS on a slow machine
TARGETS = ("production", "canary")
VERSIONS = ("v1", "v2", "v3", "v4")


def _service_step(ws, rng: random.Random) -> str:
    """One random change through the services, with a view that may be stale."""
    seen = serving_state(ws)
    time.sleep(rng.uniform(0, 0.01))  # the operator looks at the screen a moment
    target = rng.choice(TARGETS)
    shown = seen.active.get(target)
    expect = f"v{shown.to_version}" if shown else None
    choice = rng.random()
    try:
        if choice < 0.35:
            result = deploy(ws, rng.choice(VERSIONS), target=target, expect_current=expect,
                            reason="race")
        elif choice < 0.6:
            to = rng.choice((None, *VERSIONS))
            result = rollback(ws, target=target, to=to, expect_current=expect, reason="race")
        elif choice < 0.8:
            champion = seen.champions.get("a")
            result = deploy(ws, rng.choice(VERSIONS[:3]), champion_of="a", reason="race",
                            expect_current=f"v{champion.to_version}" if champion else None)
        elif choice < 0.92:
            result = rollback(ws, regime="a", reason="race")
        else:
            return "resumed" if resume(ws, target=target).changed else "noop"
    except ConflictError:
        return "conflict"
    return "committed" if result.event is not None else "noop"


def _cli_step(root: str, rng: random.Random) -> str:
    """The same through the real CLI: exit 0 (done or nothing to do) or 3 (conflict)."""
    target = rng.choice(TARGETS)
    if rng.random() < 0.5:
        args = ["deploy", rng.choice(VERSIONS), "--target", target,
                "--expect-current", rng.choice(VERSIONS)]  # often stale: exit 3
    else:
        args = ["rollback", "--target", target, "--to", rng.choice(VERSIONS)]
    done = subprocess.run([sys.executable, "-m", "mlops_tui.cli.main", "--workspace", root,
                           *args, "--json"], capture_output=True, text=True, timeout=60,
                          check=False)
    if done.returncode == 3:
        return "conflict"
    if done.returncode != 0:
        raise SystemExit(f"{args} exited {done.returncode}: {done.stderr}")
    return "committed" if json.loads(done.stdout)["changed"] else "noop"


def _events(ws) -> int:
    from mlops_tui.services.deployment_reads import history

    return len(history(ws, limit=None))


def worker(root: str, seed: str, seconds: str, mode: str) -> None:
    ws = open_workspace(root, command=f"race worker {seed}")
    rng = random.Random(int(seed))
    stats = {"committed": 0, "conflict": 0, "noop": 0, "resumed": 0}
    print(json.dumps({"ready": True}), flush=True)
    assert sys.stdin.readline().strip() == "go"
    started = time.monotonic()
    before = _events(ws)
    # SECONDS of racing, and on a loaded machine on until the workers together committed
    # MIN_COMMITS changes (so a real race happened), within a hard cap
    while time.monotonic() < started + float(seconds) or (
            _events(ws) - before < MIN_COMMITS and time.monotonic() < started + HARD_CAP):
        outcome = _service_step(ws, rng) if mode == "service" else _cli_step(root, rng)
        stats[outcome] += 1
    print(json.dumps(stats), flush=True)


def test_concurrent_deploys_and_rollbacks_never_lose_an_update(workspace):
    for seed in (1, 2, 3, 4):
        register_real_version(workspace, seed=seed)
    deploy(workspace, "v1")
    deploy(workspace, "v1", target="canary", create_target=True)
    deploy(workspace, "v1", champion_of="a")
    environment = dict(os.environ) | {"MLOPS_TUI_LOCK_TIMEOUT": "60"}
    modes = ("service", "service", "service", "cli")
    workers = [subprocess.Popen(
        [sys.executable, __file__, str(workspace.root), str(seed), str(SECONDS), mode],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=environment) for seed, mode in enumerate(modes, 1)]
    try:
        for process in workers:
            line = process.stdout.readline()
            assert line and json.loads(line)["ready"], process.stderr.read()
        for process in workers:  # start together, so the changes really interleave
            process.stdin.write("go\n")
            process.stdin.flush()
        results = []
        for process in workers:
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for process in workers:
            if process.poll() is None:
                process.kill()
                process.wait()

    committed = sum(r["committed"] for r in results)
    conflicts = sum(r["conflict"] for r in results)
    print(f"race: {committed} commits, {conflicts} conflicts (exit 3), "
          f"{sum(r['noop'] for r in results)} no-ops, per worker {results}")
    assert committed >= MIN_COMMITS, results
    assert results[-1]["committed"] + results[-1]["conflict"] + results[-1]["noop"] > 0

    events = history(workspace, limit=None)
    by_subject: dict[tuple, list] = {}
    for event in sorted(events, key=lambda e: e.seq):
        by_subject.setdefault((event.kind, event.subject), []).append(event)
    assert set(by_subject) == {(DeploymentKind.ACTIVE, "production"),
                               (DeploymentKind.ACTIVE, "canary"),
                               (DeploymentKind.CHAMPION, "a")}
    for chain in by_subject.values():  # compare-and-set: each change starts where the last ended
        assert chain[0].from_version is None
        for earlier, later in zip(chain, chain[1:], strict=False):
            assert later.from_version == earlier.to_version != later.to_version
    with workspace.store.read() as tx:
        assert deployment_sql.events_without_audit(tx) == []
        current = deployment_sql.current_all(tx)
    assert len(current) == 3  # exactly one active version per target, one champion
    manifest = serving.current_manifest(workspace)
    for event in current:
        section = "targets" if event.kind is DeploymentKind.ACTIVE else "champions"
        assert manifest[section][event.subject]["version"] == f"v{event.to_version}"
    assert serving.inspect(workspace) == []  # no repair needed: the last publisher won
    report = verify_store(workspace)
    assert report.ok and report.repaired == [], report.problems


if __name__ == "__main__":
    worker(*sys.argv[1:])

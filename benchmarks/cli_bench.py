"""CLI start-up benchmark: what a command pays before and while doing its work.

    python benchmarks/cli_bench.py [--runs 15] [--versions 2000] [--before REV] [--keep DIR]

On a workspace of --versions model versions (benchmarks/build_store.py), each command as a
new process, wall time from start to exit, median and minimum of --runs runs (after one
checked run): `python -c pass` (the floor), `mlops-tui --version`, `models list --json
--limit 0`, `status --json` and `rollback --to vK --json` (alternating between two versions;
the event and serving/current are checked after every run). Each row also lists which heavy
modules (pandas, sklearn, skops, docker, pydantic, duckdb) that command's process imported.

--before REV measures the same commands with the package as of git revision REV (exported
to a temporary directory with `git archive`) interleaved run by run with the working tree,
so a change in machine load hits both. Child processes write and use bytecode caches, as an
installed package does (PYTHONDONTWRITEBYTECODE is dropped for them); the CPU time of each
run is reported beside the wall time, which on a busy machine includes waiting for a core.
Writes benchmarks/out/cli_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

from build_store import REGIMES, build_workspace  # noqa: E402

OUT = HERE / "out" / "cli_bench.json"
HEAVY = ("pandas", "sklearn", "skops", "docker", "pydantic", "duckdb")
TARGETS = {"--version": 0.12, "models list --json --limit 0": 0.25, "rollback": 0.25}
# run the CLI's entry point, then report the heavy modules it imported on stderr's last line
PROBE = """
import sys
from mlops_tui.cli.main import run
sys.argv = ["mlops-tui", *sys.argv[1:]]
try:
    run()
except SystemExit:
    pass
print(",".join(m for m in {heavy!r} if m in sys.modules) or "-", file=sys.stderr)
"""


def export_tree(revision: str, into: Path) -> Path:
    """The package as of `revision`, in `into` (a PYTHONPATH entry)."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision, "mlops_tui"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def environment(tree: Path) -> dict[str, str]:
    """The package at `tree`, with bytecode caches as an installed package has them."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return env | {"PYTHONPATH": str(tree)}


NEUTRAL = tempfile.gettempdir()  # the processes' cwd: a checkout there would shadow `tree`


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(args: list[str], tree: Path) -> tuple[subprocess.CompletedProcess, float, float]:
    """(result, wall seconds, CPU seconds). The wall time includes waiting for a core on a
    busy machine; the CPU time does not."""
    cpu, started = child_cpu(), time.perf_counter()
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          env=environment(tree), cwd=NEUTRAL, check=False)
    return done, time.perf_counter() - started, child_cpu() - cpu


def commands(root: str, targets: tuple[str, str]) -> dict[str, list[list[str]]]:
    """label -> the argument lists its runs cycle through."""
    cli = ["-m", "mlops_tui.cli.main"]
    return {
        "python -c pass": [["-c", "pass"]],
        "--version": [[*cli, "--version"]],
        "models list --json --limit 0": [[*cli, "-w", root, "models", "list", "--json",
                                          "--limit", "0"]],
        "status --json": [[*cli, "-w", root, "status", "--json"]],
        "rollback": [[*cli, "-w", root, "rollback", "--to", to, "--reason", "bench", "--json"]
                     for to in targets],
    }


def check(label: str, done: subprocess.CompletedProcess, args: list[str], ws, size: int) -> None:
    assert done.returncode == 0, (label, done.stderr)
    if label.startswith("models list"):
        assert json.loads(done.stdout)["total"] == size
    elif label == "rollback":
        from mlops_tui.services import serving
        from mlops_tui.services.deployment_reads import history

        to = args[args.index("--to") + 1]
        event = history(ws, target="production", limit=1)[0]
        assert event.action == "rollback" and f"v{event.to_version}" == to, event
        assert serving.current_manifest(ws)["targets"]["production"]["version"] == to


def heavy_modules(args: list[str], tree: Path) -> list[str]:
    if args[0] != "-m":
        return []
    done = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *args[2:]],
                          capture_output=True, text=True, env=environment(tree), cwd=NEUTRAL,
                          check=False)
    last = (done.stderr.strip().splitlines() or ["?"])[-1]
    return [] if last == "-" else last.split(",")


def prepare(path: Path, versions: int):
    """A workspace of `versions` versions whose `production` target has two versions to
    roll back between."""
    from mlops_tui.services.deployments import deploy
    from mlops_tui.services.registry import list_versions
    from mlops_tui.services.workspace import open_workspace

    if not (path / "mlops.toml").exists():
        build_workspace(path, versions, quiet=False)
        ws = open_workspace(str(path))
        newest = list_versions(ws, regime=REGIMES[0], limit=2).versions
        for version in reversed(newest):
            deploy(ws, version.id, reason="cli bench")
    from mlops_tui.services.deployment_reads import history

    ws = open_workspace(str(path))
    pair = [v.id for v in list_versions(ws, regime=REGIMES[0], limit=2).versions]
    active = f"v{history(ws, target='production', limit=1)[0].to_version}"
    return ws, tuple(sorted(pair, key=lambda v: v == active))  # the inactive one first


def summary(spans: list[float]) -> dict[str, float]:
    return {"median": statistics.median(spans), "min": min(spans), "runs": len(spans)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--versions", type=int, default=2000)
    parser.add_argument("--before", metavar="REV", help="also measure the package at REV")
    parser.add_argument("--keep", type=Path, help="build (or reuse) the workspace here")
    parser.add_argument("--out", type=Path, default=OUT)
    options = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="cli-bench-") as scratch:
        workspace_dir = options.keep or Path(scratch) / "ws"
        ws, pair = prepare(workspace_dir, options.versions)
        trees = {"after": REPO}
        if options.before:
            trees = {"before": export_tree(options.before, Path(scratch) / "before")} | trees
        table = commands(str(workspace_dir), pair)
        results: dict[str, dict] = {}
        for label, variants in table.items():
            spans: dict[str, list[float]] = {name: [] for name in trees}
            cpus: dict[str, list[float]] = {name: [] for name in trees}
            turn = 0  # rollbacks alternate between two versions, run after run
            for index in range(options.runs + 1):  # run 0 of each tree is checked, not timed
                for name, tree in trees.items():
                    args = variants[turn % len(variants)]
                    turn += 1
                    done, wall, cpu = run_once(args, tree)
                    check(label, done, args, ws, options.versions)
                    if index:
                        spans[name].append(wall)
                        cpus[name].append(cpu)
            results[label] = {name: summary(spans[name]) | {
                "cpu_median": statistics.median(cpus[name]),
                "heavy": heavy_modules(variants[0], tree)} for name, tree in trees.items()}
            if label in TARGETS:
                results[label]["target_s"] = TARGETS[label]

    print(f"{options.versions:,} versions, {options.runs} runs each, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    names = list(trees)
    print("seconds: wall median, wall minimum, CPU median")
    print(f"{'command':<30}" + "".join(f"{n:>8} med{'min':>7}{'cpu':>7}" for n in names)
          + f"{'target':>8}  heavy modules imported")
    for label, row in results.items():
        cells = "".join(f"{row[n]['median']:>12.3f}{row[n]['min']:>7.3f}"
                        f"{row[n]['cpu_median']:>7.3f}" for n in names)
        target = f"{row['target_s']:.2f}" if "target_s" in row else "-"
        heavy = "; ".join(f"{n}: {','.join(row[n]['heavy']) or '-'}" for n in names)
        print(f"{label:<30}{cells}{target:>8}  {heavy}")
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps({
        "versions": options.versions, "runs": options.runs, "before": options.before,
        "python": platform.python_version(), "cores": os.cpu_count(),
        "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

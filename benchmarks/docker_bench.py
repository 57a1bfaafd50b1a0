"""Containerised retrains: what the Docker runner costs over the local runner, and why.

    python benchmarks/docker_bench.py [--runs 3] [--regime suv] [--full-rebuilds 1]

Needs a running engine and the base image (bash scripts/docker-engine.sh). On a demo
workspace (the sample scenario, 50,400 rows), measures the time from `retrain` to a registered
version for the sample pipeline, each over --runs runs (min / median / max):

- in-process harness: `mlops_tui.training.harness.run` called in this process on a copy of a
  retrain's job folder (imports warm): the floor, with no runner and no bookkeeping;
- local runner: `mlops-tui retrain --regime R --runner local --wait` as a new process;
- docker, cached image: the same with `--runner docker`, the trainer image already built;
- docker, code change: a comment appended to train.py before each run, so the image's cache
  key changes and the retrain builds a new image (the engine's layer cache keeps the
  dependency layers: only the pipeline layer is new);
- docker, full rebuild: `mlops-tui image build --rebuild` (no layer cache: the virtual
  environment is installed from the wheelhouse again) plus a cached-image retrain.

For every CLI retrain the harness's own time (result.json `duration_seconds`) is recorded, so
the runner's overhead is visible apart from training. Target: docker with a cached image
within 3 s of the local runner. Prints a table; writes benchmarks/out/docker_bench.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from training_bench import cli, spread  # the same timing helpers (this folder is on sys.path)

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "docker_bench.json"
TARGET_OVERHEAD_SECONDS = 3.0


def retrain(workspace: Path, regime: str, runner: str) -> tuple[float, float, str]:
    """One CLI retrain; (wall seconds, harness seconds, job id)."""
    took, done = cli("--workspace", str(workspace), "retrain", "--regime", regime, "--runner",
                     runner, "--wait", "--json", cwd=workspace.parent)
    job_id = json.loads(done.stdout)["job"]["id"]
    result = json.loads((workspace / "jobs" / job_id / "result.json").read_text())
    return took, float(result["duration_seconds"]), job_id


def bench_retrains(workspace: Path, regime: str, runners: dict[str, str], runs: int,
                   before_each=None) -> dict[str, dict]:
    """Retrains with each of `runners` (label -> runner), interleaved run by run so that
    they share whatever else the machine is doing; per label: totals, harness, job ids."""
    found = {label: {"totals": [], "harness": [], "jobs": []} for label in runners}
    for run in range(runs):
        for label, runner in runners.items():
            if before_each is not None:
                before_each(run)
            took, harness_seconds, job_id = retrain(workspace, regime, runner)
            found[label]["totals"].append(took)
            found[label]["harness"].append(harness_seconds)
            found[label]["jobs"].append(job_id)
            print(f"  {label} {run + 1}/{runs}: {took:.2f}s (harness {harness_seconds:.2f}s)",
                  flush=True)
    return {label: {"seconds": spread(v["totals"]), "harness_seconds": spread(v["harness"]),
                    "jobs": v["jobs"]} for label, v in found.items()}


def bench_in_process(workspace: Path, job_id: str, runs: int) -> dict:
    """harness.run on a private copy of a finished job folder (warm: one run first)."""
    from mlops_tui.training import harness

    spec = json.loads((workspace / "jobs" / job_id / "spec.json").read_text())
    train = workspace / spec["snapshots"]["train"]["path"]
    holdout = workspace / spec["snapshots"]["holdout"]["path"]
    seconds = []
    with tempfile.TemporaryDirectory(prefix="docker-bench-harness-") as scratch:
        for run in range(runs + 1):
            job = Path(scratch) / f"job-{run}"
            job.mkdir()
            shutil.copy2(workspace / "jobs" / job_id / "spec.json", job / "spec.json")
            shutil.copytree(workspace / "jobs" / job_id / "pipeline", job / "pipeline")
            started = time.perf_counter()
            with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
                harness.run(job, train, holdout)
            if run:  # the first run pays the imports
                seconds.append(time.perf_counter() - started)
    print(f"  in-process harness: median {statistics.median(seconds):.2f}s", flush=True)
    return spread(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--regime", default="suv")
    parser.add_argument("--full-rebuilds", type=int, default=1)
    args = parser.parse_args()
    from mlops_tui.runners import docker as docker_runner

    if not docker_runner.engine_available():
        raise SystemExit("no Docker engine answers: run bash scripts/docker-engine.sh first")
    results: dict = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                 "platform": platform.platform()},
                     "regime": args.regime, "runs": args.runs,
                     "load_average_at_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="docker-bench-") as scratch_name:
        scratch = Path(scratch_name)
        workspace = scratch / "demo"
        print("building the demo workspace…", flush=True)
        cli("demo", "--no-tui", "--workspace", str(workspace), cwd=scratch)

        print("docker: build the trainer image once (not timed as a retrain)", flush=True)
        took, done = cli("--workspace", str(workspace), "image", "build", "--json",
                         cwd=scratch)
        image = json.loads(done.stdout)
        results["image"] = {"tag": image["tag"], "id": image["id"], "python": image["python"],
                            "first_build_seconds": took if image["built"] else None}
        took, _ = cli("--workspace", str(workspace), "image", "build", "--json", cwd=scratch)
        results["image_lookup_cli_seconds"] = took

        print("local runner and docker with a cached image, interleaved", flush=True)
        measured = bench_retrains(workspace, args.regime, {
            "local": "local", "docker, cached image": "docker"}, args.runs)
        local, cached = measured["local"]["seconds"], measured["docker, cached image"]["seconds"]
        local_harness = measured["local"]["harness_seconds"]
        cached_harness = measured["docker, cached image"]["harness_seconds"]
        results["local_seconds"], results["local_harness_seconds"] = local, local_harness
        results["docker_cached_seconds"] = cached
        results["docker_cached_harness_seconds"] = cached_harness
        results["in_process_harness_seconds"] = bench_in_process(
            workspace, measured["local"]["jobs"][0], args.runs)

        train_py = workspace / "pipeline" / "train.py"
        original = train_py.read_text()

        def change_code(run: int) -> None:
            train_py.write_text(original + f"\n# benchmark code change {time.time_ns()}\n")

        measured = bench_retrains(workspace, args.regime, {"docker, code change": "docker"},
                                  args.runs, change_code)["docker, code change"]
        changed, changed_harness = measured["seconds"], measured["harness_seconds"]
        train_py.write_text(original)
        results["docker_code_change_seconds"] = changed
        results["docker_code_change_harness_seconds"] = changed_harness

        rebuilds = []
        for run in range(args.full_rebuilds):
            took, _ = cli("--workspace", str(workspace), "image", "build", "--rebuild",
                          "--json", cwd=scratch)
            rebuilds.append(took)
            print(f"  full rebuild {run + 1}/{args.full_rebuilds}: {took:.2f}s", flush=True)
        results["full_rebuild_seconds"] = spread(rebuilds)
        results["docker_full_rebuild_seconds"] = statistics.median(rebuilds) + cached["median"]

    results["load_average_at_end"] = os.getloadavg()[0]
    overhead = cached["median"] - local["median"]
    results["docker_cached_overhead_seconds"] = overhead
    results["docker_cached_over_local_ratio"] = cached["median"] / local["median"]
    results["target_overhead_seconds"] = TARGET_OVERHEAD_SECONDS
    results["target_met"] = overhead < TARGET_OVERHEAD_SECONDS

    rows = [
        ("in-process harness (warm)", results["in_process_harness_seconds"]["median"], None),
        ("local runner", local["median"], local_harness["median"]),
        ("docker, cached image", cached["median"], cached_harness["median"]),
        ("docker, code change (layer cache)", changed["median"], changed_harness["median"]),
        ("docker, full rebuild (no cache)", results["docker_full_rebuild_seconds"], None),
    ]
    print(f"\nretrain -> registered version, regime {args.regime}, median of {args.runs} "
          "(seconds)")
    print(f"{'mode':<36}{'total':>9}{'harness':>9}{'x local':>9}")
    for label, total, harness_seconds in rows:
        print(f"{label:<36}{total:>9.2f}"
              f"{(f'{harness_seconds:.2f}' if harness_seconds is not None else '-'):>9}"
              f"{total / local['median']:>9.2f}")
    print(f"load average {results['load_average_at_start']:.1f} at the start, "
          f"{results['load_average_at_end']:.1f} at the end ({os.cpu_count()} CPUs)")
    verdict = "met" if results["target_met"] else "MISSED"
    print(f"docker overhead over local with a cached image: {overhead:+.2f}s "
          f"(target < {TARGET_OVERHEAD_SECONDS:.0f}s: {verdict})")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2))
    print(f"wrote {OUT.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()

"""Training on the embedded default: how long the demo and a retrain take, and why.

    python benchmarks/training_bench.py [--runs 3] [--regime suv]

Measures, each over --runs runs (min / median / max):
- demo build: `mlops-tui demo --no-tui --workspace W` from process start to exit, into a
  fresh directory each run (ingest 50,400 rows, 7 retrains through runner and harness);
- retrain-to-registered: `mlops-tui retrain --regime R --wait` on the demo workspace, from
  process start to the registered version, split into the harness's own time (result.json
  `duration_seconds`), the host's ingest (job event `succeeded` -> `ingested`) and the rest
  (CLI start, export, job folder, process start and polling);
- the harness in-process: `mlops_tui.training.harness.run` called directly on a copy of a
  retrain's job folder and snapshots, the first call (imports included) and warm calls.
The gap between retrain-to-registered and the in-process harness is the price of the
runner and the host-side bookkeeping. Prints a table; writes benchmarks/out/training_bench.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "training_bench.json"


def cli(*args: str, cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    """Run the real CLI in a new process; (wall seconds, the completed process)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "mlops_tui.cli.main", *args], cwd=cwd,
                          capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"mlops-tui {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return seconds, done


def spread(values: list[float]) -> dict:
    return {"min": min(values), "median": statistics.median(values), "max": max(values),
            "runs": len(values)}


def bench_demo(scratch: Path, runs: int) -> tuple[dict, Path]:
    seconds = []
    for run in range(runs):
        workspace = scratch / f"demo-{run}"
        took, _ = cli("demo", "--no-tui", "--workspace", str(workspace), cwd=scratch)
        seconds.append(took)
        print(f"  demo build {run + 1}/{runs}: {took:.2f}s", flush=True)
    return spread(seconds), scratch / "demo-0"


def bench_retrain(workspace: Path, regime: str, runs: int) -> tuple[dict, list[str]]:
    totals, harness_seconds, ingest_seconds, job_ids = [], [], [], []
    for run in range(runs):
        took, done = cli("--workspace", str(workspace), "retrain", "--regime", regime,
                         "--wait", "--json", cwd=workspace.parent)
        outcome = json.loads(done.stdout)
        job_id = outcome["job"]["id"]
        result = json.loads((workspace / "jobs" / job_id / "result.json").read_text())
        _, shown = cli("--workspace", str(workspace), "jobs", "show", job_id, "--json",
                       cwd=workspace.parent)
        at = {e["state"]: datetime.fromisoformat(e["at"]) for e in json.loads(shown.stdout)["events"]}
        totals.append(took)
        harness_seconds.append(result["duration_seconds"])
        ingest_seconds.append((at["ingested"] - at["succeeded"]).total_seconds())
        job_ids.append(job_id)
        print(f"  retrain {run + 1}/{runs}: {took:.2f}s to {outcome['version']} "
              f"(harness {result['duration_seconds']:.2f}s)", flush=True)
    rest = [t - h - i for t, h, i in zip(totals, harness_seconds, ingest_seconds, strict=True)]
    return {"total": spread(totals), "harness_in_job": spread(harness_seconds),
            "ingest": spread(ingest_seconds), "cli_export_start_poll": spread(rest),
            "rows_train": result["rows_train"], "rows_holdout": result["rows_holdout"]}, job_ids


def bench_harness_in_process(workspace: Path, job_id: str, scratch: Path, runs: int) -> dict:
    """`harness.run` called directly on copies of a finished job's inputs."""
    source = workspace / "jobs" / job_id
    spec = json.loads((source / "spec.json").read_text())
    train = workspace / spec["snapshots"]["train"]["path"]
    holdout = workspace / spec["snapshots"]["holdout"]["path"]
    from mlops_tui.training import harness  # stdlib only: the heavy imports happen in run()

    seconds = []
    for run in range(runs + 1):  # the first call pays pandas / scikit-learn / skops imports
        job_dir = scratch / f"in-process-{run}"
        job_dir.mkdir()
        shutil.copy2(source / "spec.json", job_dir / "spec.json")
        shutil.copytree(source / "pipeline", job_dir / "pipeline",
                        ignore=shutil.ignore_patterns("__pycache__"))
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
            started = time.perf_counter()
            harness.run(job_dir, train, holdout)
            seconds.append(time.perf_counter() - started)
        print(f"  harness.run {'(first, cold imports)' if run == 0 else run}: "
              f"{seconds[-1]:.2f}s", flush=True)
    return {"first_call": seconds[0], "warm": spread(seconds[1:])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (>= 3)")
    parser.add_argument("--regime", default="suv", help="regime the retrain runs use")
    args = parser.parse_args()
    if args.runs < 3:
        parser.error("--runs must be at least 3 (min / median / max)")
    scratch = Path(tempfile.mkdtemp(prefix="mlops-training-bench-"))
    try:
        print(f"demo builds ({args.runs}):", flush=True)
        demo, workspace = bench_demo(scratch, args.runs)
        print(f"retrain --regime {args.regime} --wait ({args.runs}):", flush=True)
        retrain, job_ids = bench_retrain(workspace, args.regime, args.runs)
        print("harness in-process:", flush=True)
        in_process = bench_harness_in_process(workspace, job_ids[-1], scratch, args.runs)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    warm = in_process["warm"]["median"]
    total = retrain["total"]["median"]
    results = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
        "demo_build_seconds": demo,
        "retrain_to_registered_seconds": retrain,
        "harness_in_process_seconds": in_process,
        "ratios": {
            "retrain_total_over_harness_in_process_warm": total / warm,
            "retrain_total_over_harness_in_job": total / retrain["harness_in_job"]["median"],
            "harness_first_call_over_warm": in_process["first_call"] / warm,
        },
    }
    rows = [
        ("demo build (7 versions, 50,400 rows)", demo),
        (f"retrain --wait to registered ({args.regime})", retrain["total"]),
        ("  of which harness inside the job", retrain["harness_in_job"]),
        ("  of which host ingest (verify, parent score, register)", retrain["ingest"]),
        ("  of which CLI start, export, launch, polling", retrain["cli_export_start_poll"]),
        ("harness.run in-process, warm", in_process["warm"]),
    ]
    print(f"\n{'measurement':<58} {'min':>7} {'median':>7} {'max':>7}")
    for label, figures in rows:
        print(f"{label:<58} {figures['min']:>6.2f}s {figures['median']:>6.2f}s "
              f"{figures['max']:>6.2f}s")
    print(f"{'harness.run in-process, first call (imports included)':<58} "
          f"{in_process['first_call']:>6.2f}s")
    print(f"\nretrain-to-registered / warm in-process harness: "
          f"{results['ratios']['retrain_total_over_harness_in_process_warm']:.1f}x "
          f"(train rows {retrain['rows_train']:,}, holdout rows {retrain['rows_holdout']:,})")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2))
    print(f"wrote {OUT.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()

"""Deploy benchmarks: rollback end to end, and predict throughput on 1,000,000 rows.

    python benchmarks/deploy_bench.py [--runs 20] [--rows 1000000] [--keep DIR]

(`--rows 0` measures the rollback only.)

1. `mlops-tui rollback` from process start to exit. The command exits only after the event
   and its audit row are committed and `serving/current` is swapped, and the script checks
   both after every run. Target: under 0.3 s. Broken down into a bare interpreter, importing
   the CLI, and the rollback service in-process; also reports which heavy modules the
   rollback process imported (none of scikit-learn, pandas, scipy, skops is the goal).
2. `predict` on 1,000,000 rows of the sample scenario (the packaged observations tiled),
   scored by the sample pipeline fitted for real: the active version, and `--by-regime`
   (three champions), each in its own process with its peak memory; against a baseline
   that reads the whole file into pandas, predicts once and writes the result.

Prints figures and ratios; writes benchmarks/out/deploy_bench.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "deploy_bench.json"
HEAVY = ("sklearn", "pandas", "scipy", "skops")
ROLLBACK_TARGET_SECONDS = 0.3


def cli_command() -> list[str]:
    script = Path(sys.executable).with_name("mlops-tui")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mlops_tui.cli.main"]


def sample_pipeline():
    from mlops_tui.sample import packaged_pipeline_dir

    spec = importlib.util.spec_from_file_location("bench_sample_train",
                                                  packaged_pipeline_dir() / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_workspace(root: Path):
    """The sample contract, one fitted model per regime (champions), production history."""
    import pyarrow.parquet as pq

    from mlops_tui.sample import packaged_observations_path, packaged_pipeline_dir
    from mlops_tui.services.demo import sample_config_text
    from mlops_tui.services.deployments import deploy
    from mlops_tui.services.environments import capture_host
    from mlops_tui.services.registry import Registration, register_version
    from mlops_tui.services.workspace import init_workspace

    ws = init_workspace(root / "ws", config_text=sample_config_text(), command="bench")
    contract = ws.config.data
    params = {"features_numeric": list(contract.numeric),
              "features_categorical": list(contract.categorical), "label": contract.label_column}
    frame = pq.read_table(packaged_observations_path()).to_pandas()
    pipeline = sample_pipeline()
    env = capture_host()
    from mlops_tui.artifacts.weights import dumps

    for number, regime in enumerate(("sedan", "suv", "pickup"), 1):
        rows = frame[frame[contract.regime_column] == regime].iloc[::10]
        artifact = root / f"{regime}.skops"
        artifact.write_bytes(dumps(pipeline.train(rows, params)))
        register_version(ws, Registration(regime=regime, artifact_file=artifact,
                                          code_dir=packaged_pipeline_dir(), environment=env))
        deploy(ws, f"v{number}", champion_of=regime, reason="bench")
    deploy(ws, "v1", reason="bench")
    deploy(ws, "v2", reason="bench")
    return ws


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_measured(command: list[str]) -> tuple[subprocess.CompletedProcess, float, float]:
    """(result, wall seconds, CPU seconds of the child). On a busy machine the wall time
    includes waiting for a core; the CPU time does not, and bounds a quiet run from below."""
    cpu, started = child_cpu(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    return done, time.perf_counter() - started, child_cpu() - cpu


def timed_runs(command: list[str], runs: int) -> tuple[list[float], list[float]]:
    walls, cpus = [], []
    for _ in range(runs):
        done, wall, cpu = run_measured(command)
        assert done.returncode == 0, done.stderr
        walls.append(wall)
        cpus.append(cpu)
    return walls, cpus


def summary(spans: list[float]) -> dict[str, float]:
    ordered = sorted(spans)
    return {"median": statistics.median(ordered), "p90": ordered[int(0.9 * (len(ordered) - 1))],
            "min": ordered[0], "max": ordered[-1], "runs": len(ordered)}


PROBE = """
import sys
from mlops_tui.cli.main import run
sys.argv = ["mlops-tui", "--workspace", sys.argv[1], "rollback", "--to", sys.argv[2], "--json"]
try:
    run()
except SystemExit as done:
    code = done.code
print(",".join(m for m in {heavy!r} if m in sys.modules) or "-", file=sys.stderr)
"""


def bench_rollback(ws, runs: int) -> dict:
    from mlops_tui.services import serving
    from mlops_tui.services.deployment_reads import history
    from mlops_tui.services.deployments import rollback

    root = str(ws.root)
    command = cli_command()
    bare, bare_cpu = timed_runs([sys.executable, "-c", "pass"], runs)
    imports, imports_cpu = timed_runs([sys.executable, "-c", "import mlops_tui.cli.main"], runs)
    spans, cpus = [], []
    for index in range(runs):
        to = "v1" if index % 2 == 0 else "v2"
        done, wall, cpu = run_measured([*command, "--workspace", root, "rollback", "--to", to,
                                        "--reason", "bench", "--json"])
        spans.append(wall)
        cpus.append(cpu)
        assert done.returncode == 0, done.stderr
        event = history(ws, target="production", limit=1)[0]
        assert event.action == "rollback" and f"v{event.to_version}" == to
        manifest = serving.current_manifest(ws)
        assert manifest["generation"] == event.seq
        assert manifest["targets"]["production"]["version"] == to
    in_process = []
    for index in range(runs):
        started = time.perf_counter()
        rollback(ws, to="v1" if index % 2 == 0 else "v2", reason="bench in-process")
        in_process.append(time.perf_counter() - started)
    probe = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), root, "v1"],
                           capture_output=True, text=True, check=True)
    heavy = probe.stderr.strip().splitlines()[-1]
    result = {"cli": summary(spans), "cli_cpu": summary(cpus), "bare_python": summary(bare),
              "bare_python_cpu": summary(bare_cpu), "import_cli": summary(imports),
              "import_cli_cpu": summary(imports_cpu), "service_in_process": summary(in_process),
              "heavy_modules_imported": [] if heavy == "-" else heavy.split(","),
              "target_seconds": ROLLBACK_TARGET_SECONDS}
    result["ratio_to_target"] = result["cli"]["median"] / ROLLBACK_TARGET_SECONDS
    return result


def make_rows(path: Path, rows: int) -> None:
    """The packaged observations tiled to `rows` rows (ids kept unique)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from mlops_tui.sample import packaged_observations_path

    table = pq.read_table(packaged_observations_path())
    writer = pq.ParquetWriter(path, table.schema)
    written, copy = 0, 0
    while written < rows:
        part = table.slice(0, min(table.num_rows, rows - written))
        ids = pc.binary_join_element_wise(part.column("obs_id"), pa.scalar(f"-{copy}"), "")
        writer.write_table(part.set_column(0, "obs_id", ids))
        written += part.num_rows
        copy += 1
    writer.close()


def measure(mode: str, root: str, source: str, out: str) -> None:
    """Run one predict variant in this process; print seconds and peak RSS as JSON."""
    from mlops_tui.services.workspace import open_workspace

    ws = open_workspace(root)
    started = time.perf_counter()
    if mode == "baseline":
        import pandas as pd

        from mlops_tui.services.predict import _load, _versions_to_use

        version, env = _versions_to_use(ws, None, False)[None]
        model = _load(ws, version, env)
        frame = pd.read_parquet(source)
        frame["prediction"] = model.estimator.predict(frame[model.columns])
        frame["version"] = version.id
        frame[[ws.config.data.id_column, "prediction", "version"]].to_parquet(out)
        rows = len(frame)
    else:
        from mlops_tui.services.predict import predict_file

        rows = predict_file(ws, Path(source), out=Path(out), by_regime=mode == "by-regime").rows
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_rss_mib": peak_mib}))


def bench_predict(ws, rows: int, scratch: Path) -> dict:
    source = scratch / "observations-1m.parquet"
    started = time.perf_counter()
    make_rows(source, rows)
    made = time.perf_counter() - started
    results = {"input_rows": rows, "input_mib": source.stat().st_size / 2**20,
               "input_seconds": made}
    for mode in ("active", "by-regime", "baseline"):
        done = subprocess.run(
            [sys.executable, __file__, "--measure", mode, str(ws.root), str(source),
             str(scratch / f"scored-{mode}.parquet")], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        figures["rows_per_second"] = figures["rows"] / figures["seconds"]
        results[mode] = figures
    cli = cli_command()
    started = time.perf_counter()
    done = subprocess.run([*cli, "--workspace", str(ws.root), "predict", str(source), "--out",
                           str(scratch / "scored-cli.parquet"), "--json"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    results["cli_seconds"] = time.perf_counter() - started
    results["cli_rows_per_second"] = rows / results["cli_seconds"]
    results["ratio_streaming_vs_baseline_time"] = (results["active"]["seconds"]
                                                   / results["baseline"]["seconds"])
    results["ratio_streaming_vs_baseline_memory"] = (results["active"]["peak_rss_mib"]
                                                     / results["baseline"]["peak_rss_mib"])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="build the workspace here and keep it")
    parser.add_argument("--measure", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(*args.measure)
        return
    scratch = args.keep or Path(tempfile.mkdtemp(prefix="deploy-bench-"))
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        load_before = os.getloadavg()
        ws = build_workspace(scratch)
        rollback_figures = bench_rollback(ws, args.runs)
        predict_figures = bench_predict(ws, args.rows, scratch) if args.rows else None
        load_after = os.getloadavg()
    finally:
        if args.keep is None:
            shutil.rmtree(scratch, ignore_errors=True)
    report = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform(), "load_before": load_before,
                    "load_after": load_after},
        "rollback": rollback_figures,
        "predict": predict_figures,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2))

    r, p = rollback_figures, predict_figures
    print(f"machine: {os.cpu_count()} cpus, load average {load_before[0]:.1f} -> "
          f"{load_after[0]:.1f}")
    print(f"rollback end to end (process start -> committed event -> swapped symlink), "
          f"{r['cli']['runs']} runs:")
    print(f"  median {r['cli']['median']:.3f} s, p90 {r['cli']['p90']:.3f} s, "
          f"min {r['cli']['min']:.3f} s; target {ROLLBACK_TARGET_SECONDS} s "
          f"(ratio {r['ratio_to_target']:.2f})")
    print(f"  CPU time of the rollback process: median {r['cli_cpu']['median']:.3f} s, "
          f"min {r['cli_cpu']['min']:.3f} s (what a quiet machine's wall time approaches)")
    print(f"  of which: bare interpreter {r['bare_python']['median']:.3f} s "
          f"(CPU {r['bare_python_cpu']['median']:.3f} s), importing the CLI "
          f"{r['import_cli']['median']:.3f} s (CPU {r['import_cli_cpu']['median']:.3f} s), "
          f"the rollback service in-process {r['service_in_process']['median']:.3f} s")
    print(f"  heavy modules imported by rollback: {r['heavy_modules_imported'] or 'none'}")
    if p is None:
        print(f"predict skipped (--rows 0); wrote {OUT.relative_to(HERE.parent)}")
        return
    print(f"predict on {p['input_rows']:,} rows ({p['input_mib']:.1f} MiB Parquet):")
    for mode in ("active", "by-regime", "baseline"):
        figures = p[mode]
        print(f"  {mode:<10} {figures['seconds']:.2f} s  {figures['rows_per_second']:,.0f} rows/s"
              f"  peak RSS {figures['peak_rss_mib']:.0f} MiB")
    print(f"  CLI end to end {p['cli_seconds']:.2f} s ({p['cli_rows_per_second']:,.0f} rows/s)")
    print(f"  streaming vs whole-file baseline: time x{p['ratio_streaming_vs_baseline_time']:.2f}"
          f", memory x{p['ratio_streaming_vs_baseline_memory']:.2f}")
    print(f"wrote {OUT.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()

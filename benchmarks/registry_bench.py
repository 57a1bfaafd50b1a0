"""Registry benchmark: mlops-tui's model registry side by side with MLflow's.

For each size (2,000, 10,000 and --versions, default 100,000) it builds an mlops-tui
workspace (benchmarks/build_store.py) and, in its own virtual environment, an MLflow registry
on SQLite holding the same versions, then measures:

- cold: each operation as a NEW process, wall time from start to exit (imports included),
  --runs runs after one validating run, the two tools' commands interleaved run by run;
- warm: in-process service calls after a warm-up, median and p95 in milliseconds.

It prints plain-text tables and writes benchmarks/out/registry_bench.json.

    python benchmarks/registry_bench.py                    # 2k, 10k, 100k; MLflow included
    python benchmarks/registry_bench.py --versions 2000 --skip-mlflow
    python benchmarks/registry_bench.py --keep /tmp/regbench   # keep (and reuse) the stores
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from build_store import REGIMES, build_workspace, version_at_depth  # noqa: E402

VENV = HERE / ".venv-mlflow"
PEER = HERE / "mlflow_peer.py"
OUT = HERE / "out" / "registry_bench.json"
SMALL, MEDIUM = 2_000, 10_000
DEPTH = 50  # lineage is measured on a version with this many ancestors
HEAVY_RUNS = 3  # runs of "list all" above MEDIUM versions (each takes seconds)
REGIME, TRIGGER = REGIMES[1], "drift"
# MLflow 3 reports usage over the network by default: off, here and for every helper run.
MLFLOW_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
TARGETS = {"list all, 2,000 versions, cold (s)": 0.3, "point lookup, warm (ms)": 2.0}

# Cold operations: label -> (mlops-tui arguments, MLflow helper arguments or None).
# {n} is the size, {k} the deep version's number.
OPERATIONS: dict[str, tuple[list[str], list[str] | None]] = {
    "list all (--limit 0)": (["models", "list", "--json", "--limit", "0"],
                             ["list", "--max-results", "{n}"]),
    "list default page (200)": (["models", "list", "--json"], ["list", "--max-results", "200"]),
    f"filtered list ({REGIME}, {TRIGGER})": (
        ["models", "list", "--json", "--regime", REGIME, "--trigger", TRIGGER],
        ["filter", "--max-results", "200", "--regime", REGIME, "--trigger", TRIGGER]),
    "show vK": (["models", "show", "v{k}", "--json"], ["get", "--number", "{k}"]),
    f"lineage vK (depth {DEPTH})": (["lineage", "v{k}", "--json"],
                                    ["ancestry", "--number", "{k}"]),
}


# -- timing helpers ----------------------------------------------------------------------


def summary(seconds: list[float]) -> dict:
    """min / median / max of wall-clock samples (seconds)."""
    return {"min": min(seconds), "median": statistics.median(seconds), "max": max(seconds),
            "runs": len(seconds)}


def run_json(argv: list[str], env: dict) -> object:
    """Run `argv` once and parse its stdout as JSON (fails loudly on a non-zero exit)."""
    done = subprocess.run(argv, capture_output=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: "
                           f"{done.stderr.decode(errors='replace')[-2000:]}")
    return json.loads(done.stdout)


def time_cold(commands: dict[str, list[str]], runs: int, env: dict) -> dict[str, dict]:
    """Wall time of each command as a new process, `runs` times, commands interleaved."""
    samples: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(runs):
        for label, argv in commands.items():
            started = time.perf_counter()
            done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  env=env, check=False)
            elapsed = time.perf_counter() - started
            if done.returncode != 0:
                raise RuntimeError(f"{label}: exit {done.returncode}: {done.stderr[-2000:]!r}")
            samples[label].append(elapsed)
    return {label: summary(values) for label, values in samples.items()}


def time_warm(call: Callable[[], object], runs: int) -> dict:
    """Median and p95 (ms) of `call` in this process, after a warm-up of runs/10 calls."""
    for _ in range(max(5, runs // 10)):
        call()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append(1000 * (time.perf_counter() - started))
    samples.sort()
    return {"median_ms": statistics.median(samples),
            "p95_ms": samples[max(0, int(0.95 * len(samples)) - 1)], "runs": runs}


# -- the commands ----------------------------------------------------------------------


def mlops_cli() -> list[str]:
    """The console script next to this interpreter (no version-manager shim in between)."""
    beside = Path(sys.executable).parent / "mlops-tui"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("mlops-tui")
    return [found] if found else [sys.executable, "-m", "mlops_tui.cli.main"]


def baseline_commands(mlflow_python: Path | None) -> dict[str, list[str]]:
    """Process start-up floors, so the reader sees where cold time goes."""
    py = sys.executable
    commands = {
        "python -c pass": [py, "-c", "pass"],
        "python -c 'import duckdb'": [py, "-c", "import duckdb"],
        "python -c 'import mlops_tui.cli.main'": [py, "-c", "import mlops_tui.cli.main"],
        "mlops-tui --version": [*mlops_cli(), "--version"],
    }
    on_path = shutil.which("mlops-tui")
    if on_path and Path(on_path).resolve() != Path(mlops_cli()[0]).resolve():
        commands["mlops-tui --version (as found on PATH)"] = [on_path, "--version"]
    if mlflow_python is not None:
        commands["mlflow venv: python -c pass"] = [str(mlflow_python), "-c", "pass"]
        commands["mlflow venv: from mlflow import MlflowClient"] = [
            str(mlflow_python), "-c", "from mlflow import MlflowClient"]
    return commands


def lineage_depth(document: dict) -> int:
    depth, node = 0, document
    while parents := [c for c in node["children"] if c["relation"] == "parent"]:
        depth, node = depth + 1, parents[0]
    return depth


def check_mlops(label: str, document: dict, size: int, number: int) -> str:
    """A short description of what the validating run returned; raises if it is wrong."""
    if label.startswith("list all"):
        assert document["total"] == size == len(document["versions"]), label
    elif label.startswith("list") or label.startswith("filtered"):
        assert len(document["versions"]) == min(200, document["total"]), label
    elif label.startswith("show"):
        assert document["id"] == f"v{number}", label
    else:
        assert lineage_depth(document) == DEPTH, label
    return _described(document)


def check_mlflow(label: str, document: dict, size: int) -> str:
    if label.startswith("list all"):
        assert document["total"] == size, label
    elif label.startswith("lineage"):
        assert len(document["chain"]) == DEPTH + 1, label
    return _described(document)


def _described(document: dict) -> str:
    if "versions" in document:
        return f"{len(document['versions'])} of {document['total']} versions"
    if "chain" in document:
        return f"{len(document['chain']) - 1} ancestors"
    if "children" in document:
        return f"{lineage_depth(document)} ancestors"
    return f"version {document.get('id') or document.get('version')}"


# -- MLflow ------------------------------------------------------------------------------


def ensure_mlflow_venv(venv: Path) -> Path:
    """The venv's python; the venv is created (latest mlflow that installs) when missing."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} and installing mlflow (a few minutes)...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
                       check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "mlflow"], check=True)
    return python


def mlflow_versions(python: Path) -> dict:
    code = ("import json, mlflow, sqlalchemy, sqlite3; print(json.dumps({'mlflow': "
            "mlflow.__version__, 'sqlalchemy': sqlalchemy.__version__, "
            "'sqlite': sqlite3.sqlite_version}))")
    return run_json([str(python), "-c", code], os.environ | MLFLOW_ENV)


class MlflowRegistry:
    """A growing MLflow registry on SQLite, copied aside at each measured size."""

    def __init__(self, python: Path, workdir: Path, budget_s: float) -> None:
        self.python, self.workdir = python, workdir
        self.source: Path | None = None  # a real skops file: MLflow records its URI only
        self.growing = workdir / "mlflow-growing.db"
        self.budget_s = budget_s
        self.spent_s = 0.0
        self.per_version_ms: float | None = None
        self.count = self._growing_count()

    def _growing_count(self) -> int:
        """Versions already in the growing registry (kept from an earlier run)."""
        if not self.growing.exists():
            return 0
        with closing(sqlite3.connect(self.growing)) as connection:
            return int(connection.execute("SELECT count(*) FROM model_versions").fetchone()[0])

    def projected_s(self, size: int) -> float | None:
        if self.per_version_ms is None:
            return None
        return self.per_version_ms * (size - self.count) / 1000

    def at(self, size: int) -> tuple[Path, dict | None]:
        """A registry file holding `size` versions (and the registration figures, if built)."""
        assert self.source is not None, "set a source artifact first"
        copy = self.workdir / f"mlflow-{size}.db"
        saved = copy.with_suffix(".populate.json")
        if copy.exists():
            return copy, json.loads(saved.read_text()) if saved.exists() else None
        if self.count > size:
            self.growing.unlink(missing_ok=True)
            self.count = 0
        print(f"  MLflow: registering up to {size:,} versions...", file=sys.stderr)
        filled = run_json([str(self.python), str(PEER), "populate", "--db", str(self.growing),
                           "--upto", str(size), "--source", self.source.as_uri()],
                          os.environ | MLFLOW_ENV)
        assert isinstance(filled, dict) and filled["versions"] == size, filled
        self.spent_s += filled["seconds"]
        self.count = size
        if filled["per_version_ms"]:
            self.per_version_ms = filled["per_version_ms"]
        shutil.copyfile(self.growing, copy)
        saved.write_text(json.dumps(filled))
        return copy, filled

    def command(self, db: Path, args: list[str]) -> list[str]:
        return [str(self.python), str(PEER), "op", "--db", str(db), *args]

    def warm(self, db: Path, number: int, runs: int) -> dict:
        return run_json([str(self.python), str(PEER), "warm", "--db", str(db), "--number",
                         str(number), "--regime", REGIME, "--trigger", TRIGGER, "--runs",
                         str(runs)], os.environ | MLFLOW_ENV)


# -- mlops-tui -------------------------------------------------------------------------


def mlops_workspace(workdir: Path, size: int) -> tuple[Path, dict]:
    """The workspace with `size` versions: reused from --keep, or built now."""
    root, saved = workdir / f"mlops-{size}", workdir / f"mlops-{size}.build.json"
    if (root / "store.duckdb").exists():
        stats = json.loads(saved.read_text()) if saved.exists() else {}
        return root, stats | {"reused": True}
    print(f"  mlops-tui: building a workspace with {size:,} versions...", file=sys.stderr)
    stats: dict = {}
    build_workspace(root, size, stats=stats)
    saved.write_text(json.dumps(stats))
    return root, stats


def warm_mlops(root: Path, number: int, runs: int) -> dict:
    """In-process timings of the registry services, the store's unit of work and a query."""
    import duckdb

    from mlops_tui.services.lineage import lineage
    from mlops_tui.services.registry import list_versions, show_version
    from mlops_tui.services.workspace import open_workspace
    from mlops_tui.store import registry as registry_sql
    from mlops_tui.store.db import Tx

    workspace = open_workspace(root)
    version_id = f"v{number}"

    def unit_with_query() -> None:
        with workspace.store.read() as tx:
            registry_sql.get_version(tx, number)

    def empty_unit() -> None:
        with workspace.store.read():
            pass

    results = {
        f"show_version({version_id})": time_warm(lambda: show_version(workspace, version_id),
                                                 runs),
        f"list_versions(regime={REGIME!r}, limit=50)": time_warm(
            lambda: list_versions(workspace, regime=REGIME, limit=50), runs),
        f"list_versions(regime, trigger={TRIGGER!r}, limit=50)": time_warm(
            lambda: list_versions(workspace, regime=REGIME, trigger=TRIGGER, limit=50), runs),
        "list_versions() default page (200)": time_warm(
            lambda: list_versions(workspace), max(20, runs // 4)),
        f"lineage({version_id}), depth {DEPTH}": time_warm(
            lambda: lineage(workspace, version_id), max(20, runs // 4)),
        "store.read() + registry_sql.get_version": time_warm(unit_with_query, runs),
        "store.read() alone (lock, attach, schema check)": time_warm(empty_unit, runs),
    }
    connection = duckdb.connect(str(workspace.store_path), read_only=True)
    try:
        tx = Tx(connection, read_only=True)
        results["registry_sql.get_version on an open connection"] = time_warm(
            lambda: registry_sql.get_version(tx, number), runs)
    finally:
        connection.close()
    return results


# -- one size ----------------------------------------------------------------------------


def measure_size(size: int, workdir: Path, runs: int, mlflow: MlflowRegistry | None,
                 notes: list[str]) -> dict:
    """Build both registries at `size` and measure every operation cold and warm."""
    print(f"[{size:,} versions]", file=sys.stderr)
    root, build = mlops_workspace(workdir, size)
    number = version_at_depth(size, DEPTH)
    result: dict = {"versions": size, "deep_version": f"v{number}", "mlops_build": build,
                    "load_before": [round(x, 2) for x in os.getloadavg()]}
    mlflow_db = None
    if mlflow is not None:
        mlflow.source = mlflow.source or next((root / "artifacts").rglob("*.skops"))
        projected = mlflow.projected_s(size)
        if projected is not None and mlflow.spent_s + projected > mlflow.budget_s:
            notes.append(
                f"MLflow not measured at {size:,}: registering {size - mlflow.count:,} more "
                f"versions at {mlflow.per_version_ms:.1f} ms each would take about "
                f"{projected / 60:.0f} min, over the --mlflow-budget")
        else:
            mlflow_db, filled = mlflow.at(size)
            result["mlflow_populate"] = filled
    env = os.environ | MLFLOW_ENV
    heavy = size > MEDIUM
    groups: dict[bool, dict[str, list[str]]] = {False: {}, True: {}}
    result["checked"] = {}
    for label, (mlops_args, peer_args) in OPERATIONS.items():
        fill = {"n": str(size), "k": str(number)}
        is_heavy = heavy and label.startswith("list all")
        argv = [*mlops_cli(), "--workspace", str(root), *[a.format(**fill) for a in mlops_args]]
        document = run_json(argv, env)
        result["checked"][f"mlops-tui|{label}"] = check_mlops(label, document, size, number)
        groups[is_heavy][f"mlops-tui|{label}"] = argv
        if mlflow is not None and mlflow_db is not None and peer_args is not None:
            argv = mlflow.command(mlflow_db, [a.format(**fill) for a in peer_args])
            document = run_json(argv, env)
            result["checked"][f"mlflow|{label}"] = check_mlflow(label, document, size)
            groups[is_heavy][f"mlflow|{label}"] = argv
    print("  timing cold processes...", file=sys.stderr)
    result["cold"] = time_cold(groups[False], runs, env)
    if groups[True]:
        result["cold"] |= time_cold(groups[True], min(runs, HEAVY_RUNS), env)
    print("  timing warm calls...", file=sys.stderr)
    result["warm_mlops"] = warm_mlops(root, number, 200)
    if mlflow is not None and mlflow_db is not None:
        result["warm_mlflow"] = mlflow.warm(mlflow_db, number, 200)
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    return result


# -- report ------------------------------------------------------------------------------


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows, strict=True)]
    line = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    out = [line.format(*headers), line.format(*("-" * w for w in widths))]
    out += [line.format(*row) for row in rows]
    return "\n".join(out)


def seconds_text(entry: dict | None) -> str:
    if entry is None:
        return "-"
    return f"{entry['median']:.3f} ({entry['min']:.3f}-{entry['max']:.3f})"


def report(document: dict) -> str:
    env, peer = document["environment"], document["environment"].get("mlflow")
    peer_text = (f"mlflow {peer['mlflow']} (sqlalchemy {peer['sqlalchemy']}, sqlite "
                 f"{peer['sqlite']})" if peer else "mlflow skipped")
    parts = [
        f"registry benchmark  {env['date']}  {env['cores']} cores  python {env['python']}  "
        f"duckdb {env['duckdb']}  {peer_text}",
        f"load average before {env['load_before']}, after {env['load_after']}; "
        "cold figures: wall seconds, median (min-max) of whole new processes",
        "",
        "baselines (cold process)",
        table(["command", "median (min-max) s"],
              [[label, seconds_text(entry)] for label, entry in document["baselines"].items()]),
    ]
    for size_result in document["sizes"]:
        size, cold = size_result["versions"], size_result["cold"]
        parts += ["", f"== {size:,} versions (vK = {size_result['deep_version']}; load "
                  f"average {size_result['load_before'][0]} before, "
                  f"{size_result['load_after'][0]} after) ==", ""]
        rows = []
        for label in OPERATIONS:
            ours, theirs = cold.get(f"mlops-tui|{label}"), cold.get(f"mlflow|{label}")
            ratio = f"{theirs['median'] / ours['median']:.1f}x" if ours and theirs else "-"
            rows.append([label, seconds_text(ours), seconds_text(theirs), ratio])
        parts.append(table(["cold operation", "mlops-tui s", "MLflow s",
                            "MLflow/mlops-tui"], rows))
        warm_rows = [[label, f"{e['median_ms']:.2f}", f"{e['p95_ms']:.2f}"]
                     for label, e in size_result["warm_mlops"].items()]
        warm_rows += [[f"MLflow {label}", f"{e['median_ms']:.2f}", f"{e['p95_ms']:.2f}"]
                      for label, e in size_result.get("warm_mlflow", {}).items()
                      if isinstance(e, dict)]
        parts += ["", table(["warm call (in-process)", "median ms", "p95 ms"], warm_rows)]
        build, filled = size_result["mlops_build"], size_result.get("mlflow_populate")
        if build.get("register_version_ms"):
            register = build["register_version_ms"]
            parts.append(
                f"\nbuild: {build['total_s']:.1f}s; mlops-tui register_version median "
                f"{statistics.median(register):.0f} ms ({len(register)} real versions), bulk "
                f"{build['bulk_rows']:,} rows in {build['bulk_s']:.1f}s")
        if filled:
            parts.append(f"MLflow create_model_version: {filled['per_version_ms']:.1f} ms per "
                         f"version ({filled['added']:,} added in {filled['seconds']:.0f}s)")
    parts += ["", "targets"] + [f"  {line}" for line in document["targets"]]
    if document["notes"]:
        parts += ["", "notes"] + [f"  {note}" for note in document["notes"]]
    return "\n".join(parts)


def check_targets(document: dict) -> list[str]:
    lines = []
    for size_result in document["sizes"]:
        if size_result["versions"] == SMALL:
            entry = size_result["cold"]["mlops-tui|list all (--limit 0)"]
            limit = TARGETS["list all, 2,000 versions, cold (s)"]
            lines.append(f"list all at 2,000 cold: {entry['median']:.3f} s (target < {limit} s)"
                         f" -> {'met' if entry['median'] < limit else 'MISSED'}")
        show = next(v for k, v in size_result["warm_mlops"].items() if k.startswith("show"))
        limit = TARGETS["point lookup, warm (ms)"]
        lines.append(f"show_version warm at {size_result['versions']:,}: "
                     f"{show['median_ms']:.2f} ms (target < {limit} ms) -> "
                     f"{'met' if show['median_ms'] < limit else 'MISSED'}")
    return lines


# -- main --------------------------------------------------------------------------------


def write_json(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


def measured_code() -> dict:
    """Which mlops_tui was measured: its folder and, from a git checkout, the commit."""
    import mlops_tui

    package = Path(mlops_tui.__file__).resolve().parent
    done = subprocess.run(["git", "-C", str(package), "describe", "--always", "--dirty"],
                          capture_output=True, text=True, check=False)
    return {"package": package.name if package.parent == HERE.parent else str(package),
            "git": done.stdout.strip() or None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=100_000,
                        help="largest size (2,000 and 10,000 are measured too when smaller)")
    parser.add_argument("--runs", type=int, default=7, help="cold runs per operation")
    parser.add_argument("--skip-mlflow", action="store_true", help="measure mlops-tui only")
    parser.add_argument("--keep", type=Path, help="build (or reuse) the stores in this folder "
                        "and keep them; default: a temporary folder, removed at the end")
    parser.add_argument("--mlflow-budget", type=float, default=1800.0,
                        help="seconds MLflow registration may take in all (default 1800)")
    parser.add_argument("--out", type=Path, default=OUT, help="where to write the JSON")
    args = parser.parse_args(argv)
    if args.versions < 300 or args.runs < 1:
        parser.error("--versions must be at least 300 (a lineage of depth 50) and --runs "
                     "at least 1")

    workdir = (args.keep or Path(tempfile.mkdtemp(prefix="registry-bench-"))).absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    sizes = sorted({s for s in (SMALL, MEDIUM) if s < args.versions} | {args.versions})
    import duckdb

    environment = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "cores": os.cpu_count(),
        "platform": platform.platform(), "python": platform.python_version(),
        "duckdb": duckdb.__version__, "load_before": [round(x, 2) for x in os.getloadavg()],
        "mlops_tui": measured_code(),
    }
    notes: list[str] = []
    mlflow = None
    try:
        mlflow_python = None if args.skip_mlflow else ensure_mlflow_venv(VENV)
        if mlflow_python is not None:
            environment["mlflow"] = mlflow_versions(mlflow_python)
        print("baselines...", file=sys.stderr)
        baselines = time_cold(baseline_commands(mlflow_python), args.runs,
                              os.environ | MLFLOW_ENV)
        if mlflow_python is not None:
            mlflow = MlflowRegistry(mlflow_python, workdir, args.mlflow_budget)
        results = []
        for size in sizes:
            results.append(measure_size(size, workdir, args.runs, mlflow, notes))
            write_json(args.out, {"environment": environment, "baselines": baselines,
                                  "sizes": results, "notes": notes, "partial": True})
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    environment["load_after"] = [round(x, 2) for x in os.getloadavg()]
    if mlflow is not None:
        notes += [
            "ratio = MLflow median / mlops-tui median (above 1: mlops-tui is faster)",
            "MLflow has no lineage: its 'lineage' row walks a parent tag with one "
            "get_model_version per ancestor",
            "MLflow helpers print the results as one JSON document, like 'mlops-tui ... --json'",
        ]
    if args.versions > MEDIUM:
        notes.append(f"'list all' above {MEDIUM:,} versions: {min(args.runs, HEAVY_RUNS)} "
                     f"run(s) each")
    document = {"environment": environment, "baselines": baselines, "sizes": results,
                "notes": notes, "args": {k: str(v) for k, v in vars(args).items()}}
    document["targets"] = check_targets(document)
    print(report(document))
    write_json(args.out, document)
    print(f"\nJSON written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Drift benchmark: mlops-tui's drift engine on 1,000,000 rows, side by side with Evidently,
NannyML and alibi-detect on the same data.

Data (seeded): a reference of 200,000 rows (the training snapshot of one registered version)
and 1,000,000 current rows in 20 UTC hours of 50,000 rows; 20 numeric + 5 categorical
features; drift injected only from window 10 on, into 5 features:

    n00  mean +0.5 sd          n01  sd x 1.5            n02  mean +0.2 sd
    n03  mean +0.05 sd per window after the 9th (0.05 at window 10, 0.5 at window 19)
    c00  category shares (0.4, 0.3, 0.2, 0.1) -> (0.25, 0.25, 0.25, 0.25)

Measured (mlops-tui, in-process, median of --runs after a warm-up, wall and CPU seconds):

- all 20 windows end to end from the store (`compute_drift`: the store query, regime
  identification, statistics, verdicts), target < 0.5 s;
- one new 50,000-row window: validate + append (`ingest_file` of a Parquet file) + drift for
  that window (`compute_drift(since=...)`), target < 0.3 s;
- false alarms in windows 0-9 (target 0) and the first window each injected drift is flagged.

Peers, each in its own virtual environment under benchmarks/ (created on first use, --skip-peers
skips them): Evidently's DataDriftPreset (run once: about 2.5 minutes), NannyML's univariate
drift at its defaults, alibi-detect's TabularDrift. The script prints time ratios and the
per-column verdict agreement with Evidently, and writes benchmarks/out/drift_bench.json.

    python benchmarks/drift_bench.py                 # everything
    python benchmarks/drift_bench.py --skip-peers    # mlops-tui only (about a minute)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
REFERENCE_ROWS = 200_000
WINDOW_ROWS = 50_000
WINDOWS = 20
DRIFT_FROM = 10
NUMERIC = [f"n{i:02d}" for i in range(20)]
CATEGORICAL = [f"c{i:02d}" for i in range(5)]
CATEGORIES = ["a", "b", "c", "d"]
SHARES = [0.4, 0.3, 0.2, 0.1]
DRIFTED = {"n00": "mean +0.5 sd", "n01": "sd x 1.5", "n02": "mean +0.2 sd",
           "n03": "mean +0.05 sd per window", "c00": "shares -> uniform"}
PEERS = {
    "evidently": ["evidently==0.7.23", "pandas<3", "pyarrow"],
    "nannyml": ["nannyml==0.13.1", "statsmodels", "pandas<3", "pyarrow"],
    "alibi-detect": ["alibi-detect==0.13.0", "pandas<3", "pyarrow<17"],  # it pins numpy 1
}


# -- data -------------------------------------------------------------------------------------

def make_frames(seed: int = 11):
    """(reference, current) as pandas frames; current has `window` 0..19 and no ids yet."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    means = rng.uniform(-5, 5, len(NUMERIC))
    stds = rng.uniform(0.5, 3, len(NUMERIC))

    def block(rows: int, window: int | None) -> pd.DataFrame:
        values = means + stds * rng.standard_normal((rows, len(NUMERIC)))
        frame = pd.DataFrame(np.round(values, 5), columns=NUMERIC)
        for name in CATEGORICAL:
            shares = SHARES
            if window is not None and window >= DRIFT_FROM and name == "c00":
                shares = [0.25] * 4
            frame[name] = rng.choice(np.array(CATEGORIES, dtype=object), rows, p=shares)
        if window is not None and window >= DRIFT_FROM:
            frame["n00"] += 0.5 * stds[0]
            frame["n01"] = means[1] + (frame["n01"] - means[1]) * 1.5
            frame["n02"] += 0.2 * stds[2]
            frame["n03"] += 0.05 * (window - DRIFT_FROM + 1) * stds[3]
        return frame

    reference = block(REFERENCE_ROWS, None)
    current = pd.concat([block(WINDOW_ROWS, w).assign(window=w) for w in range(WINDOWS)],
                        ignore_index=True)
    return reference, current


def _with_ids_and_times(frame, start: datetime, first_id: int):
    import numpy as np
    import pandas as pd

    out = frame.copy()
    step_us = 3_600_000_000 // WINDOW_ROWS
    offsets = out["window"].to_numpy() * 3_600_000_000 + (np.arange(len(out)) % WINDOW_ROWS) * step_us
    out.insert(0, "ts", pd.to_datetime(int(start.timestamp() * 1e6) + offsets, unit="us", utc=True))
    out.insert(0, "obs_id", [f"o{first_id + i:08d}" for i in range(len(out))])
    return out.drop(columns=["window"])


# -- mlops-tui --------------------------------------------------------------------------------

CONFIG = """
[data]
id_column = "obs_id"
timestamp_column = "ts"
regime_column = ""
numeric = [{numeric}]
categorical = [{categorical}]
window = "1h"
"""


def build_workspace(root: Path, reference, start: datetime):
    """A workspace whose production target serves one version trained on the reference."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.linear_model import Ridge

    from mlops_tui.artifacts.weights import dumps
    from mlops_tui.core.models import DataSnapshot, DeploymentKind
    from mlops_tui.services.deployments import record_deployment
    from mlops_tui.services.environments import capture_host
    from mlops_tui.services.registry import Registration, register_version
    from mlops_tui.services.workspace import init_workspace

    text = CONFIG.format(numeric=", ".join(f'"{n}"' for n in NUMERIC),
                         categorical=", ".join(f'"{c}"' for c in CATEGORICAL))
    text = text.replace('regime_column = ""\n', "")
    workspace = init_workspace(root, config_text=text)
    snapshots = workspace.data_root / "snapshots"
    snapshots.mkdir(parents=True)
    table = pa.Table.from_pandas(reference, preserve_index=False)
    pq.write_table(table, snapshots / "reference.parquet")
    inputs = root.parent / "inputs"
    (inputs / "pipeline").mkdir(parents=True)
    (inputs / "pipeline" / "train.py").write_text("def train(frame, params):\n    pass\n")
    (inputs / "pipeline" / "requirements.txt").write_text("scikit-learn\n")
    model = Ridge().fit(reference[NUMERIC].to_numpy()[:1000], np.zeros(1000))
    (inputs / "model.skops").write_bytes(dumps(model))
    snapshot = DataSnapshot("f" * 64, "train", len(reference), "line", None, None,
                            "data/snapshots/reference.parquet")
    started = time.perf_counter()
    version = register_version(workspace, Registration(
        regime="line", artifact_file=inputs / "model.skops", code_dir=inputs / "pipeline",
        environment=capture_host(), train=snapshot))
    profile_seconds = time.perf_counter() - started
    for kind, subject in ((DeploymentKind.CHAMPION, "line"), (DeploymentKind.ACTIVE, "production")):
        record_deployment(workspace, kind=kind, subject=subject, version_id=version.id,
                          action="deploy", reason="benchmark")
    return workspace, profile_seconds


def _copy_workspace(source: Path, target: Path) -> None:
    """A copy to append to: batch and snapshot files are immutable, so they are hard links."""
    import shutil

    shutil.copytree(source, target, ignore=shutil.ignore_patterns("data"))
    shutil.copytree(source / "data", target / "data", copy_function=os.link)


def _timed(function, runs: int) -> tuple[float, float, object]:
    """Median wall and CPU seconds over `runs` calls (after one warm-up call)."""
    result = function()
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def run_mlops(reference, current, runs: int, keep: Path | None) -> dict:


    root = keep or Path(tempfile.mkdtemp(prefix="drift-bench-"))
    try:
        return _measure(root, reference, current, runs)
    finally:
        if keep is None:
            import shutil

            shutil.rmtree(root, ignore_errors=True)


def _measure(root: Path, reference, current, runs: int) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlops_tui.services.drift_compute import compute_drift
    from mlops_tui.services.ingest import ingest_file
    from mlops_tui.services.workspace import open_workspace

    start = (datetime.now(UTC) + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    workspace, profile_seconds = build_workspace(root / "ws", reference, start)
    stamped = _with_ids_and_times(current, start, 0)
    first = stamped.iloc[: (WINDOWS - 1) * WINDOW_ROWS]
    last = stamped.iloc[(WINDOWS - 1) * WINDOW_ROWS:]
    pq.write_table(pa.Table.from_pandas(first, preserve_index=False), root / "first19.parquet")
    wall = time.perf_counter()
    ingest_file(workspace, root / "first19.parquet")
    bulk_ingest = time.perf_counter() - wall
    compute_drift(workspace, with_metrics=False)  # steady state: earlier windows were judged

    new_window_walls = []
    for attempt in range(runs):  # each attempt appends the same window into a fresh copy
        target = root / f"ws-{attempt}"
        _copy_workspace(workspace.root, target)

        copy = open_workspace(target)
        pq.write_table(pa.Table.from_pandas(last, preserve_index=False),
                       root / f"window19-{attempt}.parquet")
        wall, cpu = time.perf_counter(), time.process_time()
        ingest_file(copy, root / f"window19-{attempt}.parquet")
        report = compute_drift(copy, since=start + timedelta(hours=WINDOWS - 1),
                               with_metrics=False)
        new_window_walls.append((time.perf_counter() - wall, time.process_time() - cpu))
        assert len(report.windows) == 1 and report.windows[0].rows == WINDOW_ROWS
    full = open_workspace(root / "ws-0")

    def cold():
        import shutil

        shutil.rmtree(full.data_root / "counts", ignore_errors=True)  # no counts kept yet
        return compute_drift(full, with_metrics=False)

    cold_wall, cold_cpu, _ = _timed(cold, runs)
    wall_all, cpu_all, report = _timed(lambda: compute_drift(full, with_metrics=False), runs)
    verdicts = {name: [w.features[name].verdict == "drift" for w in report.windows]
                for name in NUMERIC + CATEGORICAL}
    statistic = {name: [w.features[name].statistic for w in report.windows]
                 for name in NUMERIC + CATEGORICAL}
    tests = {name: report.windows[0].features[name].test for name in NUMERIC + CATEGORICAL}
    return {
        "profile_and_register_seconds": round(profile_seconds, 3),
        "ingest_950k_rows_seconds": round(bulk_ingest, 3),
        "all_windows_seconds": round(wall_all, 4), "all_windows_cpu_seconds": round(cpu_all, 4),
        "all_windows_cold_seconds": round(cold_wall, 4),
        "all_windows_cold_cpu_seconds": round(cold_cpu, 4),
        "new_window_seconds": round(statistics.median(w for w, _ in new_window_walls), 4),
        "new_window_cpu_seconds": round(statistics.median(c for _, c in new_window_walls), 4),
        "windows": len(report.windows), "tests": tests, "verdicts": verdicts,
        "statistics": statistic,
    }


# -- peers (run inside their own virtual environments) ----------------------------------------

def peer_python(name: str) -> Path:
    venv = HERE / f".venv-{name}"
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv.name} ({' '.join(PEERS[name])}) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        *PEERS[name]], check=True)
    return python


def run_peer(name: str, data_dir: Path) -> dict:
    python = peer_python(name)
    out = data_dir / f"{name}.json"
    done = subprocess.run([str(python), __file__, "--as-peer", name, "--data", str(data_dir),
                           "--peer-out", str(out)], capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else
                f"exit {done.returncode}"}
    return json.loads(out.read_text())


def peer_main(name: str, data_dir: Path, out: Path) -> None:
    """Runs in the peer's venv: only numpy, pandas and the peer itself are importable."""
    import warnings

    import pandas as pd

    warnings.filterwarnings("ignore")
    import pyarrow.parquet as pq

    reference = pq.read_table(data_dir / "reference.parquet").to_pandas()
    current = pq.read_table(data_dir / "current.parquet").to_pandas()
    windows = [current[current["window"] == w].drop(columns=["window"]) for w in range(WINDOWS)]
    verdicts: dict[str, list[bool]] = {c: [] for c in NUMERIC + CATEGORICAL}
    started = time.perf_counter()
    if name == "evidently":
        from evidently.legacy.metric_preset import DataDriftPreset
        from evidently.legacy.pipeline.column_mapping import ColumnMapping
        from evidently.legacy.report import Report

        mapping = ColumnMapping(numerical_features=NUMERIC, categorical_features=CATEGORICAL)
        for window in windows:
            report = Report(metrics=[DataDriftPreset()])
            report.run(reference_data=reference, current_data=window, column_mapping=mapping)
            for metric in report.as_dict()["metrics"]:
                by_column = metric["result"].get("drift_by_columns")
                if by_column:
                    for column in verdicts:
                        verdicts[column].append(bool(by_column[column]["drift_detected"]))
    elif name == "nannyml":
        import nannyml as nml

        calculator = nml.UnivariateDriftCalculator(column_names=NUMERIC + CATEGORICAL,
                                                   chunk_size=WINDOW_ROWS)
        calculator.fit(reference)
        results = calculator.calculate(pd.concat(windows, ignore_index=True)).filter(
            period="analysis").to_df()
        for column in verdicts:
            alerts = results[[c for c in results.columns
                              if c[0] == column and c[-1] == "alert"]]
            verdicts[column] = [bool(v) for v in alerts.any(axis=1).tolist()]
    elif name == "alibi-detect":
        import numpy as np
        from alibi_detect.cd import TabularDrift

        columns = NUMERIC + CATEGORICAL
        codes = {c: {v: i for i, v in enumerate(sorted(reference[c].unique()))}
                 for c in CATEGORICAL}

        def encode(frame):
            array = frame[columns].copy()
            for c in CATEGORICAL:
                array[c] = array[c].map(codes[c]).fillna(-1)
            return array.to_numpy(dtype=np.float64)

        detector = TabularDrift(encode(reference), p_val=0.05,
                                categories_per_feature={columns.index(c): None
                                                        for c in CATEGORICAL})
        for window in windows:
            prediction = detector.predict(encode(window), drift_type="feature")
            for i, column in enumerate(columns):
                verdicts[column].append(bool(prediction["data"]["is_drift"][i]))
    seconds = time.perf_counter() - started
    out.write_text(json.dumps({"seconds": round(seconds, 3), "verdicts": verdicts}))


# -- report -----------------------------------------------------------------------------------

def first_flag(flags: list[bool]) -> int | None:
    later = [w for w in range(DRIFT_FROM, WINDOWS) if flags[w]]
    return later[0] if later else None


def false_alarms(verdicts: dict[str, list[bool]]) -> list[int]:
    """Per undrifted window (0-9): how many columns were flagged."""
    return [sum(v[w] for v in verdicts.values()) for w in range(DRIFT_FROM)]


def summary(name: str, verdicts: dict[str, list[bool]]) -> dict:
    return {"false_alarms_per_window_0_9": false_alarms(verdicts),
            "first_flag": {c: first_flag(verdicts[c]) for c in DRIFTED},
            "drifted_windows_missed": {c: sum(not v for v in verdicts[c][DRIFT_FROM:])
                                       for c in DRIFTED}}


def agreement(ours: dict[str, list[bool]], theirs: dict[str, list[bool]]) -> float:
    pairs = [(a, b) for c in ours for a, b in zip(ours[c], theirs.get(c, []), strict=False)]
    return sum(a == b for a, b in pairs) / len(pairs) if pairs else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--peers", default=",".join(PEERS),
                        help="comma-separated peers to run (default: all)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    parser.add_argument("--out", type=Path, default=OUT / "drift_bench.json")
    parser.add_argument("--as-peer", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--peer-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.as_peer:
        peer_main(args.as_peer, args.data, args.peer_out)
        return 0
    sys.path.insert(0, str(HERE.parent))
    import pandas as pd  # noqa: F401 - fail early when the project is not installed

    print("making data: reference 200,000 rows, current 20 x 50,000 rows, 20 numeric + 5 "
          "categorical features, drift from window 10 ...", flush=True)
    reference, current = make_frames()
    ours = run_mlops(reference, current, args.runs, args.keep)
    results = {"machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()},
               "mlops_tui": ours | summary("mlops-tui", ours["verdicts"]), "peers": {}}
    print(f"\nmlops-tui ({args.runs} runs, median; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    print(f"  all 20 windows from the store   {ours['all_windows_seconds']:.3f} s wall, "
          f"{ours['all_windows_cpu_seconds']:.3f} s CPU   (target < 0.5 s; batch counts kept)")
    print(f"    the same, cold (scan 1M rows)  {ours['all_windows_cold_seconds']:.3f} s wall, "
          f"{ours['all_windows_cold_cpu_seconds']:.3f} s CPU   (first run after a new reference)")
    print(f"  one new 50,000-row window        {ours['new_window_seconds']:.3f} s wall, "
          f"{ours['new_window_cpu_seconds']:.3f} s CPU   (target < 0.3 s)")
    print(f"  register + profile the reference {ours['profile_and_register_seconds']:.3f} s;"
          f" ingest of 950,000 rows {ours['ingest_950k_rows_seconds']:.3f} s")
    print(f"  false alarms, windows 0-9        {results['mlops_tui']['false_alarms_per_window_0_9']}")
    print(f"  first flag per injected drift    {results['mlops_tui']['first_flag']}")
    if not args.skip_peers:
        with tempfile.TemporaryDirectory(prefix="drift-bench-peers-") as folder:
            data_dir = Path(folder)
            reference.to_parquet(data_dir / "reference.parquet")
            current.to_parquet(data_dir / "current.parquet")
            for name in [p for p in args.peers.split(",") if p]:
                if name not in PEERS:
                    parser.error(f"unknown peer {name!r}: {', '.join(PEERS)}")
                print(f"\nrunning {name} in benchmarks/.venv-{name} ...", flush=True)
                peer = run_peer(name, data_dir)
                if "error" in peer:
                    print(f"  {name} failed: {peer['error']}")
                    results["peers"][name] = peer
                    continue
                peer |= summary(name, peer["verdicts"])
                peer["time_ratio_vs_mlops_tui"] = round(
                    peer["seconds"] / ours["all_windows_seconds"], 1)
                peer["time_ratio_vs_mlops_tui_cold"] = round(
                    peer["seconds"] / ours["all_windows_cold_seconds"], 1)
                results["peers"][name] = peer
                print(f"  20 windows {peer['seconds']:.1f} s "
                      f"({peer['time_ratio_vs_mlops_tui']:,}x mlops-tui's wall time, "
                      f"{peer['time_ratio_vs_mlops_tui_cold']:,}x its cold wall time)")
                print(f"  false alarms, windows 0-9 {peer['false_alarms_per_window_0_9']}")
                print(f"  first flag per injected drift {peer['first_flag']}")
        evidently = results["peers"].get("evidently", {})
        if "verdicts" in evidently:
            share = agreement(ours["verdicts"], evidently["verdicts"])
            results["agreement_with_evidently"] = {"mlops_tui": round(share, 4)}
            for name, peer in results["peers"].items():
                if name != "evidently" and "verdicts" in peer:
                    results["agreement_with_evidently"][name] = round(
                        agreement(peer["verdicts"], evidently["verdicts"]), 4)
            print(f"\nper-column verdict agreement with Evidently (500 column-windows): "
                  f"{results['agreement_with_evidently']}")
            late = {c: (ours_first, theirs) for c in DRIFTED
                    if (ours_first := results["mlops_tui"]["first_flag"][c]) is None
                    or ((theirs := evidently["first_flag"][c]) is not None
                        and ours_first > theirs)}
            print("every injected drift flagged no later than Evidently: "
                  + ("yes" if not late else f"NO {late}"))
            results["no_later_than_evidently"] = not late
    for key in ("verdicts", "statistics"):
        results["mlops_tui"].pop(key, None)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

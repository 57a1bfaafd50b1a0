"""Dashboard latency: first paint, a filter keystroke, rollback to refreshed overview.

Measured in one run, on this machine:

1. **First paint of a bare Textual app** (one Static): a new process, wall time from spawn
   to the first frame (interpreter start, imports, first refresh). The floor.
2. **mlops-tui's first paint** — the overview WITH its data (serving, regimes, champions,
   trends, jobs, recent changes), same measurement — on the demo workspace (`mlops-tui demo`)
   and on a store with 100,000 versions (benchmarks/build_store.py) and 10,000,000
   observations (the packaged sample tiled 199 times, ingested through `ingest_file`).
   Target: within 0.3 s of the bare app.
3. **A filter keystroke** on the 100,000-version models view: from the key press to the
   frame showing the filtered rows (count and first page read from SQL). Target < 50 ms.
4. **Rollback confirmation to refreshed overview**: from the Enter on the confirmation's
   action button to the frame whose serving table shows the restored version (the rollback
   service: CAS, artifact hash, environment gate, event + audit, serving folder; then the
   overview's re-read). Target < 200 ms.

Medians of `--runs` runs (default 7; first paints run interleaved). Built stores are kept
under benchmarks/out/ and reused; JSON results go to benchmarks/out/tui_bench.json.

Usage: python benchmarks/tui_bench.py [--runs N] [--observations N] [--versions N]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
sys.path.insert(0, str(REPO_ROOT))  # measure this checkout's code, not an installed copy
OUT = HERE / "out"
TARGET_PAINT_OVER_BARE_S = 0.3
TARGET_FILTER_MS = 50.0
TARGET_ROLLBACK_MS = 200.0

BARE_APP = """
import sys, time
from textual.app import App
from textual.widgets import Static

class Bare(App):
    def compose(self):
        yield Static("hello")

    def on_mount(self):
        self.call_after_refresh(self.painted)

    def painted(self):
        print("PAINTED", flush=True)
        self.exit()

Bare().run(headless=True, size=(100, 30))
"""

MLOPS_APP = """
import sys
from mlops_tui.services.workspace import open_workspace
from mlops_tui.tui.launch import build_app

app = build_app(open_workspace(sys.argv[1]))  # what `mlops-tui` runs
from mlops_tui.tui.screens.overview import OverviewScreen

show = OverviewScreen.show

def first_show(self, data):
    show(self, data)
    if not getattr(OverviewScreen, "_painted", False):
        OverviewScreen._painted = True
        def painted():
            print("PAINTED", len(data.regimes), flush=True)
            self.app.exit()
        self.app.call_after_refresh(painted)

OverviewScreen.show = first_show
app.run(headless=True, size=(100, 30))
"""


def first_paint_seconds(script: str, *args: str) -> float:
    """Spawn to the PAINTED line: interpreter, imports, first frame (with data for mlops)."""
    environment = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=environment)
    line = process.stdout.readline()
    elapsed = time.perf_counter() - started
    process.wait(timeout=60)
    if not line.startswith("PAINTED"):
        raise RuntimeError(f"no first paint: {line!r} {process.stderr.read()[-2000:]}")
    return elapsed


def _build_store_module():
    spec = importlib.util.spec_from_file_location("build_store", HERE / "build_store.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def demo_workspace() -> Path:
    """The README's demo workspace (built once, then reused)."""
    from mlops_tui.services.demo import build_demo

    root = OUT / "tui-demo"
    if not (root / "mlops.toml").exists():
        print("building the demo workspace (about 30 s)…", file=sys.stderr)
        build_demo(root)
    return root


def tiled_observations(path: Path, rows: int) -> Path:
    """The packaged sample repeated until `rows` rows, ids unique, time running on."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from mlops_tui.sample import packaged_observations_path

    sample = pq.read_table(packaged_observations_path())
    ts = sample.column("ts")
    span = pc.subtract(pc.max(ts), pc.min(ts)).cast(pa.duration("us")).as_py()
    span += (ts[1].as_py() - ts[0].as_py())
    writer = None
    written = 0
    copy = 0
    while written < rows:
        part = sample.slice(0, min(sample.num_rows, rows - written))
        shifted = pc.add(part.column("ts"), pa.scalar(span * copy, pa.duration("us")))
        ids = pc.binary_join_element_wise(
            pa.array([f"t{copy}"] * part.num_rows),
            pc.cast(part.column("obs_id"), pa.string()), "-")
        part = part.set_column(part.schema.get_field_index("ts"), "ts", shifted)
        part = part.set_column(part.schema.get_field_index("obs_id"), "obs_id", ids)
        if writer is None:
            writer = pq.ParquetWriter(path, part.schema, compression="zstd")
        writer.write_table(part)
        written += part.num_rows
        copy += 1
    writer.close()
    return path


def big_workspace(versions: int, observations: int) -> Path:
    """`versions` model versions and `observations` rows of observations (built once)."""
    from mlops_tui.services.demo import sample_config_text
    from mlops_tui.services.ingest import ingest_file
    from mlops_tui.services.workspace import open_workspace

    root = OUT / f"tui-store-{versions}v-{observations}o"
    if (root / ".complete").exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    started = time.perf_counter()
    print(f"building {root.name}: {versions:,} versions…", file=sys.stderr)
    _build_store_module().build_workspace(root, versions)
    # the sample's data contract, so the observations can be ingested
    config = sample_config_text()
    (root / "mlops.toml").write_text(config)
    source = OUT / f"observations-{observations}.parquet"
    if not source.exists():
        print(f"writing {observations:,} observations…", file=sys.stderr)
        tiled_observations(source, observations)
    print("ingesting them…", file=sys.stderr)
    ingest_file(open_workspace(root), source)
    (root / ".complete").write_text(f"built in {time.perf_counter() - started:.0f}s\n")
    return root


def median_ms(values: list[float]) -> float:
    return round(1000 * statistics.median(values), 1)


# -- in-process: filter keystroke and rollback ----------------------------------------------------


async def _until(pilot, condition, timeout: float = 30.0) -> float:
    """Poll the app between frames until `condition()`; the time it became true."""
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.0005)
    return time.perf_counter()


async def _painted(app) -> float:
    """The moment the next frame is on screen."""
    done = asyncio.get_running_loop().create_future()
    app.call_after_refresh(lambda: done.done() or done.set_result(time.perf_counter()))
    return await done


def measure_filter(root: Path, runs: int) -> dict:
    """A filter keystroke on the models view: from the filter line's new text (what a key
    press does) to the painted frame showing the newly filtered rows."""
    from mlops_tui.services.workspace import open_workspace
    from mlops_tui.tui.app import MlopsApp
    from mlops_tui.tui.widgets.status import FilterBar

    async def scenario() -> dict:
        app = MlopsApp(open_workspace(root), refresh_seconds=3600)
        timings, totals = [], []
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.press("colon", *"models", "enter")
            await _until(pilot, lambda: app.screen.query("PagedTable")
                         and app.screen.query_one("PagedTable").total > 0)
            await app.workers.wait_for_complete()
            table = app.screen.query_one("PagedTable")
            everything = table.total
            await pilot.press("slash")
            bar = app.screen.query_one(FilterBar)
            for _ in range(runs):
                for text, regime in (("sedan", "sedan"), ("suv", "suv"), ("van", "van")):
                    await app.workers.wait_for_complete()
                    await pilot.pause()
                    started = time.perf_counter()
                    bar.value = text  # the Input's text after the keystroke
                    await _until(pilot, lambda r=regime: table.total < everything
                                 and table.row_values(0) is not None
                                 and table.row_values(0)[1] == r)
                    timings.append(await _painted(app) - started)
                    totals.append(table.total)
                    bar.value = ""
                    await _until(pilot, lambda: table.total == everything)
        return {"filter_keystroke_ms": median_ms(timings), "samples_ms":
                [round(1000 * t, 1) for t in timings], "versions": everything,
                "filtered_rows": totals[:3]}

    return asyncio.run(scenario())


def measure_rollback(template: Path, runs: int) -> dict:
    """Roll production back by keys on a copy of `template`; time Enter → refreshed overview."""
    from mlops_tui.services.deployment_reads import serving_state
    from mlops_tui.services.workspace import open_workspace
    from mlops_tui.tui.app import MlopsApp
    from mlops_tui.tui.screens.modals import ConfirmScreen

    timings = []
    for run in range(runs):
        copy = OUT / f"tui-rollback-{run}"
        if copy.exists():
            shutil.rmtree(copy)
        shutil.copytree(template, copy, symlinks=True)
        workspace = open_workspace(copy)
        before = serving_state(workspace).active["production"].to_version

        async def scenario(workspace=workspace, before=before) -> float:
            app = MlopsApp(workspace, refresh_seconds=3600)
            async with app.run_test(size=(120, 36)) as pilot:
                await pilot.pause()
                await _until(pilot, lambda: app.screen.query("#serving")
                             and app.screen.query_one("#serving").row_count > 0)
                await app.workers.wait_for_complete()
                await pilot.press("b")
                await _until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
                await pilot.press("tab")
                started = time.perf_counter()
                await pilot.press("enter")

                def refreshed() -> bool:
                    table = app.screen.query("#serving")
                    if not table or table.first().row_count == 0:
                        return False
                    cell = str(table.first().get_row_at(0)[1])
                    return cell != f"v{before}"

                await _until(pilot, refreshed)
                return await _painted(app) - started

        timings.append(asyncio.run(scenario()))
        after = serving_state(workspace).active["production"].to_version
        assert after != before, "the rollback did not change production"
        shutil.rmtree(copy)
    return {"rollback_to_refresh_ms": median_ms(timings),
            "samples_ms": [round(1000 * t, 1) for t in timings]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--observations", type=int, default=10_000_000)
    parser.add_argument("--out", type=Path, default=OUT / "tui_bench.json")
    args = parser.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    demo = demo_workspace()
    big = big_workspace(args.versions, args.observations)

    bare, on_demo, on_big = [], [], []
    first_paint_seconds(BARE_APP)  # warm the file cache for every contender alike
    first_paint_seconds(MLOPS_APP, str(demo))
    first_paint_seconds(MLOPS_APP, str(big))
    for _ in range(args.runs):
        bare.append(first_paint_seconds(BARE_APP))
        on_demo.append(first_paint_seconds(MLOPS_APP, str(demo)))
        on_big.append(first_paint_seconds(MLOPS_APP, str(big)))
    paint = {
        "bare_textual_ms": median_ms(bare),
        "mlops_demo_ms": median_ms(on_demo),
        "mlops_100k_10m_ms": median_ms(on_big),
    }
    paint["demo_over_bare_ms"] = round(paint["mlops_demo_ms"] - paint["bare_textual_ms"], 1)
    paint["big_over_bare_ms"] = round(paint["mlops_100k_10m_ms"] - paint["bare_textual_ms"], 1)
    print(f"first paint: bare Textual {paint['bare_textual_ms']} ms · mlops-tui demo "
          f"{paint['mlops_demo_ms']} ms (+{paint['demo_over_bare_ms']}) · "
          f"{args.versions:,} versions + {args.observations:,} observations "
          f"{paint['mlops_100k_10m_ms']} ms (+{paint['big_over_bare_ms']}) · target "
          f"+{1000 * TARGET_PAINT_OVER_BARE_S:.0f} ms")
    filtering = measure_filter(big, max(2, args.runs // 2))
    print(f"filter keystroke on {filtering['versions']:,} versions: "
          f"{filtering['filter_keystroke_ms']} ms median (target < {TARGET_FILTER_MS:.0f} ms)")
    rollback = measure_rollback(demo, args.runs)
    print(f"rollback confirmation → refreshed overview: {rollback['rollback_to_refresh_ms']} ms "
          f"median (target < {TARGET_ROLLBACK_MS:.0f} ms)")
    result = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
        "runs": args.runs, "versions": args.versions, "observations": args.observations,
        "first_paint": paint, "filter": filtering, "rollback": rollback,
        "targets": {"paint_over_bare_ms": 1000 * TARGET_PAINT_OVER_BARE_S,
                    "filter_ms": TARGET_FILTER_MS, "rollback_ms": TARGET_ROLLBACK_MS},
        "met": {
            "first_paint_demo": paint["demo_over_bare_ms"] <= 1000 * TARGET_PAINT_OVER_BARE_S,
            "first_paint_big": paint["big_over_bare_ms"] <= 1000 * TARGET_PAINT_OVER_BARE_S,
            "filter": filtering["filter_keystroke_ms"] < TARGET_FILTER_MS,
            "rollback": rollback["rollback_to_refresh_ms"] < TARGET_ROLLBACK_MS,
        },
    }
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

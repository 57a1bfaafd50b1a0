"""Build an mlops-tui workspace with many model versions, fast but faithfully.

A handful of versions (two per regime) go through the real path,
`mlops_tui.services.registry.register_version`: a pipeline trained on the packaged sample
data, saved with skops, a code snapshot of the packaged pipeline (and of a variant with other
hyperparameters), the host's environment snapshot (and an image-like variant), and Parquet
train/holdout snapshots. The remaining versions are inserted in ONE write unit
(`workspace.store.write(...)`) by insert-select statements over DuckDB's `range()`, copying
artifact, code, environment and required packages from the real rows and keeping their shape:

- five regimes (the sample ships three car models; `van` and `coupe` are trained on other
  stretches of sedan data so that every regime has real weights);
- triggers and runners vary (docker-run versions carry an image and a job id);
- parents chain within a regime in runs of `CHAIN` versions, so lineage has depth up to
  `CHAIN + 1` (see `version_at_depth`);
- per version: its own train and holdout data-snapshot rows, the lineage_edges rows that
  `register_version` writes, one `register` audit row, and a metrics JSON document.

Bulk rows share the real rows' artifact files (so `mlops-tui store verify` passes); their data
snapshots are rows only (no Parquet file). Creation times run one minute apart after the real
rows. Finally each regime gets a champion and the `production` target an active version,
through the real deployment service.

Usage (also imported by the benchmarks): python benchmarks/build_store.py DIR --versions N
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

REGIMES = ("sedan", "suv", "pickup", "van", "coupe")
REAL_PER_REGIME = 2
REAL_VERSIONS = len(REGIMES) * REAL_PER_REGIME
CHAIN = 100  # bulk versions per regime between two parent-chain restarts

# Which stretch of the packaged sample data trains each regime: (car_model, period index).
_SOURCES = {
    "sedan": ("sedan", 0),
    "suv": ("suv", 1),
    "pickup": ("pickup", 3),
    "van": ("sedan", 2),
    "coupe": ("sedan", 4),
}

# One row per bulk version; `?` are: real versions R, last number N, chain length CHAIN,
# regime count, and the creation time of the newest real row.
_PLAN = """
    SELECT n, i, r, k,
           1 + r + {regimes} * (k % 2) AS template,
           CASE WHEN k % ? = 0 THEN 1 + r + {regimes} ELSE n - {regimes} END AS parent,
           h % 100 AS trigger_draw,
           (n * 40503) % 65536 % 10 < 6 AS docker,
           ?::TIMESTAMP + to_minutes(i + 1) AS created_at,
           h
    FROM (
        SELECT range AS n, range - ? - 1 AS i, (range - ? - 1) % {regimes} AS r,
               (range - ? - 1) // {regimes} AS k, (range * 2654435761) % 4294967296 AS h
        FROM range(? + 1, ? + 1)
    )
"""

_TRIGGER_SQL = """CASE WHEN trigger_draw < 40 THEN 'drift'
                       WHEN trigger_draw < 60 THEN 'schedule'
                       WHEN trigger_draw < 72 THEN 'code-change'
                       WHEN trigger_draw < 84 THEN 'dependency-change'
                       WHEN trigger_draw < 95 THEN 'manual'
                       ELSE 'regime-new' END"""


def version_at_depth(versions: int, depth: int) -> int:
    """The newest version number whose parent chain has exactly `depth` ancestors."""
    if depth < 2 or depth > CHAIN + 1:
        raise ValueError(f"bulk versions have depths 2..{CHAIN + 1}")
    for number in range(versions, REAL_VERSIONS, -1):
        k = (number - REAL_VERSIONS - 1) // len(REGIMES)
        if k % CHAIN + 2 == depth:
            return number
    raise ValueError(f"no version at depth {depth} among {versions} versions")


def _pipeline_module(pipeline_dir: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_sample_train", pipeline_dir / "train.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _code_variants(pipeline_dir: Path, scratch: Path) -> list[Path]:
    """The packaged pipeline, and a copy whose params.toml uses a stronger ridge penalty."""
    variant = scratch / "pipeline-alpha3"
    shutil.copytree(pipeline_dir, variant, ignore=shutil.ignore_patterns("__pycache__"))
    params = variant / "params.toml"
    params.write_text(params.read_text().replace("alpha = 1.0", "alpha = 3.0"))
    return [pipeline_dir, variant]


def _env_variants():
    """The host's environment, and the same one as captured in a trainer image."""
    from mlops_tui.services.registry import env_from_capture
    from mlops_tui.training.environment import capture

    host = capture()
    image = dict(host, packages=dict(host["packages"]))
    image["packages"]["pip"] = "24.0"  # the trainer image ships an older pip
    return [env_from_capture(host, "host"), env_from_capture(image, "image:mlops-trainer")]


def _snapshot(workspace, frame, kind: str, regime: str):
    """Write `frame` as a Parquet data snapshot under data/snapshots; return its record."""
    from mlops_tui.core.models import DataSnapshot

    folder = workspace.data_root / "snapshots"
    folder.mkdir(parents=True, exist_ok=True)
    scratch = folder / f".{kind}-{regime}.tmp"
    frame.to_parquet(scratch, index=False)
    fingerprint = hashlib.sha256(scratch.read_bytes()).hexdigest()
    target = folder / f"{fingerprint}.parquet"
    scratch.replace(target)
    return DataSnapshot(
        fingerprint=fingerprint, kind=kind, rows=len(frame), regime=regime,
        time_min=frame["ts"].min().to_pydatetime(), time_max=frame["ts"].max().to_pydatetime(),
        path=target.relative_to(workspace.root).as_posix(),
    )


def register_real_versions(workspace) -> list[float]:
    """Train and register two versions per regime through the real service.

    Returns the seconds each `register_version` call took (training excluded).
    """
    import numpy as np
    import pandas as pd

    from mlops_tui import sample
    from mlops_tui.artifacts import weights
    from mlops_tui.core.models import Trigger
    from mlops_tui.services.registry import Registration, register_version

    truth = sample.packaged_ground_truth()
    frame = pd.read_parquet(sample.packaged_observations_path())
    pipeline_dir = sample.packaged_pipeline_dir()
    params = {"features_numeric": truth["features_numeric"],
              "features_categorical": truth["features_categorical"], "label": truth["label"]}
    periods = truth["periods"]
    seconds: list[float] = []
    with tempfile.TemporaryDirectory(prefix="mlops-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        codes = _code_variants(pipeline_dir, scratch)
        envs = _env_variants()
        for variant in range(REAL_PER_REGIME):
            train_module = _pipeline_module(codes[variant])
            for regime in REGIMES:
                car_model, period = _SOURCES[regime]
                stretch = frame[(frame["ts"] >= pd.Timestamp(periods[period]["start"]))
                                & (frame["ts"] < pd.Timestamp(periods[period]["end"]))
                                & (frame["car_model"] == car_model)]
                half = stretch.iloc[variant * len(stretch) // 2:(variant + 1) * len(stretch) // 2]
                cut = int(len(half) * 0.8)
                train, holdout = half.iloc[:cut], half.iloc[cut:]
                estimator = train_module.train(train, params | {"alpha": 1.0 + 2.0 * variant})
                labelled = holdout[holdout[truth["label"]].notna()]
                error = train_module.predict(estimator, labelled) - labelled[truth["label"]]
                spread = float(np.var(labelled[truth["label"]]))
                metrics = {"mae": float(np.mean(np.abs(error))),
                           "rmse": float(np.sqrt(np.mean(error ** 2))),
                           "r2": 1.0 - float(np.mean(error ** 2)) / spread}
                artifact = scratch / f"{regime}-{variant}.skops"
                artifact.write_bytes(weights.dumps(estimator))
                registration = Registration(
                    regime=regime, artifact_file=artifact, code_dir=codes[variant],
                    environment=envs[variant], metrics=metrics,
                    trigger=Trigger.REGIME_NEW if variant == 0 else Trigger.CODE_CHANGE,
                    train=_snapshot(workspace, train, "train", regime),
                    holdout=_snapshot(workspace, holdout, "holdout", regime),
                    parent=None if variant == 0 else 1 + REGIMES.index(regime),
                    note="benchmark: real registration",
                )
                started = time.perf_counter()
                register_version(workspace, registration)
                seconds.append(time.perf_counter() - started)
    return seconds


def bulk_insert(workspace, versions: int) -> None:
    """Insert versions REAL_VERSIONS+1 .. `versions` in one write unit, shaped like real ones."""
    from mlops_tui.services.actor import current_actor

    plan = _PLAN.format(regimes=len(REGIMES))
    with workspace.store.write("bench-bulk-register") as tx:
        newest = tx.scalar("SELECT max(created_at) FROM model_versions")
        audit_base = tx.scalar("SELECT coalesce(max(seq), 0) FROM audit")
        args = [CHAIN, newest, REAL_VERSIONS, REAL_VERSIONS, REAL_VERSIONS,
                REAL_VERSIONS, versions]
        tx.execute("CREATE TEMP TABLE bench_plan AS " + plan, args)
        # Two data snapshots per version: recent data before its creation time.
        for kind, rows in (("train", "2000 + h % 3000"), ("holdout", "500 + h % 750")):
            tx.execute(f"""
                INSERT INTO data_snapshots
                SELECT sha256('bench-{kind}-' || p.n), '{kind}', {rows}, t.regime,
                       p.created_at - INTERVAL 2 DAY, p.created_at - INTERVAL 1 HOUR,
                       'data/snapshots/' || sha256('bench-{kind}-' || p.n) || '.parquet',
                       p.created_at
                FROM temp.bench_plan p JOIN model_versions t ON t.number = p.template""")
        tx.execute(f"""
            INSERT INTO model_versions
            SELECT p.n, t.regime, p.created_at, t.artifact_sha256, t.artifact_size,
                   t.artifact_path, t.artifact_format, t.env_hash, t.code_hash,
                   sha256('bench-train-' || p.n), sha256('bench-holdout-' || p.n),
                   printf('{{"mae": %.6f, "r2": %.6f, "rmse": %.6f}}',
                          0.2 + (p.h % 997) / 2000.0, 0.80 + (p.h % 991) / 5300.0,
                          0.25 + (p.h % 997) / 1600.0),
                   p.parent, {_TRIGGER_SQL}, CASE WHEN p.docker THEN 'docker' ELSE 'local' END,
                   CASE WHEN p.docker
                        THEN 'mlops-tui-trainer:' || substr(md5('image' || (p.n // 500)), 1, 12)
                   END,
                   CASE WHEN p.docker THEN regexp_replace(md5('job' || p.n),
                        '^(.{{8}})(.{{4}})(.{{4}})(.{{4}})(.{{12}})$', '\\1-\\2-\\3-\\4-\\5')
                   END,
                   t.required_packages, ''
            FROM temp.bench_plan p JOIN model_versions t ON t.number = p.template
            ORDER BY p.n""")
        relations = (
            ("code", "'code:' || code_hash"),
            ("weights", "'weights:' || artifact_sha256"),
            ("environment", "'environment:' || env_hash"),
            ("train", "'data:' || train_snapshot"),
            ("holdout", "'data:' || holdout_snapshot"),
            ("parent", "'version:v' || parent"),
            ("image", "'image:' || image"),
            ("job", "'job:' || job_id"),
        )
        for relation, node in relations:
            tx.execute(f"""
                INSERT INTO lineage_edges
                SELECT 'version:v' || number, {node}, '{relation}' FROM model_versions
                WHERE number > ? AND {node} IS NOT NULL ORDER BY number""", [REAL_VERSIONS])
        tx.execute("""
            INSERT INTO audit
            SELECT ? + number - ?, created_at, ?, 'register', 'v' || number,
                   json_object('artifact', artifact_sha256, 'job', job_id, 'regime', regime,
                               'runner', runner, 'trigger', trigger)::VARCHAR, NULL,
                   (SELECT max(time_max) FROM batches)
            FROM model_versions WHERE number > ? ORDER BY number""",
                   [audit_base, REAL_VERSIONS, current_actor(), REAL_VERSIONS])
        tx.execute("DROP TABLE temp.bench_plan")


def deploy_champions(workspace) -> None:
    """Each regime's newest version becomes its champion; sedan's serves `production`."""
    from mlops_tui.core.models import DeploymentKind
    from mlops_tui.services.deployments import record_deployment
    from mlops_tui.services.registry import list_versions

    champions = {}
    for regime in REGIMES:
        newest = list_versions(workspace, regime=regime, limit=1).versions[0]
        champions[regime] = newest.id
        record_deployment(workspace, kind=DeploymentKind.CHAMPION, subject=regime,
                          version_id=newest.id, action="promote", reason="benchmark build")
    record_deployment(workspace, kind=DeploymentKind.ACTIVE, subject="production",
                      version_id=champions[REGIMES[0]], action="deploy",
                      reason="benchmark build")


def build_workspace(
    path: str | Path, versions: int, *, quiet: bool = True, stats: dict | None = None
) -> Path:
    """Create a workspace at `path` (must not hold one) with `versions` model versions.

    `stats`, when given, receives the build's timings (seconds; register_version in ms).
    """
    from mlops_tui.services.workspace import init_workspace

    if versions < REAL_VERSIONS:
        raise ValueError(f"need at least {REAL_VERSIONS} versions (the real ones)")
    started = time.perf_counter()
    workspace = init_workspace(Path(path), command="benchmarks build_store")
    register_seconds = register_real_versions(workspace)
    real_done = time.perf_counter()
    if versions > REAL_VERSIONS:
        bulk_insert(workspace, versions)
    bulk_done = time.perf_counter()
    deploy_champions(workspace)
    timings = {
        "total_s": time.perf_counter() - started,
        "real_s": real_done - started,
        "register_version_ms": [1000 * s for s in register_seconds],
        "bulk_s": bulk_done - real_done,
        "bulk_rows": versions - REAL_VERSIONS,
    }
    if stats is not None:
        stats.update(timings)
    if not quiet:
        mean_ms = sum(timings["register_version_ms"]) / len(register_seconds)
        print(f"built {workspace.root}: {versions:,} versions in {timings['total_s']:.1f}s "
              f"(real {timings['real_s']:.1f}s, register_version mean {mean_ms:.1f} ms; "
              f"bulk {timings['bulk_s']:.1f}s)", file=sys.stderr)
    return workspace.root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="where to create the workspace")
    parser.add_argument("--versions", type=int, default=100_000)
    args = parser.parse_args(argv)
    build_workspace(args.directory, args.versions, quiet=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())

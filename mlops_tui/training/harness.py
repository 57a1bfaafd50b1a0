"""The training harness: runs inside a job (local process or container).

    python -m mlops_tui.training.harness --job WORK --input INPUT --train FILE --holdout FILE

Reads spec.json and the pipeline from INPUT (read-only in a container), the train and
holdout snapshots, calls the pipeline's `train(frame, params)`, scores the holdout with
`estimator.predict` on the feature columns (exactly as serving and the host's check do), captures the environment as seen here, saves the weights with skops
and writes result.json last (atomically), so a result file always means a finished job.
Never opens the store; needs only the standard library and the pipeline's dependencies.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import math
import os
import sys
import time
import tomllib
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_tui.training.contract import (
    ARTIFACT_FILE,
    FAILURE_FILE,
    METRICS,
    RESULT_FILE,
    RESULT_SCHEMA,
    SPEC_FILE,
)
from mlops_tui.training.environment import capture

HARNESS_VERSION = "1"


def _write_json_atomic(path: Path, document: dict) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    with open(temp, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


def _load_pipeline(pipeline_dir: Path):
    entry = pipeline_dir / "train.py"
    spec = importlib.util.spec_from_file_location("mlops_pipeline_train", entry)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot import {entry}")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(pipeline_dir))  # the pipeline may import its own helpers
    spec.loader.exec_module(module)
    if not callable(getattr(module, "train", None)):
        raise RuntimeError(f"{entry} defines no train(frame, params) function")
    return module


def _params(pipeline_dir: Path, spec: dict) -> dict[str, Any]:
    params: dict[str, Any] = {}
    params_file = pipeline_dir / "params.toml"
    if params_file.exists():
        params.update(tomllib.loads(params_file.read_text(encoding="utf-8")))
    params.update(spec.get("params", {}))
    params["features_numeric"] = list(spec["features_numeric"])
    params["features_categorical"] = list(spec["features_categorical"])
    params["label"] = spec["label"]
    return params


def score(metric_names: list[str], truth, predicted) -> dict[str, float]:
    """Holdout metrics; every value finite (a NaN metric would poison comparisons)."""
    from sklearn import metrics as sk

    functions = {
        "r2": sk.r2_score,
        "mae": sk.mean_absolute_error,
        "rmse": lambda y, p: math.sqrt(sk.mean_squared_error(y, p)),
        "accuracy": sk.accuracy_score,
        "f1": lambda y, p: sk.f1_score(y, p, average="macro"),
    }
    result = {}
    for name in metric_names:
        value = float(functions[name](truth, predicted))
        if not math.isfinite(value):
            raise ValueError(f"holdout metric {name} is not finite ({value})")
        result[name] = value
    return result


def run(job_dir: Path, train_file: Path, holdout_file: Path, input_dir: Path | None = None
        ) -> dict:
    started = time.monotonic()
    started_at = datetime.now(UTC).isoformat()
    input_dir = input_dir or job_dir
    spec = json.loads((input_dir / SPEC_FILE).read_text(encoding="utf-8"))
    pipeline_dir = input_dir / spec.get("pipeline_dir", "pipeline")
    print(f"job {spec['job_id']}: regime {spec['regime']}, pipeline {pipeline_dir.name}",
          flush=True)

    import pandas as pd
    import skops.io as sio

    train_frame = pd.read_parquet(train_file)
    holdout_frame = pd.read_parquet(holdout_file)
    print(f"read {len(train_frame)} train rows, {len(holdout_frame)} holdout rows", flush=True)
    if len(train_frame) == 0 or len(holdout_frame) == 0:
        raise ValueError("empty train or holdout snapshot")
    module = _load_pipeline(pipeline_dir)
    params = _params(pipeline_dir, spec)
    estimator = module.train(train_frame, params)
    print("trained", type(estimator).__name__, flush=True)
    features = params["features_numeric"] + params["features_categorical"]
    predicted = estimator.predict(holdout_frame[features])
    metric_names = [m for m in [spec["metric"], *spec.get("extra_metrics", [])] if m in METRICS]
    metrics = score(list(dict.fromkeys(metric_names)), holdout_frame[spec["label"]], predicted)
    print("holdout " + " ".join(f"{k}={v:.4f}" for k, v in metrics.items()), flush=True)

    data = sio.dumps(estimator)
    artifact = job_dir / ARTIFACT_FILE
    temp = artifact.with_name(f".{artifact.name}.tmp")
    with open(temp, "wb") as handle:  # durable before result.json can name it
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, artifact)
    result = {
        "schema": RESULT_SCHEMA,
        "job_id": spec["job_id"],
        "harness_version": HARNESS_VERSION,
        "artifact": {"file": ARTIFACT_FILE, "sha256": hashlib.sha256(data).hexdigest(),
                     "size": len(data)},
        "metrics": metrics,
        "metric": spec["metric"],
        "rows_train": int(len(train_frame)),
        "rows_holdout": int(len(holdout_frame)),
        "environment": capture(),
        "started_at": started_at,
        "finished_at": datetime.now(UTC).isoformat(),
        "duration_seconds": round(time.monotonic() - started, 3),
    }
    _write_json_atomic(job_dir / RESULT_FILE, result)
    print(f"wrote {RESULT_FILE} (artifact sha256 {result['artifact']['sha256'][:12]})", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlops_tui.training.harness")
    parser.add_argument("--job", required=True, type=Path, help="the work folder (output)")
    parser.add_argument("--input", type=Path, help="spec.json and pipeline/ (default: --job)")
    parser.add_argument("--train", required=True, type=Path)
    parser.add_argument("--holdout", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        run(args.job, args.train, args.holdout, args.input)
    except BaseException as error:  # noqa: BLE001 - every failure is reported the same way
        traceback.print_exc()
        sys.stdout.flush()
        reason = f"{type(error).__name__}: {error}".strip()
        _write_json_atomic(args.job / FAILURE_FILE, {"reason": reason[:500]})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Checking a finished job's output before anything of it is registered.

A job's work folder is read like a hostile upload (`runners.folder.JobFolder`): result.json
and the weights are read only as bounded regular files, the weights must hold trusted types
only and load as an estimator of the kind the metric needs, and the metrics stored are the
host's own scores on the holdout, never the job's report (a report that disagrees with the
host's score is refused with both numbers).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mlops_tui.artifacts import code as code_snapshots
from mlops_tui.artifacts.blobs import file_sha256
from mlops_tui.core.errors import IntegrityError
from mlops_tui.core.models import CodeSnapshot, DataSnapshot, JobRecord
from mlops_tui.runners.folder import MAX_ARTIFACT_BYTES, JobFolder, UntrustedFileError
from mlops_tui.services.workspace import Workspace
from mlops_tui.training.contract import REGRESSION_METRICS, RESULT_FILE, validate_result

REPORT_RELATIVE_TOLERANCE = 1e-6  # a job's own metric may differ from the host's this much
REPORT_ABSOLUTE_TOLERANCE = 1e-9  # (floating-point noise around a score of 0)


class RejectedResult(Exception):
    """The job's output is refused; `reason` says why (stored with the job's rejection)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CheckedResult:
    document: dict
    artifact_bytes: bytes
    code: CodeSnapshot
    metrics: dict[str, float]  # the host's scores on the holdout
    estimator: Any


def read_result(workspace: Workspace, job: JobRecord, folder: JobFolder) -> CheckedResult:
    """Everything the host needs to register the job's version, checked; or RejectedResult."""
    try:
        raw = folder.read(RESULT_FILE)
    except FileNotFoundError:
        raise RejectedResult("result.json is missing") from None
    except UntrustedFileError as error:
        raise RejectedResult(error.message) from None
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise RejectedResult(f"result.json is not valid JSON: {error}") from None
    problems = validate_result(document, job.id)
    if problems:
        raise RejectedResult("result.json is malformed: " + "; ".join(problems[:5]))
    spec = job.spec
    metric = spec.get("metric")
    if metric and metric not in document["metrics"]:
        raise RejectedResult(f"result.json is malformed: metrics lack the holdout metric "
                             f"{metric}")
    name = document["artifact"]["file"]
    try:
        data = folder.read(name, MAX_ARTIFACT_BYTES)
    except (FileNotFoundError, UntrustedFileError) as error:
        message = getattr(error, "message", f"{name} is missing")
        raise RejectedResult(f"artifact: {message}") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != document["artifact"]["sha256"]:
        raise RejectedResult(f"artifact {name}: sha256 {actual[:12]}… does not match "
                             f"result.json's {document['artifact']['sha256'][:12]}…")
    code = _recorded_code(spec)
    estimator = _load_candidate(workspace, data, name, str(metric or ""))
    metrics = _host_scores(workspace, spec, estimator, document["metrics"])
    return CheckedResult(document=document, artifact_bytes=data, code=code, metrics=metrics,
                         estimator=estimator)


def _recorded_code(spec: dict) -> CodeSnapshot:
    """The code snapshot the host took before the job started (never the job's copy)."""
    document = spec.get("code")
    try:
        return code_snapshots.snapshot_from_document(document)
    except (KeyError, TypeError, ValueError):
        raise RejectedResult("the job's spec records no code snapshot taken before it ran"
                             ) from None


def _load_candidate(workspace: Workspace, data: bytes, name: str, metric: str):
    from mlops_tui.artifacts.weights import loads_checked

    kind = "regressor" if metric in REGRESSION_METRICS else "classifier" if metric else None
    try:
        return loads_checked(data, name=name, kind=kind,
                             extra_trusted=workspace.config.artifacts.trusted_types)
    except IntegrityError as error:
        raise RejectedResult(error.message) from None


def holdout_frame(workspace: Workspace, spec: dict):
    """The job's holdout snapshot, verified against its content address."""
    holdout = spec.get("snapshots", {}).get("holdout")
    if not holdout:
        raise RejectedResult("the job's spec records no holdout snapshot")
    path = workspace.root / holdout["path"]
    try:
        sha256, _ = file_sha256(path)
    except OSError as error:
        raise RejectedResult(f"holdout snapshot {holdout['path']}: {error.strerror}") from None
    if sha256 != holdout["fingerprint"]:
        raise RejectedResult(f"holdout snapshot {holdout['path']} changed after the job was "
                             "requested")
    import pandas as pd

    return pd.read_parquet(path)


def score_on_holdout(estimator, frame, spec: dict, metric_names: list[str]) -> dict[str, float]:
    """Score like serving does: `estimator.predict` on the feature columns."""
    from mlops_tui.training.harness import score

    features = list(spec["features_numeric"]) + list(spec["features_categorical"])
    return score(metric_names, frame[spec["label"]], estimator.predict(frame[features]))


def _host_scores(workspace: Workspace, spec: dict, estimator, reported: dict) -> dict:
    frame = holdout_frame(workspace, spec)
    names = [m for m in [spec.get("metric"), *spec.get("extra_metrics", [])] if m]
    try:
        host = score_on_holdout(estimator, frame, spec, list(dict.fromkeys(names)))
    except Exception as error:  # noqa: BLE001 - the candidate's own failure, named
        raise RejectedResult(f"the host could not score the candidate on the holdout: "
                             f"{type(error).__name__}: {str(error)[:200]}") from None
    for name, value in host.items():
        claimed = reported.get(name)
        if claimed is None:
            continue
        if not math.isclose(float(claimed), value, rel_tol=REPORT_RELATIVE_TOLERANCE,
                            abs_tol=REPORT_ABSOLUTE_TOLERANCE):
            raise RejectedResult(
                f"the job reported {name} = {float(claimed):.6g}, the host scored "
                f"{value:.6g} on the same holdout: refused (the host's score is the one used)")
    return host


def data_snapshot(spec: dict, kind: str) -> DataSnapshot | None:
    data = spec.get("snapshots", {}).get(kind)
    if not data:
        return None
    return DataSnapshot(
        fingerprint=data["fingerprint"], kind=kind, rows=data["rows"],
        regime=spec["regime"], path=data["path"],
        time_min=datetime.fromisoformat(data["time_min"]) if data.get("time_min") else None,
        time_max=datetime.fromisoformat(data["time_max"]) if data.get("time_max") else None,
    )

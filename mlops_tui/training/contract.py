"""The job contract between the host and the harness: spec.json in, result.json out.

Standard library only: this module runs inside job containers too.
"""

from __future__ import annotations

import math
from typing import Any

SPEC_SCHEMA = 1
RESULT_SCHEMA = 1
SPEC_FILE = "spec.json"
RESULT_FILE = "result.json"
FAILURE_FILE = "failure.json"
CANCEL_FILE = "cancelled"
LOG_FILE = "job.log"
ARTIFACT_FILE = "model.skops"

REGRESSION_METRICS = ("r2", "mae", "rmse")
CLASSIFICATION_METRICS = ("accuracy", "f1")
METRICS = REGRESSION_METRICS + CLASSIFICATION_METRICS
HIGHER_IS_BETTER = {"r2": True, "mae": False, "rmse": False, "accuracy": True, "f1": True}


def _require(doc: dict, key: str, kind: type | tuple[type, ...], problems: list[str],
             where: str) -> Any:
    value = doc.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        problems.append(f"{where}{key}: expected {getattr(kind, '__name__', kind)}")
        return None
    return value


def validate_result(doc: Any, job_id: str) -> list[str]:
    """Everything wrong with a result document (empty when it is valid)."""
    if not isinstance(doc, dict):
        return ["result.json: not a JSON object"]
    problems: list[str] = []
    if doc.get("schema") != RESULT_SCHEMA:
        problems.append(f"schema: expected {RESULT_SCHEMA}, got {doc.get('schema')!r}")
    if doc.get("job_id") != job_id:
        problems.append(f"job_id: expected {job_id}, got {str(doc.get('job_id'))[:40]!r}")
    artifact = _require(doc, "artifact", dict, problems, "")
    if artifact is not None:
        name = _require(artifact, "file", str, problems, "artifact.")
        if name is not None and ("/" in name or "\\" in name or name.startswith(".")):
            problems.append("artifact.file: must be a plain file name in the job folder")
        sha = _require(artifact, "sha256", str, problems, "artifact.")
        if sha is not None and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha)):
            problems.append("artifact.sha256: not a sha256 hex digest")
        _require(artifact, "size", int, problems, "artifact.")
    metrics = _require(doc, "metrics", dict, problems, "")
    if metrics is not None:
        for key, value in metrics.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                problems.append(f"metrics.{key}: expected a number")
            elif not math.isfinite(value):  # NaN or infinity would poison comparisons
                problems.append(f"metrics.{key}: expected a finite number, got {value}")
    environment = _require(doc, "environment", dict, problems, "")
    if environment is not None:
        for key in ("python_version", "implementation", "platform"):
            _require(environment, key, str, problems, "environment.")
        _require(environment, "packages", dict, problems, "environment.")
    for key in ("rows_train", "rows_holdout"):
        _require(doc, key, int, problems, "")
    return problems

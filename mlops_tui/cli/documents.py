"""Stable JSON shapes for domain objects (what scripts rely on)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mlops_tui.core.envdiff import Change, EnvDiff
from mlops_tui.core.models import AuditEntry, DeploymentEvent, EnvSnapshot, ModelVersion
from mlops_tui.core.names import format_version_id


def version_doc(version: ModelVersion) -> dict[str, Any]:
    return {
        "id": version.id,
        "number": version.number,
        "regime": version.regime,
        "created_at": version.created_at.isoformat(),
        "trigger": version.trigger.value,
        "runner": version.runner,
        "image": version.image,
        "job_id": version.job_id,
        "parent": version.parent_id,
        "metrics": version.metrics,
        "artifact": {"sha256": version.artifact.sha256, "size": version.artifact.size,
                     "path": version.artifact.path, "format": version.artifact.format},
        "environment": version.env_hash,
        "code": version.code_hash,
        "train_snapshot": version.train_snapshot,
        "holdout_snapshot": version.holdout_snapshot,
        "required_packages": list(version.required_packages),
        "note": version.note,
    }


def metrics_text(metrics: dict[str, float], metric: str, separator: str = " ") -> str:
    """`name=value` pairs for people: the pipeline's metric first, then the version's other
    metrics, then the parent's scores on the same holdout (`parent_*`) in the same order."""
    def key(name: str) -> tuple[bool, bool, str]:
        own = name.removeprefix("parent_")
        return (name.startswith("parent_"), own != metric, own)

    return separator.join(f"{name}={metrics[name]:.4g}" for name in sorted(metrics, key=key))


def env_doc(env: EnvSnapshot, with_packages: bool = True) -> dict[str, Any]:
    document: dict[str, Any] = {
        "hash": env.hash, "python_version": env.python_version,
        "implementation": env.implementation, "platform": env.platform, "source": env.source,
        "captured_at": env.captured_at.isoformat() if env.captured_at else None,
        "package_count": len(env.packages),
    }
    if with_packages:
        document["packages"] = env.packages
    return document


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def event_doc(event: DeploymentEvent) -> dict[str, Any]:
    return {
        "seq": event.seq, "kind": event.kind.value, "subject": event.subject,
        "from": format_version_id(event.from_version) if event.from_version else None,
        "to": format_version_id(event.to_version), "action": event.action,
        "actor": event.actor, "reason": event.reason, "at": event.at.isoformat(),
        "recorded_at": event.at.isoformat(), "data_time": _iso(event.data_time),
        "pinned": event.pinned,
    }


def audit_doc(entry: AuditEntry) -> dict[str, Any]:
    return {"seq": entry.seq, "at": entry.at.isoformat(), "recorded_at": entry.at.isoformat(),
            "data_time": _iso(entry.data_time), "actor": entry.actor,
            "action": entry.action, "subject": entry.subject, "detail": entry.detail,
            "event_seq": entry.event_seq}


def change_doc(change: Change) -> dict[str, Any]:
    return {"name": change.name, "change": change.kind, "label": change.label,
            "old": change.old, "new": change.new, "needed_by_model": change.needed,
            "verdict": change.verdict.label, "reason": change.reason}


def diff_doc(diff: EnvDiff) -> dict[str, Any]:
    return {
        "left": diff.left, "right": diff.right, "verdict": diff.verdict.label,
        "reasons": diff.reasons,
        "python": change_doc(diff.python) if diff.python else None,
        "changes": [change_doc(c) for c in diff.changes],
        "identical": diff.identical,
    }

"""Serving state (active versions, champions) and its append-only history and audit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mlops_tui.core.errors import ConflictError, UsageError
from mlops_tui.core.models import AuditEntry, DeploymentEvent, DeploymentKind, ServingState
from mlops_tui.core.names import format_version_id, validate_name
from mlops_tui.services.actor import current_actor
from mlops_tui.services.registry import require_version
from mlops_tui.services.workspace import Workspace
from mlops_tui.store import deployments as deployment_sql

UNSET = object()


def serving_state(workspace: Workspace) -> ServingState:
    with workspace.store.read() as tx:
        events = deployment_sql.current_all(tx)
    return ServingState(
        active={e.subject: e for e in events if e.kind is DeploymentKind.ACTIVE},
        champions={e.subject: e for e in events if e.kind is DeploymentKind.CHAMPION},
    )


def history(
    workspace: Workspace, *, target: str | None = None, regime: str | None = None,
    limit: int | None = 200,
) -> list[DeploymentEvent]:
    if target is not None and regime is not None:
        raise UsageError("give --target or --regime, not both")
    kind, subject = None, None
    if target is not None:
        kind, subject = DeploymentKind.ACTIVE, validate_name(target, "target")
    elif regime is not None:
        kind, subject = DeploymentKind.CHAMPION, validate_name(regime, "regime")
    with workspace.store.read() as tx:
        return deployment_sql.history(tx, kind=kind, subject=subject, limit=limit)


def audit_log(workspace: Workspace, *, since: datetime | None = None, limit: int | None = 200
              ) -> list[AuditEntry]:
    with workspace.store.read() as tx:
        return deployment_sql.audit_entries(tx, since=since, limit=limit)


@dataclass(frozen=True)
class DeploymentResult:
    event: DeploymentEvent | None  # None: nothing to do
    message: str


def record_deployment(
    workspace: Workspace,
    *,
    kind: DeploymentKind,
    subject: str,
    version_id: str,
    action: str,
    reason: str,
    expect_current: object = UNSET,
    pinned: bool = False,
    detail: dict | None = None,
) -> DeploymentResult:
    """Compare-and-set the target's (or regime's) version, with its audit row, atomically.

    `expect_current` is the version id the operator saw (None: nothing served yet); a
    mismatch is a conflict (exit 3) naming what is current now.
    """
    what = "target" if kind is DeploymentKind.ACTIVE else "regime"
    subject = validate_name(subject, what)
    actor = current_actor()
    with workspace.store.write(action) as tx:
        version = require_version(tx, version_id)
        current = deployment_sql.current(tx, kind, subject)
        current_id = format_version_id(current.to_version) if current else None
        if expect_current is not UNSET and expect_current != current_id:
            raise ConflictError(
                f"{what} {subject} is now served by {current_id or 'nothing'}, "
                f"not {expect_current or 'nothing'}: refresh and try again",
                detail={"current": current_id},
            )
        if current is not None and current.to_version == version.number:
            return DeploymentResult(None, f"{what} {subject} already uses {version.id}")
        seq = deployment_sql.append_event(
            tx, kind=kind, subject=subject,
            from_version=current.to_version if current else None, to_version=version.number,
            action=action, actor=actor, reason=reason, pinned=pinned, detail=detail,
        )
        deployment_sql.append_audit(
            tx, actor=actor, action=action, subject=f"{kind.value}:{subject}",
            detail={"from": current_id, "to": version.id, "reason": reason, **(detail or {})},
            event_seq=seq,
        )
        event = deployment_sql.history(tx, limit=1)[0]
    label = "champion of" if kind is DeploymentKind.CHAMPION else "active on"
    return DeploymentResult(event, f"{version.id} is now {label} {subject}")

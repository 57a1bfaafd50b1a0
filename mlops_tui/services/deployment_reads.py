"""Reading serving state: what serves now, its history, the pins and the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from mlops_tui.core.errors import UsageError
from mlops_tui.core.models import AuditEntry, DeploymentEvent, DeploymentKind, ServingState
from mlops_tui.core.names import validate_name
from mlops_tui.store import deployments as deployment_sql

if TYPE_CHECKING:  # annotations only
    from mlops_tui.services.workspace import Workspace


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
class Pin:
    """A target or regime that CT must leave alone until `ct resume`."""

    kind: DeploymentKind
    subject: str
    version: int
    since: datetime
    by: str
    reason: str


def pins(workspace: Workspace) -> list[Pin]:
    """Every pinned target and regime, with who pinned it, when and why."""
    with workspace.store.read() as tx:
        states = deployment_sql.pins(tx)
    return [Pin(DeploymentKind(kind), subject, version, since, by, reason)
            for kind, subject, version, pinned, since, by, reason in states if pinned]

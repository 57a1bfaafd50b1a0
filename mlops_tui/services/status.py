"""The overview: workspace, store, serving state and unfinished jobs in one read."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from mlops_tui.core.models import DeploymentEvent, DeploymentKind
from mlops_tui.services.workspace import Workspace
from mlops_tui.store import deployments as deployment_sql
from mlops_tui.store import registry as registry_sql


@dataclass(frozen=True)
class Status:
    workspace: str
    store_id: str
    schema_version: int
    runner: str
    counts: dict[str, int]
    regimes: list[str]
    versions_by_regime: dict[str, int]
    active: dict[str, DeploymentEvent]
    champions: dict[str, DeploymentEvent]
    unfinished_jobs: list[tuple[str, str, str, str]]
    # how serving/current differs from the store (empty: it matches); never repaired here
    serving_problems: tuple[str, ...] = field(default=())


def status(workspace: Workspace) -> Status:
    from mlops_tui.services import serving, serving_check

    with workspace.store.read() as tx:
        meta = registry_sql.store_meta(tx)
        events = deployment_sql.current_all(tx)
        plan = serving.plan_in(tx)
        found = Status(
            workspace=str(workspace.root),
            store_id=meta.get("store_id", ""),
            schema_version=int(meta.get("schema_version", 0)),
            runner=workspace.config.runner.kind,
            counts=registry_sql.counts(tx),
            regimes=registry_sql.regime_names(tx),
            versions_by_regime=registry_sql.version_counts_by_regime(tx),
            active={e.subject: e for e in events if e.kind is DeploymentKind.ACTIVE},
            champions={e.subject: e for e in events if e.kind is DeploymentKind.CHAMPION},
            unfinished_jobs=registry_sql.unfinished_jobs(tx),
        )
    # a comparison of the plan with the manifest and links: no hashing on a read path
    return replace(found, serving_problems=tuple(
        serving_check.problems_for_readers(workspace, plan)))

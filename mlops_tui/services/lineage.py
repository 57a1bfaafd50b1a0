"""A version's lineage: ancestry plus code, weights, environment, data, image and job."""

from __future__ import annotations

from mlops_tui.core.lineage import LineageNode, build_lineage
from mlops_tui.core.names import parse_version_id
from mlops_tui.services.registry import require_version
from mlops_tui.services.workspace import Workspace
from mlops_tui.store import registry as registry_sql


def lineage(workspace: Workspace, version_id: str) -> LineageNode:
    with workspace.store.read() as tx:
        require_version(tx, version_id)
        chain = registry_sql.ancestry(tx, parse_version_id(version_id))
        envs = {h: e for h in {v.env_hash for v in chain}
                if (e := registry_sql.get_env(tx, h)) is not None}
        codes = {h: c for h in {v.code_hash for v in chain}
                 if (c := registry_sql.get_code(tx, h)) is not None}
        fingerprints = sorted({f for v in chain for f in (v.train_snapshot, v.holdout_snapshot)
                               if f})
        snapshots = registry_sql.data_snapshots(tx, fingerprints)
    return build_lineage(chain, envs, codes, snapshots)

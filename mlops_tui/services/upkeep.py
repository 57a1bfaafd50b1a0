"""Upkeep on every write unit: derived files follow the store without anyone asking.

The store calls `on_write` inside each write unit, before its body. Two checks:

- the serving folder: when `serving/current`'s manifest is not at the store's newest
  deployment event (a process was killed between its commit and its publish), the folder is
  rebuilt from the store once the unit has committed. A readlink and one small file per
  unit; the full comparison is `serving status` / `store verify`.
- leftovers (see services/leftovers.py): removed once per process and store, inside the
  first write unit, while its exclusive lock keeps other writers out.

Nothing here may fail the unit it runs in: problems stay for `store verify` and `doctor`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mlops_tui.core.errors import MlopsError
from mlops_tui.store import Tx
from mlops_tui.store import deployments as deployment_sql

if TYPE_CHECKING:  # annotations only: workspace imports these lazily
    from mlops_tui.services.workspace import Workspace

_swept: set[str] = set()  # stores whose leftovers this process has removed


def on_write(workspace: Workspace, tx: Tx, unit: str) -> Callable[[], None] | None:
    try:
        _sweep_once(workspace, tx)
        return _serving_follow_up(workspace, tx)
    except (MlopsError, OSError):
        return None


def _sweep_once(workspace: Workspace, tx: Tx) -> None:
    key = str(workspace.store_path)
    if key in _swept:
        return
    _swept.add(key)
    from mlops_tui.services import leftovers

    leftovers.remove(workspace, leftovers.find(workspace, tx))


def _serving_follow_up(workspace: Workspace, tx: Tx) -> Callable[[], None] | None:
    from mlops_tui.services import serving
    from mlops_tui.services.serving_check import published_generation

    newest = deployment_sql.latest_event_seq(tx)
    published = published_generation(workspace)
    link = workspace.serving_root / serving.CURRENT
    if (published == newest) if newest else not (link.exists() or link.is_symlink()):
        return None

    def repair() -> None:
        try:
            serving.sync(workspace, unit="reconcile")
        except (MlopsError, OSError):
            pass  # the store is right; `serving reconcile` says what is wrong

    return repair

"""Reads of the serving folder against the store: compare, never repair.

A comparison of the store's plan with `current`'s manifest and links (no hashing), for the
read commands' warning, the dashboard's banner and the write units' upkeep check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops_tui.services.serving import ServingPlan, inspect, read_current

if TYPE_CHECKING:  # annotations only: workspace imports these lazily
    from mlops_tui.services.workspace import Workspace


def problems_for_readers(workspace: Workspace, plan: ServingPlan | None = None) -> list[str]:
    """`inspect` for read commands: never raises for the folder, never repairs it."""
    try:
        return inspect(workspace, plan)
    except OSError as error:
        return [f"serving folder cannot be read: {error.strerror or error}"]


def published_generation(workspace: Workspace) -> int | None:
    """The deployment event `current`'s manifest reflects (None: no readable `current`).
    A readlink and one small file: cheap enough for every write unit."""
    _, manifest, _ = read_current(workspace)
    generation = manifest.get("generation") if manifest else None
    return generation if isinstance(generation, int) else None


def mismatch_warning(problems: list[str] | tuple[str, ...]) -> str:
    """The one line read commands print when the folder does not match the store."""
    shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3
                                        else "")
    return ("serving folder does not match the store (a serving process loading "
            f"serving/current gets something else): {shown}; 'mlops-tui serving reconcile' "
            "repairs it (so does the next write of any command)")

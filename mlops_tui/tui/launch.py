"""Start the dashboard (imported lazily by the CLI so scripts never load Textual)."""

from __future__ import annotations

from mlops_tui.services.workspace import Workspace


def launch(workspace: Workspace, readonly: bool = False) -> None:
    from mlops_tui.tui.app import MlopsApp

    MlopsApp(workspace, readonly=readonly).run()

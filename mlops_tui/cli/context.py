"""Per-invocation state shared by commands: which workspace, which command line."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlops_tui.services.workspace import Workspace


@dataclass
class CliState:
    workspace_option: str | None = None


STATE = CliState()


def workspace() -> Workspace:
    # imported here: the store (duckdb) loads only for commands that open a workspace
    from mlops_tui.services.workspace import open_workspace

    command = "mlops-tui " + " ".join(sys.argv[1:3])
    return open_workspace(STATE.workspace_option, command=command.strip())

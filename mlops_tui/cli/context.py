"""Per-invocation state shared by commands: which workspace, which command line."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from mlops_tui.services.workspace import Workspace, open_workspace


@dataclass
class CliState:
    workspace_option: str | None = None


STATE = CliState()


def workspace() -> Workspace:
    command = "mlops-tui " + " ".join(sys.argv[1:3])
    return open_workspace(STATE.workspace_option, command=command.strip())

"""Start the dashboard (imported lazily by the CLI so scripts never load Textual)."""

from __future__ import annotations

from mlops_tui.core.config import ConfigError
from mlops_tui.services.workspace import Workspace


def check_keymap(workspace: Workspace) -> None:
    """A `[keymap]` entry naming no binding is a typo: say so before the screen opens."""
    from mlops_tui.tui.keys import known_binding_ids

    known = known_binding_ids()
    for binding_id, keys in workspace.config.keymap.items():
        if binding_id not in known:
            from mlops_tui.core.names import not_found

            hint = not_found("binding id", binding_id, sorted(known)).message
            raise ConfigError(f"{workspace.config_path}: [keymap] {hint.removeprefix('unknown ')}"
                              " (the ? key lists each view's keys; ids are in the docs)")
        if not keys.strip():
            raise ConfigError(f"{workspace.config_path}: [keymap] {binding_id} has no key")


def build_app(workspace: Workspace, readonly: bool = False):
    """The dashboard, with the overview's first read already running in a thread while
    Textual is imported and the screen is built."""
    from mlops_tui.tui.overview_data import Prefetched

    early = Prefetched(workspace)
    from mlops_tui.tui.app import MlopsApp

    check_keymap(workspace)
    return MlopsApp(workspace, readonly=readonly, prefetched=early)


def launch(workspace: Workspace, readonly: bool = False) -> None:
    """Run the dashboard, then end the process with its exit status (0, or 129/130/143,
    see tui/terminal.py) as soon as no store write is in flight."""
    import asyncio

    from mlops_tui.tui.terminal import end_process

    app = build_app(workspace, readonly)
    # its own loop, never closed: asyncio.run would wait for every reader thread to finish
    app.run(loop=asyncio.new_event_loop())
    end_process(app.return_code or 0, app.store_writes)

"""Export the README's screenshots from the running dashboard on the demo workspace.

Builds the demo workspace (`mlops-tui demo --no-tui`) in a temporary folder unless one is
given, drives the real app headless with the keys an operator would press, and saves each
screen with `App.save_screenshot` as SVG next to this file.

Usage: python docs/images/screenshots.py [--workspace DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZE = (120, 36)


async def _settle(pilot) -> None:
    app = pilot.app
    for _ in range(200):
        busy = [w for w in app.workers if w.is_running and w.group != "log"]
        if not busy:
            await pilot.pause()
            if not [w for w in app.workers if w.is_running and w.group != "log"]:
                return
        await asyncio.sleep(0.05)


async def _shoot(workspace: Path) -> list[Path]:
    from mlops_tui.services.workspace import open_workspace
    from mlops_tui.tui.app import MlopsApp

    app = MlopsApp(open_workspace(workspace), refresh_seconds=3600)
    saved = []
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        saved.append(Path(app.save_screenshot("overview.svg", str(HERE))))
        regimes = app.screen.query_one("#regimes")
        sedan = [str(key.value) for key in regimes.rows].index("sedan")
        regimes.move_cursor(row=sedan)
        await pilot.press("enter")  # the drifting regime's drift view
        await _settle(pilot)
        await pilot.press("down")  # oven_temp_c, the sensor that drifts
        await _settle(pilot)
        saved.append(Path(app.save_screenshot("drift.svg", str(HERE))))
        await pilot.press("colon", *"env", "enter")  # the serving version vs the host
        await _settle(pilot)
        saved.append(Path(app.save_screenshot("env-diff.svg", str(HERE))))
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, help="an existing demo workspace")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mlops-tui-shots-") as scratch:
        workspace = args.workspace
        if workspace is None:
            from mlops_tui.services.demo import build_demo

            workspace = Path(scratch) / "mlops-demo"
            build_demo(workspace, progress=lambda message: print(message, file=sys.stderr))
        for path in asyncio.run(_shoot(workspace)):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

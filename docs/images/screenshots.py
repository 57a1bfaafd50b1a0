"""Export the README's screenshots from the running dashboard on the demo workspace.

Builds the demo workspace (`mlops-tui demo --no-tui`) as ~/mlops-demo of a temporary home
(so the header shows no machine's path), records drift as `mlops-tui drift show` does, drives
the real app headless with the keys an operator would press, and saves each screen with
`App.save_screenshot` as SVG next to this file.

Usage: python docs/images/screenshots.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # this checkout's mlops_tui
SIZE = (120, 36)


async def _settle(pilot) -> None:
    app = pilot.app
    for _ in range(200):
        busy = [w for w in app.workers if w.is_running and w.group != "log"]
        if not busy and getattr(app.screen, "settled", True):
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
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    from mlops_tui.services.demo import build_demo
    from mlops_tui.services.drift_compute import compute_drift, record_drift
    from mlops_tui.services.references import ensure_profiles

    with tempfile.TemporaryDirectory(prefix="mlops-tui-shots-") as scratch:
        os.environ["HOME"] = scratch
        workspace = Path(scratch) / "mlops-demo"
        result = build_demo(workspace, progress=lambda message: print(message, file=sys.stderr))
        ensure_profiles(result.workspace)
        record_drift(result.workspace, compute_drift(result.workspace))
        for path in asyncio.run(_shoot(workspace)):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`mlops-tui doctor`: a health report of the workspace, each problem with its fix."""

from __future__ import annotations

import typer

from mlops_tui.cli import context
from mlops_tui.cli.output import JsonOption, emit
from mlops_tui.core.text import printable

SYMBOLS = {"ok": "✓", "info": "·", "warning": "!", "integrity": "✗", "unavailable": "✗"}


def doctor_command(as_json: JsonOption = False) -> None:
    """Check the store, its invariants and hashes, leftovers, the lock, disk space, the
    Docker engine and the serving folder; writes nothing.

    Exit 0 healthy, 3 warnings only, 5 an integrity problem, 6 the configured runner's
    engine (or base image) unavailable.

    Example: mlops-tui doctor --json | jq '.checks[] | select(.status != "ok")'
    """
    from mlops_tui.services.doctor import diagnose

    report = diagnose(context.workspace())

    def human(console) -> None:
        for check in report.checks:
            # messages carry file names and the lock holder's record: shown as text
            console.print(f"{SYMBOLS.get(check.status, '?')} {check.name}: "
                          f"{printable(check.message)}", markup=False)
            if check.fix and check.status != "ok":
                console.print(f"    fix: {printable(check.fix)}", markup=False)
        verdict = {0: "healthy", 3: "warnings", 5: "integrity problems",
                   6: "a required dependency is unavailable"}[report.exit_code]
        console.print(f"doctor: {verdict}", markup=False)

    emit(as_json, report.document(), human)
    if report.exit_code:
        raise typer.Exit(report.exit_code)

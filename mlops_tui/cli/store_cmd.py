"""`mlops-tui store`: migrate, verify and back up the metadata store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlops_tui.cli import context
from mlops_tui.cli.output import JsonOption, emit, info, progress
from mlops_tui.core.errors import IntegrityError
from mlops_tui.core.text import printable

app = typer.Typer(help="The DuckDB metadata store.", no_args_is_help=True)


@app.command("migrate")
def migrate_command(as_json: JsonOption = False) -> None:
    """Bring an older store to this version's schema (back it up first).

    Example: mlops-tui store backup before.duckdb && mlops-tui store migrate
    """
    from mlops_tui.services.maintenance import migrate_store

    before, after = migrate_store(context.workspace())
    emit(as_json, {"from": before, "to": after},
         lambda c: c.print(f"schema {before} -> {after}" if before != after
                           else f"schema {after} is current; nothing to do"))


@app.command("verify")
def verify_command(
    repair: Annotated[bool, typer.Option(
        "--repair", help="Also remove the leftovers it reports (see below).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Check the store's invariants; exit 5 naming everything that is broken.

    Checks: each active version and champion exists, every deployment event has its audit
    row, every artifact and code snapshot exists with its recorded hash, and serving/current
    matches the store (rebuilt from the store when a crash left it behind). Leftovers are
    warnings: orphan batch and label files, staging files of killed ingests, artifacts no
    version references, folders of jobs that ended before they ran; --repair removes them.

    Example: mlops-tui store verify --repair --json
    """
    from mlops_tui.services.maintenance import verify_store

    with progress("verifying store and artifacts…", quiet=as_json):
        report = verify_store(context.workspace(), repair=repair)
    if not report.ok:
        raise IntegrityError(
            f"store verify found {len(report.problems)} problem(s): " + "; ".join(report.problems),
            detail={"problems": report.problems, "checked": report.checked,
                    "warnings": report.warnings},
        )
    for repaired in report.repaired:  # derived state rebuilt, leftovers removed
        info(f"repaired {printable(repaired)}")
    for warning in report.warnings:  # file names: shown as text
        info(f"warning: {printable(warning)} ('mlops-tui store verify --repair' removes it)")
    emit(as_json, {"ok": True, "checked": report.checked, "warnings": report.warnings,
                   "leftovers": report.leftovers}
         | ({"repaired": report.repaired} if report.repaired else {}),
         lambda c: c.print("store OK: " + ", ".join(f"{v} {k.replace('_', ' ')}"
                                                   for k, v in report.checked.items())
                           + (f"; {len(report.warnings)} warning(s)" if report.warnings
                              else "")))


@app.command("backup")
def backup_command(
    destination: Annotated[Path, typer.Argument(help="New DuckDB file to write.")],
    as_json: JsonOption = False,
) -> None:
    """Copy the store to a new file while others keep reading.

    Example: mlops-tui store backup /backups/mlops-$(date +%F).duckdb
    """
    from mlops_tui.services.maintenance import backup_store

    with progress("backing up…", quiet=as_json):
        path = backup_store(context.workspace(), destination)
    emit(as_json, {"backup": str(path)}, lambda c: c.print(f"backup written to {path}"))

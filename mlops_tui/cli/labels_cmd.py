"""`mlops-tui labels`: late labels, joined to observations on the id column."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlops_tui.cli import context
from mlops_tui.cli.output import JsonOption, emit, info

app = typer.Typer(help="Late labels, joined to observations by id.", no_args_is_help=True)


@app.command("ingest")
def ingest_command(
    files: Annotated[list[Path], typer.Argument(
        help="CSV or Parquet files with the id and label columns of \\[data].")],
    as_json: JsonOption = False,
) -> None:
    """Add labels that arrived after their observations (same file twice: a no-op).

    Example: mlops-tui labels ingest adhesion-lab-2026-02-04.csv
    """
    from mlops_tui.services.ingest import ingest_labels

    workspace = context.workspace()
    results = []
    for path in files:
        result = ingest_labels(workspace, path)
        results.append(result)
        if not as_json:
            info(result.message)
    if as_json:
        emit(True, {"files": [{"source": r.source, "rows": r.rows, "matched": r.matched,
                               "new": r.new, "message": r.message} for r in results]}, None)

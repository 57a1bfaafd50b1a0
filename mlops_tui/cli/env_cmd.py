"""`mlops-tui env`: capture and diff environments (Level 0)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlops_tui.cli import context
from mlops_tui.cli.documents import diff_doc, env_doc
from mlops_tui.cli.output import JsonOption, emit

app = typer.Typer(help="Environment snapshots and diffs.", no_args_is_help=True)

SYMBOLS = {"compatible": "✓", "risky": "!", "incompatible": "✗"}


@app.command("capture")
def capture_command(
    requirements: Annotated[Path | None, typer.Option(
        "--requirements", "-r", help="Read exact pins from a requirements/lock file instead.")] = None,
    image: Annotated[str | None, typer.Option(
        "--image", help="Capture inside this Docker image instead (never pulled).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Capture this interpreter's environment (Python, platform, every distribution).

    With --image, capture inside a Docker image instead (a throwaway container, no network,
    never pulled) and, in a workspace, keep the snapshot there: the deploy gate compares
    versions with it when \\[serving] environment = "image:NAME".

    Example: mlops-tui env capture --json > host-env.json
    Example: mlops-tui env capture --image mlops-trainer:3f2a9c1d0b7e4a55
    """
    from mlops_tui.core.errors import NotFoundError, UsageError
    from mlops_tui.services.environments import (
        capture_host,
        capture_image,
        env_from_requirements,
        record_environment,
    )

    if requirements and image:
        raise UsageError("choose --requirements or --image, not both")
    recorded_in = None
    if image:
        env = capture_image(image)
        try:
            workspace = context.workspace()
        except NotFoundError:  # outside a workspace: print it only
            workspace = None
        if workspace is not None:
            record_environment(workspace, env)
            recorded_in = str(workspace.root)
    else:
        env = env_from_requirements(requirements) if requirements else capture_host()

    def human(console) -> None:
        console.print(f"{env.source}: {env.summary()} on {env.platform or '-'}  "
                      f"hash {env.hash[:12]}", markup=False)
        if recorded_in:
            console.print(f"recorded in the workspace {recorded_in}", markup=False)
        for name, version in sorted(env.packages.items()):
            console.print(f"  {name}=={version}")

    emit(as_json, env_doc(env) | ({"recorded_in": recorded_in} if image else {}), human)


@app.command("diff")
def diff_command(
    left: Annotated[str, typer.Argument(
        help="A version id (v12), 'host', 'image:NAME', or a requirements file.")],
    right: Annotated[str, typer.Argument(
        help="A version id (v12), 'host', 'image:NAME', or a requirements file.")],
    show_all: Annotated[bool, typer.Option("--all", help="Also list compatible changes.")] = True,
    as_json: JsonOption = False,
) -> None:
    """Diff two environments and give the verdict: compatible, risky or incompatible.

    Example: mlops-tui env diff v12 host        (will v12 load on this host?)
    Example: mlops-tui env diff v3 v12 --json
    """
    from mlops_tui.services.environments import diff

    result = diff(context.workspace(), left, right)

    def human(console) -> None:
        from mlops_tui.cli.render import TextTable as Table

        verdict = result.verdict.label
        console.print(f"{result.left} -> {result.right}: {SYMBOLS[verdict]} {verdict.upper()}"
                      f"  ({len(result.changes)} package changes, {result.identical} identical)")
        for reason in result.reasons:
            console.print(f"  because {reason}")
        table = Table(box=None, header_style="bold")
        for column in ("", "package", result.left, result.right, "change", "verdict"):
            table.add_column(column)
        shown = [c for c in result.all_changes
                 if show_all or c.verdict.label != "compatible"]
        for change in shown:
            table.add_row(SYMBOLS[change.verdict.label], change.name + (" *" if change.needed else ""),
                          change.old or "-", change.new or "-", change.label, change.verdict.label)
        if shown:
            console.print(table)
        if any(c.needed for c in shown):  # the footnote only under a starred row
            console.print("* needed by the model's artifact")

    emit(as_json, diff_doc(result), human)

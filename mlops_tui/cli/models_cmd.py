"""`mlops-tui models`: list and show registered versions."""

from __future__ import annotations

from typing import Annotated

import typer

from mlops_tui.cli import context
from mlops_tui.cli.documents import env_doc, metrics_text, version_doc
from mlops_tui.cli.lazy import lazy_group
from mlops_tui.cli.output import MAX_COUNT, JsonOption, LimitOption, emit
from mlops_tui.core.text import printable

app = typer.Typer(help="Registered model versions.", no_args_is_help=True, cls=lazy_group(
    [("gc", "mlops_tui.cli.deploy_cmd:models_gc_command")]))


@app.command("list")
def list_command(
    regime: Annotated[str | None, typer.Option(help="Only this regime.")] = None,
    trigger: Annotated[str | None, typer.Option(help="Only this trigger (manual, drift, ...).")] = None,
    runner: Annotated[str | None, typer.Option(help="Only this runner (local, docker).")] = None,
    limit: LimitOption = 200,
    offset: Annotated[int, typer.Option(
        min=0, max=MAX_COUNT, help="Skip this many (newest first).")] = 0,
    as_json: JsonOption = False,
) -> None:
    """List versions, newest first.

    Example: mlops-tui models list --regime suv --limit 20 --json
    """
    from mlops_tui.services.registry import list_versions

    workspace = context.workspace()
    page = list_versions(workspace, regime=regime, trigger=trigger, runner=runner,
                         limit=limit or None, offset=offset)
    metric = workspace.config.pipeline.metric

    def human(console) -> None:
        from mlops_tui.cli.render import TextTable as Table

        table = Table(box=None, header_style="bold")
        for column in ("version", "regime", "created", "trigger", "runner", "metrics", "parent"):
            table.add_column(column)
        for v in page.versions:
            metrics = metrics_text(v.metrics, metric)
            table.add_row(v.id, v.regime, v.created_at.strftime("%Y-%m-%d %H:%M"),
                          v.trigger.value, v.runner, metrics, v.parent_id or "-")
        console.print(table)
        shown = len(page.versions)
        console.print(f"{shown} of {page.total} versions" + (
            " (use --limit/--offset for more)" if shown < page.total else ""))

    emit(as_json, {"total": page.total, "offset": page.offset,
                   "versions": [version_doc(v) for v in page.versions]}, human)


@app.command("show")
def show_command(
    version: Annotated[str, typer.Argument(help="Version id, e.g. v12.")],
    as_json: JsonOption = False,
) -> None:
    """Show one version: metrics, code, artifact, environment, data, serving roles.

    Example: mlops-tui models show v12 --json
    """
    from mlops_tui.services.registry import show_version

    workspace = context.workspace()
    detail = show_version(workspace, version)
    v = detail.version
    metric = workspace.config.pipeline.metric
    document = version_doc(v) | {
        "environment": env_doc(detail.env, with_packages=False) if detail.env else None,
        "code": {"hash": v.code_hash,
                 "files": [{"path": f.path, "sha256": f.sha256, "size": f.size}
                           for f in detail.code.files] if detail.code else [],
                 "git_commit": detail.code.git_commit if detail.code else None,
                 "git_dirty": detail.code.git_dirty if detail.code else None},
        "train": _snapshot_doc(detail.train), "holdout": _snapshot_doc(detail.holdout),
        "champion_of": list(detail.champion_of), "active_on": list(detail.active_on),
    }

    def human(console) -> None:
        from rich.text import Text

        console.print(Text.assemble((printable(v.id), "bold"), printable(
            f"  regime {v.regime}  trigger {v.trigger.value}  "
            f"runner {v.runner}  created {v.created_at:%Y-%m-%d %H:%M:%S}Z")))
        roles = [f"champion of {r}" for r in detail.champion_of] + [
            f"active on {t}" for t in detail.active_on]
        console.print(f"roles      {', '.join(roles) or '-'}")
        console.print(f"parent     {v.parent_id or '-'}")
        console.print("metrics    " + (metrics_text(v.metrics, metric) or "-"))
        console.print(f"artifact   {v.artifact.path} ({v.artifact.size:,} bytes)")
        console.print(f"sha256     {v.artifact.sha256}")
        if detail.env:
            console.print(f"env        {detail.env.hash[:12]}  {detail.env.summary()}  "
                          f"{detail.env.platform} ({detail.env.source})")
        if detail.code:
            git = (f", git {detail.code.git_commit[:10]}"
                   f"{' dirty' if detail.code.git_dirty else ''}") if detail.code.git_commit else ""
            console.print(f"code       {v.code_hash[:12]}  {len(detail.code.files)} files{git}")
        for label, snap in (("train", detail.train), ("holdout", detail.holdout)):
            if snap:
                console.print(f"{label:<10} {snap.fingerprint[:12]}  {snap.rows:,} rows"
                              f"  {snap.time_min or '-'} .. {snap.time_max or '-'}")
        console.print(f"needs      {', '.join(v.required_packages) or '-'}")
        if v.image:
            console.print(f"image      {v.image}")
        if v.job_id:
            console.print(f"job        {v.job_id}")

    emit(as_json, document, human)


def _snapshot_doc(snapshot) -> dict | None:
    if snapshot is None:
        return None
    return {"fingerprint": snapshot.fingerprint, "kind": snapshot.kind, "rows": snapshot.rows,
            "regime": snapshot.regime,
            "time_min": snapshot.time_min.isoformat() if snapshot.time_min else None,
            "time_max": snapshot.time_max.isoformat() if snapshot.time_max else None}

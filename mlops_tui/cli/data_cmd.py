"""`mlops-tui ingest` and `mlops-tui retrain`: data in, models out."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from mlops_tui.cli import context
from mlops_tui.cli.jobs_cmd import job_doc, outcome_doc
from mlops_tui.cli.output import DataTimeOption, JsonOption, bounded_time, emit, info
from mlops_tui.core.errors import ConflictError, IntegrityError


def ingest_command(
    files: Annotated[list[Path], typer.Argument(help="CSV or Parquet files of observations.")],
    as_json: JsonOption = False,
) -> None:
    """Append observation files as batches (validated against the data contract in mlops.toml).

    Example: mlops-tui ingest line-2026-02-01.csv line-2026-02-02.parquet
    """
    from mlops_tui.services.ingest import ingest_file

    workspace = context.workspace()
    results = []
    for path in files:
        result = ingest_file(workspace, path)
        results.append(result)
        if not as_json:
            info(result.message)
    if as_json:
        emit(True, {"batches": [{"source": r.source, "batch": r.batch_id, "rows": r.rows,
                                 "new": r.new, "message": r.message} for r in results]}, None)


def retrain_command(
    regime: Annotated[str, typer.Option(help="Regime to retrain.")],
    since: Annotated[datetime | None, typer.Option(
        callback=bounded_time, help="Only data at or after (UTC).")] = None,
    until: Annotated[datetime | None, typer.Option(
        callback=bounded_time, help="Only data before (UTC).")] = None,
    runner: Annotated[str | None, typer.Option(help="local, docker or auto (default: config).")] = None,
    wait: Annotated[bool, typer.Option(
        "--wait", help="Wait and ingest; exit 3 if the job fails, 5 if its result is rejected.",
    )] = False,
    reason: Annotated[str, typer.Option(help="Why, for the audit trail.")] = "",
    data_time: DataTimeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Retrain a regime's model in a job (exports snapshots, runs the pipeline, registers).

    Example: mlops-tui retrain --regime suv --since 2026-01-20 --wait
    """
    from mlops_tui.core.models import JobState
    from mlops_tui.runners.base import wait_for
    from mlops_tui.services.jobs import follow_to_end
    from mlops_tui.services.retrain import RetrainRequest, start_retrain

    workspace = context.workspace()
    say = (lambda m: None) if as_json else info
    request = RetrainRequest(regime=regime, since=since, until=until, runner=runner,
                             reason=reason, data_time=data_time)
    started = start_retrain(workspace, request, progress=say)
    if not wait:
        emit(as_json, job_doc(started.job),
             lambda c: c.print(f"job {started.job.id} started ({started.runner}); follow it "
                               f"with 'mlops-tui jobs logs {started.job.short_id} -f'"))
        return
    say(f"job {started.job.short_id}: training (Ctrl-C stops waiting, not the job)")
    status = wait_for(started.handle)
    outcome = follow_to_end(workspace, started.job, status)
    if outcome.job.state is JobState.REJECTED:
        raise IntegrityError(outcome.message, detail=outcome_doc(outcome))
    if outcome.version is None:
        raise ConflictError(outcome.message + f" (see 'mlops-tui jobs logs {started.job.short_id}')",
                            detail=outcome_doc(outcome))
    v = outcome.version
    metric = workspace.config.pipeline.metric

    def human(console) -> None:
        console.print(outcome.message)
        line = f"{v.id}: holdout {metric}={v.metrics.get(metric, float('nan')):.4f}"
        if f"parent_{metric}" in v.metrics:
            line += (f"; its parent v{v.parent} on the same holdout: "
                     f"{v.metrics[f'parent_{metric}']:.4f}")
        console.print(line)

    emit(as_json, outcome_doc(outcome) | {"metrics": v.metrics}, human)


def demo_command(
    workspace_dir: Annotated[Path, typer.Option(
        "--workspace", "-w", help="Where to build the demo workspace.")] = Path("mlops-demo"),
    no_tui: Annotated[bool, typer.Option("--no-tui", help="Build it, then exit (for scripts).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Build a demo workspace from the bundled sample scenario, then open the dashboard.

    Trains several versions per regime through the same harness and local runner as any
    retrain, records champions and the production target's deployments. Reuses the
    workspace if it already exists.

    Example: mlops-tui demo                       (then press q to quit)
    Example: mlops-tui demo --no-tui --workspace /tmp/demo && mlops-tui -w /tmp/demo status
    """
    from mlops_tui.cli.output import progress
    from mlops_tui.services.demo import build_demo

    say = (lambda m: None) if as_json else info
    with progress("building the demo workspace…", quiet=as_json):
        result = build_demo(workspace_dir.expanduser().absolute(), progress=say)
    if no_tui or as_json:
        emit(as_json, {"workspace": str(result.workspace.root), "built": result.built,
                       "versions": [v.id for v in result.versions],
                       "seconds": round(result.seconds, 2)},
             lambda c: c.print(f"demo workspace: {result.workspace.root}\n"
                               f"try: mlops-tui -w {result.workspace.root} status"))
        return
    from mlops_tui.tui.launch import launch

    launch(result.workspace, readonly=False)

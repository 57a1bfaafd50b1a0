"""`mlops-tui jobs`: retrain jobs, their logs, cancel and reconcile."""

from __future__ import annotations

import codecs
import json
import sys
import time
from typing import Annotated

import typer

from mlops_tui.cli import context
from mlops_tui.cli.lazy import lazy_group
from mlops_tui.cli.output import JsonOption, LimitOption, emit
from mlops_tui.core.text import printable

app = typer.Typer(help="Retrain jobs: list, show, logs, cancel, reconcile.", no_args_is_help=True,
                  cls=lazy_group([("gc", "mlops_tui.cli.deploy_cmd:jobs_gc_command")]))

LOG_SHOWN_BYTES = 16 * 2**20  # `jobs logs` prints at most the log's last 16 MB
JobArgument = Annotated[str, typer.Argument(help="Job id or a unique prefix (≥ 4 characters).")]


def job_doc(job) -> dict:
    return {"id": job.id, "regime": job.regime, "runner": job.runner,
            "created_at": job.created_at.isoformat(), "state": job.state.value,
            "state_at": job.state_at.isoformat(), "reason": job.reason,
            "trigger": job.spec.get("trigger"), "parent": job.spec.get("parent"),
            "image": job.spec.get("image_id")}


def outcome_doc(outcome) -> dict:
    return {"job": job_doc(outcome.job), "version": outcome.version.id if outcome.version else None,
            "message": outcome.message}


@app.command("list")
def list_command(
    running: Annotated[bool, typer.Option("--running", help="Only unfinished jobs.")] = False,
    regime: Annotated[str | None, typer.Option(help="Only this regime.")] = None,
    limit: LimitOption = 50,
    as_json: JsonOption = False,
) -> None:
    """Jobs, newest first.

    Example: mlops-tui jobs list --running --json
    """
    from mlops_tui.services.jobs import list_jobs

    jobs = list_jobs(context.workspace(), unfinished_only=running, regime=regime,
                     limit=limit or None)

    def human(console) -> None:
        from mlops_tui.cli.render import TextTable as Table

        table = Table(box=None, header_style="bold")
        for column in ("job", "regime", "runner", "state", "since", "reason"):
            table.add_column(column)
        for job in jobs:
            table.add_row(job.short_id, job.regime, job.runner, job.state.value,
                          f"{job.state_at:%Y-%m-%d %H:%M:%S}", job.reason[:60])
        console.print(table if jobs else "no jobs")

    emit(as_json, {"jobs": [job_doc(j) for j in jobs]}, human)


@app.command("show")
def show_command(job_id: JobArgument, as_json: JsonOption = False) -> None:
    """One job: its spec and every state it went through.

    Example: mlops-tui jobs show 3f2a
    """
    from mlops_tui.services.jobs import job_events

    job, events = job_events(context.workspace(), job_id)
    document = job_doc(job) | {
        "events": [{"state": s, "at": at.isoformat(), "reason": r} for s, at, r in events],
        "spec": job.spec}

    def human(console) -> None:
        console.print(f"job {job.id}  regime {job.regime}  runner {job.runner}  "
                      f"state {job.state.value}", markup=False)
        for state, at, reason in events:
            console.print(f"  {at:%Y-%m-%d %H:%M:%S}  {state:<10} {printable(reason)}")

    emit(as_json, document, human)


@app.command("logs")
def logs_command(
    job_id: JobArgument,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until it ends.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help=(
        "Print one JSON document; with -f, one JSON object per line (NDJSON) as the log "
        "grows, the last one with the job's state."))] = False,
) -> None:
    """Print a job's log (stdout and stderr of the harness).

    Example: mlops-tui jobs logs 3f2a -f
    Example: mlops-tui jobs logs 3f2a -f --json | jq -r 'select(.line).line'
    """
    from mlops_tui.cli.output import info, print_json
    from mlops_tui.services.jobs import (
        get_job,
        handle_for,
        log_size,
        read_log,
        read_runner_log,
    )

    workspace = context.workspace()
    job = get_job(workspace, job_id)
    handle = handle_for(workspace, job) if follow else None
    size = log_size(workspace, job)
    position = max(0, size - LOG_SHOWN_BYTES)  # a log of any size prints in bounded time
    skipped, refused_why = position, None
    if position and not as_json:
        info(f"job {job.short_id}: the log is {size / 2**20:,.0f} MB; showing its last "
             f"{LOG_SHOWN_BYTES // 2**20} MB")
    lines = LogLines(raw=as_json)
    text: list[str] = []  # --json without -f: the whole (shown) log in one document

    def out(chunk: str) -> None:
        if not as_json:
            sys.stdout.write(chunk)
        elif follow:  # NDJSON: compact, one object per complete line, flushed as it comes
            for line in chunk.removesuffix("\n").split("\n") if chunk else ():
                sys.stdout.write(json.dumps({"job": job.id, "line": line}) + "\n")
        else:
            text.append(chunk)
        sys.stdout.flush()

    while True:
        chunk, refused = read_log(workspace, job, position)
        if refused:
            refused_why = refused
            if not as_json:
                info(f"job log refused: {refused}")
            break
        position += len(chunk)
        out(lines.feed(chunk))
        if handle is None or handle.status().finished:
            if chunk:  # read to the end before stopping
                continue
            break
        time.sleep(0.3)
    out(lines.close())
    runner_log = read_runner_log(workspace, job)
    if as_json:
        end = {"job": job.id, "state": get_job(workspace, job.id).state.value,
               "skipped_bytes": skipped, "refused": refused_why, "runner_log": runner_log or ""}
        if follow:
            sys.stdout.write(json.dumps(end) + "\n")
            sys.stdout.flush()
        else:
            print_json(end | {"log": "".join(text)})
    elif runner_log:  # the launcher's own lines (image, container) go with the diagnostics
        info(printable(runner_log.rstrip("\n"), multiline=True))


class LogLines:
    """Log bytes in chunks to printable text, whole lines at a time: a multi-byte character
    or a CR LF split between two reads is decoded as one."""

    def __init__(self, raw: bool = False) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        # raw: the decoded text as it is, for JSON (which escapes control characters itself)
        self._shown = (lambda text: text) if raw else (
            lambda text: printable(text, multiline=True))

    def feed(self, chunk: bytes) -> str:
        text = self._pending + self._decoder.decode(chunk)
        complete, newline, self._pending = text.rpartition("\n")
        return self._shown(complete + newline)

    def close(self) -> str:
        rest, self._pending = self._pending + self._decoder.decode(b"", final=True), ""
        return self._shown(rest) + ("\n" if rest else "")


@app.command("cancel")
def cancel_command(job_id: JobArgument, as_json: JsonOption = False) -> None:
    """Stop a running job (its whole process group or container).

    Example: mlops-tui jobs cancel 3f2a
    """
    from mlops_tui.services.jobs import cancel_job

    job = cancel_job(context.workspace(), job_id)
    emit(as_json, job_doc(job), lambda c: c.print(f"job {job.short_id} {job.state.value}"))


@app.command("reconcile")
def reconcile_command(as_json: JsonOption = False) -> None:
    """Follow unfinished jobs to their true end and ingest finished results once.

    Exits 5 when it rejected a job's result (nothing of that job is registered).

    Example: mlops-tui jobs reconcile --json
    """
    from mlops_tui.core.errors import IntegrityError
    from mlops_tui.core.models import JobState
    from mlops_tui.services.jobs import reconcile

    outcomes = reconcile(context.workspace())
    rejected = [o for o in outcomes if o.job.state is JobState.REJECTED]
    if rejected:
        raise IntegrityError(
            "; ".join(o.message for o in rejected),
            detail={"outcomes": [outcome_doc(o) for o in outcomes]})
    emit(as_json, {"outcomes": [outcome_doc(o) for o in outcomes]},
         lambda c: [c.print(o.message, markup=False) for o in outcomes]
         or c.print("nothing to reconcile"))

"""Entry point: `mlops-tui` opens the dashboard; `mlops-tui NOUN VERB` scripts it.

Errors become one line on stderr (and one JSON document on stdout with --json) and the
exit code of docs/operator-guide.md ("Exit codes"); tracebacks only with MLOPS_TUI_DEBUG=1.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer

try:  # recent typer vendors click: its errors are not `click.ClickException`
    from typer._click.exceptions import ClickException
except ImportError:  # older typer raises click's own
    from click import ClickException

from mlops_tui import __version__
from mlops_tui.cli import context, typer_compat
from mlops_tui.cli.lazy import lazy_group
from mlops_tui.cli.output import (
    JsonOption,
    LimitOption,
    bounded_time,
    emit,
    info,
    report_error,
    show_usage_error,
    warn_serving,
)
from mlops_tui.core.errors import ExitCode, MlopsError, UsageError

typer_compat.apply()

_CLI = "mlops_tui.cli."
# every command, in the order help lists them; None: defined below in this module. The others
# load only when they run (or help lists them), so a command pays only for its own imports.
COMMANDS = (
    ("deploy", _CLI + "deploy_cmd:deploy_command"),
    ("rollback", _CLI + "deploy_cmd:rollback_command"),
    ("predict", _CLI + "deploy_cmd:predict_command"),
    ("ingest", _CLI + "data_cmd:ingest_command"),
    ("retrain", _CLI + "data_cmd:retrain_command"),
    ("demo", _CLI + "data_cmd:demo_command"),
    ("doctor", _CLI + "doctor_cmd:doctor_command"),
    ("init", None),
    ("lineage", None),
    ("audit", None),
    ("status", None),
    ("models", _CLI + "models_cmd:app"),
    ("env", _CLI + "env_cmd:app"),
    ("deployments", _CLI + "deployments_cmd:app"),
    ("ct", _CLI + "deploy_cmd:ct_app"),
    ("serving", _CLI + "deploy_cmd:serving_app"),
    ("store", _CLI + "store_cmd:app"),
    ("jobs", _CLI + "jobs_cmd:app"),
    ("image", _CLI + "image_cmd:app"),
    ("labels", _CLI + "labels_cmd:app"),
    ("drift", _CLI + "drift_cmd:app"),
    ("regimes", _CLI + "regimes_cmd:app"),
)

app = typer.Typer(
    name="mlops-tui",
    help="Operate machine-learning model lifecycles from a terminal. "
    "Without a command, opens the dashboard on the workspace.\n\n"
    "Example: mlops-tui --workspace ./plant-a        (opens the dashboard)",
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    cls=lazy_group(COMMANDS),
)


def _version(value: bool) -> None:
    if value:
        print(f"mlops-tui {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def main(
    ctx: typer.Context,
    workspace: Annotated[str | None, typer.Option(
        "--workspace", "-w", help="Workspace directory (default: $MLOPS_TUI_WORKSPACE or the "
        "current directory).", show_default=False)] = None,
    readonly: Annotated[bool, typer.Option(
        "--readonly", help="Dashboard only: no actions, nothing written.")] = False,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    """Example: mlops-tui --workspace ./plant-a        (opens the dashboard)"""
    context.STATE.workspace_option = workspace
    if ctx.invoked_subcommand is None:
        from mlops_tui.tui.launch import launch

        launch(context.workspace(), readonly=readonly)


@app.command("init")
def init_command(
    directory: Annotated[Path | None, typer.Argument(
        help="Where to create the workspace (default: the workspace option or current dir).")] = None,
    template: Annotated[str | None, typer.Option(
        help="pipeline/train.py to start from: regression or classification (numeric class "
        "codes).", show_default=False)] = None,
    from_csv: Annotated[Path | None, typer.Option(
        "--from-csv", help="Guess the data contract (id, timestamp, label, regime, features) from the first 10,000 rows of this file.")] = None,
    label: Annotated[str | None, typer.Option(help="The label column (default: the last).")] = None,
    id_column: Annotated[str | None, typer.Option("--id", help="The id column.")] = None,
    timestamp: Annotated[str | None, typer.Option(help="The timestamp column.")] = None,
    regime: Annotated[str | None, typer.Option(help="The regime column.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a workspace: mlops.toml, the store, its folders and pipeline/.

    Example: mlops-tui init ./plant-a --from-csv line-2026-02-01.csv
    """
    from mlops_tui.services.scaffold import scaffold, summary

    done = scaffold(directory or context.STATE.workspace_option, template=template,
                    csv=from_csv, id_column=id_column, timestamp=timestamp, label=label,
                    regime=regime)
    ws = done.workspace
    lines, document = summary(done)
    if not as_json:
        for line in lines:
            info(line)
    emit(as_json, {"workspace": str(ws.root), "config": str(ws.config_path),
                   "store": str(ws.store_path)} | document,
         lambda c: c.print(f"workspace created in {ws.root}" if not done.replaced
                           else f"empty workspace in {ws.root} written again"))


@app.command("lineage")
def lineage_command(
    version: Annotated[str, typer.Argument(help="Version id, e.g. v12.")],
    dot: Annotated[bool, typer.Option("--dot", help="Print Graphviz source.")] = False,
    as_json: JsonOption = False,
) -> None:
    """A version's lineage: code, weights, environment, data, image, job and ancestors.

    Example: mlops-tui lineage v12 --dot | dot -Tsvg > v12.svg
    """
    from mlops_tui.core.lineage import to_dot
    from mlops_tui.services.lineage import lineage

    if dot and as_json:
        raise UsageError("choose --dot or --json, not both")
    workspace = context.workspace()
    root = lineage(workspace, version)
    if dot:
        sys.stdout.write(to_dot(root))
        return
    emit(as_json, root.to_dict(),
         lambda c: [c.print(line, markup=False)
                    for line in lineage_lines(root, workspace.config.pipeline.metric)])


def _lineage_label(node, metric: str) -> str:
    if node.kind != "version":
        return node.label
    from mlops_tui.cli.documents import metrics_text

    a = node.attributes
    metrics = metrics_text(a.get("metrics") or {}, metric, ", ")
    return f"{node.id} regime {a['regime']}, {a['trigger']}, {a['runner']}" + (
        f", {metrics}" if metrics else "")


def lineage_lines(root, metric: str) -> list[str]:
    """The lineage as an indented tree, metrics in `metrics_text` order. A relation is named
    only where the label does not already say it (`code 1f1f…`, not `[code] code 1f1f…`)."""
    lines = [_lineage_label(root, metric)]

    def visit(node, prefix: str) -> None:
        for index, child in enumerate(node.children):
            last = index == len(node.children) - 1
            relation = child.relation
            shown = "" if not relation or child.label.split(" ", 1)[0] == relation else (
                "parent " if relation == "parent" else f"[{relation}] ")
            lines.append(f"{prefix}{'└── ' if last else '├── '}{shown}"
                         f"{_lineage_label(child, metric)}")
            visit(child, prefix + ("    " if last else "│   "))

    visit(root, "")
    return lines


@app.command("audit")
def audit_command(
    since: Annotated[datetime | None, typer.Option(callback=bounded_time,
        help="Only entries at or after this UTC time, e.g. 2026-01-31 or 2026-01-31T08:00.")] = None,
    limit: LimitOption = 200,
    as_json: JsonOption = False,
) -> None:
    """The audit log: who did what, when and why, newest first.

    Example: mlops-tui audit --since 2026-01-31 --json
    """
    from mlops_tui.cli.documents import audit_doc
    from mlops_tui.services.deployment_reads import audit_log

    entries = audit_log(context.workspace(), since=since, limit=limit or None)

    def human(console) -> None:
        from mlops_tui.cli.render import TextTable as Table

        table = Table(box=None, header_style="bold")
        for column in ("#", "at", "actor", "action", "subject", "detail"):
            table.add_column(column)
        for entry in entries:
            # the reason first: it is what a person reads the audit for
            detail = ", ".join(f"{k}={v}" for k, v in sorted(
                entry.detail.items(), key=lambda item: (item[0] != "reason", item[0])))
            table.add_row(str(entry.seq), f"{entry.at:%Y-%m-%d %H:%M:%S}", entry.actor,
                          entry.action, entry.subject, detail[:80])
        console.print(table if entries else "no audit entries")

    emit(as_json, {"entries": [audit_doc(e) for e in entries]}, human)


@app.command("status")
def status_command(as_json: JsonOption = False) -> None:
    """The overview: serving targets, champions, versions per regime, unfinished jobs.

    Example: mlops-tui status --json | jq .active
    """
    from mlops_tui.cli.documents import event_doc
    from mlops_tui.services.status import status

    s = status(context.workspace())
    document = {
        "workspace": s.workspace, "store_id": s.store_id, "schema_version": s.schema_version,
        "runner": s.runner, "counts": s.counts, "regimes": s.regimes,
        "versions_by_regime": s.versions_by_regime,
        "active": {t: event_doc(e) for t, e in sorted(s.active.items())},
        "champions": {r: event_doc(e) for r, e in sorted(s.champions.items())},
        "unfinished_jobs": [{"id": j[0], "regime": j[1], "runner": j[2], "state": j[3]}
                            for j in s.unfinished_jobs],
        "serving": {"matches_store": not s.serving_problems,
                    "problems": list(s.serving_problems)},
    }
    warn_serving(s.serving_problems)

    def human(console) -> None:
        console.print(f"workspace {s.workspace}  (schema {s.schema_version}, runner {s.runner})")
        console.print(f"{s.counts['model_versions']} versions in {len(s.regimes)} regimes, "
                      f"{s.counts['deployment_events']} deployment events")
        for target, event in sorted(s.active.items()):
            console.print(f"target {target}: v{event.to_version} since {event.at:%Y-%m-%d %H:%M}"
                          + ("  [pinned]" if event.pinned else ""), markup=False)
        for regime in s.regimes:
            champion = s.champions.get(regime)
            console.print(f"regime {regime}: champion "
                          f"{'v' + str(champion.to_version) if champion else 'none'}, "
                          f"{s.versions_by_regime.get(regime, 0)} versions")
        for job_id, regime, runner, state in s.unfinished_jobs:
            console.print(f"job {job_id[:8]} {regime} {runner}: {state}")

    emit(as_json, document, human)


def _on_sigterm(signum, frame) -> None:  # noqa: ARG001
    raise SystemExit(int(ExitCode.SIGTERM))


def _is_the_program() -> bool:
    """True when this process is mlops-tui itself (the console script or `python -m`), not
    code that calls run() and carries on afterwards (tests, benchmarks)."""
    entry = sys.modules.get("__main__")
    spec = getattr(entry, "__spec__", None)
    return getattr(spec, "name", None) == "mlops_tui.cli.main" or (
        Path(getattr(entry, "__file__", "") or "").name == "mlops-tui")


def _exit(code: object) -> NoReturn:
    """Leave with `code`. As the program itself, with no other thread running, skip the
    interpreter's teardown (unloading duckdb and every module costs tens of milliseconds for
    nothing: each store unit has committed and detached by now); exit handlers still run and
    the streams are flushed. Otherwise, or if a flush fails, the normal exit."""
    threading = sys.modules.get("threading")
    if (isinstance(code, int) and _is_the_program() and hasattr(atexit, "_run_exitfuncs")
            and (threading is None or threading.active_count() == 1)):
        try:
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - e.g. a closed pipe: the normal exit reports it
            pass
        else:
            os._exit(code)
    sys.exit(code)


def run() -> None:
    """Console-script entry: map every failure to its documented exit code."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    as_json = "--json" in sys.argv[1:]
    debug = os.environ.get("MLOPS_TUI_DEBUG") == "1"
    try:
        # without standalone mode an Exit (--help, --version, Ctrl-C as Exit(130)) comes back
        # as the return value, not as an exception
        returned = app(standalone_mode=False)
    except typer.Exit as done:
        _exit(done.exit_code)
    except typer.Abort:
        _exit(int(ExitCode.SIGINT))
    except ClickException as error:
        if as_json:
            report_error(error, ExitCode.USAGE, "usage", True)
        else:
            show_usage_error(error)
        _exit(int(ExitCode.USAGE))
    except MlopsError as error:
        if debug:
            import traceback

            traceback.print_exc()
        report_error(error, error.code, error.kind, as_json)
        _exit(int(error.code))
    except KeyboardInterrupt:
        report_error(MlopsError("interrupted"), ExitCode.SIGINT, "interrupted", as_json)
        _exit(int(ExitCode.SIGINT))
    except Exception as error:  # noqa: BLE001 - the last line of defence
        from mlops_tui.services.maintenance import as_disk_full

        if (full := as_disk_full(error)) is not None:
            report_error(full, full.code, full.kind, as_json)
            _exit(int(full.code))
        if debug:
            raise
        report_error(error, ExitCode.INTERNAL, "internal", as_json)
        info("set MLOPS_TUI_DEBUG=1 for a traceback")
        _exit(int(ExitCode.INTERNAL))
    if returned == ExitCode.SIGINT:
        report_error(MlopsError("interrupted"), ExitCode.SIGINT, "interrupted", as_json)
    _exit(returned if isinstance(returned, int) else 0)


if __name__ == "__main__":
    run()

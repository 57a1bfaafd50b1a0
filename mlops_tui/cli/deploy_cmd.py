"""`deploy`, `rollback`, `predict`, `ct resume`, `serving`, `models gc`, `jobs gc`.

Thin: parse, call the service, emit. Services are imported inside the commands, so a
deploy or rollback from a cold start loads neither scikit-learn nor pandas.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mlops_tui.cli import context
from mlops_tui.cli.documents import event_doc
from mlops_tui.cli.output import (
    MAX_COUNT,
    DataTimeOption,
    JsonOption,
    emit,
    info,
    warn_serving,
)
from mlops_tui.core.errors import ConflictError

TargetOption = Annotated[str | None, typer.Option(
    "--target", help="Serving target (default: default_target of mlops.toml's serving table).")]
RegimeOption = Annotated[str | None, typer.Option(
    "--regime", help="A regime: act on its champion instead of a target.")]
ReasonOption = Annotated[str | None, typer.Option(
    "--reason", help="Why, for the audit log (required with --force).")]
ExpectOption = Annotated[str | None, typer.Option(
    "--expect-current", help="The version you saw serving ('none' for nothing); refused "
    "(exit 3) if it changed since.", show_default=False)]
ForceOption = Annotated[bool, typer.Option(
    "--force", help="Override the environment gate or the regime check (needs --reason; "
    "audited).")]

ct_app = typer.Typer(help="Continuous training: hand pinned targets and regimes back to it.",
                     no_args_is_help=True)
serving_app = typer.Typer(help="The serving folder: serving/current and its generations.",
                          no_args_is_help=True)

SYMBOLS = {"compatible": "✓", "risky": "!", "incompatible": "✗"}


def _expect(value: str | None) -> Any:
    from mlops_tui.services.deployments import UNSET

    return UNSET if value is None else value


def _result_doc(result: Any) -> dict[str, Any]:
    served = result.serving
    return {
        "changed": result.event is not None,
        "message": result.message,
        "event": event_doc(result.event) if result.event else None,
        "gate": result.gate.document() if result.gate else None,
        "warnings": list(result.warnings),
        "serving": {"generation": served.generation, "path": str(served.path)}
        if served is not None and served.path is not None else None,
    }


def _show_gate_refusal(error: ConflictError, as_json: bool) -> None:
    """On a gate refusal, show the diff behind it (stderr; --json carries it in the error)."""
    gate = error.detail.get("gate") if isinstance(error.detail, dict) else None
    if as_json or not gate:
        return
    info(f"environment gate: {SYMBOLS[gate['verdict']]} {gate['verdict'].upper()} "
         f"on {gate['environment']}")
    for change in gate["changes"]:
        needed = " *" if change["needed_by_model"] else ""
        info(f"  {SYMBOLS[change['verdict']]} {change['name']}{needed}: "
             f"{change['old'] or '-'} -> {change['new'] or '-'}  ({change['verdict']})")
    if any(c["needed_by_model"] for c in gate["changes"]):
        info("  * needed by the model's artifact")


def _emit_change(result: Any, as_json: bool) -> None:
    if not as_json:
        for warning in result.warnings:
            info(f"warning: {warning}")
    emit(as_json, _result_doc(result), lambda c: c.print(result.message, markup=False))


def deploy_command(
    version: Annotated[str, typer.Argument(help="Version id, e.g. v12.")],
    target: TargetOption = None,
    champion_of: Annotated[str | None, typer.Option(
        "--champion-of", help="Make it this regime's champion instead.")] = None,
    reason: ReasonOption = None,
    expect_current: ExpectOption = None,
    force: ForceOption = False,
    create_target: Annotated[bool, typer.Option(
        "--create-target", help="Allow a target that has never served (typo guard).")] = False,
    data_time: DataTimeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make a version active on a target, or a regime's champion; pins it until `ct resume`.

    Checks the weights' hash and the environment gate first (incompatible: exit 3 with the
    diff, unless --force --reason). Compare-and-set against --expect-current.

    Example: mlops-tui deploy v12 --target production --expect-current v9 --reason "fixes drift"
    """
    from mlops_tui.services.deployments import deploy

    try:
        result = deploy(context.workspace(), version, target=target, champion_of=champion_of,
                        reason=reason, expect_current=_expect(expect_current), force=force,
                        create_target=create_target, data_time=data_time)
    except ConflictError as error:
        _show_gate_refusal(error, as_json)
        raise
    _emit_change(result, as_json)


def rollback_command(
    target: TargetOption = None,
    regime: RegimeOption = None,
    to: Annotated[str | None, typer.Option(
        "--to", help="The version to restore (default: the one before the latest change).")
    ] = None,
    reason: ReasonOption = None,
    expect_current: ExpectOption = None,
    force: ForceOption = False,
    data_time: DataTimeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Restore an earlier version as a new event (history is never rewritten); pins it.

    Without --to: undoes the latest change; repeating it is a no-op that says so.

    Example: mlops-tui rollback --target production --reason "v12 underperforms"
    """
    from mlops_tui.services.deployments import rollback

    try:
        result = rollback(context.workspace(), target=target, regime=regime, to=to,
                          reason=reason, expect_current=_expect(expect_current), force=force,
                          data_time=data_time)
    except ConflictError as error:
        _show_gate_refusal(error, as_json)
        raise
    _emit_change(result, as_json)


def predict_command(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet file to score.")],
    out: Annotated[Path | None, typer.Option(
        "--out", help="Output .parquet or .csv (default: FILE.predictions.parquet).")] = None,
    by_regime: Annotated[bool, typer.Option(
        "--by-regime", help="Route each row to its regime's champion.")] = False,
    target: TargetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Score a file with the active version (or each row's regime champion), streaming it.

    Writes the id column, the prediction and the version used for every row.

    Example: mlops-tui predict line-2026-02-09.parquet --by-regime --out scored.parquet
    """
    from mlops_tui.services.predict import predict_file
    from mlops_tui.services.serving_check import problems_for_readers

    workspace = context.workspace()
    result = predict_file(workspace, file, out=out, by_regime=by_regime, target=target)
    problems = problems_for_readers(workspace)  # predict scores with the store's versions
    warn_serving(problems)
    emit(as_json, {"source": result.source, "output": result.output, "rows": result.rows,
                   "by_regime": result.by_regime, "rows_by_version": result.rows_by_version,
                   "unrouted": result.unrouted, "seconds": round(result.seconds, 3),
                   "serving": {"matches_store": not problems, "problems": problems}},
         lambda c: c.print(result.message, markup=False))


@ct_app.command("resume")
def resume_command(
    target: TargetOption = None,
    regime: RegimeOption = None,
    reason: ReasonOption = None,
    data_time: DataTimeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Unpin a target (or regime) a manual deploy or rollback pinned.

    Example: mlops-tui ct resume --target production --reason "line stable again"
    """
    from mlops_tui.services.deployments import resume

    result = resume(context.workspace(), target=target, regime=regime, reason=reason,
                    data_time=data_time)
    emit(as_json, {"changed": result.changed, "message": result.message},
         lambda c: c.print(result.message, markup=False))


@serving_app.command("status")
def serving_status_command(as_json: JsonOption = False) -> None:
    """What serving/current links, and whether it matches the store.

    Example: mlops-tui serving status --json
    """
    from mlops_tui.services import serving, serving_check

    workspace = context.workspace()
    problems = serving_check.problems_for_readers(workspace)
    folder, manifest, _ = serving.read_current(workspace)
    document = {"current": str(folder) if folder else None, "manifest": manifest,
                "matches_store": not problems, "problems": problems}

    def human(console) -> None:
        console.print(f"current -> {folder or 'nothing'}", markup=False)
        for section in ("targets", "champions"):
            for subject, entry in sorted(((manifest or {}).get(section) or {}).items()):
                console.print(f"  {section[:-1]:<8} {subject:<16} {entry.get('version')}  "
                              f"{entry.get('file')}", markup=False)
        console.print("matches the store" if not problems else
                      "does not match the store: " + "; ".join(problems), markup=False)

    warn_serving(problems)
    emit(as_json, document, human)


@serving_app.command("reconcile")
def serving_reconcile_command(as_json: JsonOption = False) -> None:
    """Rebuild serving/current from the store if a crash left it behind.

    Example: mlops-tui serving reconcile
    """
    from mlops_tui.services import serving

    result = serving.sync(context.workspace(), unit="reconcile")
    emit(as_json, {"changed": result.changed, "generation": result.generation,
                   "path": str(result.path) if result.path else None,
                   "problems": list(result.problems), "message": result.message},
         lambda c: c.print(result.message, markup=False))
    for problem in result.problems:
        info(f"warning: {problem}")


def models_gc_command(
    keep: Annotated[int, typer.Option(
        "--keep", min=1, max=MAX_COUNT, help="Newest versions to keep per regime.")] = 3,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would go.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Remove old versions' weights (records stay). Never touches a deployed version, a
    champion or any version a rollback could restore.

    Example: mlops-tui models gc --keep 5 --dry-run
    """
    from mlops_tui.services.gc import collect_models

    result = collect_models(context.workspace(), keep=keep, dry_run=dry_run)
    emit(as_json, {"collected": result.collected, "kept_protected": result.kept_protected,
                   "orphans": result.orphans, "freed_bytes": result.freed_bytes,
                   "dry_run": result.dry_run, "message": result.message},
         lambda c: c.print(result.message, markup=False))


def jobs_gc_command(
    older_than: Annotated[str, typer.Option(
        "--older-than", help="Only jobs that ended before this age (12h, 7d, 2w).")] = "7d",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would go.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Remove finished jobs' folders, keeping those of versions that serve, are champions
    or could be rolled back to.

    Example: mlops-tui jobs gc --older-than 30d
    """
    from mlops_tui.services.gc import collect_jobs

    result = collect_jobs(context.workspace(), older_than=older_than, dry_run=dry_run)
    emit(as_json, {"removed": result.removed, "kept_protected": result.kept_protected,
                   "freed_bytes": result.freed_bytes, "dry_run": result.dry_run,
                   "message": result.message},
         lambda c: c.print(result.message, markup=False))

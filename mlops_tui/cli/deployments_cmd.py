"""`mlops-tui deployments`: what serves now, and the history of how it got there."""

from __future__ import annotations

from typing import Annotated

import typer

from mlops_tui.cli import context
from mlops_tui.cli.documents import event_doc
from mlops_tui.cli.output import JsonOption, LimitOption, emit, warn_serving
from mlops_tui.core.text import printable

app = typer.Typer(help="Active versions, champions and their history.", no_args_is_help=True)


@app.command("list")
def list_command(as_json: JsonOption = False) -> None:
    """Each serving target's active version and each regime's champion.

    Example: mlops-tui deployments list --json
    """
    from mlops_tui.services import serving_check
    from mlops_tui.services.deployment_reads import pins, serving_state

    workspace = context.workspace()
    state = serving_state(workspace)
    pinned = pins(workspace)
    problems = serving_check.problems_for_readers(workspace)
    document = {
        "targets": {t: event_doc(e) for t, e in sorted(state.active.items())},
        "champions": {r: event_doc(e) for r, e in sorted(state.champions.items())},
        "pins": [{"kind": p.kind.value, "subject": p.subject, "version": f"v{p.version}",
                  "since": p.since.isoformat(), "by": p.by, "reason": p.reason}
                 for p in pinned],
        "serving": {"matches_store": not problems, "problems": problems},
    }
    warn_serving(problems)

    def human(console) -> None:
        from mlops_tui.cli.render import TextTable as Table

        table = Table(box=None, header_style="bold")
        for column in ("role", "subject", "version", "since", "by", "pinned"):
            table.add_column(column)
        for label, events in (("target", state.active), ("champion", state.champions)):
            for subject, event in sorted(events.items()):
                table.add_row(label, subject, f"v{event.to_version}",
                              f"{event.at:%Y-%m-%d %H:%M}", event.actor,
                              "pinned" if event.pinned else "-")
        console.print(table if state.active or state.champions else "nothing deployed yet")
        for pin in pinned:
            flag = "--target" if pin.kind.value == "active" else "--regime"
            console.print(f"{pin.subject} pinned to v{pin.version} by {pin.by} since "
                          f"{pin.since:%Y-%m-%d %H:%M} ({printable(pin.reason)}); "
                          f"'mlops-tui ct resume {flag} {pin.subject}' unpins it",
                          markup=False)

    emit(as_json, document, human)


@app.command("history")
def history_command(
    target: Annotated[str | None, typer.Option(help="Only this serving target.")] = None,
    regime: Annotated[str | None, typer.Option(help="Only this regime's champions.")] = None,
    limit: LimitOption = 200,
    as_json: JsonOption = False,
) -> None:
    """Deployment events, newest first (append-only: a rollback is a new event).

    Example: mlops-tui deployments history --target production --json
    """
    from mlops_tui.services.deployment_reads import history

    events = history(context.workspace(), target=target, regime=regime, limit=limit or None)

    def human(console) -> None:
        from mlops_tui.cli.render import TextTable as Table

        table = Table(box=None, header_style="bold")
        for column in ("#", "data time", "recorded at", "kind", "subject", "change", "action",
                       "actor", "reason"):
            table.add_column(column)
        for e in events:
            change = f"{'v' + str(e.from_version) if e.from_version else '-'} -> v{e.to_version}"
            # data time: the newest observation the change acted on ("-": before any data)
            seen = f"{e.data_time:%Y-%m-%d %H:%M}" if e.data_time else "-"
            table.add_row(str(e.seq), seen, f"{e.at:%Y-%m-%d %H:%M:%S}", e.kind.value,
                          e.subject, change, e.action, e.actor, e.reason)
        console.print(table if events else "no deployment events")

    emit(as_json, {"events": [event_doc(e) for e in events]}, human)

"""`mlops-tui drift`: data drift over time, per feature and window, and why."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from mlops_tui.cli import context
from mlops_tui.cli.output import JsonOption, bounded_time, emit, info

app = typer.Typer(help="Data drift over time: features x windows, and explanations.",
                  no_args_is_help=True)

SYMBOLS = {"drift": "▲", "ok": "·", "inconclusive": "?"}


def feature_doc(result) -> dict[str, Any]:
    return {"test": result.test, "statistic": result.statistic, "p_value": result.p_value,
            "threshold": result.threshold, "verdict": result.verdict, "reason": result.reason,
            "error_bound": result.error_bound, "effect": result.effect}


def window_doc(window) -> dict[str, Any]:
    regime, reference, metric = window.regime, window.reference, window.metric
    return {
        "start": window.start.isoformat(), "end": window.end.isoformat(), "rows": window.rows,
        "split": window.split,
        "regime": {"name": regime.label, "method": regime.method, "distance": regime.distance,
                   "mixed": regime.mixed, "warning": regime.warning, "nearest": regime.nearest},
        "reference": {"version": f"v{reference.version}" if reference.version else None,
                      "basis": reference.basis, "snapshot": window.reference_snapshot,
                      "note": reference.note},
        "drift_share": window.drift_share, "verdict": window.verdict,
        "metric": None if metric is None else {
            "version": f"v{metric.version}", "name": metric.metric, "value": metric.value,
            "rows": metric.rows, "note": metric.note},
        "features": {name: feature_doc(result) for name, result in window.features.items()},
    }


def report_doc(report) -> dict[str, Any]:
    return {"window": report.window, "regime": report.regime, "run_id": report.run_id,
            "computed_at": report.computed_at.isoformat(), "features": list(report.features),
            "thresholds": report.thresholds, "notes": list(report.notes),
            "windows": [window_doc(w) for w in report.windows]}


def _cell(result) -> str:
    if result is None:
        return ""
    if result.verdict == "inconclusive":
        return "?"
    value = result.p_value if result.p_value is not None else result.statistic
    return f"{SYMBOLS[result.verdict]}{value:.3f}"


def _legend(name: str, result) -> str:
    from mlops_tui.core.drift import P_VALUE, get_test

    rule = "p <" if get_test(result.test).kind == P_VALUE else ">="
    return f"{name} {result.test} ({rule} {result.threshold:.3g})"


@app.command("show")
def show_command(
    regime: Annotated[str | None, typer.Option(
        help="Only windows of this regime, judged against its champion.")] = None,
    feature: Annotated[list[str] | None, typer.Option(
        "--feature", "-f", help="Only this feature (repeatable).")] = None,
    since: Annotated[datetime | None, typer.Option(callback=bounded_time,
        help="Only windows at or after this UTC time, e.g. 2026-02-01.")] = None,
    until: Annotated[datetime | None, typer.Option(callback=bounded_time,
        help="Only windows before this UTC time.")] = None,
    record: Annotated[bool, typer.Option(
        "--record/--no-record", help="Keep the result in the store (default) for the "
        "dashboard and CT.")] = True,
    as_json: JsonOption = False,
) -> None:
    """Drift per feature and window: test, statistic (p-value for tests), threshold, verdict.

    A cell reads ▲ drift, · ok or ? inconclusive, then the value compared with the
    threshold. Each window is judged against its serving version's training snapshot; one
    that spans a regime switch (regime column) is judged per regime, one row per part.

    Example: mlops-tui drift show --since 2026-02-01 --feature oven_temp_c --json
    """
    from dataclasses import replace

    from mlops_tui.core.errors import ReadOnlyError
    from mlops_tui.services.drift_compute import compute_drift, record_drift
    from mlops_tui.services.references import ensure_profiles

    workspace = context.workspace()
    if record:
        try:
            ensure_profiles(workspace)  # versions registered before profiles existed
        except ReadOnlyError:
            pass
    report = compute_drift(workspace, regime=regime, features=feature, since=since, until=until)
    if record and report.windows:
        try:
            report = replace(report, run_id=record_drift(workspace, report))
        except ReadOnlyError as error:
            report = replace(report, notes=(*report.notes, f"not recorded: {error.message}"))

    def human(console) -> None:
        from mlops_tui.cli.render import TextTable as Table

        if not report.windows:
            console.print("no windows to judge" + (f" ({'; '.join(report.notes)})"
                                                   if report.notes else ""))
            return
        table = Table(box=None, header_style="bold", pad_edge=False)
        for column in ("window", "rows", "regime", "ref", "share", *report.features):
            table.add_column(column, no_wrap=True)
        for w in report.windows:
            share = "-" if w.drift_share is None else f"{SYMBOLS[w.verdict]}{w.drift_share:.2f}"
            regime_text = (w.regime.label + (" (part)" if w.split else "")
                           + ("!" if w.regime.warning else ""))
            table.add_row(f"{w.start:%Y-%m-%d %H:%M}", str(w.rows), regime_text,
                          f"v{w.reference.version}" if w.reference.version else "-", share,
                          *[_cell(w.features.get(f)) for f in report.features])
        console.print(table)
        first: dict[str, Any] = {}
        for w in report.windows:
            for name, result in w.features.items():
                if result.threshold is not None:
                    first.setdefault(name, result)
        if first:
            console.print("tests: " + ", ".join(_legend(name, r) for name, r in first.items()),
                          markup=False)
        split = sorted({w.start for w in report.windows if w.split})
        if split:
            console.print(f"split: {', '.join(f'{s:%Y-%m-%d %H:%M}' for s in split[:10])}"
                          f"{' ...' if len(split) > 10 else ''}: a window that spans a regime "
                          "switch is judged per regime, one row per part (its rows only)",
                          markup=False)
        warned = [w for w in report.windows if w.regime.warning]
        for w in warned[:10]:
            console.print(f"! {w.start:%Y-%m-%d %H:%M}: {w.regime.warning}", markup=False)
        for note in report.notes:
            console.print(f"note: {note}", markup=False)

    emit(as_json, report_doc(report), human)
    if not as_json and report.run_id:
        info(f"recorded as drift run {report.run_id[:8]}")


@app.command("explain")
def explain_command(
    window: Annotated[str, typer.Argument(help="The window's start (UTC), e.g. 2026-02-03T06:00.")],
    feature: Annotated[str, typer.Argument(help="A feature of \\[data] in mlops.toml.")],
    regime: Annotated[str | None, typer.Option(
        help="Of a window split at a regime switch, this regime's part (default: the "
        "first part).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Reference vs current histogram of one feature in one window, as text.

    Example: mlops-tui drift explain 2026-02-03T06:00 oven_temp_c
    """
    from mlops_tui.services.drift_explain import explain
    from mlops_tui.services.drift_read import parse_window_start

    result = explain(context.workspace(), parse_window_start(window), feature, regime=regime)
    document = {"window": window_doc(result.window), "feature": result.feature,
                "test": result.test, "result": feature_doc(result.result),
                "bins": [{"bin": label, "reference": ref, "current": cur}
                         for label, ref, cur in zip(result.labels, result.reference,
                                                    result.current, strict=True)],
                "note": result.note}

    def human(console) -> None:
        r = result.result
        value = "-" if r.statistic is None else f"{r.statistic:.4f}"
        console.print(f"{feature} in the window {result.window.start:%Y-%m-%d %H:%M} "
                      f"({result.window.rows} rows, regime {result.window.regime.label}"
                      f"{', its part of a split window' if result.window.split else ''}) vs "
                      f"v{result.window.reference.version}'s training data", markup=False)
        console.print(f"{r.test}: statistic {value}"
                      + (f", p-value {r.p_value:.4g}" if r.p_value is not None else "")
                      + (f", threshold {r.threshold:.4g}" if r.threshold is not None else "")
                      + f" -> {r.verdict}" + (f" ({r.reason})" if r.reason else ""),
                      markup=False)
        if not result.labels:
            console.print(result.note or "nothing to show", markup=False)
            return
        width = max(len(label) for label in result.labels)
        top = max(max(result.reference), max(result.current), 1e-9)
        console.print(f"{'bin':<{width}}  {'reference':<22} {'current':<22}", markup=False)
        for label, ref, cur in zip(result.labels, result.reference, result.current,
                                   strict=True):
            console.print(f"{label:<{width}}  {_bar(ref, top, '#')} {_bar(cur, top, '=')}",
                          markup=False)

    emit(as_json, document, human)


def _bar(share: float, top: float, mark: str, width: int = 14) -> str:
    return f"{mark * round(width * share / top):<{width}} {share * 100:5.1f}%"

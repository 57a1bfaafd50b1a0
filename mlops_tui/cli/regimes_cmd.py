"""`mlops-tui regimes`: known regimes, their references, and the windows identified as them."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mlops_tui.cli import context
from mlops_tui.cli.output import JsonOption, emit

app = typer.Typer(help="Regimes: references and the windows identified as each.",
                  no_args_is_help=True)


def summary_doc(summary) -> dict[str, Any]:
    return {"name": summary.name,
            "reference_version": f"v{summary.version}" if summary.version else None,
            "champion": summary.champion, "snapshot": summary.snapshot,
            "reference_rows": summary.reference_rows, "windows": summary.windows,
            "warnings": summary.warnings,
            "first_seen": summary.first_seen.isoformat() if summary.first_seen else None,
            "last_seen": summary.last_seen.isoformat() if summary.last_seen else None,
            "mean_distance": summary.mean_distance}


@app.command("list")
def list_command(as_json: JsonOption = False) -> None:
    """Regimes with their reference version and how many windows match each.

    Example: mlops-tui regimes list --json
    """
    from mlops_tui.services.regimes import list_regimes

    summaries, other = list_regimes(context.workspace())

    def human(console) -> None:
        from mlops_tui.cli.render import TextTable as Table

        table = Table(box=None, header_style="bold")
        for column in ("regime", "reference", "rows", "windows", "warnings", "last seen",
                       "mean distance"):
            table.add_column(column)
        for s in summaries:
            table.add_row(
                s.name, (f"v{s.version}" + (" (champion)" if s.champion else ""))
                if s.version else "-", str(s.reference_rows or "-"), str(s.windows),
                str(s.warnings), f"{s.last_seen:%Y-%m-%d %H:%M}" if s.last_seen else "-",
                f"{s.mean_distance:.3f}" if s.mean_distance is not None else "-")
        console.print(table if summaries else "no regimes yet")
        console.print(", ".join(f"{n} {k} windows" for k, n in other.items()), markup=False)

    emit(as_json, {"regimes": [summary_doc(s) for s in summaries], "other_windows": other},
         human)


@app.command("show")
def show_command(
    name: Annotated[str, typer.Argument(help="Regime name, e.g. sedan.")],
    as_json: JsonOption = False,
) -> None:
    """One regime: its reference profile per feature and the windows identified as it.

    Example: mlops-tui regimes show sedan
    """
    from mlops_tui.services.regimes import show_regime

    detail = show_regime(context.workspace(), name)
    features = [{"name": f.name, "dtype": f.dtype, "test": f.test, "rows": f.rows,
                 "missing_share": f.missing_share, "mean": f.mean, "std": f.std,
                 "categories": dict(zip(f.categories, f.counts, strict=False))
                 if f.categories else None} for f in detail.features]
    windows = [{"start": w.start.isoformat(), "rows": w.rows, "regime": w.regime.label,
                "method": w.regime.method, "distance": w.regime.distance,
                "warning": w.regime.warning} for w in detail.windows]

    def human(console) -> None:
        s = detail.summary
        console.print(f"regime {s.name}: reference "
                      + (f"v{s.version}" + (" (champion)" if s.champion else "")
                         if s.version else "none")
                      + (f", {s.reference_rows:,} rows" if s.reference_rows else "")
                      + f"; {s.windows} windows, {s.warnings} with warnings", markup=False)
        for f in detail.features:
            shape = (f"mean {f.mean:.4g} sd {f.std:.4g}" if f.mean is not None else
                     ", ".join(f"{c} {n}" for c, n in list(zip(f.categories, f.counts,
                                                             strict=False))[:5]))
            console.print(f"  {f.name:<24} {f.test:<14} {shape}  missing "
                          f"{f.missing_share:.1%}", markup=False)
        for w in detail.windows[-20:]:
            distance = f"{w.regime.distance:.3f}" if w.regime.distance is not None else "-"
            console.print(f"  {w.start:%Y-%m-%d %H:%M} {w.rows:>7} rows  distance {distance}"
                          + (f"  ! {w.regime.warning}" if w.regime.warning else ""),
                          markup=False)

    emit(as_json, {"summary": summary_doc(detail.summary), "features": features,
                   "windows": windows}, human)

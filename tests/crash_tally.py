"""The figures of the SIGKILL matrix and the contention run: per case counts with the
reproduction of every problem, added up in the terminal summary (xdist ships each test
report's user_properties to the controller, so this works with and without -n)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MATRIX_PROPERTY = "crash_matrix"  # user_properties keys the terminal summary reports
CONTENTION_PROPERTY = "contention"


@dataclass
class Ran:
    args: tuple[str, ...]
    code: int | None
    out: str
    err: str
    seconds: float
    fault: str = ""  # the MLOPS_TUI_FAULT value, or ""
    delay: float | None = None  # random kill: seconds after start


@dataclass
class Tally:
    """Counts of one matrix case; violations and lost writes carry their reproduction."""

    case: str
    runs: int = 0
    killed: int = 0
    finished_before_kill: int = 0
    repairs: int = 0
    violations: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    tracebacks: list[str] = field(default_factory=list)
    unreached: list[str] = field(default_factory=list)  # fault points the command never hit
    started: float = field(default_factory=time.monotonic)

    def saw(self, ran: Ran) -> None:
        """Every command's output is checked for a Python traceback."""
        if "Traceback (most recent call last)" in ran.err + ran.out:
            self.tracebacks.append(f"{self.case}: {describe(ran)}: {ran.err[-800:]}")

    def document(self) -> dict[str, Any]:
        return {"case": self.case, "runs": self.runs, "killed": self.killed,
                "finished_before_kill": self.finished_before_kill, "repairs": self.repairs,
                "violations": len(self.violations), "lost_writes": len(self.lost),
                "tracebacks": len(self.tracebacks), "unreached": len(self.unreached),
                "seconds": round(time.monotonic() - self.started, 1),
                "details": (self.violations + self.lost + self.tracebacks + self.unreached)[:20]}

    def assert_clean(self) -> None:
        problems = self.violations + self.lost + self.tracebacks + self.unreached
        assert not problems, "\n".join(problems[:20])


def describe(ran: Ran) -> str:
    how = (f"MLOPS_TUI_FAULT={ran.fault}" if ran.fault
           else f"SIGKILL after {ran.delay:.3f}s" if ran.delay is not None else "no fault")
    return f"mlops-tui {' '.join(ran.args)} [{how}] -> exit {ran.code}"


def summarize(reports: list[dict[str, Any]]) -> dict[str, Any]:
    totals: dict[str, Any] = {"cases": len(reports)}
    for key in ("runs", "killed", "finished_before_kill", "repairs", "violations",
                "lost_writes", "tracebacks", "unreached"):
        totals[key] = sum(r[key] for r in reports)
    by_command: dict[str, int] = {}
    for report in reports:
        command = report["case"].split("[", 1)[0]
        by_command[command] = by_command.get(command, 0) + report["runs"]
    totals["runs_by_command"] = by_command
    totals["case_seconds"] = round(sum(r["seconds"] for r in reports), 1)
    return totals


def terminal_summary(terminalreporter: Any) -> None:
    """Add up the matrix cases' figures (each test report carries its own; xdist ships
    user_properties to the controller) and print them, also as one JSON line."""
    reports, contention = [], []
    for outcome in ("passed", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", None) != "call":
                continue
            for key, value in getattr(report, "user_properties", ()):
                if key == MATRIX_PROPERTY:
                    reports.append(value)
                elif key == CONTENTION_PROPERTY:
                    contention.append(value)
    for figures in contention:
        terminalreporter.write_sep("=", "contention run")
        terminalreporter.write_line("contention: " + json.dumps(figures, sort_keys=True))
    totals = summarize(reports) if reports else None
    if totals:
        terminalreporter.write_sep("=", "SIGKILL matrix")
        for report in sorted(reports, key=lambda r: r["case"]):
            terminalreporter.write_line(
                f"{report['case']:<34} runs {report['runs']:>3}  killed {report['killed']:>3}  "
                f"violations {report['violations']}  lost {report['lost_writes']}  "
                f"tracebacks {report['tracebacks']}  {report['seconds']:>6.1f}s")
        terminalreporter.write_line("crash-matrix totals: " + json.dumps(totals, sort_keys=True))
    destination = os.environ.get("CRASH_MATRIX_SUMMARY")
    if destination and (reports or contention):
        Path(destination).write_text(json.dumps(
            {"totals": totals, "cases": reports, "contention": contention},
            indent=2, sort_keys=True))



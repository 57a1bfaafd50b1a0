"""The output sink. stdout is data (exactly one JSON document with --json); everything
for humans (messages, progress, errors) goes to stderr."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from mlops_tui.core.errors import MlopsError
from mlops_tui.core.text import printable

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print exactly one JSON document on stdout.")
]
# Counts passed to the store stay well inside a 64-bit integer: a larger one is exit 2
# naming the option, not an SQL overflow.
MAX_COUNT = 1_000_000_000
TIME_YEARS = (1900, 9998)  # window arithmetic around a time must not leave datetime's range


def bounded_time(ctx: typer.Context, param: typer.CallbackParam,
                 value: datetime | None) -> datetime | None:
    """A --since/--until callback: a time in TIME_YEARS, else exit 2 naming the option."""
    if value is not None and not TIME_YEARS[0] <= value.year <= TIME_YEARS[1]:
        raise typer.BadParameter(f"{value.date().isoformat()} is outside the years "
                                 f"{TIME_YEARS[0]}-{TIME_YEARS[1]}", ctx=ctx, param=param)
    return value


LimitOption = Annotated[
    int, typer.Option("--limit", min=0, max=MAX_COUNT, help="At most this many rows (0: all).")
]
DataTimeOption = Annotated[datetime | None, typer.Option(
    "--data-time", callback=bounded_time, show_default=False,
    help="The data time the change acts on, UTC (default: the newest observation); not "
    "after the newest observation, e.g. when replaying history.")]


def jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    return value


def _encode_other(value: Any) -> Any:
    """json's fallback for values it does not know (dataclasses, enums, times, paths)."""
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    converted = jsonable(value)
    if converted is value:
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")
    return converted


def print_json(document: Any) -> None:
    """One document on stdout: indented for a person, compact (and C-encoded) for a pipe."""
    indent = 2 if sys.stdout.isatty() else None
    sys.stdout.write(json.dumps(document, indent=indent, default=_encode_other) + "\n")
    sys.stdout.flush()


def _stderr_console():
    from mlops_tui.cli.render import TextConsole

    return TextConsole(stderr=True, highlight=False, no_color=bool(os.environ.get("NO_COLOR")))


def _stdout_console():
    from mlops_tui.cli.render import TextConsole

    return TextConsole(highlight=False, no_color=bool(os.environ.get("NO_COLOR")))


def emit(as_json: bool, document: Any, human: Callable[[Any], None]) -> None:
    """Print `document` as JSON, or call `human(console)` to render it for people."""
    if as_json:
        print_json(document)
    else:
        human(_stdout_console())


def info(message: str) -> None:
    """A human message on stderr (never mixed into data)."""
    _stderr_console().print(message, markup=False)


def warn_serving(problems: list[str] | tuple[str, ...]) -> None:
    """One warning line on stderr when serving/current does not match the store."""
    if problems:
        from mlops_tui.services.serving_check import mismatch_warning

        info(f"warning: {mismatch_warning(problems)}")


def error_document(error: MlopsError | Exception, code: int, kind: str) -> dict:
    message = error.message if isinstance(error, MlopsError) else str(error)
    document: dict[str, Any] = {"code": int(code), "kind": kind, "message": message}
    if isinstance(error, MlopsError) and error.detail:
        document["detail"] = jsonable(error.detail)
    return {"error": document}


def report_error(error: Exception, code: int, kind: str, as_json: bool) -> None:
    message = error.message if isinstance(error, MlopsError) else str(error)
    if as_json:
        print_json(error_document(error, code, kind))
    sys.stderr.write(f"error: {printable(message)}\n")
    sys.stderr.flush()


def show_usage_error(error: Exception) -> None:
    """click's usage error (it echoes the offending argument) with that argument escaped."""
    import io

    buffer = io.StringIO()
    error.show(file=buffer)  # type: ignore[attr-defined]
    sys.stderr.write(printable(buffer.getvalue(), multiline=True))
    sys.stderr.flush()


@contextmanager
def progress(message: str, quiet: bool):
    """A spinner on stderr for long work when a person is watching."""
    if quiet or not sys.stderr.isatty():
        yield
        return
    with _stderr_console().status(message):
        yield

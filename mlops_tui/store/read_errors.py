"""Data files refused at the door, in one line naming the file, the line and the reason:
DuckDB's (and pyarrow's) CSV errors, and control characters in column names and ids.

DuckDB puts the reason on later lines of its error (after an echo of the offending line),
and a file its sniffer rejects gets no line at all, or a wrong one: the sniffer counts lines
of its sample, not of the file. So the start of the file is scanned with Python's csv
module first, and DuckDB's own line number and reason are used only past that sample.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

import duckdb

from mlops_tui.core.errors import UsageError
from mlops_tui.core.names import CONTROL, shown_column

MAX_LINE_BYTES = 2_000_000  # DuckDB's default max_line_size
SCAN_LINES = 50_000  # more than the sniffer's sample of 20,480 rows
CSV_SUFFIXES = (".csv", ".txt", ".tsv")
TOO_LONG = "the line is longer than {:,} bytes, the most a CSV line may hold"

_LINE = re.compile(r"CSV Error on Line: (\d+)")
_REASONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)"),
     "{1} values, but the header has {0} columns"),
    (re.compile(r"Maximum line size of (\d+) bytes exceeded\. Actual Size:\s*(\d+) bytes"),
     "the line is {1:,} bytes long; a CSV line may hold at most {0:,} bytes"),
    (re.compile(r"Value with unterminated quote found"),
     "a quoted value is not closed (unterminated quote)"),
    (re.compile(r"Invalid unicode", re.IGNORECASE), "not UTF-8 text"),
)


# An id with NUL or an escape sequence, as an SQL condition on a column (stage_batch/labels).
ID_CONTROL_SQL = "regexp_matches(CAST({0} AS VARCHAR), '[\\x00-\\x1f\\x7f-\\x9f]')"


def refuse_control_names(source: Path, names: list[str]) -> None:
    """A column name with NUL or an escape sequence would reach every message and view."""
    for name in names:
        if CONTROL.search(name):
            where = "" if source.suffix.lower() == ".parquet" else "line 1: "
            raise UsageError(f"{source}: {where}column name {shown_column(name)} contains a "
                             "control character")


def escaped(text: str, limit: int = 120) -> str:
    """Control characters as visible escapes, shortened: a reader's text may echo data."""
    text = CONTROL.sub(lambda m: repr(m.group())[1:-1], text).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _duckdb_reason(text: str) -> str | None:
    for pattern, template in _REASONS:
        match = pattern.search(text)
        if match:
            return template.format(*(int(g) for g in match.groups()))
    return None


def _physical_lines(source: Path, state: dict, max_line: int) -> Iterator[str]:
    """The file's lines, stopping at SCAN_LINES or at a line longer than DuckDB reads."""
    with open(source, "rb") as handle:
        while state["lines"] < SCAN_LINES:
            raw = handle.readline(max_line + 2)
            if not raw:
                return
            state["lines"] += 1
            if len(raw.rstrip(b"\r\n")) > max_line:
                state["too_long"] = state["lines"]
                return
            text = raw.decode("utf-8", errors="replace")
            yield text.lstrip("\ufeff") if state["lines"] == 1 else text
        state["cut"] = True


def locate_problem(source: Path, max_line: int = MAX_LINE_BYTES) -> tuple[int, str] | None:
    """(line, reason) of the first malformed row near the start of a CSV file, if any."""
    delimiter = "\t" if source.suffix.lower() == ".tsv" else ","
    csv.field_size_limit(max(csv.field_size_limit(), max_line + 2))
    state = {"lines": 0, "too_long": 0, "cut": False}
    reader = csv.reader(_physical_lines(source, state, max_line), delimiter=delimiter,
                        quotechar='"', doublequote=True, strict=True)
    columns, row_start = None, 1
    try:
        for row in reader:
            if row and columns is None:
                columns = len(row)
            elif row and len(row) != columns:
                return row_start, f"{len(row)} values, but the header has {columns} columns"
            row_start = reader.line_num + 1
    except csv.Error as error:
        if state["too_long"]:
            return state["too_long"], TOO_LONG.format(max_line)
        if state["cut"]:
            return None
        if "unexpected end of data" in str(error):
            return row_start, "a quoted value is not closed (unterminated quote)"
        if "expected after" in str(error):
            return reader.line_num, ("text after a closing quote (a quote inside a quoted "
                                     "value is written twice: \"\")")
        return reader.line_num, escaped(str(error))
    if state["too_long"]:
        return state["too_long"], TOO_LONG.format(max_line)
    return None


def read_error(source: Path, error: duckdb.Error) -> str:
    """One line for a file DuckDB could not read (without the file's content)."""
    text = str(error)
    first = escaped(text.splitlines()[0] if text else type(error).__name__)
    is_csv_error = "CSV Error on Line" in text or "Error when sniffing file" in text
    if source.suffix.lower() not in CSV_SUFFIXES or not is_csv_error:
        return f"{source}: cannot be read: {first}"
    located = locate_problem(source)
    if located:
        line, reason = located
        exact = _duckdb_reason(text) if reason == TOO_LONG.format(MAX_LINE_BYTES) else None
        return f"{source}: line {line}: {exact or reason}"
    line_match = _LINE.search(text)
    reason = _duckdb_reason(text)
    if line_match and reason:
        return f"{source}: line {line_match.group(1)}: {reason}"
    if line_match:
        return f"{source}: line {line_match.group(1)}: not valid CSV ({first})"
    return (f"{source}: not a CSV file this reader understands: comma-separated (tab for "
            ".tsv), '\"' quotes, a header line, the same number of values on every line")


def arrow_error(source: Path, error: Exception, block_bytes: int) -> str:
    """One line for a CSV file pyarrow could not parse: the line and reason when found
    (pyarrow names neither the line nor, for a too long line, the reason)."""
    text = str(error)
    if "straddl" in text:
        located = locate_problem(source, block_bytes)
        where = f"line {located[0]}: " if located and located[1].startswith("the line is") else ""
        return (f"{source}: {where}a line longer than {block_bytes:,} bytes is too long for "
                "the CSV reader")
    located = locate_problem(source)
    if located:
        return f"{source}: line {located[0]}: {located[1]}"
    return f"{source}: not a readable CSV file ({escaped(text.splitlines()[0] if text else '')})"

"""The first rows of a data file, summarised per column for `init --from-csv`.

Values are parsed exactly as ingest parses them (the same reader, TRY_CAST to DOUBLE and
TIMESTAMPTZ), so a column guessed numeric or a timestamp here is one ingest accepts.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from mlops_tui.core.errors import UsageError
from mlops_tui.core.scaffold import ColumnSample, Sample
from mlops_tui.store.db import scratch
from mlops_tui.store.observations import _quote, _reader, file_columns
from mlops_tui.store.read_errors import read_error

# a regime name as core/names.py validates it
NAME_REGEX = "[A-Za-z0-9][A-Za-z0-9._-]{0,63}"


def sample_file(source: Path, rows: int) -> Sample:
    """Per-column counts over the first `rows` rows of `source` (UsageError if unreadable)."""
    names = file_columns(source)
    reader = _reader(source)
    aggregates = []
    for name in names:
        v = f"CAST({_quote(name)} AS VARCHAR)"
        not_number = f"{v} IS NOT NULL AND TRY_CAST({v} AS DOUBLE) IS NULL"
        not_time = f"{v} IS NOT NULL AND TRY_CAST({v} AS TIMESTAMPTZ) IS NULL"
        aggregates += [
            f"count({v})", f"count(DISTINCT {v})",
            f"count(*) FILTER (WHERE {not_number})",
            f"arg_min({v}, ordinality) FILTER (WHERE {not_number})",
            f"count(*) FILTER (WHERE NOT isfinite(TRY_CAST({v} AS DOUBLE)))",
            f"count(*) FILTER (WHERE {not_time})",
            f"arg_min({v}, ordinality) FILTER (WHERE {not_time})",
            f"coalesce(bool_and(regexp_full_match({v}, '{NAME_REGEX}') "
            f"AND NOT contains({v}, '..')), true)",
        ]
    first = f"(SELECT * FROM {reader} WITH ORDINALITY LIMIT {int(rows)})"
    with scratch() as cursor:
        try:
            found = cursor.execute(f"SELECT count(*), {', '.join(aggregates)} FROM {first}",
                                   [str(source)]).fetchone()
        except duckdb.Error as error:
            raise UsageError(read_error(source, error)) from None
        total, values = int(found[0]), found[1:]
        columns = []
        for index, name in enumerate(names):
            (count, distinct, not_numbers, first_text, not_finite, not_times, first_not_time,
             names_ok) = values[index * 8:(index + 1) * 8]
            backwards = None
            if count == total and not not_times and total:
                backwards = _first_backwards(cursor, first, source, name)
            columns.append(ColumnSample(
                name=name, values=int(count), distinct=int(distinct),
                not_numbers=int(not_numbers), first_text=first_text,
                not_finite=int(not_finite), not_times=int(not_times),
                first_not_time=first_not_time, names_ok=bool(names_ok),
                backwards=backwards))
    return Sample(source=str(source), rows=total, columns=tuple(columns))


def _first_backwards(cursor: duckdb.DuckDBPyConnection, first: str, source: Path,
                     name: str) -> int | None:
    """Ordinal of the first timestamp earlier than the one before it (ingest refuses it)."""
    t = f"TRY_CAST(CAST({_quote(name)} AS VARCHAR) AS TIMESTAMPTZ)"
    row = cursor.execute(
        f"SELECT min(o) FROM (SELECT ordinality AS o, {t} AS t, lag({t}) OVER "
        f"(ORDER BY ordinality) AS p FROM {first}) WHERE t < p", [str(source)]).fetchone()
    return None if row is None or row[0] is None else int(row[0])

"""Observation batches: files staged to Parquet outside the store lock, then registered.

Batches keep the data contract's own column names. Queries read the batch files through
DuckDB's Parquet reader; the store holds their metadata and the late labels (labels.py;
training exports: exports.py). Batches are written with snappy: every cold drift run
decodes them, and snappy decodes about 1.4x faster than zstd here, for about 1.4x the
bytes (benchmarks/README.md, drift).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from mlops_tui.core.config import DataContract, duration, moment
from mlops_tui.core.errors import IntegrityError, UsageError
from mlops_tui.core.names import shown_column
from mlops_tui.store import space
from mlops_tui.store.db import Tx, scratch, utcnow
from mlops_tui.store.read_errors import ID_CONTROL_SQL, read_error, refuse_control_names


@dataclass(frozen=True)
class StagedBatch:
    path: Path
    rows: int
    time_min: datetime | None
    time_max: datetime | None
    columns: tuple[str, ...]
    regimes: tuple[str, ...]
    nan_replaced: int = 0


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _reader(source: Path) -> str:
    # skip = 0: the header is line 1; DuckDB's sniffer would otherwise skip lines it finds
    # ragged and take a data row for the header
    suffix = source.suffix.lower()
    if suffix == ".parquet":
        return "read_parquet(?)"
    if suffix in (".csv", ".txt"):
        return ("read_csv(?, header = true, all_varchar = true, strict_mode = true, "
                "delim = ',', quote = '\"', escape = '\"', skip = 0)")
    if suffix == ".tsv":
        return ("read_csv(?, header = true, all_varchar = true, strict_mode = true, "
                "delim = '\t', quote = '\"', escape = '\"', skip = 0)")
    raise UsageError(f"{source}: unsupported file type {suffix or '(none)'}; use .csv or .parquet")


def _first_line(error: duckdb.Error) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def file_columns(source: Path) -> list[str]:
    """The column names DuckDB reads from `source` (UsageError if it cannot be read)."""
    with scratch() as cursor:
        try:
            names = [d[0] for d in cursor.execute(
                f"DESCRIBE SELECT * FROM {_reader(source)}", [str(source)]).fetchall()]
        except duckdb.Error as error:
            raise UsageError(read_error(source, error)) from None
    refuse_control_names(source, names)
    return names


def check_columns(source: Path, present: list[str], contract: DataContract) -> None:
    """Every declared column present (a label column may arrive later), nothing else."""
    required = [contract.id_column, contract.timestamp_column]
    required += [contract.regime_column] if contract.regime_column else []
    required += list(contract.features)
    optional = [contract.label_column] if contract.label_column else []
    missing = [c for c in required if c not in present]
    unexpected = [c for c in present if c not in required and c not in optional]
    if missing or unexpected:
        raise UsageError(
            f"{source}: columns do not match [data] in mlops.toml: "
            f"missing [{', '.join(map(shown_column, missing))}]; "
            f"unexpected [{', '.join(map(shown_column, unexpected))}]")


def _where(source: Path, ordinal: int) -> str:
    """Line in a CSV (the header is line 1), row in a Parquet file."""
    if source.suffix.lower() == ".parquet":
        return f"row {ordinal}"
    return f"line {ordinal + 1}"


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "...'"


def _first_backwards(cursor: duckdb.DuckDBPyConnection, reader: str, source: Path,
                     ts_col: str) -> int | None:
    """Ordinal of the first timestamp earlier than the one before it (file order: DuckDB
    preserves insertion order), found with numpy instead of a sorting window function."""
    import numpy as np

    times = cursor.execute(f"SELECT epoch_us(TRY_CAST({ts_col} AS TIMESTAMPTZ)) AS t "
                           f"FROM {reader}", [str(source)]).fetchnumpy()["t"]
    backwards = np.flatnonzero(np.diff(times) < 0)
    return int(backwards[0]) + 2 if backwards.size else None


# NaN/±inf test: DuckDB 2.0.1 answers isnan()/isinf() false for some NaNs of a Parquet
# DOUBLE column (also on x + 0); NOT isfinite() is right on every shape tried.
NOT_FINITE = "NOT isfinite({})"


def _utc_minute(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def _non_finite_text(value: object) -> str:
    """NaN, inf or -inf, spelled the same whatever the file type."""
    if isinstance(value, float):
        return "NaN" if value != value else ("inf" if value > 0 else "-inf")
    return _shown(value)


def stage_batch(source: Path, contract: DataContract, target: Path,
                previous: list[tuple[Path, datetime | None, datetime | None]] | None = None,
                now: datetime | None = None) -> StagedBatch:
    """Validate `source` against the contract and write it as Parquet to `target`.

    Checks, each failing with one line naming the file, the line (or row), the column and
    the value: unparseable values, missing ids or timestamps, NaN/inf in numeric features
    (unless [data] nan_policy = "missing"), timestamps going backwards or outside [data]
    earliest .. `now` (default the wall clock) + latest_ahead, duplicate ids in the file or in
    a `previous` batch (those covering the same time range).
    """
    present = file_columns(source)
    check_columns(source, present, contract)
    label = contract.label_column if contract.label_column in present else None
    reader = _reader(source)
    id_col, ts_col = _quote(contract.id_column), _quote(contract.timestamp_column)
    numeric = [c for c in contract.numeric] + ([label] if label else [])
    checks, names = [], []
    for column in numeric:
        q, v = _quote(column), _quote("__value " + column)
        checks.append(f"min(CASE WHEN {q} IS NOT NULL AND {v} IS NULL THEN ordinality END)")
        names.append(("parse", column))
        checks.append(f"count(*) FILTER (WHERE {NOT_FINITE.format(v)})")
        names.append(("nan", column))
        checks.append(f"min(CASE WHEN {NOT_FINITE.format(v)} THEN ordinality END)")
        names.append(("nan-first", column))
    checks.append(f"min(CASE WHEN {id_col} IS NULL OR trim(CAST({id_col} AS VARCHAR)) = '' "
                  f"THEN ordinality END)")
    names.append(("id-missing", contract.id_column))
    checks.append(f"min(CASE WHEN {ID_CONTROL_SQL.format(id_col)} THEN ordinality END)")
    names.append(("id-control", contract.id_column))
    checks.append("min(CASE WHEN \"__time\" IS NULL THEN ordinality END)")
    names.append(("ts-parse", contract.timestamp_column))
    earliest = moment(contract.earliest)
    latest = (now or datetime.now(UTC)) + duration(contract.latest_ahead)
    for name, test, bound in (("ts-early", "<", earliest), ("ts-late", ">", latest)):
        checks.append(f"min(CASE WHEN \"__time\" {test} '{bound.isoformat()}'::TIMESTAMPTZ "
                      "THEN ordinality END)")
        names.append((name, contract.timestamp_column))
    checks.append(f"count(*) - count(DISTINCT CAST({id_col} AS VARCHAR))")
    names.append(("duplicates", contract.id_column))
    checks.append("count(*)")
    names.append(("rows", ""))
    values = "".join(f"TRY_CAST({_quote(c)} AS DOUBLE) AS {_quote('__value ' + c)}, "
                     for c in numeric)
    scan = (f"SELECT *, {values}TRY_CAST({ts_col} AS TIMESTAMPTZ) AS \"__time\" "
            f"FROM {reader} WITH ORDINALITY")
    with scratch() as cursor:
        try:
            found = cursor.execute(f"SELECT {', '.join(checks)} FROM ({scan})",
                                   [str(source)]).fetchone()
        except duckdb.Error as error:
            raise UsageError(read_error(source, error)) from None
        problems = dict(zip(names, found, strict=True))
        if problems[("rows", "")] == 0:
            raise UsageError(f"{source}: no rows (only a header)")

        def value_at(column: str, ordinal: int) -> object:
            return cursor.execute(
                f"SELECT {_quote(column)} FROM {reader} WITH ORDINALITY WHERE ordinality = ?",
                [str(source), ordinal]).fetchone()[0]

        def number_at(column: str, ordinal: int) -> object:
            return cursor.execute(
                f"SELECT TRY_CAST({_quote(column)} AS DOUBLE) FROM {reader} WITH ORDINALITY "
                "WHERE ordinality = ?", [str(source), ordinal]).fetchone()[0]

        for column in numeric:
            bad = problems[("parse", column)]
            if bad is not None:
                raise UsageError(f"{source}: {_where(source, bad)}, column {column}: "
                                 f"{_shown(value_at(column, bad))} is not a number")
        bad = problems[("id-missing", contract.id_column)]
        if bad is not None:
            raise UsageError(f"{source}: {_where(source, bad)}, column {contract.id_column}: "
                             "the id is missing")
        bad = problems[("id-control", contract.id_column)]
        if bad is not None:
            raise UsageError(_id_control_message(source, bad, contract.id_column,
                                                 value_at(contract.id_column, bad)))
        bad = problems[("ts-parse", contract.timestamp_column)]
        if bad is not None:
            raise UsageError(f"{source}: {_where(source, bad)}, column "
                             f"{contract.timestamp_column}: "
                             f"{_shown(value_at(contract.timestamp_column, bad))} is not a "
                             "timestamp (ISO-8601, UTC unless it names a zone)")
        for name in ("ts-early", "ts-late"):
            bad = problems[(name, contract.timestamp_column)]
            if bad is None:
                continue
            shown = cursor.execute(
                f"SELECT strftime(timezone('UTC', TRY_CAST({ts_col} AS TIMESTAMPTZ)), "
                f"'%Y-%m-%dT%H:%M:%SZ') FROM {reader} WITH ORDINALITY WHERE ordinality = ?",
                [str(source), bad]).fetchone()[0]
            where = f"{source}: {_where(source, bad)}, column {contract.timestamp_column}: {shown}"
            if name == "ts-early":
                raise UsageError(f"{where} is before the earliest plausible time "
                                 f"{_utc_minute(earliest)} ([data] earliest = "
                                 f"{contract.earliest})")
            raise UsageError(f"{where} is after the latest plausible time "
                             f"{_utc_minute(latest)} (now + [data] latest_ahead = "
                             f"{contract.latest_ahead})")
        bad = _first_backwards(cursor, reader, source, ts_col)
        if bad is not None:
            raise UsageError(
                f"{source}: {_where(source, bad)}, column {contract.timestamp_column}: "
                f"{_shown(value_at(contract.timestamp_column, bad))} is earlier than the "
                "line before it (timestamps must not go backwards within a file)")
        non_finite = {c: problems[("nan", c)] for c in numeric if problems[("nan", c)]}
        if non_finite and contract.nan_policy != "missing":
            column = next(iter(non_finite))
            first = problems[("nan-first", column)]
            counts = ", ".join(f"{c}: {n}" for c, n in non_finite.items())
            raise UsageError(
                f"{source}: {_where(source, first)}, column {column}: "
                f"{_non_finite_text(number_at(column, first))} is not finite; "
                "NaN/inf values per column: "
                f"{counts} (set [data] nan_policy = \"missing\" to keep them as missing)")
        if problems[("duplicates", contract.id_column)]:
            value, ordinals = cursor.execute(
                f"SELECT CAST({id_col} AS VARCHAR) AS v, list(ordinality ORDER BY ordinality) "
                f"FROM {reader} WITH ORDINALITY GROUP BY v HAVING count(*) > 1 "
                f"ORDER BY min(ordinality) LIMIT 1", [str(source)]).fetchone()
            places = ", ".join(_where(source, o) for o in ordinals[:3])
            raise UsageError(
                f"{source}: column {contract.id_column}: "
                f"{problems[('duplicates', contract.id_column)]} duplicate ids, e.g. "
                f"{_shown(value)} at {places}")
        casts = [f"CAST({id_col} AS VARCHAR) AS {id_col}",
                 f"timezone('UTC', CAST({ts_col} AS TIMESTAMPTZ)) AS {ts_col}"]
        if contract.regime_column:
            q = _quote(contract.regime_column)
            casts.append(f"CAST({q} AS VARCHAR) AS {q}")
        for column in numeric:
            q = _quote(column)
            value = f"TRY_CAST({q} AS DOUBLE)"
            casts.append(f"CASE WHEN {NOT_FINITE.format(value)} THEN NULL ELSE {value} "
                         f"END AS {q}")
        casts += [f"CAST({_quote(c)} AS VARCHAR) AS {_quote(c)}" for c in contract.categorical]
        select = f"SELECT {', '.join(casts)} FROM {reader}"  # already in time order
        try:
            cursor.execute(
                f"COPY ({select}) TO '{_sql_path(target)}' (FORMAT parquet, COMPRESSION snappy)",
                [str(source)])
        except duckdb.Error as error:
            _raise_if_full(error, source, target)
            raise UsageError(f"{source}: {_first_line(error)}") from None
        check_staged_finite(source, target, numeric)
        regime_expr = (f"list(DISTINCT {_quote(contract.regime_column)})"
                       if contract.regime_column else "[]")
        rows, time_min, time_max, regimes = cursor.execute(
            f"SELECT count(*), min({ts_col}), max({ts_col}), {regime_expr} FROM read_parquet(?)",
            [str(target)]).fetchone()
        overlapping = [path for path, low, high in previous or []
                       if low is None or high is None or (low <= time_max and high >= time_min)]
        if overlapping:
            clash = cursor.execute(
                f"SELECT n.{id_col} FROM read_parquet(?) n SEMI JOIN "
                f"(SELECT CAST({id_col} AS VARCHAR) AS id FROM read_parquet(?, "
                f"union_by_name = true)) o ON o.id = n.{id_col} LIMIT 1",
                [str(target), [str(p) for p in overlapping]]).fetchone()
            if clash:
                target.unlink(missing_ok=True)
                raise UsageError(f"{source}: column {contract.id_column}: id "
                                 f"{_shown(clash[0])} was already ingested in an earlier batch")
    columns = [contract.id_column, contract.timestamp_column]
    columns += [contract.regime_column] if contract.regime_column else []
    columns += [label] if label else []
    columns += list(contract.features)
    return StagedBatch(target, int(rows), time_min, time_max, tuple(columns),
                       tuple(sorted(r for r in regimes if r is not None)),
                       sum(non_finite.values()))


def check_staged_finite(source: Path, target: Path, numeric: list[str]) -> None:
    """A second opinion from Arrow on the staged file: a NaN or inf there would bin as an
    outlier (a Wasserstein score of 1e8), so one that slipped past DuckDB is an error."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if not numeric:
        return
    for chunk in pq.ParquetFile(target).iter_batches(batch_size=131_072, columns=numeric):
        for name, values in zip(chunk.schema.names, chunk.columns, strict=True):
            if pc.any(pc.invert(pc.is_finite(values))).as_py():
                target.unlink(missing_ok=True)
                raise IntegrityError(f"{source}: column {shown_column(name)}: a NaN or inf "
                                     "value survived the checks into the staged copy; "
                                     "nothing was ingested")


def _id_control_message(source: Path, ordinal: int, column: str, value: object) -> str:
    return (f"{source}: {_where(source, ordinal)}, column {shown_column(column)}: the id "
            f"{_shown(value)} contains a control character")


def _raise_if_full(error: duckdb.Error, source: Path, target: Path) -> None:
    """A full disk while staging is not bad input: remove the partial file, then say how
    much room there is and about how much the staged copy needs (at most the source)."""
    if not space.is_disk_full(error):
        return
    target.unlink(missing_ok=True)
    raise space.disk_full(target.parent, needed=source.stat().st_size,
                          writing=f"the staged copy of {source.name}",
                          outcome="nothing was ingested") from None


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def batch_by_sha(tx: Tx, sha256: str) -> tuple[int, str] | None:
    row = tx.one("SELECT id, source FROM batches WHERE sha256 = ?", [sha256])
    return (row[0], row[1]) if row else None


def insert_batch(tx: Tx, *, sha256: str, source: str, path: str, staged: StagedBatch) -> int:
    batch_id = int(tx.scalar("SELECT coalesce(max(id), 0) + 1 FROM batches"))
    tx.execute(
        "INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [batch_id, sha256, source, path, staged.rows, staged.time_min, staged.time_max,
         json.dumps(list(staged.columns)), utcnow()],
    )
    return batch_id


def batch_paths(tx: Tx) -> list[str]:
    return [r[0] for r in tx.all("SELECT path FROM batches ORDER BY id")]


def batch_ranges(tx: Tx) -> list[tuple[str, datetime | None, datetime | None]]:
    """(path, first timestamp, last timestamp) of every batch."""
    return [tuple(r) for r in tx.all("SELECT path, time_min, time_max FROM batches ORDER BY id")]


def batch_summary(tx: Tx) -> tuple[int, int, datetime | None, datetime | None]:
    row = tx.one("SELECT count(*), coalesce(sum(rows), 0), min(time_min), max(time_max) "
                 "FROM batches")
    return int(row[0]), int(row[1]), row[2], row[3]

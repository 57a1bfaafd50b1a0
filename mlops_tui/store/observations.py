"""Observation batches: files staged to Parquet outside the store lock, then registered.

Batches keep the data contract's own column names. Queries read the batch files through
DuckDB's Parquet reader; the store holds their metadata and the late labels. Batches are
written with snappy: every cold drift run decodes them, and snappy decodes about 1.4x
faster than zstd here, for about 1.4x the bytes (benchmarks/README.md, drift).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from mlops_tui.core.config import DataContract
from mlops_tui.core.errors import UsageError
from mlops_tui.core.names import shown_column
from mlops_tui.store import space
from mlops_tui.store.db import Tx, naive_utc, scratch, utcnow
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


def stage_batch(source: Path, contract: DataContract, target: Path,
                previous: list[tuple[Path, datetime | None, datetime | None]] | None = None
                ) -> StagedBatch:
    """Validate `source` against the contract and write it as Parquet to `target`.

    Checks, each failing with one line naming the file, the line (or row), the column and
    the value: unparseable values, missing ids or timestamps, NaN/inf in numeric features
    (unless [data] nan_policy = "missing"), timestamps going backwards, duplicate ids in the
    file or in a `previous` batch (those covering the same time range).
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
        checks.append(f"count(*) FILTER (WHERE isnan({v}) OR isinf({v}))")
        names.append(("nan", column))
        checks.append(f"min(CASE WHEN isnan({v}) OR isinf({v}) THEN ordinality END)")
        names.append(("nan-first", column))
    checks.append(f"min(CASE WHEN {id_col} IS NULL OR trim(CAST({id_col} AS VARCHAR)) = '' "
                  f"THEN ordinality END)")
    names.append(("id-missing", contract.id_column))
    checks.append(f"min(CASE WHEN {ID_CONTROL_SQL.format(id_col)} THEN ordinality END)")
    names.append(("id-control", contract.id_column))
    checks.append("min(CASE WHEN \"__time\" IS NULL THEN ordinality END)")
    names.append(("ts-parse", contract.timestamp_column))
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
                f"{_shown(value_at(column, first))} is not finite; NaN/inf values per column: "
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
            casts.append(f"CASE WHEN isnan({value}) OR isinf({value}) THEN NULL ELSE {value} "
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


@dataclass(frozen=True)
class ExportedSplit:
    train_rows: int
    holdout_rows: int
    time_min: datetime | None
    time_max: datetime | None


def export_split(
    files: list[Path],
    contract: DataContract,
    *,
    regime: str | None,
    since: datetime | None,
    until: datetime | None,
    holdout_share: float,
    train_path: Path,
    holdout_path: Path,
    label_files: list[Path] | None = None,
) -> ExportedSplit:
    """Write the chosen rows as train and holdout Parquet, split by a hash of the id.

    md5 of the id decides the side, so the split is the same on every run and machine.
    `label_files` (oldest first, from `label_paths`) are late labels joined on the id: a
    later file's label wins over an earlier one's and over the batch's own.
    """
    source = "read_parquet(?, union_by_name = true)"
    params: list = [[str(f) for f in files]]
    if label_files and contract.label_column:
        label = _quote(contract.label_column)
        with scratch() as cursor:
            present = {row[0] for row in cursor.execute(
                f"DESCRIBE SELECT * FROM {source}", params).fetchall()}
        own = f"o.{label}" if contract.label_column in present else "CAST(NULL AS DOUBLE)"
        source = (
            f"(SELECT o.* {f'EXCLUDE ({label}) ' if contract.label_column in present else ''}"
            f", coalesce(l.label, {own}) AS {label} FROM {source} o LEFT JOIN "
            f"(SELECT obs_id, arg_max(label, list_position(?::VARCHAR[], filename)) AS label "
            f"FROM read_parquet(?, filename = true) GROUP BY obs_id) l "
            f"ON l.obs_id = CAST(o.{_quote(contract.id_column)} AS VARCHAR))")
        params += [[str(f) for f in label_files]] * 2
    clauses = []
    if regime is not None:
        if not contract.regime_column:
            raise UsageError("the data contract has no regime_column to select a regime by")
        clauses.append(f"{_quote(contract.regime_column)} = ?")
        params.append(regime)
    ts = _quote(contract.timestamp_column)
    if since is not None:
        clauses.append(f"{ts} >= ?")
        params.append(naive_utc(since))
    if until is not None:
        clauses.append(f"{ts} < ?")
        params.append(naive_utc(until))
    if contract.label_column:
        clauses.append(f"{_quote(contract.label_column)} IS NOT NULL")
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    threshold = int(round(holdout_share * 1000))
    side = f"md5_number_lower(CAST({_quote(contract.id_column)} AS VARCHAR)) % 1000 < {threshold}"
    base = f"SELECT * FROM {source}{where}"
    with scratch() as cursor:
        cursor.execute(
            f"COPY ({base} AND NOT ({side}) ORDER BY {ts}) TO '{_sql_path(train_path)}' "
            "(FORMAT parquet)" if where else
            f"COPY ({base} WHERE NOT ({side}) ORDER BY {ts}) TO '{_sql_path(train_path)}' "
            "(FORMAT parquet)", params)
        cursor.execute(
            f"COPY ({base} AND ({side}) ORDER BY {ts}) TO '{_sql_path(holdout_path)}' "
            "(FORMAT parquet)" if where else
            f"COPY ({base} WHERE ({side}) ORDER BY {ts}) TO '{_sql_path(holdout_path)}' "
            "(FORMAT parquet)", params)
        train_rows, time_min, time_max = cursor.execute(
            f"SELECT count(*), min({ts}), max({ts}) FROM read_parquet(?)",
            [str(train_path)]).fetchone()
        holdout_rows = cursor.execute(
            "SELECT count(*) FROM read_parquet(?)", [str(holdout_path)]).fetchone()[0]
    return ExportedSplit(int(train_rows), int(holdout_rows), time_min, time_max)


# -- late labels -----------------------------------------------------------------------------

def label_file(tx: Tx, sha256: str) -> tuple[int, int] | None:
    """(rows, matched) of a label file already ingested, by content."""
    row = tx.one("SELECT rows, matched FROM label_files WHERE sha256 = ?", [sha256])
    return (int(row[0]), int(row[1])) if row else None


def stage_labels(source: Path, contract: DataContract, target: Path,
                 batches: list[Path]) -> tuple[int, int]:
    """Validate a label file (exactly the id and label columns; ids unique; labels numeric
    and finite) and write it as Parquet; return (rows, ids matching ingested observations)."""
    present = file_columns(source)
    wanted = [contract.id_column, contract.label_column]
    missing = [c for c in wanted if c not in present]
    unexpected = [c for c in present if c not in wanted]
    if missing or unexpected:
        raise UsageError(f"{source}: label files hold [{', '.join(wanted)}]: missing "
                         f"[{', '.join(map(shown_column, missing))}]; "
                         f"unexpected [{', '.join(map(shown_column, unexpected))}]")
    reader = _reader(source)
    id_col, label = _quote(contract.id_column), _quote(contract.label_column)
    value = f"TRY_CAST({label} AS DOUBLE)"
    with scratch() as cursor:
        try:
            rows, missing_id, control_id, bad, non_finite, duplicates = cursor.execute(
                f"SELECT count(*), "
                f"min(CASE WHEN {id_col} IS NULL OR trim(CAST({id_col} AS VARCHAR)) = '' "
                f"THEN ordinality END), "
                f"min(CASE WHEN {ID_CONTROL_SQL.format(id_col)} THEN ordinality END), "
                f"min(CASE WHEN {label} IS NULL OR {value} IS NULL THEN ordinality END), "
                f"min(CASE WHEN isnan({value}) OR isinf({value}) THEN ordinality END), "
                f"count(*) - count(DISTINCT CAST({id_col} AS VARCHAR)) "
                f"FROM {reader} WITH ORDINALITY", [str(source)]).fetchone()
        except duckdb.Error as error:
            raise UsageError(read_error(source, error)) from None
        if rows == 0:
            raise UsageError(f"{source}: no rows (only a header)")

        def value_at(ordinal: int) -> object:
            return cursor.execute(f"SELECT {label} FROM {reader} WITH ORDINALITY "
                                  "WHERE ordinality = ?", [str(source), ordinal]).fetchone()[0]

        if missing_id is not None:
            raise UsageError(f"{source}: {_where(source, missing_id)}, column "
                             f"{contract.id_column}: the id is missing")
        if control_id is not None:
            raise UsageError(_id_control_message(
                source, control_id, contract.id_column, cursor.execute(
                    f"SELECT {id_col} FROM {reader} WITH ORDINALITY WHERE ordinality = ?",
                    [str(source), control_id]).fetchone()[0]))
        if bad is not None:
            raise UsageError(f"{source}: {_where(source, bad)}, column {contract.label_column}: "
                             f"{_shown(value_at(bad))} is not a number")
        if non_finite is not None:
            raise UsageError(f"{source}: {_where(source, non_finite)}, column "
                             f"{contract.label_column}: {_shown(value_at(non_finite))} is not "
                             "finite")
        if duplicates:
            example, ordinals = cursor.execute(
                f"SELECT CAST({id_col} AS VARCHAR) AS v, list(ordinality ORDER BY ordinality) "
                f"FROM {reader} WITH ORDINALITY GROUP BY v HAVING count(*) > 1 "
                "ORDER BY min(ordinality) LIMIT 1", [str(source)]).fetchone()
            raise UsageError(f"{source}: column {contract.id_column}: {duplicates} duplicate "
                             f"ids, e.g. {_shown(example)} at "
                             f"{', '.join(_where(source, o) for o in ordinals[:3])}")
        try:
            cursor.execute(
                f"COPY (SELECT CAST({id_col} AS VARCHAR) AS obs_id, {value} AS label "
                f"FROM {reader}) TO '{_sql_path(target)}' (FORMAT parquet)", [str(source)])
        except duckdb.Error as error:
            _raise_if_full(error, source, target)
            raise
        matched = 0
        if batches:
            matched = cursor.execute(
                f"SELECT count(*) FROM read_parquet(?) l SEMI JOIN (SELECT CAST({id_col} AS "
                f"VARCHAR) AS id FROM read_parquet(?, union_by_name = true)) o "
                f"ON o.id = l.obs_id", [str(target), [str(b) for b in batches]]).fetchone()[0]
    return int(rows), int(matched)


def insert_labels(tx: Tx, staged: Path, source: str, sha256: str, rows: int,
                  matched: int) -> None:
    """Append the staged labels and remember the file (one write unit)."""
    now = utcnow()
    tx.execute("INSERT INTO labels SELECT obs_id, label, ?, ? FROM read_parquet(?)",
               [source, now, str(staged)])
    tx.execute("INSERT INTO label_files VALUES (?, ?, ?, ?, ?)",
               [sha256, source, rows, matched, now])


def label_paths(tx: Tx) -> list[str]:
    """Staged label files (relative to the workspace), oldest first."""
    return [f"data/labels/{row[0]}.parquet" for row in tx.all(
        "SELECT sha256 FROM label_files ORDER BY ingested_at, sha256")]

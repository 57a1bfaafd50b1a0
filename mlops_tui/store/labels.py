"""Late labels: a file of (id, label) staged to Parquet outside the store lock, then
appended to the store's labels table in one write unit."""

from __future__ import annotations

from pathlib import Path

import duckdb

from mlops_tui.core.config import DataContract
from mlops_tui.core.errors import UsageError
from mlops_tui.core.names import shown_column
from mlops_tui.store.db import Tx, scratch, utcnow
from mlops_tui.store.observations import (
    NOT_FINITE,
    _id_control_message,
    _non_finite_text,
    _quote,
    _raise_if_full,
    _reader,
    _shown,
    _sql_path,
    _where,
    file_columns,
)
from mlops_tui.store.read_errors import ID_CONTROL_SQL, read_error


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
                f"min(CASE WHEN {NOT_FINITE.format(value)} THEN ordinality END), "
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
            number = cursor.execute(f"SELECT {value} FROM {reader} WITH ORDINALITY "
                                    "WHERE ordinality = ?", [str(source), non_finite]).fetchone()[0]
            raise UsageError(f"{source}: {_where(source, non_finite)}, column "
                             f"{contract.label_column}: {_non_finite_text(number)} is not "
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

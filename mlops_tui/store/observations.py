"""Observation batches: files staged to Parquet outside the store lock, then registered.

Batches keep the data contract's own column names. Queries read the batch files through
DuckDB's Parquet reader; the store holds their metadata and the late labels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from mlops_tui.core.config import DataContract
from mlops_tui.core.errors import UsageError
from mlops_tui.store.db import Tx, scratch, utcnow


@dataclass(frozen=True)
class StagedBatch:
    path: Path
    rows: int
    time_min: datetime | None
    time_max: datetime | None
    columns: tuple[str, ...]
    regimes: tuple[str, ...]


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _reader(source: Path) -> str:
    suffix = source.suffix.lower()
    if suffix == ".parquet":
        return "read_parquet(?)"
    if suffix in (".csv", ".txt", ".tsv"):
        return "read_csv(?, header = true, all_varchar = true, strict_mode = true)"
    raise UsageError(f"{source}: unsupported file type {suffix or '(none)'}; use .csv or .parquet")


def stage_batch(source: Path, contract: DataContract, target: Path) -> StagedBatch:
    """Validate `source` against the contract and write it as Parquet to `target`."""
    wanted = [contract.id_column, contract.timestamp_column]
    wanted += [c for c in (contract.regime_column, contract.label_column) if c]
    wanted += list(contract.features)
    with scratch() as cursor:
        try:
            relation = f"SELECT * FROM {_reader(source)}"
            present = [d[0] for d in cursor.execute(
                f"DESCRIBE {relation}", [str(source)]).fetchall()]
        except duckdb.Error as error:
            raise UsageError(f"{source}: cannot be read: {str(error).splitlines()[0]}") from None
        missing = [c for c in wanted if c not in present]
        if missing:
            raise UsageError(
                f"{source}: missing columns {', '.join(missing)} "
                f"(the file has: {', '.join(present[:30])})")
        casts = [f"CAST({_quote(contract.id_column)} AS VARCHAR) AS {_quote(contract.id_column)}",
                 f"timezone('UTC', CAST({_quote(contract.timestamp_column)} AS TIMESTAMPTZ)) AS "
                 f"{_quote(contract.timestamp_column)}"]
        if contract.regime_column:
            casts.append(f"CAST({_quote(contract.regime_column)} AS VARCHAR) AS "
                         f"{_quote(contract.regime_column)}")
        if contract.label_column:
            casts.append(f"CAST({_quote(contract.label_column)} AS DOUBLE) AS "
                         f"{_quote(contract.label_column)}")
        casts += [f"CAST({_quote(c)} AS DOUBLE) AS {_quote(c)}" for c in contract.numeric]
        casts += [f"CAST({_quote(c)} AS VARCHAR) AS {_quote(c)}" for c in contract.categorical]
        select = (f"SELECT {', '.join(casts)} FROM {_reader(source)} "
                  f"ORDER BY {_quote(contract.timestamp_column)}")
        try:
            cursor.execute(
                f"COPY ({select}) TO '{_sql_path(target)}' (FORMAT parquet, COMPRESSION zstd)",
                [str(source)])
        except duckdb.Error as error:
            raise UsageError(f"{source}: {str(error).splitlines()[0]}") from None
        id_col, ts_col = _quote(contract.id_column), _quote(contract.timestamp_column)
        regime_expr = (f"list(DISTINCT {_quote(contract.regime_column)})"
                       if contract.regime_column else "[]")
        rows, time_min, time_max, distinct_ids, regimes = cursor.execute(
            f"SELECT count(*), min({ts_col}), max({ts_col}), count(DISTINCT {id_col}), "
            f"{regime_expr} FROM read_parquet(?)", [str(target)]).fetchone()
    if rows == 0:
        target.unlink(missing_ok=True)
        raise UsageError(f"{source}: no rows")
    if distinct_ids != rows:
        target.unlink(missing_ok=True)
        raise UsageError(f"{source}: {rows - distinct_ids} duplicate ids in {contract.id_column}")
    return StagedBatch(target, int(rows), time_min, time_max, tuple(wanted),
                       tuple(sorted(r for r in regimes if r is not None)))


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
) -> ExportedSplit:
    """Write the chosen rows as train and holdout Parquet, split by a hash of the id.

    md5 of the id decides the side, so the split is the same on every run and machine.
    """
    clauses, params = [], [[str(f) for f in files]]
    if regime is not None:
        if not contract.regime_column:
            raise UsageError("the data contract has no regime_column to select a regime by")
        clauses.append(f"{_quote(contract.regime_column)} = ?")
        params.append(regime)
    ts = _quote(contract.timestamp_column)
    if since is not None:
        clauses.append(f"{ts} >= ?")
        params.append(since.replace(tzinfo=None))
    if until is not None:
        clauses.append(f"{ts} < ?")
        params.append(until.replace(tzinfo=None))
    if contract.label_column:
        clauses.append(f"{_quote(contract.label_column)} IS NOT NULL")
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    threshold = int(round(holdout_share * 1000))
    side = f"md5_number_lower(CAST({_quote(contract.id_column)} AS VARCHAR)) % 1000 < {threshold}"
    base = f"SELECT * FROM read_parquet(?, union_by_name = true){where}"
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

"""Training data out of the batches: the chosen rows as train and holdout Parquet."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mlops_tui.core.config import DataContract
from mlops_tui.core.errors import UsageError
from mlops_tui.store.db import naive_utc, scratch
from mlops_tui.store.observations import _quote, _sql_path


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

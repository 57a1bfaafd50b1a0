"""Bulk counting for drift: per-(sub)window code counts for ALL windows in one query,
reference columns for profiles, and labelled rows for window metrics.

`window_counts` makes DuckDB compute, for every observation row, its sub-window and the bin
code of every feature under every reference grid in play (arithmetic on the quantile grid's
lattice; `list_position` for categories), streams those small integers out as Arrow, and
counts them with one `numpy.bincount` per column. Statistics are not computed here: the
result is arrays for core/drift.py. Features on an *exact* grid (small references) are
fetched raw and binned with core/profiles.py's numpy binning, which the SQL binning matches.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from mlops_tui.core.config import DataContract
from mlops_tui.core.profiles import (
    OVERFLOW_BINS,
    OVERFLOW_FIRST_EXPONENT,
    NumericGrid,
)
from mlops_tui.core.regimes import EPOCH, SUBWINDOWS, WindowSpec
from mlops_tui.store.db import Tx, naive_utc, scratch


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


# -- reading a reference snapshot ------------------------------------------------------------

def read_columns(path: Path, numeric: Sequence[str], categorical: Sequence[str]
                 ) -> dict[str, Any]:
    """Columns of a Parquet snapshot: numeric as float64 (NaN = missing), categorical as
    lists of str or None."""
    names = list(numeric) + list(categorical)
    select = ", ".join(
        [f"CAST({_quote(c)} AS DOUBLE) AS {_quote(c)}" for c in numeric]
        + [f"CAST({_quote(c)} AS VARCHAR) AS {_quote(c)}" for c in categorical]) or "1"
    with scratch() as cursor:
        table = cursor.sql(f"SELECT {select} FROM read_parquet(?)", params=[str(path)]
                           ).to_arrow_table()
    columns: dict[str, Any] = {}
    for name in names:
        column = table.column(name)
        if name in numeric:
            columns[name] = column.to_numpy(zero_copy_only=False).astype(np.float64)
        else:
            columns[name] = column.to_pylist()
    return columns


# -- the one vectorised query ----------------------------------------------------------------

@dataclass(frozen=True)
class CountPlan:
    """What to count: numeric grids by key, category lists per feature, regime labels."""

    numeric: dict[str, tuple[str, NumericGrid]] = field(default_factory=dict)  # key -> (feature, grid)
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)  # feature -> union list
    regime_labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class WindowCounts:
    """Counts per sub-window (SUBWINDOWS per window), sub-windows first_sub .. first_sub+S-1.

    numeric[key]: (S, bins + 1) counts per bin of the grid, last column missing values.
    categorical[feature]: (S, U + 2): column 0 unseen, 1..U the union list, U + 1 missing.
    regime: (S, L + 2) likewise for the regime column's labels (None without a column).
    """

    first_sub: int
    rows: np.ndarray
    numeric: dict[str, np.ndarray]
    categorical: dict[str, np.ndarray]
    regime: np.ndarray | None
    sub_start: np.ndarray | None = None  # rows windows: first timestamp (epoch us) per sub
    sub_end: np.ndarray | None = None

    @property
    def subs(self) -> int:
        return int(self.rows.shape[0])


def lattice_code_sql(column: str, grid: NumericGrid) -> tuple[str, list[float]]:
    """SQL computing `assign_codes` of a quantile grid; returns (expression, parameters)."""
    x = _quote(column)
    first = OVERFLOW_FIRST_EXPONENT - 1  # floor(log2(d / span)) - first = geometric bin
    expression = (
        f"CASE WHEN {x} IS NULL THEN {grid.code_count} "
        f"WHEN {x} < ? THEN {OVERFLOW_BINS - 1} - least(greatest("
        f"floor(log2((? - {x}) / ?)) - ({first}), 0), {OVERFLOW_BINS - 1}) "
        f"WHEN {x} >= ? THEN {OVERFLOW_BINS + grid.cells} + least(greatest("
        f"floor(log2(greatest({x} - ?, 1e-300) / ?)) - ({first}), 0), {OVERFLOW_BINS - 1}) "
        f"ELSE {OVERFLOW_BINS} + least(floor(({x} - ?) / ?), {grid.cells - 1}) END")
    params = [grid.lattice_low, grid.lattice_low, grid.scale, grid.lattice_high,
              grid.lattice_high, grid.scale, grid.lattice_low, grid.cell_width]
    return f"CAST({expression} AS INTEGER)", params


def _sub_sql(contract: DataContract, window: WindowSpec) -> tuple[str, list[Any]]:
    ts = _quote(contract.timestamp_column)
    if window.rows:
        return (f"(row_number() OVER (ORDER BY {ts}, {_quote(contract.id_column)}) - 1) "
                f"* {SUBWINDOWS} // ?", [window.rows])
    step = window.period_us // SUBWINDOWS
    return f"CAST(floor((epoch_us({ts}) - ?) / ?) AS BIGINT)", [window.offset_us, step]


def window_counts(files: Sequence[Path], contract: DataContract, window: WindowSpec,
                  plan: CountPlan, *, since: datetime | None = None,
                  until: datetime | None = None,
                  cache: Path | None = None) -> WindowCounts | None:
    """Counts for every sub-window between the first and the last row (None: no rows).

    With `cache` (a folder) and period windows, each batch's counts under each grid are kept
    in `cache/<batch>-<window>.npz` once computed: batch files and profiles never change, so
    only batches or grids not seen before are scanned, each batch on its own.
    """
    if cache is None or window.rows:
        return _scan(files, contract, window, plan, since=since, until=until)
    parts = [_cached(Path(f), contract, window, plan, cache) for f in files]
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    first = min(p.first_sub for p in parts)
    last = max(p.first_sub + p.subs for p in parts)
    if since is not None:
        first = max(first, _sub_of(window, since))
    if until is not None:
        last = min(last, _sub_of(window, until))
    if last <= first:
        return None

    def combine(pick) -> np.ndarray:
        shaped = next(pick(p) for p in parts)
        total = np.zeros((last - first,) + shaped.shape[1:])
        for part in parts:
            lo, hi = max(part.first_sub, first), min(part.first_sub + part.subs, last)
            if hi > lo:
                total[lo - first:hi - first] += pick(part)[lo - part.first_sub:hi - part.first_sub]
        return total

    rows = combine(lambda p: p.rows)
    used = np.flatnonzero(rows)
    if used.size == 0:
        return None
    trim = slice(int(used[0]), int(used[-1]) + 1)
    return WindowCounts(
        first + trim.start, rows[trim],
        {k: combine(lambda p, k=k: p.numeric[k])[trim] for k in plan.numeric},
        {f: combine(lambda p, f=f: p.categorical[f])[trim] for f in plan.categories},
        combine(lambda p: p.regime)[trim] if parts[0].regime is not None else None)


def _sub_of(window: WindowSpec, moment: datetime) -> int:
    """The sub-window holding `moment` (naive means UTC)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    micros = (aware - EPOCH) // timedelta(microseconds=1)
    return (micros - window.offset_us) // (window.period_us // SUBWINDOWS)


def _cache_names(plan: CountPlan) -> dict[str, str]:
    """A stable file-safe name per counted column (grids and category lists are immutable
    per profile, so the name of what was counted is the name of its counts)."""
    def digest(*parts: object) -> str:
        return hashlib.sha1(json.dumps(parts, default=str).encode()).hexdigest()[:20]

    names = {f"n:{key}": "n_" + digest(key) for key in plan.numeric}
    names |= {f"c:{feature}": "c_" + digest(feature, categories)
              for feature, categories in plan.categories.items()}
    if plan.regime_labels is not None:
        names["r:"] = "r_" + digest(plan.regime_labels)
    return names


def _cached(file: Path, contract: DataContract, window: WindowSpec, plan: CountPlan,
            cache: Path) -> WindowCounts | None:
    names = _cache_names(plan)
    path = cache / f"{file.stem}-{window.key}.npz"
    stored: dict[str, np.ndarray] = {}
    if path.exists():
        try:
            with np.load(path) as loaded:
                stored = {name: loaded[name] for name in loaded.files}
        except (OSError, ValueError):
            stored = {}  # a damaged cache file is recomputed
    missing = {column for column, name in names.items() if name not in stored}
    if missing or "rows" not in stored:
        sub_plan = CountPlan(
            numeric={k: v for k, v in plan.numeric.items() if f"n:{k}" in missing},
            categories={f: c for f, c in plan.categories.items() if f"c:{f}" in missing},
            regime_labels=plan.regime_labels if "r:" in missing else None)
        scanned = _scan([file], contract, window, sub_plan)
        if scanned is None:
            return None
        if "rows" in stored and int(stored["first_sub"]) != scanned.first_sub:
            stored = {}  # inconsistent: start over with this scan only
        stored["first_sub"] = np.array(scanned.first_sub)
        stored["rows"] = scanned.rows.astype(np.int64)
        for key, counts in scanned.numeric.items():
            stored[names[f"n:{key}"]] = counts.astype(np.int64)
        for feature, counts in scanned.categorical.items():
            stored[names[f"c:{feature}"]] = counts.astype(np.int64)
        if scanned.regime is not None:
            stored[names["r:"]] = scanned.regime.astype(np.int64)
        if any(name not in stored for name in names.values()):
            return _scan([file], contract, window, plan)
        cache.mkdir(parents=True, exist_ok=True)
        temp = cache / f".{path.name}.{secrets.token_hex(4)}.tmp.npz"
        np.savez(temp, **stored)
        os.replace(temp, path)
    return WindowCounts(
        int(stored["first_sub"]), stored["rows"].astype(np.float64),
        {k: stored[names[f"n:{k}"]].astype(np.float64) for k in plan.numeric},
        {f: stored[names[f"c:{f}"]].astype(np.float64) for f in plan.categories},
        stored[names["r:"]].astype(np.float64) if "r:" in names else None)


def regime_counts(files: Sequence[Path], contract: DataContract, window: WindowSpec,
                  plan: CountPlan, code: int,
                  spans: Sequence[tuple[datetime, datetime]]) -> WindowCounts | None:
    """Like `window_counts`, of the rows in the [start, end) `spans` whose regime label has
    `code` (0: a label the store does not know, 1.. `plan.regime_labels`): one regime's part
    of windows that span a switch. Period windows with a regime column only; not cached."""
    if len(spans) > 64:  # a long OR costs more than scanning the rows between
        spans = [(min(s for s, _ in spans), max(e for _, e in spans))]
    return _scan(files, contract, window, plan, regime_code=code, spans=spans)


def _regime_code_sql(column: str, labels: tuple[str, ...]) -> str:
    """The regime label's code: 0 unknown, 1.. `labels`, len(labels) + 1 missing."""
    col = _quote(column)
    return (f"CAST(CASE WHEN {col} IS NULL THEN {len(labels) + 1} ELSE "
            f"coalesce(list_position(?::VARCHAR[], CAST({col} AS VARCHAR)), 0) END "
            f"AS INTEGER)")


def _scan(files: Sequence[Path], contract: DataContract, window: WindowSpec,
          plan: CountPlan, *, since: datetime | None = None,
          until: datetime | None = None, regime_code: int | None = None,
          spans: Sequence[tuple[datetime, datetime]] = ()) -> WindowCounts | None:
    """One query over `files`: every row's sub-window and codes, counted with bincount."""
    if not files:
        return None
    sub_expression, sub_params = _sub_sql(contract, window)
    columns, params = [], []
    exact: dict[str, list[str]] = {}
    for key, (feature, grid) in plan.numeric.items():
        if grid.kind == "exact":
            exact.setdefault(feature, []).append(key)
            continue
        expression, grid_params = lattice_code_sql(feature, grid)
        columns.append(f"{expression} AS {_quote('n:' + key)}")
        params += grid_params
    for feature in exact:
        columns.append(f"CAST({_quote(feature)} AS DOUBLE) AS {_quote('x:' + feature)}")
    for feature, categories in plan.categories.items():
        col = _quote(feature)
        columns.append(f"CAST(CASE WHEN {col} IS NULL THEN {len(categories) + 1} ELSE "
                       f"coalesce(list_position(?::VARCHAR[], CAST({col} AS VARCHAR)), 0) END "
                       f"AS INTEGER) AS {_quote('c:' + feature)}")
        params.append(list(categories))
    if contract.regime_column and plan.regime_labels is not None:
        labels = plan.regime_labels
        columns.append(f"{_regime_code_sql(contract.regime_column, labels)} AS \"r:\"")
        params.append(list(labels))
    ts = _quote(contract.timestamp_column)
    clauses, filter_params = [], []
    if since is not None:
        clauses.append(f"{ts} >= ?")
        filter_params.append(naive_utc(since))
    if until is not None:
        clauses.append(f"{ts} < ?")
        filter_params.append(naive_utc(until))
    if spans:
        clauses.append("(" + " OR ".join(f"({ts} >= ? AND {ts} < ?)" for _ in spans) + ")")
        filter_params += [naive_utc(m) for span in spans for m in span]
    if regime_code is not None and contract.regime_column:
        clauses.append(f"{_regime_code_sql(contract.regime_column, plan.regime_labels)} = ?")
        filter_params += [list(plan.regime_labels), regime_code]
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    source = "read_parquet(?, union_by_name = true)"
    selected = ", ".join(["sub", *columns])
    if window.rows:
        # Row windows are numbered over all rows, then filtered, so they never move.
        inner = f"SELECT *, {sub_expression} AS sub, epoch_us({ts}) AS t_us FROM {source}"
        sql = f"SELECT {selected}, t_us FROM ({inner}){where} ORDER BY sub"
    else:
        sql = f"SELECT {selected} FROM (SELECT *, {sub_expression} AS sub FROM {source}){where}"
    # `?` order: the outer columns, then the sub-window expression, the files, the filters.
    all_params = params + sub_params + [[str(f) for f in files]] + filter_params
    with scratch() as cursor:
        table = cursor.sql(sql, params=all_params).to_arrow_table()
    if table.num_rows == 0:
        return None
    sub = table.column("sub").to_numpy().astype(np.int64)
    first = int(sub.min())
    relative = sub - first
    subs = int(relative.max()) + 1
    rows = np.bincount(relative, minlength=subs).astype(np.float64)

    def count(codes: np.ndarray, width: int, lookup: np.ndarray | None = None) -> np.ndarray:
        codes = codes.astype(np.int64) if lookup is None else lookup[codes]
        keys = relative * width + codes
        return np.bincount(keys, minlength=subs * width).reshape(subs, width).astype(np.float64)

    numeric: dict[str, np.ndarray] = {}
    for key, (_feature, grid) in plan.numeric.items():
        if grid.kind == "exact":
            continue
        lookup = grid.bin_of_code()
        numeric[key] = count(table.column("n:" + key).to_numpy(), int(lookup[-1]) + 1, lookup)
    for feature, keys in exact.items():
        values = table.column("x:" + feature).to_numpy(zero_copy_only=False).astype(np.float64)
        for key in keys:
            grid = plan.numeric[key][1]
            lookup = grid.bin_of_code()
            numeric[key] = count(grid.assign_codes(values), int(lookup[-1]) + 1, lookup)
    categorical = {feature: count(table.column("c:" + feature).to_numpy(), len(cats) + 2)
                   for feature, cats in plan.categories.items()}
    regime = (count(table.column("r:").to_numpy(), len(plan.regime_labels) + 2)
              if "r:" in table.column_names else None)
    sub_start = sub_end = None
    if window.rows:
        t_us = table.column("t_us").to_numpy().astype(np.int64)
        starts = np.flatnonzero(np.r_[True, np.diff(relative) != 0])
        sub_start = np.zeros(subs, dtype=np.int64)
        sub_end = np.zeros(subs, dtype=np.int64)
        sub_start[relative[starts]] = np.minimum.reduceat(t_us, starts)
        sub_end[relative[starts]] = np.maximum.reduceat(t_us, starts)
    return WindowCounts(first, rows, numeric, categorical, regime, sub_start, sub_end)


# -- labelled rows ---------------------------------------------------------------------------

def labelled_rows(tx: Tx, files: Sequence[Path], contract: DataContract, window: WindowSpec,
                  *, since: datetime | None, until: datetime | None):
    """Rows with a label (a late label wins over one in the batch) and their sub-window, as
    an Arrow table with the feature columns, `label`, `ts` and `sub`. Runs in a read unit:
    late labels live in the store."""
    ts, obs_id = _quote(contract.timestamp_column), _quote(contract.id_column)
    sub_expression, sub_params = _sub_sql(contract, window)
    present = {row[0] for row in tx.all(
        "DESCRIBE SELECT * FROM read_parquet(?, union_by_name = true)", [[str(f) for f in files]])}
    in_batch = (f"CAST(o.{_quote(contract.label_column)} AS DOUBLE)"
                if contract.label_column in present else "CAST(NULL AS DOUBLE)")
    features = ", ".join(f"o.{_quote(c)}" for c in contract.features)
    clauses, filter_params = [], []
    if since is not None:
        clauses.append(f"o.{ts} >= ?")
        filter_params.append(naive_utc(since))
    if until is not None:
        clauses.append(f"o.{ts} < ?")
        filter_params.append(naive_utc(until))
    where = " AND ".join(["label IS NOT NULL", *clauses])
    sql = (
        f"WITH late AS (SELECT obs_id, arg_max(label, ingested_at) AS label FROM labels "
        f"GROUP BY obs_id), obs AS (SELECT *, {sub_expression} AS sub "
        f"FROM read_parquet(?, union_by_name = true)) "
        f"SELECT {features}, o.{ts} AS ts, o.sub AS sub, "
        f"coalesce(l.label, {in_batch}) AS label FROM obs o "
        f"LEFT JOIN late l ON l.obs_id = CAST(o.{obs_id} AS VARCHAR) WHERE {where}")
    return tx.arrow(sql, sub_params + [[str(f) for f in files]] + filter_params)


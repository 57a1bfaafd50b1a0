"""Fuzzing the readers in-process: every input either ingests or fails with a UsageError
(exit 2), and a failure leaves the store and the batch folder exactly as they were."""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_tui.core.errors import ExitCode, UsageError
from mlops_tui.services.ingest import ingest_file
from mlops_tui.services.workspace import init_workspace

CONFIG = """
[data]
id_column = "uid"
timestamp_column = "at"
numeric = ["a", "b"]
categorical = ["c"]
window = "1h"
"""
COLUMNS = ["uid", "at", "a", "b", "c"]

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**6, 10**6).map(str),
    st.sampled_from(["", "NaN", "inf", "-Infinity", "1e400", "1,5", " 2 ", "0x10", "abc"]),
)
stamps = st.one_of(
    st.integers(0, 10**6).map(lambda m: "2026-03-01T00:00:00Z".replace("00:00:00",
                                                                       f"{m // 3600 % 24:02d}:"
                                                                       f"{m // 60 % 60:02d}:"
                                                                       f"{m % 60:02d}")),
    st.sampled_from(["", "2026-02-30T00:00:00Z", "yesterday", "2026-03-01", "1700000000"]),
)
cells = {
    "uid": st.one_of(st.sampled_from(["u1", "u2", "u3", ""]), st.text(max_size=6)),
    "at": stamps,
    "a": numbers,
    "b": numbers,
    "c": st.one_of(st.sampled_from(["x", "y", ""]), st.text(max_size=5)),
}


def _field(value: str) -> str:
    if any(ch in value for ch in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


@st.composite
def csv_files(draw) -> bytes:
    header = draw(st.one_of(st.just(COLUMNS), st.permutations(COLUMNS),
                            st.lists(st.sampled_from(COLUMNS + ["extra"]), max_size=6)))
    rows = draw(st.lists(st.fixed_dictionaries({c: cells[c] for c in COLUMNS}), max_size=8))
    lines = [",".join(_field(h) for h in header)]
    lines += [",".join(_field(row.get(h, "1")) for h in header) for row in rows]
    data = ("\n".join(lines) + draw(st.sampled_from(["\n", "", "\r\n"]))).encode("utf-8")
    if draw(st.booleans()):  # damage: random bytes somewhere
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=4)) + data[at:]
    return data


def _state(ws) -> tuple[int, list[str]]:
    with ws.store.read() as tx:
        batches = int(tx.scalar("SELECT count(*) FROM batches"))
    folder = ws.data_root / "batches"
    return batches, sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_fuzzed_csv_either_ingests_or_fails_cleanly(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws", config_text=CONFIG)
    counter = itertools.count()
    outcomes = {"ingested": 0, "refused": 0}

    @settings(max_examples=80, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(data=csv_files())
    def check(data: bytes) -> None:
        path = tmp_path / f"fuzz-{next(counter)}.csv"
        path.write_bytes(data)
        before = _state(ws)
        try:
            result = ingest_file(ws, path)
        except UsageError as error:
            assert error.code == ExitCode.USAGE
            assert "\n" not in error.message and str(path) in error.message
            assert _state(ws) == before
            outcomes["refused"] += 1
            return
        assert _state(ws)[0] == before[0] + (1 if result.new else 0)
        outcomes["ingested"] += 1

    check()
    assert outcomes["ingested"] > 0 and outcomes["refused"] > 0


@st.composite
def parquet_tables(draw):
    import pyarrow as pa

    rows = draw(st.integers(0, 6))
    names = draw(st.one_of(st.just(COLUMNS), st.permutations(COLUMNS),
                           st.lists(st.sampled_from(COLUMNS + ["extra"]), min_size=1, max_size=6,
                                    unique=True)))
    columns = {}
    for name in names:
        kind = draw(st.sampled_from(["float", "int", "text", "time", "bool"]))
        if kind == "float":
            values = draw(st.lists(st.one_of(st.none(), st.floats()), min_size=rows,
                                   max_size=rows))
            columns[name] = pa.array(values, type=pa.float64())
        elif kind == "int":
            columns[name] = pa.array(draw(st.lists(st.integers(-2**40, 2**40), min_size=rows,
                                                   max_size=rows)), type=pa.int64())
        elif kind == "text":
            columns[name] = pa.array(draw(st.lists(st.one_of(st.none(), st.text(max_size=8)),
                                                   min_size=rows, max_size=rows)))
        elif kind == "time":
            columns[name] = pa.array(sorted(draw(st.lists(st.integers(0, 2**40), min_size=rows,
                                                          max_size=rows))),
                                     type=pa.timestamp("ms", tz="UTC"))
        else:
            columns[name] = pa.array(draw(st.lists(st.booleans(), min_size=rows,
                                                   max_size=rows)))
    return pa.table(columns)


def test_fuzzed_parquet_either_ingests_or_fails_cleanly(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    ws = init_workspace(tmp_path / "ws", config_text=CONFIG)
    counter = itertools.count()

    @settings(max_examples=60, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(table=parquet_tables())
    def check(table) -> None:
        path = tmp_path / f"fuzz-{next(counter)}.parquet"
        pq.write_table(table, path)
        before = _state(ws)
        try:
            result = ingest_file(ws, path)
        except UsageError as error:
            assert error.code == ExitCode.USAGE and "\n" not in error.message
            assert _state(ws) == before
            return
        assert _state(ws)[0] == before[0] + (1 if result.new else 0)

    check()

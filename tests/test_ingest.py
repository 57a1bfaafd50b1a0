"""Ingest: every bad input of the data contract fails with one clear line (file, line,
column, value), exit 2, and nothing written; good files append once."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import run_cli

from mlops_tui.core.errors import UsageError
from mlops_tui.services.ingest import ingest_file
from mlops_tui.services.workspace import Workspace, init_workspace

CONFIG = """
[data]
id_column = "uid"
timestamp_column = "at"
label_column = "y"
numeric = ["a", "b"]
categorical = ["c"]
window = "1h"
max_file_mb = 1
"""
HEADER = "uid,at,a,b,c"
GOOD_ROWS = ["u1,2026-03-01T00:00:00Z,1.5,2,x", "u2,2026-03-01T00:01:00Z,1.7,,y",
             "u3,2026-03-01T00:02:00Z,-0.5,3.25,x"]


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return init_workspace(tmp_path / "ws", config_text=CONFIG)


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def store_state(ws: Workspace) -> tuple[int, list[str]]:
    with ws.store.read() as tx:
        batches = int(tx.scalar("SELECT count(*) FROM batches"))
    folder = ws.data_root / "batches"
    return batches, sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def rejected(ws: Workspace, path: Path, pattern: str) -> None:
    before = store_state(ws)
    with pytest.raises(UsageError, match=pattern) as caught:
        ingest_file(ws, path)
    assert caught.value.code == 2
    assert "\n" not in caught.value.message
    assert str(path) in caught.value.message
    assert store_state(ws) == before, "a rejected file wrote something"


def test_a_good_file_appends_once(ws: Workspace, tmp_path: Path) -> None:
    path = write(tmp_path, "good.csv", "\n".join([HEADER, *GOOD_ROWS]) + "\n")
    first = ingest_file(ws, path)
    assert first.new and first.rows == 3
    again = ingest_file(ws, path)
    assert not again.new and "already ingested" in again.message
    assert store_state(ws)[0] == 1
    with_label = write(tmp_path, "labelled.csv",
                       "uid,at,a,b,c,y\nu9,2026-03-02T00:00:00Z,1,2,x,0.5\n")
    assert ingest_file(ws, with_label).new  # the label column may come with the data


@pytest.mark.parametrize(("name", "text", "pattern"), [
    ("cols.csv", "uid,at,a,extra\nu1,2026-03-01T00:00:00Z,1,2\n",
     r"missing \[b, c\]; unexpected \[extra\]"),
    ("value.csv", f"{HEADER}\n{GOOD_ROWS[0]}\nu2,2026-03-01T00:01:00Z,1.7,abc,y\n",
     r"line 3, column b: 'abc' is not a number"),
    ("nan.csv", f"{HEADER}\nu1,2026-03-01T00:00:00Z,NaN,1,x\nu2,2026-03-01T00:01:00Z,inf,-inf,y\n",
     r"line 2, column a: NaN is not finite; NaN/inf values per column: a: 2, b: 1"),
    ("empty.csv", "", r"the file is empty"),
    ("header.csv", f"{HEADER}\n", r"no rows \(only a header\)"),
    ("dupcols.csv", "uid,at,a,a,c\nu1,2026-03-01T00:00:00Z,1,2,x\n",
     r"line 1: duplicate column names in the header: a"),
    ("dupids.csv", f"{HEADER}\n{GOOD_ROWS[0]}\n{GOOD_ROWS[1]}\nu1,2026-03-01T00:05:00Z,1,1,x\n",
     r"column uid: 1 duplicate ids, e.g. 'u1' at line 2, line 4"),
    ("badts.csv", f"{HEADER}\nu1,yesterday,1,2,x\n",
     r"line 2, column at: 'yesterday' is not a timestamp"),
    ("backwards.csv", f"{HEADER}\n{GOOD_ROWS[1]}\n{GOOD_ROWS[0]}\n",
     r"line 3, column at: '2026-03-01T00:00:00Z' is earlier than the line before it"),
    ("noid.csv", f"{HEADER}\n,2026-03-01T00:00:00Z,1,2,x\n", r"line 2, column uid: the id is missing"),
    ("data.json", "{}", r"unsupported file type .json"),
])
def test_bad_files_are_refused_with_one_line(ws: Workspace, tmp_path: Path, name: str,
                                             text: str, pattern: str) -> None:
    rejected(ws, write(tmp_path, name, text), pattern)


def test_non_utf8_names_the_line(ws: Workspace, tmp_path: Path) -> None:
    body = f"{HEADER}\n{GOOD_ROWS[0]}\n".encode() + b"u2,2026-03-01T00:01:00Z,1,2,caf\xe9\n"
    rejected(ws, write(tmp_path, "latin1.csv", body), r"line 3, byte 32: not UTF-8 text")


def test_paths_that_are_not_files(ws: Workspace, tmp_path: Path) -> None:
    rejected(ws, tmp_path / "nowhere.csv", r"no such file")
    (tmp_path / "folder.csv").mkdir()
    rejected(ws, tmp_path / "folder.csv", r"is a directory")
    os.mkfifo(tmp_path / "pipe.csv")
    rejected(ws, tmp_path / "pipe.csv", r"not a regular file \(FIFO")


def test_size_limit(ws: Workspace, tmp_path: Path) -> None:
    rows = [f"u{i},2026-03-01T00:00:00Z,{i},{i},x" for i in range(60_000)]
    big = write(tmp_path, "big.csv", "\n".join([HEADER, *rows]) + "\n")
    assert big.stat().st_size > 1024 * 1024
    rejected(ws, big, r"MB is above the limit of 1 MB \(\[data\] max_file_mb\)")


def test_ids_already_ingested_in_an_overlapping_batch(ws: Workspace, tmp_path: Path) -> None:
    ingest_file(ws, write(tmp_path, "first.csv", "\n".join([HEADER, *GOOD_ROWS]) + "\n"))
    overlap = write(tmp_path, "second.csv", f"{HEADER}\nu9,2026-03-01T00:01:30Z,1,1,x\n"
                                            "u2,2026-03-01T00:03:00Z,1,1,x\n")
    rejected(ws, overlap, r"id 'u2' was already ingested in an earlier batch")


def test_nan_policy_missing_keeps_them_as_missing(tmp_path: Path) -> None:
    text = CONFIG.replace('window = "1h"', 'window = "1h"\nnan_policy = "missing"')
    ws = init_workspace(tmp_path / "ws", config_text=text)
    path = write(tmp_path, "nan.csv", f"{HEADER}\nu1,2026-03-01T00:00:00Z,NaN,1,x\n"
                                      "u2,2026-03-01T00:01:00Z,inf,-inf,y\n")
    result = ingest_file(ws, path)
    assert result.new and "3 NaN/inf values kept as missing" in result.message
    batch = next((ws.data_root / "batches").glob("*.parquet"))
    assert pq.read_table(batch).column("a").null_count == 2


def test_parquet_checks(ws: Workspace, tmp_path: Path) -> None:
    table = pa.table({"uid": ["p1", "p2"], "at": pa.array([1, 2], pa.timestamp("s", tz="UTC")),
                      "a": [1.0, float("nan")], "b": [1.0, 2.0], "c": ["x", "y"]})
    pq.write_table(table, tmp_path / "nan.parquet")
    rejected(ws, tmp_path / "nan.parquet", r"row 2, column a: NaN is not finite")
    strings = table.set_column(3, "b", pa.array(["1", "two"]))
    pq.write_table(strings, tmp_path / "strings.parquet")
    rejected(ws, tmp_path / "strings.parquet", r"row 2, column b: 'two' is not a number")
    write(tmp_path, "fake.parquet", b"PAR1 this is not parquet")
    rejected(ws, tmp_path / "fake.parquet", r"not a readable Parquet file")
    good = table.set_column(2, "a", pa.array([1.0, 2.0]))
    pq.write_table(good, tmp_path / "good.parquet")
    assert ingest_file(ws, tmp_path / "good.parquet").rows == 2


def test_cli_reports_bad_input_with_exit_2_and_one_json_document(ws: Workspace,
                                                                 tmp_path: Path) -> None:
    path = write(tmp_path, "value.csv", f"{HEADER}\nu1,2026-03-01T00:00:00Z,1,x1,x\n")
    code, out, err = run_cli("ingest", str(path), "--json", workspace=ws)
    assert code == 2
    error = json.loads(out)["error"]
    assert error["code"] == 2 and "line 2, column b: 'x1' is not a number" in error["message"]
    assert err.count("\n") == 1
    assert store_state(ws) == (0, [])

"""Bad input at the door: config values out of range, malformed CSV, control characters in
ids and column names, and out-of-range CLI options. Each is exit 2 with one line naming the
file, section and key, line and column, or option; nothing is written."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import run_cli, sha256_file

from mlops_tui.core.config import RANGES, Config, parse_config
from mlops_tui.core.errors import UsageError
from mlops_tui.services.ingest import ingest_file, ingest_labels
from mlops_tui.services.workspace import Workspace, default_config_text, init_workspace

# -- mlops.toml ------------------------------------------------------------------------------

# (section, key, the bad value as TOML text). Every numeric key appears at least once.
BAD_VALUES = [
    ("store", "lock_timeout_seconds", "-5"),
    ("store", "lock_timeout_seconds", "nan"),
    ("store", "lock_timeout_seconds", "inf"),
    ("store", "lock_timeout_seconds", "0"),
    ("store", "lock_timeout_seconds", "1e12"),
    ("tui", "refresh_seconds", "0"),
    ("tui", "refresh_seconds", "-inf"),
    ("drift", "p_value", "nan"),
    ("drift", "p_value", "0"),
    ("drift", "p_value", "1"),
    ("drift", "distance", "-0.1"),
    ("drift", "distance", "inf"),
    ("drift", "dataset_share", "-1"),
    ("drift", "dataset_share", "1.5"),
    ("drift", "min_effect", "-0.1"),
    ("drift", "min_effect", "nan"),
    ("drift", "min_effect", "11"),
    ("drift", "min_rows", "-5"),
    ("drift", "min_rows", "0"),
    ("drift", "regime_distance", "0"),
    ("drift", "regime_distance", "nan"),
    ("policy", "min_rows_to_retrain", "0"),
    ("policy", "cooldown_minutes", "-1"),
    ("policy", "cooldown_minutes", "9223372036854775807"),
    ("pipeline", "holdout_share", "0"),
    ("pipeline", "holdout_share", "0.0001"),
    ("pipeline", "holdout_share", "nan"),
    ("runner", "cpus", "0"),
    ("runner", "cpus", "1e-12"),
    ("runner", "cpus", "nan"),
    ("runner", "timeout_seconds", "-1"),
    ("runner", "timeout_seconds", "9223372036854775807"),
    ("data", "max_file_mb", "0"),
    ("data", "max_windows", "0"),
    ("data", "max_windows", "inf"),
    ("data", "max_file_mb", "-5"),
    ("data", "window", '"0h"'),
    ("data", "window", '"0rows"'),
    ("data", "window", '"3rows"'),
    ("data", "window", '"99999999999999d"'),
    ("data", "window_origin", '"tuesday"'),
    ("data", "window_origin", '"2026-13-01"'),
    ("data", "window_origin", '""'),
    ("runner", "memory", '"1b"'),
    ("runner", "memory", '"99999999999g"'),
    ("data", "id_column", '"id\\u0000x"'),
    ("data", "numeric", '["x\\u001b[2J"]'),
]


def with_value(section: str, key: str, value: str, text: str | None = None) -> str:
    """The default mlops.toml with `key` of `[section]` set to `value` (TOML text)."""
    lines, current, done = (text or default_config_text()).splitlines(), None, False
    for index, line in enumerate(lines):
        header = re.fullmatch(r"\[(\w+)\]", line.strip())
        if header:
            current = header.group(1)
        elif current == section and re.match(rf"#?\s*{key}\s*=", line):
            lines[index], done = f"{key} = {value}", True
            break
    if not done:
        at = lines.index(f"[{section}]")
        lines.insert(at + 1, f"{key} = {value}")
    return "\n".join(lines) + "\n"


def test_every_numeric_key_has_a_range_its_default_satisfies() -> None:
    config = Config()
    numeric = set()
    for section in (f.name for f in dataclasses.fields(Config) if f.name != "keymap"):
        settings = getattr(config, section)
        for item in dataclasses.fields(settings):
            value = getattr(settings, item.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                numeric.add((section, item.name))
                assert RANGES[(section, item.name)].allows(value), (section, item.name)
    assert numeric == set(RANGES)
    assert numeric <= {(s, k) for s, k, _ in BAD_VALUES}, "a numeric key without a bad case"


@pytest.mark.parametrize(("section", "key", "value"), BAD_VALUES,
                         ids=[f"{s}.{k}={v}" for s, k, v in BAD_VALUES])
def test_bad_config_value_is_exit_2_naming_section_key_and_range(
        workspace: Workspace, section: str, key: str, value: str) -> None:
    before = sha256_file(workspace.store_path)
    workspace.config_path.write_text(with_value(section, key, value), encoding="utf-8")
    code, out, err = run_cli("status", workspace=workspace)
    assert code == 2, err
    assert err.count("\n") == 1 and not out
    assert err.startswith(f"error: {workspace.config_path}: [{section}] {key} = ")
    assert ": must be " in err
    assert "\x00" not in err and "\x1b" not in err
    assert sha256_file(workspace.store_path) == before


@pytest.mark.parametrize(("section", "key", "value", "shown"), [
    ("store", "lock_timeout_seconds", "-5", "-5: must be a finite number > 0 and <= 86400"),
    ("drift", "p_value", "nan", "nan: must be a finite number > 0 and < 1"),
    ("drift", "min_rows", "1.5", "1.5: must be a whole number >= 1 and <= 1000000000"),
    ("tui", "refresh_seconds", "0", "0: must be a finite number >= 0.5 and <= 86400"),
    ("data", "window", '"0h"', "'0h': must be a period N + min, h, d or w of 1min to 366d"),
])
def test_the_message_shows_the_value_and_the_allowed_range(section, key, value, shown) -> None:
    import tomllib

    from mlops_tui.core.config import ConfigError

    with pytest.raises(ConfigError) as raised:
        parse_config(tomllib.loads(with_value(section, key, value)), source="plant/mlops.toml")
    assert raised.value.message.startswith(f"plant/mlops.toml: [{section}] {key} = {shown}")


@pytest.mark.parametrize(("section", "key", "value"), [
    ("store", "lock_timeout_seconds", "0.001"), ("store", "lock_timeout_seconds", "86400"),
    ("tui", "refresh_seconds", "0.5"), ("drift", "dataset_share", "1"),
    ("drift", "min_rows", "1"), ("policy", "cooldown_minutes", "0"),
    ("runner", "cpus", "0.01"), ("data", "window", '"366d"'), ("data", "window", '"4rows"'),
    ("runner", "memory", '"6m"'),
])
def test_values_at_the_edges_of_a_range_are_accepted(section, key, value) -> None:
    import tomllib

    parse_config(tomllib.loads(with_value(section, key, value)))


def test_a_byte_order_mark_is_accepted(workspace: Workspace) -> None:
    text = with_value("drift", "p_value", "0.01")
    workspace.config_path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    code, out, err = run_cli("status", "--json", workspace=workspace)
    assert code == 0, err
    from mlops_tui.services.workspace import load_config

    assert load_config(workspace.config_path).drift.p_value == 0.01


def test_a_byte_order_mark_does_not_hide_a_bad_value(workspace: Workspace) -> None:
    text = with_value("store", "lock_timeout_seconds", "-5")
    workspace.config_path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    code, _, err = run_cli("status", workspace=workspace)
    assert code == 2 and "[store] lock_timeout_seconds = -5: must be" in err


@pytest.mark.parametrize("value", ["-5", "nan", "inf", "soon", "0"])
def test_lock_timeout_variable_is_validated(workspace: Workspace, value: str) -> None:
    code, _, err = run_cli("status", workspace=workspace, env={"MLOPS_TUI_LOCK_TIMEOUT": value})
    assert code == 2, err
    assert err.startswith(f"error: MLOPS_TUI_LOCK_TIMEOUT={value!r}: must be a finite number > 0")


# -- data files ------------------------------------------------------------------------------

CONFIG = """
[data]
id_column = "uid"
timestamp_column = "at"
label_column = "y"
numeric = ["a"]
categorical = ["c"]
window = "1h"
"""
HEADER = "uid,at,a,c"


def row(i: int, tail: str = "x") -> str:
    return f"u{i},2026-03-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z,{i},{tail}"


def rows(n: int) -> list[str]:
    return [row(i) for i in range(n)]


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return init_workspace(tmp_path / "ws", config_text=CONFIG)


def store_state(ws: Workspace) -> tuple[str, list[str]]:
    folders = [ws.data_root / "batches", ws.data_root / "labels"]
    return sha256_file(ws.store_path), sorted(
        p.name for f in folders if f.exists() for p in f.iterdir())


def refused(ws: Workspace, path: Path, expected: str, labels: bool = False) -> str:
    before = store_state(ws)
    with pytest.raises(UsageError) as caught:
        (ingest_labels if labels else ingest_file)(ws, path)
    message = caught.value.message
    assert caught.value.code == 2
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    assert expected in message, message
    assert not re.search(r"[\x00-\x1f\x7f-\x9f]", message)
    assert "Possible fixes" not in message and "sniffing" not in message
    assert len(message) < 300 + len(str(path))
    assert store_state(ws) == before
    return message


def write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("name", "lines", "expected"), [
    ("wide.csv", [HEADER, *rows(3), row(3, "x,extra"), *rows(2)],
     "line 5: 5 values, but the header has 4 columns"),
    ("narrow.csv", [HEADER, row(0), "u1,2026-03-01T00:00:01Z,1", row(2)],
     "line 3: 3 values, but the header has 4 columns"),
    ("quote.csv", [HEADER, row(0), row(1, '"open'), row(2)],
     "line 3: a quoted value is not closed (unterminated quote)"),
    ("after.csv", [HEADER, row(0), row(1, '"a"b'), row(2)],
     "line 3: text after a closing quote"),
])
def test_malformed_rows_name_the_line_and_the_reason(ws, tmp_path, name, lines, expected):
    refused(ws, write(tmp_path, name, lines), expected)


def test_a_20_mb_field_names_its_line_and_the_limit(ws, tmp_path) -> None:
    path = write(tmp_path, "huge.csv", [HEADER, row(0), row(1, "x" * 20_000_000), row(2)])
    refused(ws, path, "line 3: the line is 20,000,0")
    assert "a CSV line may hold at most 2,000,000 bytes" in refused(ws, path, "line 3")


def test_a_ragged_row_past_the_sniffer_sample_names_its_line(ws, tmp_path) -> None:
    lines = [HEADER, *rows(30_000)]
    lines[25_000] += ",extra"
    refused(ws, write(tmp_path, "late.csv", lines),
            "line 25001: 5 values, but the header has 4 columns")


@pytest.mark.parametrize("bad", ["\x00", "\x1b[2J", "\x07", "\x9b31m", "\x7f"])
def test_control_characters_in_an_id_are_refused(ws, tmp_path, bad) -> None:
    lines = [HEADER, row(0), row(1).replace("u1", f"u{bad}1", 1), row(2)]
    message = refused(ws, write(tmp_path, "ids.csv", lines),
                      "line 3, column uid: the id 'u")
    assert message.endswith("contains a control character")
    assert repr(f"u{bad}1") in message


def test_control_characters_in_a_label_file_id_are_refused(ws, tmp_path) -> None:
    ingest_file(ws, write(tmp_path, "obs.csv", [HEADER, *rows(3)]))
    path = write(tmp_path, "labels.csv", ["uid,y", "u0,1.0", "u\x001,2.0"])
    refused(ws, path, "line 3, column uid: the id 'u\\x001' contains a control character",
            labels=True)


@pytest.mark.parametrize("bad", ["c\x00", "c\x1b]0;owned\x07", "c\t"])
def test_control_characters_in_a_header_are_refused_and_escaped(ws, tmp_path, bad) -> None:
    path = tmp_path / "header.csv"
    path.write_bytes(f"uid,at,a,{bad}\n{row(0)}\n".encode())
    message = refused(ws, path, "line 1: column name 'c")
    assert message.endswith("contains a control character")


def test_control_characters_in_a_parquet_column_are_refused(ws, tmp_path) -> None:
    table = pa.table({"uid": ["p1"], "at": pa.array([1], pa.timestamp("s", tz="UTC")),
                      "a": [1.0], "c\x00\x1b[2J": ["x"]})
    pq.write_table(table, tmp_path / "cols.parquet")
    refused(ws, tmp_path / "cols.parquet", "column name 'c\\x00\\x1b[2J' contains a control")


def test_unusual_column_names_are_quoted_in_messages(ws, tmp_path) -> None:
    path = write(tmp_path, "names.csv", ["uid,at,a,x\u202ey,p[1]", row(0) + ",1"])
    message = refused(ws, path, "missing [c]; unexpected ['x\\u202ey', 'p[1]']")
    assert "\u202e" not in message


def test_cli_csv_error_is_one_line_exit_2(ws, tmp_path) -> None:
    path = write(tmp_path, "wide.csv", [HEADER, row(0), row(1, "x,extra")])
    code, out, err = run_cli("ingest", str(path), workspace=ws)
    assert code == 2 and not out
    assert err == f"error: {path}: line 3: 5 values, but the header has 4 columns\n"


# -- CLI options -------------------------------------------------------------------------------

HUGE = "100000000000000000000"


def test_huge_limit_and_offset_name_the_option(register, workspace: Workspace) -> None:
    register()  # with a version, the old code passed the number to SQL: exit 1
    before = sha256_file(workspace.store_path)
    for args, option in [
        (("models", "list", "--limit", HUGE), "--limit"),
        (("models", "list", "--limit", "9223372036854775808"), "--limit"),
        (("models", "list", "--offset", HUGE), "--offset"),
        (("audit", "--limit", HUGE), "--limit"),
        (("jobs", "list", "--limit", HUGE), "--limit"),
        (("deployments", "history", "--limit", HUGE), "--limit"),
        (("models", "gc", "--keep", HUGE, "--dry-run"), "--keep"),
        (("models", "list", "--limit", "1e20"), "--limit"),
        (("jobs", "gc", "--older-than", "99999999999999999999d", "--dry-run"), "--older-than"),
        (("audit", "--since", "0001-01-01"), "--since"),
        (("drift", "show", "--since", "0001-01-02", "--no-record"), "--since"),
        (("retrain", "--regime", "a", "--until", "9999-12-31"), "--until"),
    ]:
        code, _, err = run_cli(*args, workspace=workspace)
        assert code == 2, (args, err)
        assert option in err, (args, err)
        assert "SQL" not in err and "Traceback" not in err and "Binder" not in err
    assert sha256_file(workspace.store_path) == before
    code, out, err = run_cli("models", "list", "--limit", "1000000000", workspace=workspace)
    assert code == 0, err


def test_numbers_in_range_helpers_agree_with_math() -> None:
    allowed = RANGES[("store", "lock_timeout_seconds")]
    assert not allowed.allows(math.nan) and not allowed.allows(math.inf)
    assert not allowed.allows(0) and allowed.allows(1e-9) and allowed.allows(86_400)


# -- predict reads CSV with pyarrow: the same lines and reasons --------------------------------

from test_predict import scored_ws  # noqa: E402,F401 - the module-scoped scored workspace


@pytest.fixture
def predict_ws(scored_ws, tmp_path):  # noqa: F811
    import shutil

    from mlops_tui.services.workspace import open_workspace

    shutil.copytree(scored_ws.root, tmp_path / "copy", symlinks=True)
    return open_workspace(tmp_path / "copy")


def predict_lines(workspace: Workspace) -> tuple[str, str]:
    contract = workspace.config.data
    header = [contract.id_column, contract.timestamp_column, contract.regime_column,
              *contract.numeric, *contract.categorical]
    values = ["1", "2026-01-01T00:00:00Z", "suv", *["1"] * len(contract.numeric),
              *["a"] * len(contract.categorical)]
    return ",".join(header), ",".join(values)


@pytest.mark.parametrize(("tail", "expected"), [
    (",extra\x1b[2J", "line 3: {n} values, but the header has {h} columns"),
    ("", "line 3: {n} values, but the header has {h} columns"),
    ("x" * 20_000_000, "line 2: a line longer than 1,048,576 bytes is too long for the CSV"),
], ids=["wide", "narrow", "long"])
def test_predict_names_the_line_of_a_malformed_csv(predict_ws, tmp_path, tail, expected):
    header, good = predict_lines(predict_ws)
    bad = good + tail if tail else "1,2,3"
    # a long line is refused while the header is read (the first block), not later
    lines = [header, bad, good] if len(tail) > 1000 else [header, good, bad]
    path = write(tmp_path, "in.csv", lines)
    before = sha256_file(predict_ws.store_path)
    code, out, err = run_cli("predict", str(path), "--out", str(tmp_path / "out.csv"),
                             workspace=predict_ws)
    assert code == 2 and not out, err
    n, h = len(bad.split(",")), len(header.split(","))
    assert err.startswith(f"error: {path}: {expected.format(n=n, h=h)}"), err
    assert err.count("\n") == 1 and "\x1b" not in err
    assert not (tmp_path / "out.csv").exists()
    assert sha256_file(predict_ws.store_path) == before

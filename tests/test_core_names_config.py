"""Operator-supplied names and the `mlops.toml` schema."""

from __future__ import annotations

import tomllib

import pytest

from mlops_tui.core.config import Config, ConfigError, DataContract, parse_config
from mlops_tui.core.errors import ExitCode, InvalidNameError, NotFoundError
from mlops_tui.core.names import not_found, parse_version_id, validate_name
from mlops_tui.services.workspace import default_config_text

HOSTILE_NAMES = [
    "../x", "..", "a/../../etc", "/etc/passwd", "a/b", "a\\b", "x\x00y", "\x00", "a" * 10_000,
    "a;DROP TABLE x", "x'; DROP TABLE model_versions; --", "a'b", 'a"b', "a`b", "a b", " a",
    "a ", "", "-rf", ".hidden", "_x", "a..b", "abc\n", "a$(id)", "a|b", "a*", "a" * 65, "é",
]


@pytest.mark.parametrize("value", HOSTILE_NAMES, ids=lambda v: repr(v)[:30])
def test_validate_name_rejects(value):
    with pytest.raises(InvalidNameError) as raised:
        validate_name(value, "regime")
    error = raised.value
    assert error.code is ExitCode.USAGE and error.kind == "invalid-name"
    assert error.message.startswith("invalid regime ")
    assert len(error.message) < 200  # a 10 kB value is not echoed back whole
    assert "\x00" not in error.message and "\n" not in error.message


@pytest.mark.parametrize("value", [None, 12, b"suv"])
def test_validate_name_rejects_non_strings(value):
    with pytest.raises(InvalidNameError):
        validate_name(value)


@pytest.mark.parametrize("value", ["suv", "a", "0", "plant-A_line.2", "Z9", "a" * 64,
                                   "car-model-b", "v1.2.3"])
def test_validate_name_accepts(value):
    assert validate_name(value) == value


@pytest.mark.parametrize(("value", "number"), [
    ("v12", 12), ("12", 12), ("v1", 1), (" v3 ", 3), ("v0", 0), ("v999999999999", 999999999999),
])
def test_parse_version_id(value, number):
    assert parse_version_id(value) == number


@pytest.mark.parametrize("value", [
    "", "v", "V12", "v-1", "v1.2", "1e3", "12a", "vv1", "v1234567890123", "x'; --", "v1\x00",
    "a" * 10_000, None,
])
def test_parse_version_id_rejects(value):
    with pytest.raises(InvalidNameError) as raised:
        parse_version_id(value)
    assert raised.value.code is ExitCode.USAGE
    assert len(raised.value.message) < 200


def test_not_found_suggests_close_names():
    error = not_found("version", "v13", ["v12", "v1", "v130", "v7"])
    assert isinstance(error, NotFoundError)
    assert error.code is ExitCode.USAGE and error.kind == "not-found"
    assert error.message.startswith("unknown version 'v13' (did you mean ")
    assert "v12" in error.message and "v130" in error.message
    assert "v7" not in error.message


def test_not_found_without_close_names_has_no_hint():
    error = not_found("regime", "zzzz", ["suv", "sedan"])
    assert error.message == "unknown regime 'zzzz'"
    assert not_found("regime", "x", []).message == "unknown regime 'x'"


# -- config -------------------------------------------------------------------------------


def test_empty_config_is_the_defaults():
    config = parse_config({})
    assert config == Config()
    assert config.data.window == "1d"
    assert config.drift.p_value == 0.05 and config.drift.distance == 0.1
    assert config.runner.kind == "local" and config.runner.network is False
    assert config.artifacts.trusted_types == ()
    assert config.store.lock_timeout_seconds == 10.0
    assert config.serving.default_target == "production"


def test_default_config_file_parses_to_the_defaults():
    assert parse_config(tomllib.loads(default_config_text())) == Config()


def test_config_values_are_typed():
    config = parse_config({
        "data": {"numeric": ["x1", "x2"], "categorical": ["colour"], "window": "6h",
                 "label_column": "y", "regime_column": "product"},
        "runner": {"kind": "docker", "cpus": 2, "memory": "4g"},
        "artifacts": {"trusted_types": ["sklearn.tree._tree.Tree"]},
        "keymap": {"rollback": "ctrl+r"},
    })
    assert config.data == DataContract(label_column="y", regime_column="product",
                                       numeric=("x1", "x2"), categorical=("colour",),
                                       window="6h")
    assert config.data.features == ("x1", "x2", "colour")
    assert config.runner.cpus == 2 and config.runner.kind == "docker"
    assert config.artifacts.trusted_types == ("sklearn.tree._tree.Tree",)
    assert config.keymap == {"rollback": "ctrl+r"}


@pytest.mark.parametrize("window", ["1h", "6h", "1d", "1w", "15m", "5000rows"])
def test_valid_windows(window):
    assert parse_config({"data": {"window": window}}).data.window == window


@pytest.mark.parametrize(("raw", "expected"), [
    ({"dirft": {}}, "unknown section [dirft]"),
    ({"drift": {"p_valeu": 0.1}}, "[drift] has unknown key 'p_valeu'"),
    ({"drift": 5}, "[drift] must be a table"),
    ({"drift": {"p_value": "0.05"}}, "[drift] p_value = '0.05': must be a finite number"),
    ({"drift": {"p_value": True}}, "[drift] p_value = true: must be a finite number"),
    ({"drift": {"min_rows": 1.5}}, "[drift] min_rows = 1.5: must be a whole number"),
    ({"policy": {"auto_deploy": "yes"}}, "[policy] auto_deploy must be true or false"),
    ({"policy": {"auto_retrain": 1}}, "[policy] auto_retrain must be true or false"),
    ({"runner": {"memory": 2}}, "[runner] memory must be a string"),
    ({"data": {"numeric": "x1"}}, "[data] numeric must be a list of strings"),
    ({"data": {"numeric": ["x1", 2]}}, "[data] numeric must be a list of strings"),
    ({"artifacts": {"trusted_types": "sklearn.tree._tree.Tree"}},
     "[artifacts] trusted_types must be a list of strings"),
    ({"data": {"window": "1 day"}}, "[data] window = '1 day': must be a period"),
    ({"data": {"window": "1y"}}, "[data] window = '1y': must be a period"),
    ({"data": {"window": "rows"}}, "[data] window = 'rows': must be a period"),
    ({"runner": {"kind": "kubernetes"}}, "[runner] kind must be one of local, docker, auto"),
    ({"pipeline": {"holdout_share": 1.0}}, "[pipeline] holdout_share = 1.0: must be a finite "
                                           "number >= 0.001 and <= 0.999"),
    ({"drift": {"threshold_mode": "auto"}}, "[drift] threshold_mode must be"),
    ({"data": {"numeric": ["x"], "categorical": ["x"]}}, "'x' is both numeric and categorical"),
    ({"keymap": {"rollback": 5}}, "[keymap] maps binding ids to key strings"),
])
def test_config_errors_name_section_and_key(raw, expected):
    with pytest.raises(ConfigError) as raised:
        parse_config(raw, source="plant/mlops.toml")
    assert raised.value.code is ExitCode.USAGE and raised.value.kind == "config"
    assert raised.value.message.startswith("plant/mlops.toml: ")
    assert expected in raised.value.message


def test_unknown_key_error_lists_the_known_keys():
    with pytest.raises(ConfigError) as raised:
        parse_config({"store": {"timeout": 3}})
    assert "known: lock_timeout_seconds" in raised.value.message

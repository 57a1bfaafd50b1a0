"""The `mlops.toml` schema: typed, frozen settings built from a parsed TOML mapping.

Every error names the section and key, so a typo costs one line to understand.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mlops_tui.core.errors import UsageError
from mlops_tui.core.names import CONTROL

# `m` alone is refused: minutes or months? (see check_window)
PERIOD = re.compile(r"(\d+)(min|h|d|w)")
RUNNERS = ("local", "docker", "auto")
# Drift tests a profile may be told to use instead of the automatic choice (core/drift.py).
DRIFT_TESTS_NUMERIC = ("ks", "wasserstein", "psi", "jensenshannon")
DRIFT_TESTS_CATEGORICAL = ("chi2", "z", "jensenshannon", "psi")
MEMORY = re.compile(r"[1-9]\d*[bkmgBKMG]?")  # a Docker memory size: bytes, or b/k/m/g
MEMORY_MIN, MEMORY_MAX = 6 << 20, 16384 << 30


def _memory_bytes(text: str) -> int:
    unit = text[-1].lower()
    scale = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    return int(text[:-1]) * scale[unit] if unit in scale else int(text)


class ConfigError(UsageError):
    kind = "config"


@dataclass(frozen=True)
class Range:
    """The values a numeric key allows; bounds are inclusive unless marked open."""

    low: float
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    whole: bool = False

    def allows(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if value < self.low or (self.low_open and value == self.low):
            return False
        return self.high is None or value < self.high or (
            value == self.high and not self.high_open)

    def describe(self) -> str:
        kind = "a whole number" if self.whole else "a finite number"
        text = f"{kind} {'>' if self.low_open else '>='} {_number(self.low)}"
        if self.high is not None:
            text += f" and {'<' if self.high_open else '<='} {_number(self.high)}"
        return text


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


# Every numeric key of the schema and what it allows (docs/configuration.md lists them).
# Upper bounds keep values inside what timers, Docker and timedelta accept.
RANGES: dict[tuple[str, str], Range] = {
    ("data", "max_file_mb"): Range(1, 1_048_576, whole=True),
    ("data", "max_windows"): Range(1, 1_000_000_000, whole=True),
    ("drift", "p_value"): Range(0, 1, low_open=True, high_open=True),
    ("drift", "distance"): Range(0, low_open=True),
    ("drift", "dataset_share"): Range(0, 1, low_open=True),
    ("drift", "min_rows"): Range(1, 1_000_000_000, whole=True),
    ("drift", "regime_distance"): Range(0, low_open=True),
    ("drift", "min_effect"): Range(0, 10),  # in standard deviations (or 2 x Hellinger)
    ("policy", "min_rows_to_retrain"): Range(1, 1_000_000_000, whole=True),
    ("policy", "cooldown_minutes"): Range(0, 525_600, whole=True),
    # the holdout side is chosen per mille of an id hash: finer shares round to nothing
    ("pipeline", "holdout_share"): Range(0.001, 0.999),
    ("runner", "cpus"): Range(0.01, 1024),  # Docker's smallest CPU quota
    ("runner", "timeout_seconds"): Range(1, 2_592_000, whole=True),
    ("store", "lock_timeout_seconds"): Range(0, 86_400, low_open=True),
    ("tui", "refresh_seconds"): Range(0.5, 86_400),
}
# A drift window: a period of one minute up to 366 days, or a row count (at least the
# four sub-windows of core/regimes.py).
WINDOW_MAX_MINUTES = 366 * 24 * 60
WINDOW_MINUTES = {"min": 1, "h": 60, "d": 24 * 60, "w": 7 * 24 * 60}
WINDOW_ROWS = Range(4, 100_000_000, whole=True)
# [data] window_origin: where period windows are counted from (core/regimes.py), or an ISO
# timestamp.
ORIGIN_ANCHORS = ("first", "midnight", "monday", "month-start", "epoch")
# [data] latest_ahead: up to about a century, so now + it stays a valid datetime
AHEAD_MAX_MINUTES = 36_600 * 24 * 60


def _shown(value: Any) -> str:
    """A TOML value as the file would spell it (nan, inf), short and escaped."""
    if isinstance(value, float) and not math.isfinite(value):
        text = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _bad(source: str, section: str, key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"{source}: [{section}] {key} = {_shown(value)}: must be {allowed}")


def _check_number(source: str, section: str, key: str, value: Any) -> None:
    allowed = RANGES[(section, key)]
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or (allowed.whole and not isinstance(value, int)) or not allowed.allows(value)):
        raise _bad(source, section, key, value, allowed.describe())


def _check_text(source: str, section: str, key: str, value: str) -> None:
    if CONTROL.search(value):
        raise _bad(source, section, key, value, "text without control characters")


def check_window(source: str, window: str) -> None:
    """`0h`, `3rows` or a period past a year fail here, not at the first drift run."""
    ambiguous = re.fullmatch(r"(\d+)m", window)
    if ambiguous:
        count = ambiguous.group(1)
        raise ConfigError(f"{source}: [data] window {window!r} is ambiguous: write "
                          f"'{count}min' (minutes) or '{count}mo' (months)")
    if re.fullmatch(r"\d+mo", window):
        raise ConfigError(f"{source}: [data] window {window!r}: calendar-month windows are "
                          "not supported yet; use e.g. '30d'")
    allowed = (f"a period N + min, h, d or w of 1min to {WINDOW_MAX_MINUTES // (24 * 60)}d "
               f"(e.g. 15min, 6h, 1d, 1w) or a row count from {_number(WINDOW_ROWS.low)} to "
               f"{_number(WINDOW_ROWS.high or 0)} (e.g. 5000rows)")
    period = PERIOD.fullmatch(window)
    rows = re.fullmatch(r"(\d+)rows", window)
    if period:
        minutes = int(period.group(1)) * WINDOW_MINUTES[period.group(2)]
        if 1 <= minutes <= WINDOW_MAX_MINUTES:
            return
    elif rows and WINDOW_ROWS.allows(int(rows.group(1))):
        return
    raise _bad(source, "data", "window", window, allowed)


def duration(text: str) -> timedelta:
    """`[data] latest_ahead`: N + min, h, d or w (checked by `_check`)."""
    period = PERIOD.fullmatch(text)
    if not period:
        raise ValueError(f"not a duration: {text!r}")
    return timedelta(minutes=int(period.group(1)) * WINDOW_MINUTES[period.group(2)])


def moment(text: str) -> datetime:
    """`[data] earliest`: an ISO date or timestamp, UTC unless it names a zone."""
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _check_bounds(source: str, data: DataContract) -> None:
    try:
        moment(data.earliest)
    except ValueError:
        raise _bad(source, "data", "earliest", data.earliest,
                   "an ISO date or UTC timestamp (e.g. 1900-01-01)") from None
    origin = data.window_origin
    if origin not in ORIGIN_ANCHORS:
        try:
            moment(origin)
        except ValueError:
            raise _bad(source, "data", "window_origin", origin,
                       f"one of {', '.join(ORIGIN_ANCHORS)} or an ISO timestamp "
                       "(e.g. 2026-01-05T06:00)") from None
    period = PERIOD.fullmatch(data.latest_ahead)
    if not period or int(period.group(1)) * WINDOW_MINUTES[period.group(2)] > AHEAD_MAX_MINUTES:
        raise _bad(source, "data", "latest_ahead", data.latest_ahead,
                   f"a duration N + min, h, d or w of 0min to {AHEAD_MAX_MINUTES // 1440}d "
                   "(e.g. 1d)")


@dataclass(frozen=True)
class DataContract:
    id_column: str = "id"
    timestamp_column: str = "ts"
    label_column: str | None = None
    regime_column: str | None = None
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    window: str = "1d"
    window_origin: str = "first"  # where period windows start: see ORIGIN_ANCHORS
    nan_policy: str = "reject"  # NaN/±inf in a numeric feature: "reject" the file, or "missing"
    max_file_mb: int = 4096  # ingest refuses larger files
    earliest: str = "1900-01-01"  # ingest refuses earlier timestamps
    latest_ahead: str = "1d"  # ... and those later than now + this
    max_windows: int = 100_000  # ... and a history cut into more windows than this

    @property
    def features(self) -> tuple[str, ...]:
        return self.numeric + self.categorical


@dataclass(frozen=True)
class DriftSettings:
    p_value: float = 0.05
    distance: float = 0.1
    threshold_mode: str = "reference"  # or "fixed"
    dataset_share: float = 0.5
    min_rows: int = 30
    ignore: tuple[str, ...] = ()  # features never judged for drift nor used to match regimes
    regime_distance: float = 1.0  # a window matches a regime's profile at most this far away
    min_effect: float = 0.1  # drift also needs W1/std (numeric) or 2*Hellinger >= this
    numeric_test: str = "auto"  # or a registered test name, fixed in new profiles (e.g. "psi")
    categorical_test: str = "auto"


@dataclass(frozen=True)
class PolicySettings:
    auto_deploy: bool = True
    auto_retrain: bool = False
    min_rows_to_retrain: int = 1000
    cooldown_minutes: int = 60


@dataclass(frozen=True)
class PipelineSettings:
    path: str = "pipeline"
    metric: str = "r2"
    holdout_share: float = 0.2


@dataclass(frozen=True)
class RunnerSettings:
    kind: str = "local"
    base_image: str = "mlops-base:bookworm"
    memory: str = "2g"
    cpus: float = 1.0
    timeout_seconds: int = 1800
    network: bool = False
    wheelhouse: str = ""  # "" means the user cache (~/.cache/mlops-tui/wheelhouse)
    pin_to_host: tuple[str, ...] = ("scikit-learn", "numpy", "scipy", "skops")


@dataclass(frozen=True)
class ArtifactSettings:
    trusted_types: tuple[str, ...] = ()
    allow_version_mismatch: bool = False


@dataclass(frozen=True)
class ServingSettings:
    default_target: str = "production"
    environment: str = "host"  # or "image:<name>"


@dataclass(frozen=True)
class StoreSettings:
    lock_timeout_seconds: float = 10.0


@dataclass(frozen=True)
class TuiSettings:
    refresh_seconds: float = 5.0


@dataclass(frozen=True)
class Config:
    data: DataContract = field(default_factory=DataContract)
    drift: DriftSettings = field(default_factory=DriftSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    runner: RunnerSettings = field(default_factory=RunnerSettings)
    artifacts: ArtifactSettings = field(default_factory=ArtifactSettings)
    serving: ServingSettings = field(default_factory=ServingSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    tui: TuiSettings = field(default_factory=TuiSettings)
    keymap: dict[str, str] = field(default_factory=dict)


def _section(raw: dict[str, Any], name: str, cls: type, source: str) -> Any:
    values = raw.get(name, {})
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: [{name}] must be a table")
    known = {f.name: f for f in cls.__dataclass_fields__.values()}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(
                f"{source}: [{name}] has unknown key {key!r} (known: {', '.join(sorted(known))})"
            )
        default = known[key].default
        if isinstance(default, tuple) or known[key].type.startswith("tuple"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{source}: [{name}] {key} must be a list of strings")
            for item in value:
                _check_text(source, name, key, item)
            value = tuple(value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{source}: [{name}] {key} must be true or false")
        elif isinstance(default, (int, float)):
            _check_number(source, name, key, value)
        elif not isinstance(value, str) and value is not None:
            raise ConfigError(f"{source}: [{name}] {key} must be a string, not {value!r}")
        elif isinstance(value, str):
            _check_text(source, name, key, value)
        kwargs[key] = value
    return cls(**kwargs)


def parse_config(raw: dict[str, Any], source: str = "mlops.toml") -> Config:
    """Build a Config from parsed TOML; unknown sections or keys are errors."""
    sections = {
        "data": DataContract, "drift": DriftSettings, "policy": PolicySettings,
        "pipeline": PipelineSettings, "runner": RunnerSettings,
        "artifacts": ArtifactSettings, "serving": ServingSettings,
        "store": StoreSettings, "tui": TuiSettings,
    }
    for name in raw:
        if name not in sections and name != "keymap":
            raise ConfigError(f"{source}: unknown section [{name}]")
    parsed = {name: _section(raw, name, cls, source) for name, cls in sections.items()}
    keymap = raw.get("keymap", {})
    if not isinstance(keymap, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in keymap.items()
    ):
        raise ConfigError(f"{source}: [keymap] maps binding ids to key strings")
    for binding, keys in keymap.items():
        _check_text(source, "keymap", repr(binding) if CONTROL.search(binding) else binding, keys)
    config = Config(**parsed, keymap=dict(keymap))
    _check(config, source)
    return config


def _check(config: Config, source: str) -> None:
    check_window(source, config.data.window)
    _check_bounds(source, config.data)
    for key in ("id_column", "timestamp_column"):
        if not getattr(config.data, key).strip():
            raise ConfigError(f"{source}: [data] {key} must name a column (it is empty)")
    if config.data.id_column == config.data.timestamp_column:
        raise ConfigError(f"{source}: [data] id_column and timestamp_column are both "
                          f"{config.data.id_column!r}: the id must be its own column")
    if config.runner.kind not in RUNNERS:
        raise ConfigError(f"{source}: [runner] kind must be one of {', '.join(RUNNERS)}")
    memory = config.runner.memory
    if not MEMORY.fullmatch(memory) or not (
            MEMORY_MIN <= _memory_bytes(memory) <= MEMORY_MAX):
        raise _bad(source, "runner", "memory", memory,
                   "a size like 512m or 2g, from 6m (Docker's minimum) to 16384g")
    if config.drift.threshold_mode not in ("fixed", "reference"):
        raise ConfigError(f"{source}: [drift] threshold_mode must be 'fixed' or 'reference'")
    if config.data.nan_policy not in ("reject", "missing"):
        raise ConfigError(f"{source}: [data] nan_policy must be 'reject' or 'missing'")
    for key, allowed in (("numeric_test", DRIFT_TESTS_NUMERIC),
                         ("categorical_test", DRIFT_TESTS_CATEGORICAL)):
        if getattr(config.drift, key) not in ("auto", *allowed):
            raise ConfigError(f"{source}: [drift] {key} must be 'auto' or one of "
                              f"{', '.join(allowed)}")
    unknown = sorted(set(config.drift.ignore) - set(config.data.features))
    if unknown:
        raise ConfigError(f"{source}: [drift] ignore names {unknown[0]!r}, not a feature of [data]")
    overlap = set(config.data.numeric) & set(config.data.categorical)
    if overlap:
        raise ConfigError(f"{source}: [data] {sorted(overlap)[0]!r} is both numeric and categorical")

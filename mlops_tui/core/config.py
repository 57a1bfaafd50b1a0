"""The `mlops.toml` schema: typed, frozen settings built from a parsed TOML mapping.

Every error names the section and key, so a typo costs one line to understand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mlops_tui.core.errors import UsageError

PERIOD = re.compile(r"(\d+)([mhdw])")
RUNNERS = ("local", "docker", "auto")
# Drift tests a profile may be told to use instead of the automatic choice (core/drift.py).
DRIFT_TESTS_NUMERIC = ("ks", "wasserstein", "psi", "jensenshannon")
DRIFT_TESTS_CATEGORICAL = ("chi2", "z", "jensenshannon", "psi")
MEMORY = re.compile(r"[1-9]\d*[bkmgBKMG]?")  # a Docker memory size: bytes, or b/k/m/g


class ConfigError(UsageError):
    kind = "config"


@dataclass(frozen=True)
class DataContract:
    id_column: str = "id"
    timestamp_column: str = "ts"
    label_column: str | None = None
    regime_column: str | None = None
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    window: str = "1d"
    nan_policy: str = "reject"  # NaN/±inf in a numeric feature: "reject" the file, or "missing"
    max_file_mb: int = 4096  # ingest refuses larger files

    @property
    def features(self) -> tuple[str, ...]:
        return self.numeric + self.categorical


@dataclass(frozen=True)
class DriftSettings:
    p_value: float = 0.05
    distance: float = 0.1
    threshold_mode: str = "fixed"  # or "reference"
    dataset_share: float = 0.5
    min_rows: int = 30
    ignore: tuple[str, ...] = ()  # features never judged for drift nor used to match regimes
    regime_distance: float = 1.0  # a window matches a regime's profile at most this far away
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
            value = tuple(value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{source}: [{name}] {key} must be true or false")
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{source}: [{name}] {key} must be a number, not {value!r}")
            if isinstance(default, int) and not isinstance(value, int):
                raise ConfigError(f"{source}: [{name}] {key} must be a whole number")
        elif not isinstance(value, str) and value is not None:
            raise ConfigError(f"{source}: [{name}] {key} must be a string, not {value!r}")
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
    config = Config(**parsed, keymap=dict(keymap))
    _check(config, source)
    return config


def _check(config: Config, source: str) -> None:
    if not PERIOD.fullmatch(config.data.window) and not re.fullmatch(r"\d+rows", config.data.window):
        raise ConfigError(
            f"{source}: [data] window {config.data.window!r} is not a period like 1h, 6h, 1d, "
            "1w or a row count like 5000rows"
        )
    if config.runner.kind not in RUNNERS:
        raise ConfigError(f"{source}: [runner] kind must be one of {', '.join(RUNNERS)}")
    if not MEMORY.fullmatch(config.runner.memory):
        raise ConfigError(f"{source}: [runner] memory {config.runner.memory!r} is not a size "
                          "like 512m or 2g")
    if not 0 < config.runner.cpus <= 1024:
        raise ConfigError(f"{source}: [runner] cpus must be a positive number")
    if config.runner.timeout_seconds <= 0:
        raise ConfigError(f"{source}: [runner] timeout_seconds must be a positive whole number")
    if not 0 < config.pipeline.holdout_share < 1:
        raise ConfigError(f"{source}: [pipeline] holdout_share must be between 0 and 1")
    if config.drift.threshold_mode not in ("fixed", "reference"):
        raise ConfigError(f"{source}: [drift] threshold_mode must be 'fixed' or 'reference'")
    if config.data.nan_policy not in ("reject", "missing"):
        raise ConfigError(f"{source}: [data] nan_policy must be 'reject' or 'missing'")
    if config.data.max_file_mb <= 0:
        raise ConfigError(f"{source}: [data] max_file_mb must be a positive whole number")
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

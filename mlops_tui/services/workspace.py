"""Finding, creating and opening a workspace: config, store and folders."""

from __future__ import annotations

import errno
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mlops_tui.core.config import Config, ConfigError, parse_config
from mlops_tui.core.errors import ConflictError, NotFoundError, ReadOnlyError, UsageError
from mlops_tui.store.db import Store, Tx

CONFIG_NAME = "mlops.toml"
STORE_NAME = "store.duckdb"
WORKSPACE_ENV = "MLOPS_TUI_WORKSPACE"
FOLDERS = ("artifacts", "code", "data", "jobs", "serving")


def default_config_text() -> str:
    return resources.files("mlops_tui.services").joinpath("default_config.toml").read_text()


@dataclass(frozen=True)
class Workspace:
    root: Path
    config: Config
    command: str = "mlops-tui"

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def store_path(self) -> Path:
        return self.root / STORE_NAME

    @property
    def artifacts_root(self) -> Path:
        return self.root / "artifacts"

    @property
    def code_root(self) -> Path:
        return self.root / "code"

    @property
    def data_root(self) -> Path:
        return self.root / "data"

    @property
    def jobs_root(self) -> Path:
        return self.root / "jobs"

    @property
    def serving_root(self) -> Path:
        return self.root / "serving"

    @property
    def store(self) -> Store:
        return Store(
            self.store_path,
            lock_timeout=self._lock_timeout(),
            command=self.command,
            write_hook=self._on_write,
        )

    def _on_write(self, tx: Tx, unit: str) -> Callable[[], None] | None:
        from mlops_tui.services.upkeep import on_write  # imports serving: not at startup

        return on_write(self, tx, unit)

    def _lock_timeout(self) -> float | None:
        # The environment variable wins over the file so tests and scripts can shorten it.
        return None if os.environ.get("MLOPS_TUI_LOCK_TIMEOUT") else (
            self.config.store.lock_timeout_seconds
        )


def resolve_root(explicit: str | Path | None) -> Path:
    """--workspace, then MLOPS_TUI_WORKSPACE, then the current directory."""
    chosen = explicit or os.environ.get(WORKSPACE_ENV) or os.getcwd()
    return Path(chosen).expanduser().absolute()


def load_config(path: Path) -> Config:
    try:
        # utf-8-sig: editors on Windows start the file with a byte-order mark
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: {error}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return parse_config(raw, source=str(path))


def open_workspace(explicit: str | Path | None = None, command: str = "mlops-tui") -> Workspace:
    root = resolve_root(explicit)
    config_path = root / CONFIG_NAME
    if not config_path.is_file():
        raise NotFoundError(
            f"{root} is not an mlops-tui workspace (no {CONFIG_NAME}); "
            "run 'mlops-tui init' or pass --workspace / set MLOPS_TUI_WORKSPACE"
        )
    return Workspace(root=root, config=load_config(config_path), command=command)


def init_workspace(
    directory: str | Path | None, config_text: str | None = None, command: str = "mlops-tui init"
) -> Workspace:
    """Create mlops.toml, the store and the folders. Refuses an existing workspace."""
    root = resolve_root(directory)
    if (root / CONFIG_NAME).exists() or (root / STORE_NAME).exists():
        raise ConflictError(f"{root} already holds a workspace")
    text = config_text if config_text is not None else default_config_text()
    config = parse_config(tomllib.loads(text), source=str(root / CONFIG_NAME))
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / ".mlops-tui-write-probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise ReadOnlyError(f"cannot create a workspace in {root}: read-only") from None
        raise UsageError(f"cannot create a workspace in {root}: {error.strerror}") from None
    workspace = Workspace(root=root, config=config, command=command)
    workspace.store.create()
    for folder in FOLDERS:
        (root / folder).mkdir(exist_ok=True)
    (root / CONFIG_NAME).write_text(text, encoding="utf-8")
    return workspace

"""Ingesting production observations: validate, stage to Parquet outside the lock, register."""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlops_tui.artifacts.blobs import file_sha256
from mlops_tui.core.errors import UsageError
from mlops_tui.core.names import validate_name
from mlops_tui.services.workspace import Workspace
from mlops_tui.store import observations as observation_sql, registry as registry_sql


@dataclass(frozen=True)
class IngestResult:
    source: str
    batch_id: int
    rows: int
    new: bool
    message: str


def _check_path(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except OSError as error:
        raise UsageError(f"{path}: {error.strerror}") from None
    if stat.S_ISDIR(mode):
        raise UsageError(f"{path}: is a directory, not a data file")
    if not stat.S_ISREG(mode):
        raise UsageError(f"{path}: is not a regular file (FIFO, device or socket)")


def ingest_file(workspace: Workspace, source: Path) -> IngestResult:
    """Append one file as a batch. The same content again is a no-op that says so."""
    source = Path(source)
    _check_path(source)
    contract = workspace.config.data
    if not contract.features:
        raise UsageError(f"{workspace.config_path}: [data] declares no feature columns")
    sha256, _ = file_sha256(source)
    with workspace.store.read() as tx:
        existing = observation_sql.batch_by_sha(tx, sha256)
    if existing:
        return IngestResult(str(source), existing[0], 0, False,
                            f"{source.name}: already ingested as batch {existing[0]} "
                            f"(from {existing[1]}); nothing to do")
    batches = workspace.data_root / "batches"
    batches.mkdir(parents=True, exist_ok=True)
    target = batches / f"{sha256}.parquet"
    fd, temp_name = tempfile.mkstemp(dir=batches, prefix=".staging-", suffix=".parquet")
    os.close(fd)
    temp = Path(temp_name)
    try:
        staged = observation_sql.stage_batch(source, contract, temp)
        for regime in staged.regimes:
            validate_name(regime, f"regime (in column {contract.regime_column})")
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    with workspace.store.write("ingest") as tx:
        existing = observation_sql.batch_by_sha(tx, sha256)
        if existing:
            return IngestResult(str(source), existing[0], 0, False,
                                f"{source.name}: already ingested as batch {existing[0]}")
        for regime in staged.regimes:
            registry_sql.ensure_regime(tx, regime)
        batch_id = observation_sql.insert_batch(
            tx, sha256=sha256, source=source.name, staged=staged,
            path=target.relative_to(workspace.root).as_posix())
    return IngestResult(str(source), batch_id, staged.rows, True,
                        f"{source.name}: batch {batch_id}, {staged.rows:,} rows"
                        + (f", regimes {', '.join(staged.regimes)}" if staged.regimes else ""))

"""Ingesting production observations and late labels: validate, stage outside the lock,
register in one write unit.

Every bad input fails with one UsageError line (exit 2) naming the file, the line or row, the
column and what is wrong, and leaves the store and the batch folder as they were.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mlops_tui.core.errors import DiskFullError, UsageError
from mlops_tui.core.names import shown_column, validate_name
from mlops_tui.core.regimes import parse_window, window_count, window_origin
from mlops_tui.services.workspace import Workspace
from mlops_tui.store import labels as label_sql
from mlops_tui.store import observations as observation_sql
from mlops_tui.store import registry as registry_sql
from mlops_tui.store import space

CHUNK = 1 << 20
TEXT_SUFFIXES = (".csv", ".txt", ".tsv")


@dataclass(frozen=True)
class IngestResult:
    source: str
    batch_id: int
    rows: int
    new: bool
    message: str


def _check_path(path: Path, max_mb: int) -> int:
    """A regular file within the size limit; returns its size."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except OSError as error:
        raise UsageError(f"{path}: {error.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise UsageError(f"{path}: is a directory, not a data file")
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"{path}: is not a regular file (FIFO, device or socket)")
    if info.st_size > max_mb * 1024 * 1024:
        raise UsageError(f"{path}: {info.st_size / 1024 / 1024:,.1f} MB is above the limit of "
                         f"{max_mb:,} MB ([data] max_file_mb)")
    if info.st_size == 0:
        raise UsageError(f"{path}: the file is empty")
    return info.st_size


@dataclass(frozen=True)
class ScannedFile:
    sha256: str
    header: list[str]  # text files: the header's column names


def scan_file(path: Path) -> ScannedFile:
    """Hash the file in one pass; a text file must be UTF-8 and have unique header names."""
    digest = hashlib.sha256()
    text = path.suffix.lower() in TEXT_SUFFIXES
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    lines_before, first_line = 0, b""
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            if not text:
                continue
            if lines_before == 0 and b"\n" not in first_line:
                first_line += chunk[: chunk.find(b"\n") + 1 if b"\n" in chunk else len(chunk)]
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                line = lines_before + chunk[: error.start].count(b"\n") + 1
                column = error.start - (chunk.rfind(b"\n", 0, error.start) + 1) + 1
                raise UsageError(f"{path}: line {line}, byte {column}: not UTF-8 text "
                                 f"(byte 0x{chunk[error.start]:02x})") from None
            lines_before += chunk.count(b"\n")
        if text:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                raise UsageError(f"{path}: line {lines_before + 1}: not UTF-8 text "
                                 "(the file ends inside a character)") from None
    header: list[str] = []
    if text:
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        decoded = first_line.decode("utf-8").lstrip("\ufeff").rstrip("\r\n")
        header = next(csv.reader([decoded], delimiter=delimiter), [])
        if not any(name.strip() for name in header):
            raise UsageError(f"{path}: line 1: no header (expected the column names)")
        seen, duplicates = set(), []
        for name in header:
            if name in seen and name not in duplicates:
                duplicates.append(name)
            seen.add(name)
        if duplicates:
            raise UsageError(f"{path}: line 1: duplicate column names in the header: "
                             f"{', '.join(map(shown_column, duplicates))}")
    return ScannedFile(digest.hexdigest(), header)


def _parquet_duplicates(path: Path) -> None:
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
    except Exception as error:  # noqa: BLE001 - any reader failure is bad input
        raise UsageError(f"{path}: not a readable Parquet file: {str(error)[:200]}") from None
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UsageError(f"{path}: duplicate column names: "
                         f"{', '.join(map(shown_column, duplicates))}")


def _staging_file(folder: Path, source: Path) -> Path:
    try:
        # the pid keeps leftover clean-up (services/leftovers.py) off a file being staged
        fd, name = tempfile.mkstemp(dir=folder, prefix=f".staging-{os.getpid()}-",
                                    suffix=".parquet")
    except OSError as error:
        if not space.is_disk_full(error):
            raise
        raise space.disk_full(folder, needed=source.stat().st_size,
                              writing=f"the staged copy of {source.name}",
                              outcome="nothing was ingested") from None
    os.close(fd)
    return Path(name)


def _raise_if_full(error: BaseException, workspace: Workspace, source: Path) -> None:
    """The store refused the batch for lack of space and its staged file is gone again:
    report the room there is now (the store says what it was writing)."""
    if isinstance(error, DiskFullError) and not error.detail.get("committed"):
        raise space.disk_full(workspace.store.db_path.parent,
                              writing=f"the store's record of {source.name}",
                              outcome="nothing was ingested") from None


def _check_window_count(workspace: Workspace, source: Path, staged: observation_sql.StagedBatch,
                        held: tuple[int, int, datetime | None, datetime | None],
                        previous: list) -> None:
    """A window too small for the history would make drift cut millions of windows."""
    contract = workspace.config.data
    _, rows, low, high = held
    times = [t for t in (low, high, staged.time_min, staged.time_max) if t is not None]
    if not times:
        return
    first, last = min(times), max(times)
    # the grid drift will cut: anchored to the first batch, else to this one
    anchor = next((low for _, low, _ in previous if low is not None), staged.time_min)
    spec = parse_window(contract.window,
                        window_origin(contract.window_origin, contract.window, anchor))
    count = window_count(spec, first, last, rows + staged.rows)
    if count <= contract.max_windows:
        return
    cut = (f"{rows + staged.rows:,} rows" if spec.rows
           else f"{first:%Y-%m-%d}..{last:%Y-%m-%d}")
    raise UsageError(f"{source}: window {contract.window!r} would cut {cut} into {count:,} "
                     f"windows, above [data] max_windows = {contract.max_windows} "
                     "(use a longer window)")


def ingest_file(workspace: Workspace, source: Path, now: datetime | None = None
                ) -> IngestResult:
    """Append one file as a batch. The same content again is a no-op that says so.

    Timestamps after `now` (default the wall clock) + [data] latest_ahead are refused."""
    source = Path(source)
    contract = workspace.config.data
    _check_path(source, contract.max_file_mb)
    if not contract.features:
        raise UsageError(f"{workspace.config_path}: [data] declares no feature columns")
    scanned = scan_file(source)
    if source.suffix.lower() == ".parquet":
        _parquet_duplicates(source)
    sha256 = scanned.sha256
    with workspace.store.read() as tx:
        existing = observation_sql.batch_by_sha(tx, sha256)
        previous = [(workspace.root / p, low, high)
                    for p, low, high in observation_sql.batch_ranges(tx)]
        held = observation_sql.batch_summary(tx)
    if existing:
        return IngestResult(str(source), existing[0], 0, False,
                            f"{source.name}: already ingested as batch {existing[0]} "
                            f"(from {existing[1]}); nothing to do")
    batches = workspace.data_root / "batches"
    batches.mkdir(parents=True, exist_ok=True)
    target = batches / f"{sha256}.parquet"
    temp = _staging_file(batches, source)
    try:
        staged = observation_sql.stage_batch(source, contract, temp, previous, now=now)
        for regime in staged.regimes:
            validate_name(regime, f"regime (in column {contract.regime_column} of {source})")
        _check_window_count(workspace, source, staged, held, previous)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    try:
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
    except BaseException as error:
        with workspace.store.read() as tx:
            registered = observation_sql.batch_by_sha(tx, sha256)
        if not registered:
            target.unlink(missing_ok=True)  # nothing written when the store refused it
            _raise_if_full(error, workspace, source)
        raise
    note = (f", {staged.nan_replaced} NaN/inf values kept as missing" if staged.nan_replaced
            else "")
    return IngestResult(str(source), batch_id, staged.rows, True,
                        f"{source.name}: batch {batch_id}, {staged.rows:,} rows"
                        + (f", regimes {', '.join(staged.regimes)}" if staged.regimes else "")
                        + note)


@dataclass(frozen=True)
class LabelsResult:
    source: str
    rows: int
    matched: int
    new: bool
    message: str


def ingest_labels(workspace: Workspace, source: Path) -> LabelsResult:
    """Join late labels (id column + label column) onto ingested observations by id."""
    source = Path(source)
    contract = workspace.config.data
    if not contract.label_column:
        raise UsageError(f"{workspace.config_path}: [data] declares no label_column")
    _check_path(source, contract.max_file_mb)
    scanned = scan_file(source)
    if source.suffix.lower() == ".parquet":
        _parquet_duplicates(source)
    with workspace.store.read() as tx:
        done = label_sql.label_file(tx, scanned.sha256)
        files = [workspace.root / p for p in observation_sql.batch_paths(tx)]
    if done:
        return LabelsResult(str(source), done[0], done[1], False,
                            f"{source.name}: labels already ingested ({done[0]:,} rows); "
                            "nothing to do")
    staging = workspace.data_root / "labels"
    staging.mkdir(parents=True, exist_ok=True)
    target = staging / f"{scanned.sha256}.parquet"
    temp = _staging_file(staging, source)
    try:
        rows, matched = label_sql.stage_labels(source, contract, temp, files)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    try:
        with workspace.store.write("labels") as tx:
            if label_sql.label_file(tx, scanned.sha256):
                return LabelsResult(str(source), rows, matched, False,
                                    f"{source.name}: labels already ingested")
            label_sql.insert_labels(tx, target, source.name, scanned.sha256, rows, matched)
    except BaseException as error:
        with workspace.store.read() as tx:
            registered = label_sql.label_file(tx, scanned.sha256)
        if not registered:  # a commit whose checkpoint failed still needs its file
            target.unlink(missing_ok=True)
            _raise_if_full(error, workspace, source)
        raise
    unmatched = rows - matched
    return LabelsResult(str(source), rows, matched, True,
                        f"{source.name}: {rows:,} labels, {matched:,} joined to observations"
                        + (f", {unmatched:,} ids not ingested yet (kept; they join when "
                           "their observations arrive)" if unmatched else ""))

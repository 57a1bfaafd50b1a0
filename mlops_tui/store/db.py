"""Short-lived, locked units of work on the DuckDB store file.

Each unit of work: take the sidecar flock (shared to read, exclusive to write), ATTACH the
store file to a process-wide in-memory DuckDB instance, run one explicit transaction,
DETACH. Detaching releases DuckDB's own file lock, so no process keeps the store open
between operations, while the in-memory instance saves the ~12 ms a fresh DuckDB instance
costs on every connect.
"""

from __future__ import annotations

import itertools
import math
import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from mlops_tui.core.config import RANGES
from mlops_tui.core.errors import (
    ConflictError,
    IntegrityError,
    NotFoundError,
    ReadOnlyError,
    StoreBusyError,
    UsageError,
)
from mlops_tui.store import faults, space
from mlops_tui.store.lock import hold_lock
from mlops_tui.store.schema import CURRENT_SCHEMA, MIGRATIONS

FAULT_ENV = "MLOPS_TUI_FAULT"  # test-only: "<point>" or "<point>@<unit>", see _fault()
FAULT_POINTS = ("after_begin", "before_commit", "after_commit")
LOCK_TIMEOUT_ENV = "MLOPS_TUI_LOCK_TIMEOUT"

_instance: duckdb.DuckDBPyConnection | None = None
_instance_guard = threading.RLock()  # one unit of work at a time per process
_aliases = itertools.count(1)  # attach names: unique within the process
# Store files whose schema this process has checked, with their stat signature then: the
# check is skipped until the file changes (a write or a migration by anyone).
_schema_checked: dict[str, tuple] = {}


def _base() -> duckdb.DuckDBPyConnection:
    global _instance
    if _instance is None:
        instance = duckdb.connect(":memory:")
        instance.execute("SET TimeZone = 'UTC'")  # timestamps are UTC everywhere
        _instance = instance
    return _instance


def _drop_base() -> None:
    """Start a fresh instance next time: a fatal DuckDB error may have invalidated this one."""
    global _instance
    instance, _instance = _instance, None
    if instance is not None:
        try:
            instance.close()
        except duckdb.Error:
            pass


@dataclass
class _Attachment:
    cursor: duckdb.DuckDBPyConnection
    unit: str
    committed: bool = False


@contextmanager
def _guarded(timeout: float) -> Iterator[None]:
    """This process's turn at the store; another thread's long unit of work is 'busy' too."""
    if not _instance_guard.acquire(timeout=timeout):
        raise StoreBusyError(
            f"store is busy: another task of this process has held it for {timeout:g}s")
    try:
        yield
    finally:
        _instance_guard.release()


@contextmanager
def scratch() -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor on the in-memory instance for work on files, never on the store."""
    with _instance_guard:
        cursor = _base().cursor()
        try:
            yield cursor
        finally:
            cursor.close()


def naive_utc(value: datetime | None) -> datetime | None:
    """The store keeps naive UTC: convert an aware datetime, keep a naive one (UTC)."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def utcnow() -> datetime:
    """Naive UTC: the store keeps TIMESTAMP columns in UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def _fault(point: str, unit: str) -> None:
    """Kill this process with SIGKILL at `point` when the test-only variable asks for it."""
    wanted = os.environ.get(FAULT_ENV)
    if not wanted:
        return
    name, _, only_unit = wanted.partition("@")
    if name == point and (not only_unit or only_unit == unit):
        os.kill(os.getpid(), signal.SIGKILL)


class Tx:
    """One open transaction: parameterised statements, one per call."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection, read_only: bool) -> None:
        self._cursor = cursor
        self.read_only = read_only

    def execute(self, sql: str, params: Sequence[Any] = ()) -> duckdb.DuckDBPyConnection:
        return self._cursor.execute(sql, list(params))

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        return self._cursor.execute(sql, list(params)).fetchone()

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self._cursor.execute(sql, list(params)).fetchall()

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.one(sql, params)
        return row[0] if row else None

    def arrow(self, sql: str, params: Sequence[Any] = ()):
        """One query's rows as an Arrow table (DuckDB 2 has no fetch_arrow_table)."""
        return self._cursor.sql(sql, params=list(params)).to_arrow_table()


def _env_lock_timeout(text: str) -> float:
    """$MLOPS_TUI_LOCK_TIMEOUT in the range [store] lock_timeout_seconds allows."""
    allowed = RANGES[("store", "lock_timeout_seconds")]
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not allowed.allows(value):
        raise UsageError(f"{LOCK_TIMEOUT_ENV}={text[:40]!r}: must be {allowed.describe()}")
    return value


# Runs inside every write unit, before its body (so it sees the state the unit started
# from), with the unit's transaction and name; returns work to run after the unit committed
# and released the lock, or None. The services set it: upkeep of derived files is theirs.
WriteHook = Callable[[Tx, str], Callable[[], None] | None]


class Store:
    """The workspace's DuckDB file and its lock."""

    def __init__(
        self, db_path: Path, *, lock_timeout: float | None = None, command: str = "mlops-tui",
        write_hook: WriteHook | None = None,
    ) -> None:
        self.db_path = Path(db_path)
        self.lock_path = self.db_path.with_name("store.lock")
        env_timeout = os.environ.get(LOCK_TIMEOUT_ENV)
        self.lock_timeout = (
            lock_timeout if lock_timeout is not None
            else _env_lock_timeout(env_timeout) if env_timeout else 10.0
        )
        self.command = command
        self.write_hook = write_hook

    # -- units of work -------------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self._unit("read", exclusive=False) as tx:
            yield tx

    @contextmanager
    def write(self, unit: str) -> Iterator[Tx]:
        """An exclusive transaction named `unit` (the name the fault hook matches)."""
        with self._unit(unit, exclusive=True) as tx:
            yield tx

    @contextmanager
    def _unit(self, unit: str, *, exclusive: bool, check_schema: bool = True) -> Iterator[Tx]:
        after: list[Callable[[], None]] = []
        with self._locked_unit(unit, exclusive=exclusive, check_schema=check_schema,
                               after=after) as tx:
            yield tx
        for work in after:  # the lock is released: the hook's work may read the store
            work()

    def _run_hook(self, tx: Tx, unit: str, after: list[Callable[[], None]]) -> None:
        if self.write_hook is None:
            return
        work = self.write_hook(tx, unit)
        if work is not None:
            after.append(work)

    @contextmanager
    def _locked_unit(self, unit: str, *, exclusive: bool, check_schema: bool,
                     after: list[Callable[[], None]]) -> Iterator[Tx]:
        if not self.db_path.exists():
            raise NotFoundError(
                f"no store at {self.db_path}: run 'mlops-tui init' or pass --workspace"
            )
        deadline = time.monotonic() + self.lock_timeout
        with _guarded(self.lock_timeout), hold_lock(
            self.lock_path, exclusive=exclusive, timeout=self.lock_timeout, command=self.command
        ):
            if exclusive and not os.access(self.db_path.parent, os.W_OK):
                raise ReadOnlyError(f"workspace {self.db_path.parent} is read-only")
            with self._attached(read_only=not exclusive, unit=unit,
                                deadline=deadline) as attachment:
                cursor = attachment.cursor
                try:
                    if check_schema:
                        signature = self._file_signature()
                        if _schema_checked.get(str(self.db_path)) != signature:
                            self._check_schema(cursor)
                            _schema_checked[str(self.db_path)] = signature
                    cursor.execute("BEGIN TRANSACTION")
                    try:
                        _fault("after_begin", unit)
                        tx = Tx(cursor, read_only=not exclusive)
                        if exclusive and check_schema:
                            self._run_hook(tx, unit, after)
                        yield tx
                        _fault("before_commit", unit)
                        cursor.execute("COMMIT")
                    except BaseException:
                        try:
                            cursor.execute("ROLLBACK")
                        except duckdb.Error:
                            pass
                        raise
                except duckdb.Error as error:
                    mapped = faults.storage_error(self.db_path, error, unit, committed=False)
                    if mapped is None:
                        raise
                    raise mapped from None
                attachment.committed = True
                _fault("after_commit", unit)

    @contextmanager
    def _attached(self, *, read_only: bool, unit: str, deadline: float
                  ) -> Iterator[_Attachment]:
        alias = f"store_{next(_aliases)}"
        cursor = _base().cursor()
        attachment = _Attachment(cursor, unit)
        failed = poisoned = False
        try:
            self._attach(cursor, alias, read_only=read_only, deadline=deadline)
            cursor.execute(f"USE {alias}")
            try:
                yield attachment
            except BaseException as error:
                failed = True
                poisoned = isinstance(error, (duckdb.FatalException, space.DiskFullError,
                                              IntegrityError))
                raise
            finally:
                try:
                    cursor.execute("USE memory")
                    cursor.execute(f"DETACH {alias}")
                except duckdb.Error as error:
                    poisoned = True
                    if not failed:  # the body's own error, if any, is the one to report
                        raise faults.detach_error(self.db_path, error, attachment.unit,
                                                 committed=attachment.committed) from None
        finally:
            try:
                cursor.close()
            finally:
                if poisoned:
                    _drop_base()

    def _attach(self, cursor: duckdb.DuckDBPyConnection, alias: str, *, read_only: bool,
                deadline: float) -> None:
        """ATTACH the store; while a process outside mlops-tui holds DuckDB's own lock on
        the file, retry with growing, jittered pauses until the lock timeout has passed."""
        mode = "READ_ONLY" if read_only else "READ_WRITE"
        if not math.isfinite(deadline):  # an unvalidated nan/inf timeout must not spin forever
            deadline = time.monotonic()
        pause = 0.02
        while True:
            try:
                cursor.execute(f"ATTACH ? AS {alias} (TYPE DUCKDB, {mode})", [str(self.db_path)])
                return
            except duckdb.Error as error:
                if faults.classify(error) != "locked" or time.monotonic() >= deadline:
                    raise faults.open_error(self.db_path, error, self.lock_timeout) from None
            time.sleep(min(random.uniform(pause / 2, pause), max(deadline - time.monotonic(), 0)))
            pause = min(pause * 2, 0.5)

    def _file_signature(self) -> tuple:
        """Identity and last change of the store and its WAL (stat only: never opened)."""
        signature = []
        for path in (self.db_path, self.db_path.with_name(self.db_path.name + ".wal")):
            try:
                info = path.stat()
            except FileNotFoundError:
                signature.append(None)
                continue
            signature.append((info.st_ino, info.st_size, info.st_mtime_ns))
        return tuple(signature)

    def _check_schema(self, cursor: duckdb.DuckDBPyConnection) -> None:
        version = self._schema_version(cursor)
        if version > CURRENT_SCHEMA:
            raise IntegrityError(
                f"store {self.db_path} has schema {version}, newer than this mlops-tui "
                f"understands ({CURRENT_SCHEMA}); upgrade mlops-tui"
            )
        if version < CURRENT_SCHEMA:
            raise ConflictError(
                f"store {self.db_path} has schema {version}, this mlops-tui needs "
                f"{CURRENT_SCHEMA}: run 'mlops-tui store migrate' (take a backup first)"
            )

    def _schema_version(self, cursor: duckdb.DuckDBPyConnection) -> int:
        try:
            row = cursor.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except duckdb.CatalogException:
            raise IntegrityError(
                f"{self.db_path} is a DuckDB file but not an mlops-tui store (no meta table)"
            ) from None
        if row is None:
            raise IntegrityError(f"{self.db_path} has no schema version")
        return int(row[0])

    # -- lifecycle -----------------------------------------------------------------------

    def create(self) -> str:
        """Create a new store at the current schema; return its store id."""
        if self.db_path.exists():
            raise ConflictError(f"a store already exists at {self.db_path}")
        store_id = str(uuid.uuid4())
        deadline = time.monotonic() + self.lock_timeout
        try:
            with _guarded(self.lock_timeout), hold_lock(
                self.lock_path, exclusive=True, timeout=self.lock_timeout, command=self.command
            ), self._attached(read_only=False, unit="create", deadline=deadline) as attachment:
                cursor = attachment.cursor
                cursor.execute("BEGIN TRANSACTION")
                try:
                    for version in sorted(MIGRATIONS):
                        for statement in MIGRATIONS[version]:
                            cursor.execute(statement)
                    for key, value in (
                        ("schema_version", str(CURRENT_SCHEMA)),
                        ("store_id", store_id),
                        ("created_at", utcnow().isoformat()),
                    ):
                        cursor.execute("INSERT INTO meta VALUES (?, ?)", [key, value])
                    cursor.execute("COMMIT")
                except BaseException:
                    try:
                        cursor.execute("ROLLBACK")
                    except duckdb.Error:
                        pass
                    raise
                attachment.committed = True
        except (duckdb.Error, OSError, space.DiskFullError) as error:
            # A half-made store holds nothing: remove it, so that a retry is not refused.
            for path in (self.db_path, self.db_path.with_name(self.db_path.name + ".wal")):
                path.unlink(missing_ok=True)
            if isinstance(error, space.DiskFullError) or space.is_disk_full(error):
                raise space.disk_full(self.db_path.parent, writing=self.db_path.name,
                                      outcome="no store was created") from None
            raise
        return store_id

    def schema_version(self) -> int:
        with self._unit("schema", exclusive=False, check_schema=False) as tx:
            return self._schema_version(tx._cursor)

    def migrate(self) -> tuple[int, int]:
        """Apply pending migrations in one transaction; return (from, to)."""
        with self._unit("migrate", exclusive=True, check_schema=False) as tx:
            version = self._schema_version(tx._cursor)
            if version > CURRENT_SCHEMA:
                self._check_schema(tx._cursor)
            for target in sorted(v for v in MIGRATIONS if v > version):
                for statement in MIGRATIONS[target]:
                    tx.execute(statement)
            tx.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(CURRENT_SCHEMA)]
            )
            return version, CURRENT_SCHEMA

    def backup(self, destination: Path) -> None:
        """Copy the store into a new DuckDB file (see store/backup.py)."""
        from mlops_tui.store.backup import backup

        backup(self, destination)

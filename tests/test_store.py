"""The DuckDB store: schema, versioning, refusal of foreign files, transactions, lock, backup."""

from __future__ import annotations

import json
import os
import socket
import uuid
from pathlib import Path

import duckdb
import pytest
from conftest import sha256_file

from mlops_tui.core.errors import (
    ConflictError,
    ExitCode,
    IntegrityError,
    MlopsError,
    NotFoundError,
)
from mlops_tui.core.models import DeploymentKind
from mlops_tui.services.deployments import record_deployment
from mlops_tui.store import db as store_db
from mlops_tui.store import deployments as deployment_sql
from mlops_tui.store import registry as registry_sql
from mlops_tui.store.db import Store
from mlops_tui.store.schema import CURRENT_SCHEMA, MIGRATIONS

TABLES = ("meta", "regimes", "data_snapshots", "profiles", "env_snapshots", "code_snapshots",
          "model_versions", "lineage_edges", "deployment_events", "audit", "jobs", "job_events",
          "drift_results", "decisions")
VIEWS = ("current_deployments", "current_jobs")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    created = Store(tmp_path / "db" / "store.duckdb", command="pytest store")
    created.db_path.parent.mkdir()
    created.create()
    return created


def _catalog(store: Store) -> dict[str, str]:
    with store.read() as tx:
        return dict(tx.all(
            "SELECT table_name, table_type FROM information_schema.tables "
            "WHERE table_catalog = current_database()"))


def _attempt(store: Store, operation: str) -> MlopsError:
    """Run one kind of unit of work that must be refused; return the error."""
    with pytest.raises(MlopsError) as raised:
        if operation == "read":
            with store.read() as tx:
                tx.scalar("SELECT 1")
        elif operation == "write":
            with store.write("probe") as tx:
                registry_sql.ensure_regime(tx, "probe")
        elif operation == "migrate":
            store.migrate()
        elif operation == "backup":
            store.backup(store.db_path.parent / "refused-backup.duckdb")
    return raised.value


def test_create_sets_the_current_schema_and_a_store_id(store):
    assert store.schema_version() == CURRENT_SCHEMA
    with store.read() as tx:
        meta = registry_sql.store_meta(tx)
    assert meta["schema_version"] == str(CURRENT_SCHEMA)
    assert uuid.UUID(meta["store_id"])
    assert "created_at" in meta


def test_every_table_and_view_of_the_schema_exists(store):
    catalog = _catalog(store)
    for table in TABLES:
        assert catalog.get(table) == "BASE TABLE", table
    for view in VIEWS:
        assert catalog.get(view) == "VIEW", view


def test_create_refuses_an_existing_store(store):
    before = sha256_file(store.db_path)
    with pytest.raises(ConflictError):
        store.create()
    assert sha256_file(store.db_path) == before


def test_a_missing_store_is_not_found(tmp_path):
    missing = Store(tmp_path / "nothing.duckdb")
    with pytest.raises(NotFoundError) as raised:
        with missing.read():
            pass
    assert "mlops-tui init" in raised.value.message
    assert not missing.db_path.exists()


@pytest.mark.parametrize("operation", ["read", "write", "migrate", "backup"])
def test_a_newer_schema_is_refused_and_left_untouched(store, operation):
    with store.write("simulate-newer") as tx:
        tx.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                   [str(CURRENT_SCHEMA + 1)])
    before = sha256_file(store.db_path)
    error = _attempt(store, operation)
    assert isinstance(error, IntegrityError)
    assert error.code is ExitCode.INTEGRITY and error.kind == "integrity"
    assert f"schema {CURRENT_SCHEMA + 1}, newer" in error.message
    assert sha256_file(store.db_path) == before
    assert not (store.db_path.parent / "refused-backup.duckdb").exists()


def test_an_older_schema_must_be_migrated_explicitly(store, monkeypatch):
    # Schema evolution cannot be produced for real without a future release, so this test
    # pretends this build knows one more migration than the store it created has applied.
    newer = CURRENT_SCHEMA + 1
    monkeypatch.setattr(store_db, "MIGRATIONS",
                        {**MIGRATIONS, newer: ["CREATE TABLE future_things (x INTEGER)"]})
    monkeypatch.setattr(store_db, "CURRENT_SCHEMA", newer)
    for operation in ("read", "write"):
        error = _attempt(store, operation)
        assert isinstance(error, ConflictError), operation
        assert error.code is ExitCode.CONFLICT
        assert "mlops-tui store migrate" in error.message
    assert "future_things" not in _catalog_unchecked(store)

    assert store.migrate() == (CURRENT_SCHEMA, newer)
    assert store.schema_version() == newer
    assert _catalog(store).get("future_things") == "BASE TABLE"
    with store.write("after-migrate") as tx:
        registry_sql.ensure_regime(tx, "works")
    assert store.migrate() == (newer, newer)  # nothing left to do


def _catalog_unchecked(store: Store) -> set[str]:
    connection = duckdb.connect(str(store.db_path), read_only=True)
    try:
        return {r[0] for r in connection.execute(
            "SELECT table_name FROM information_schema.tables").fetchall()}
    finally:
        connection.close()


@pytest.mark.parametrize("content", [b"", b"not a database\n" * 300, os.urandom(8192)],
                         ids=["empty", "text", "random"])
@pytest.mark.parametrize("operation", ["read", "write", "migrate"])
def test_a_file_that_is_not_duckdb_is_refused_and_unchanged(tmp_path, content, operation):
    path = tmp_path / "store.duckdb"
    path.write_bytes(content)
    error = _attempt(Store(path), operation)
    assert isinstance(error, IntegrityError) and error.code is ExitCode.INTEGRITY
    assert "not a readable mlops-tui store" in error.message
    assert path.read_bytes() == content
    assert not path.with_name("store.duckdb.wal").exists()


@pytest.mark.parametrize("operation", ["read", "write", "migrate"])
def test_a_duckdb_file_without_meta_is_refused_and_unchanged(tmp_path, operation):
    path = tmp_path / "store.duckdb"
    connection = duckdb.connect(str(path))
    connection.execute("CREATE TABLE other_app (x INTEGER)")
    connection.execute("INSERT INTO other_app VALUES (42)")
    connection.close()
    before = sha256_file(path)
    error = _attempt(Store(path), operation)
    assert isinstance(error, IntegrityError)
    assert "not an mlops-tui store (no meta table)" in error.message
    assert sha256_file(path) == before


def test_an_exception_rolls_back_everything(store):
    with pytest.raises(RuntimeError, match="boom"):
        with store.write("half-done") as tx:
            registry_sql.ensure_regime(tx, "ghost")
            deployment_sql.append_audit(tx, actor="t", action="x", subject="ghost")
            assert registry_sql.regime_names(tx) == ["ghost"]  # visible inside the unit
            raise RuntimeError("boom")
    with store.read() as tx:
        assert registry_sql.regime_names(tx) == []
        assert deployment_sql.audit_entries(tx) == []
    with store.write("next") as tx:  # the store is usable afterwards
        registry_sql.ensure_regime(tx, "real")
    with store.read() as tx:
        assert registry_sql.regime_names(tx) == ["real"]


def test_a_failed_statement_rolls_back_the_unit(store):
    with pytest.raises(duckdb.Error):
        with store.write("dup") as tx:
            registry_sql.ensure_regime(tx, "kept-out")
            tx.execute("INSERT INTO meta VALUES ('schema_version', 'x')")  # primary key clash
    with store.read() as tx:
        assert registry_sql.regime_names(tx) == []


def test_the_lock_file_names_its_writer_while_a_write_is_held(store):
    with store.write("named") as tx:
        holder = json.loads(store.lock_path.read_text())
        registry_sql.ensure_regime(tx, "x")
    assert holder["pid"] == os.getpid()
    assert holder["command"] == "pytest store"
    assert holder["host"] == socket.gethostname()
    assert holder["since"]
    assert store.lock_path.read_text() == ""  # cleared when the writer leaves
    with store.read():
        assert store.lock_path.read_text() == ""  # readers do not claim it


def test_environment_snapshots_are_shared_by_hash(workspace, register):
    first = register(seed=1)
    second = register(seed=2, regime="b")
    assert first.env_hash == second.env_hash
    assert first.artifact.sha256 != second.artifact.sha256
    with workspace.store.read() as tx:
        assert registry_sql.counts(tx)["env_snapshots"] == 1
        assert registry_sql.counts(tx)["model_versions"] == 2
        stored = registry_sql.get_env(tx, first.env_hash)
    assert stored is not None and stored.packages["scikit-learn"]


def test_backup_is_a_readable_store_with_the_same_rows(workspace, register, tmp_path):
    version = register(with_data=True)
    register(seed=2)
    record_deployment(workspace, kind=DeploymentKind.ACTIVE, subject="production",
                      version_id=version.id, action="deploy", reason="test")
    destination = tmp_path / "backups" / "copy.duckdb"
    destination.parent.mkdir()
    workspace.store.backup(destination)
    copy = Store(destination)
    assert copy.schema_version() == CURRENT_SCHEMA
    with workspace.store.read() as tx:
        original_counts = registry_sql.counts(tx)
        original_versions = registry_sql.list_versions(tx)
        original_meta = registry_sql.store_meta(tx)
        original_events = deployment_sql.history(tx)
    with copy.read() as tx:
        assert registry_sql.counts(tx) == original_counts
        assert registry_sql.list_versions(tx) == original_versions
        assert registry_sql.store_meta(tx) == original_meta
        assert deployment_sql.history(tx) == original_events
    assert original_counts["model_versions"] == 2 and original_counts["data_snapshots"] == 2
    with pytest.raises(ConflictError):
        workspace.store.backup(destination)  # never overwrites


def test_a_schema_5_store_migrates_to_data_time_with_old_events_backfilled(tmp_path, monkeypatch):
    """v6 adds `data_time` to every event table: an old row gets the newest observation time
    ingested by the moment it was written (NULL before any data), and the current-state
    views carry it."""
    from datetime import datetime

    from mlops_tui.store import jobs as job_sql

    monkeypatch.setattr(store_db, "MIGRATIONS", {k: v for k, v in MIGRATIONS.items() if k <= 5})
    monkeypatch.setattr(store_db, "CURRENT_SCHEMA", 5)
    old = Store(tmp_path / "store.duckdb")
    old.create()
    day = lambda d, h=0: datetime(2026, 1, d, h)  # noqa: E731
    with old.write("seed") as tx:  # plain SQL: the v5 tables as an older build wrote them
        for batch, (newest, ingested) in enumerate([(day(3), day(10)), (day(6), day(12))], 1):
            tx.execute("INSERT INTO batches VALUES (?, ?, 'f.csv', 'p', 10, ?, ?, '[]', ?)",
                       [batch, f"sha{batch}", day(1), newest, ingested])
        for seq, at in ((1, day(9)), (2, day(11)), (3, day(13))):  # before, between, after
            tx.execute("INSERT INTO deployment_events VALUES (?, 'active', 'production', NULL, "
                       "?, 'deploy', 'me', 'r', ?, false, '{}')", [seq, seq, at])
            tx.execute("INSERT INTO audit VALUES (?, ?, 'me', 'deploy', 'target production', "
                       "'{}', ?)", [seq, at, seq])
        tx.execute("INSERT INTO pin_events VALUES (1, 'active', 'production', 3, false, 'me', "
                   "'r', ?)", [day(12, 6)])
        tx.execute("INSERT INTO jobs VALUES ('j1', 'a', 'local', ?, '{}')", [day(11)])
        tx.execute("INSERT INTO job_events VALUES (1, 'j1', 'requested', ?, '', '{}')", [day(11)])
        tx.execute("INSERT INTO decisions VALUES (1, ?, 'a', NULL, 'wait', 'r', '{}', NULL)",
                   [day(13)])
    monkeypatch.undo()
    assert old.migrate() == (5, CURRENT_SCHEMA)
    with old.read() as tx:
        assert [(e.seq, e.data_time and e.data_time.replace(tzinfo=None))
                for e in reversed(deployment_sql.history(tx))] == [
            (1, None), (2, day(3)), (3, day(6))]
        assert deployment_sql.current(tx, DeploymentKind.ACTIVE, "production").data_time \
            .replace(tzinfo=None) == day(6)
        assert [a.data_time.replace(tzinfo=None) if a.data_time else None
                for a in reversed(deployment_sql.audit_entries(tx))] == [None, day(3), day(6)]
        for table, expected in (("pin_events", day(6)), ("job_events", day(3)),
                                ("decisions", day(6))):
            assert tx.scalar(f"SELECT data_time FROM {table}") == expected, table
        assert job_sql.get_job(tx, "j1").data_time.replace(tzinfo=None) == day(3)
        # the view still resolves the live pin
        assert not deployment_sql.current(tx, DeploymentKind.ACTIVE, "production").pinned

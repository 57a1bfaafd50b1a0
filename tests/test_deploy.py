"""Deploy, rollback, pins and the environment gate: real stores, real artifacts, the real CLI.

Every refusal is checked for its exit code, its one-line message, and that nothing was
written (a refused hostile artifact: exactly one audit row).
"""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import UTC, datetime

import pytest
from conftest import host_environment, register_real_version, run_cli

from mlops_tui.core.errors import ConflictError, IntegrityError, NotFoundError, UsageError
from mlops_tui.core.fingerprint import environment_hash
from mlops_tui.core.models import DeploymentKind, EnvSnapshot
from mlops_tui.services import serving
from mlops_tui.services.deployment_reads import audit_log, history, pins, serving_state
from mlops_tui.services.deployments import (
    deploy,
    plan_rollback,
    record_deployment,
    resume,
    rollback,
)
from mlops_tui.services.maintenance import verify_store
from mlops_tui.services.workspace import open_workspace
from mlops_tui.store import deployments as deployment_sql
from mlops_tui.store import registry as registry_sql


def counts(workspace) -> dict[str, int]:
    with workspace.store.read() as tx:
        return registry_sql.counts(tx)


def env_with(base: EnvSnapshot, **packages: str | None) -> EnvSnapshot:
    """`base` with some packages at other versions (None: removed), hash recomputed."""
    changed = dict(base.packages)
    for name, version in packages.items():
        name = name.replace("_", "-")
        if version is None:
            changed.pop(name, None)
        else:
            changed[name] = version
    return dataclasses.replace(
        base, packages=changed, source="test",
        hash=environment_hash(base.python_version, base.implementation, base.platform, changed))


def bump(version: str, position: int) -> str:
    parts = [int(p) for p in version.split(".")[:3]] + [0] * 3
    parts[position] += 1
    return ".".join(str(p) for p in parts[:3])


@pytest.fixture
def three(workspace):
    """v1, v2, v3 of regime `a` (host environment) and v4 of regime `b`."""
    for seed in (1, 2, 3):
        register_real_version(workspace, seed=seed)
    register_real_version(workspace, regime="b", seed=4)
    return workspace


# -- the service --------------------------------------------------------------------------


def test_deploy_and_rollback_append_events_with_audit_pin_and_serving(three):
    ws = three
    first = deploy(ws, "v1", reason="go live", expect_current=None)
    assert first.event.from_version is None and first.event.to_version == 1
    assert first.gate.verdict.label == "compatible"
    deploy(ws, "v2", reason="better", expect_current="v1")
    third = deploy(ws, "v3", reason="best")
    assert third.serving.generation == third.event.seq

    back = rollback(ws, reason="v3 misbehaves")
    assert (back.event.from_version, back.event.to_version, back.event.action) == (3, 2,
                                                                                  "rollback")
    assert "rolled back: v3 -> v2" in back.message
    again = rollback(ws, reason="retried by a script")
    assert again.event is None and "already rolled back to v2" in again.message
    further = rollback(ws, to="v1", reason="back to the first")
    assert further.event.to_version == 1

    events = history(ws, target="production")
    assert [(e.from_version, e.to_version) for e in reversed(events)] == [
        (None, 1), (1, 2), (2, 3), (3, 2), (2, 1)]  # append-only: nothing rewritten
    audit = {a.event_seq: a for a in audit_log(ws) if a.event_seq is not None}
    assert set(audit) == {e.seq for e in events}
    undo = audit[back.event.seq].detail
    assert undo["reason"] == "v3 misbehaves" and undo["undoes"] == third.event.seq
    assert undo["drift"] == {"state": "unknown", "why": "no drift results in the store"}
    assert undo["gate"]["environment"] == "host" and undo["gate"]["verdict"] == "compatible"
    assert undo["pinned"] is True and undo["forced"] is False
    assert audit[back.event.seq].actor == back.event.actor != ""

    manifest = serving.current_manifest(ws)
    assert manifest["targets"]["production"]["version"] == "v1"
    assert serving.inspect(ws) == []
    assert verify_store(ws).ok


def test_a_manual_change_pins_until_ct_resume(three):
    ws = three
    record_deployment(ws, kind=DeploymentKind.ACTIVE, subject="production", version_id="v1",
                      action="auto-deploy", reason="ct: regime a is back")
    assert pins(ws) == []
    assert not serving_state(ws).active["production"].pinned
    deploy(ws, "v2", reason="operator knows better")
    [pin] = pins(ws)
    assert (pin.kind, pin.subject, pin.version, pin.reason) == (
        DeploymentKind.ACTIVE, "production", 2, "operator knows better")
    assert serving_state(ws).active["production"].pinned

    with pytest.raises(ConflictError, match="pinned to v2 by a manual change"):
        record_deployment(ws, kind=DeploymentKind.ACTIVE, subject="production",
                          version_id="v3", action="auto-deploy", reason="ct: regime b")
    resumed = resume(ws, target="production", reason="stable again")
    assert resumed.changed and pins(ws) == []
    assert not serving_state(ws).active["production"].pinned
    assert history(ws, target="production")[0].pinned  # the event itself is not rewritten
    assert not resume(ws, target="production").changed
    assert [a.action for a in audit_log(ws, limit=1)] == ["resume"]
    assert record_deployment(ws, kind=DeploymentKind.ACTIVE, subject="production",
                             version_id="v3", action="auto-deploy", reason="ct").event

    deploy(ws, "v3", champion_of="a", reason="crowned")
    assert [(p.kind, p.subject) for p in pins(ws)] == [(DeploymentKind.CHAMPION, "a")]
    deploy(ws, "v1", reason="again")  # a new manual change pins again
    assert {p.subject for p in pins(ws)} == {"a", "production"}
    with pytest.raises(NotFoundError, match="unknown target 'nowhere'"):
        resume(ws, target="nowhere")


def test_champions_deploy_and_roll_back_by_regime(three):
    ws = three
    deploy(ws, "v1", champion_of="a")
    promoted = deploy(ws, "v2", champion_of="a", reason="better holdout")
    assert promoted.event.action == "promote" and promoted.gate is None
    back = rollback(ws, regime="a", reason="v2 overfits")
    assert back.event.kind is DeploymentKind.CHAMPION and back.event.to_version == 1
    assert serving.current_manifest(ws)["champions"]["a"]["version"] == "v1"

    with pytest.raises(ConflictError, match="trained for regime b, not a"):
        deploy(ws, "v4", champion_of="a")
    forced = deploy(ws, "v4", champion_of="a", force=True, reason="b's model fits a too")
    assert forced.event.to_version == 4
    detail = audit_log(ws, limit=1)[0].detail
    assert detail["forced"] is True and detail["regime_mismatch"] == {"trained_for": "b"}


def test_the_rollback_plan_matches_what_rollback_does(three):
    ws = three
    deploy(ws, "v1")
    deploy(ws, "v3")
    plan = plan_rollback(ws)
    assert plan.version.id == "v1" and plan.current.to_version == 3
    assert counts(ws)["deployment_events"] == 2  # planning writes nothing
    assert rollback(ws).event.to_version == plan.version.number


def test_a_stale_view_is_refused_after_the_checks(three, monkeypatch):
    """The write compares with what the checks saw: a change in between is a conflict."""
    ws = three
    deploy(ws, "v1")
    from mlops_tui.services import deployments as service

    original = service._check_change

    def slow_checks(*args, **kwargs):
        checked = original(*args, **kwargs)
        record_deployment(ws, kind=DeploymentKind.ACTIVE, subject="production",
                          version_id="v3", action="deploy", reason="another operator",
                          pinned=True)
        return checked

    monkeypatch.setattr(service, "_check_change", slow_checks)  # another writer, for real
    with pytest.raises(ConflictError, match="changed while checking"):
        deploy(ws, "v2")
    assert serving_state(ws).active["production"].to_version == 3


# -- bad input, through the CLI -------------------------------------------------------------


def test_bad_input_is_refused_with_its_exit_code_and_nothing_written(three):
    ws = three
    before = counts(ws)

    def refused(code: int, *args: str) -> dict:
        returned, out, err = run_cli(*args, "--json", workspace=ws)
        assert returned == code, (returned, out, err)
        assert "Traceback" not in err and err.startswith("error: ")
        assert len(err.strip().splitlines()) == 1
        return json.loads(out)["error"]

    def raised(error_type, call, *args, **kwargs) -> str:
        with pytest.raises(error_type) as caught:
            call(ws, *args, **kwargs)
        return caught.value.message

    assert "unknown version 'v99'" in refused(2, "deploy", "v99")["message"]
    assert "no deployment history" in refused(3, "rollback")["message"]
    assert "needs --reason" in refused(2, "deploy", "v1", "--force")["message"]
    message = raised(NotFoundError, deploy, "v1", target="prodution")
    assert "unknown target 'prodution'" in message and "did you mean production" in message
    assert "--create-target" in message
    assert "unknown target 'staging'" in raised(NotFoundError, rollback, target="staging")
    assert "unknown regime 'c'" in raised(NotFoundError, rollback, regime="c")
    assert "invalid target" in raised(UsageError, deploy, "v1", target="../etc")
    assert "not both" in raised(UsageError, deploy, "v1", target="p", champion_of="a")
    assert "trained for regime b, not a" in raised(ConflictError, deploy, "v4",
                                                   champion_of="a")
    assert counts(ws) == before

    deploy(ws, "v1")
    assert "no earlier version" in raised(ConflictError, rollback)
    error = refused(3, "deploy", "v2", "--expect-current", "v3")
    assert "served by v1, not v3" in error["message"] and error["detail"] == {"current": "v1"}
    assert "served by v1, not nothing" in raised(ConflictError, deploy, "v2",
                                                 expect_current="none")
    assert "served by v1, not v2" in raised(ConflictError, rollback, to="v3",
                                            expect_current="v2")
    assert counts(ws) == before | {"deployment_events": 1, "audit": before["audit"] + 1}


def test_cli_deploy_rollback_and_resume(three):
    ws = three
    code, out, err = run_cli("deploy", "v1", "--reason", "first", "--json", workspace=ws)
    assert code == 0, err
    document = json.loads(out)
    assert document["changed"] and document["event"]["to"] == "v1"
    assert document["gate"]["verdict"] == "compatible" and document["warnings"] == []
    assert document["serving"]["generation"] == 1
    deploy(ws, "v2")
    code, out, err = run_cli("rollback", "--target", "production", "--reason", "bad", "--json",
                             workspace=ws)
    assert code == 0, err
    assert json.loads(out)["event"]["from"] == "v2" and json.loads(out)["event"]["to"] == "v1"
    code, out, err = run_cli("rollback", "--target", "production", workspace=ws)
    assert code == 0 and "nothing to do" in out, err
    code, out, _ = run_cli("deployments", "list", "--json", workspace=ws)
    listed = json.loads(out)
    assert listed["targets"]["production"]["pinned"] is True
    assert listed["pins"] == [{"kind": "active", "subject": "production", "version": "v1",
                               "since": listed["pins"][0]["since"], "by": listed["pins"][0]["by"],
                               "reason": "bad"}]
    code, out, err = run_cli("ct", "resume", "--target", "production", "--json", workspace=ws)
    assert code == 0 and json.loads(out)["changed"], err
    assert pins(ws) == [] and not serving_state(ws).active["production"].pinned


def test_an_artifact_that_fails_verification_is_refused_with_one_audit_row(three):
    ws = three
    deploy(ws, "v1")
    before = counts(ws)
    generation = serving.current_manifest(ws)["generation"]
    with ws.store.read() as tx:
        blob = ws.root / registry_sql.get_version(tx, 2).artifact.path
    os.chmod(blob, 0o644)
    blob.write_bytes(blob.read_bytes()[:-10] + b"tampered!!")  # same size, other bytes

    code, out, err = run_cli("deploy", "v2", "--json", workspace=ws)
    assert code == 5, err
    error = json.loads(out)["error"]
    assert error["kind"] == "integrity"
    assert "v2 failed verification, nothing deployed" in error["message"]
    assert "does not match the recorded" in error["message"]
    assert counts(ws) == before | {"audit": before["audit"] + 1}
    [refusal] = audit_log(ws, limit=1)
    assert refusal.action == "deploy-refused" and refusal.subject == "active:production"
    assert refusal.detail["version"] == "v2" and refusal.event_seq is None
    assert serving_state(ws).active["production"].to_version == 1
    assert serving.current_manifest(ws)["generation"] == generation

    code, _, err = run_cli("rollback", "--to", "v2", workspace=ws)
    assert code == 5 and "v2 failed verification" in err
    assert audit_log(ws, limit=1)[0].action == "rollback-refused"


# -- the environment gate -------------------------------------------------------------------


def test_the_gate_refuses_an_incompatible_version_unless_forced(workspace):
    host = host_environment()
    sklearn_version = host.packages["scikit-learn"]
    register_real_version(workspace, seed=1)
    register_real_version(workspace, seed=2, environment=env_with(
        host, scikit_learn=bump(sklearn_version, 1)))  # a minor change of a needed package
    deploy(workspace, "v1")
    before = counts(workspace)

    code, out, err = run_cli("deploy", "v2", workspace=workspace)
    assert code == 3
    assert "environment gate refused v2: incompatible with host" in err
    assert f"scikit-learn {bump(sklearn_version, 1)} -> {sklearn_version}" in err
    assert "✗ scikit-learn *" in err  # the diff is shown, the needed package marked
    assert counts(workspace) == before
    code, out, _ = run_cli("deploy", "v2", "--json", workspace=workspace)
    gate = json.loads(out)["error"]["detail"]["gate"]
    assert gate["verdict"] == "incompatible"
    assert [c["name"] for c in gate["changes"]] == ["scikit-learn"]
    assert gate["changes"][0]["needed_by_model"] is True

    code, out, err = run_cli("deploy", "v2", "--force", "--reason", "hotfix, tested by hand",
                             "--json", workspace=workspace)
    assert code == 0, err
    assert json.loads(out)["warnings"][0].startswith("forced past the environment gate")
    detail = audit_log(workspace, limit=1)[0].detail
    assert detail["forced"] is True and detail["gate"]["verdict"] == "incompatible"
    assert detail["reason"] == "hotfix, tested by hand"


def test_a_risky_version_is_deployed_with_a_warning(workspace):
    host = host_environment()
    register_real_version(workspace, seed=1, environment=env_with(
        host, numpy=bump(host.packages["numpy"], 2)))  # patch change of a needed package
    code, out, err = run_cli("deploy", "v1", workspace=workspace)
    assert code == 0, err
    assert "warning: v1 is risky on host because numpy" in err
    assert audit_log(workspace, limit=1)[0].detail["gate"]["verdict"] == "risky"


def test_the_gate_can_use_a_captured_image_environment(workspace):
    host = host_environment()
    config = workspace.config_path.read_text().replace(
        'environment = "host"', 'environment = "image:serving-base"')
    workspace.config_path.write_text(config)
    ws = open_workspace(workspace.root)
    register_real_version(ws, seed=1)
    with pytest.raises(ConflictError, match="env capture --image serving-base"):
        deploy(ws, "v1")

    image_env = dataclasses.replace(env_with(host, scikit_learn=bump(
        host.packages["scikit-learn"], 0)), source="image:serving-base",
        captured_at=datetime.now(UTC))
    with ws.store.write("test-capture") as tx:
        registry_sql.put_env(tx, image_env)
    with pytest.raises(ConflictError, match="incompatible with image:serving-base"):
        deploy(ws, "v1")
    same = dataclasses.replace(host, source="image:serving-base",
                               captured_at=datetime.now(UTC))
    with ws.store.write("test-capture") as tx:
        tx.execute("DELETE FROM env_snapshots WHERE hash = ?", [image_env.hash])
        tx.execute("UPDATE env_snapshots SET source = ?, captured_at = ? WHERE hash = ?",
                   [same.source, datetime.now(UTC).replace(tzinfo=None), same.hash])
    result = deploy(ws, "v1")
    assert result.gate.environment == "image:serving-base"
    assert result.gate.verdict.label == "compatible"


# -- the drift state and old stores --------------------------------------------------------


def test_the_audit_row_records_the_drift_state_at_that_moment(three):
    ws = three
    deploy(ws, "v1")
    assert audit_log(ws, limit=1)[0].detail["drift"]["state"] == "unknown"
    features = [("r1", "a", "2026-01-01 00:00", "2026-01-01 06:00", "f1", "drift"),
                ("r1", "a", "2026-01-01 06:00", "2026-01-01 12:00", "f1", "drift"),
                ("r1", "a", "2026-01-01 06:00", "2026-01-01 12:00", "f2", "drift"),
                ("r1", "a", "2026-01-01 06:00", "2026-01-01 12:00", "f3", "inconclusive")]
    with ws.store.write("test-drift") as tx:
        for run, regime, start, end, feature, verdict in features:
            tx.execute(
                "INSERT INTO drift_results (run_id, regime, window_start, window_end, feature, "
                "test, statistic, threshold, verdict, reason, computed_at) "
                "VALUES (?, ?, ?, ?, ?, 'psi', 0.3, 0.1, ?, '', now())",
                [run, regime, start, end, feature, verdict])
    deploy(ws, "v2")
    drift = audit_log(ws, limit=1)[0].detail["drift"]
    assert drift["state"] == "drift" and drift["regime"] == "a"
    assert drift["verdicts"] == {"drift": 2, "inconclusive": 1}
    assert drift["window"].startswith("2026-01-01T06:00:00")

    with ws.store.write("test-drift") as tx:  # the drift engine's own window verdicts
        tx.execute("INSERT INTO drift_runs (run_id, computed_at, settings) "
                   "VALUES ('r2', now(), '{}')")
        for start, end, verdict, share in (("2026-01-02 00:00", "2026-01-02 06:00", "drift", 1.0),
                                           ("2026-01-02 06:00", "2026-01-02 12:00", "ok", 0.2)):
            tx.execute(
                "INSERT INTO drift_windows (run_id, window_start, window_end, rows, regime, "
                "regime_method, mixed, reference_basis, drift_share, verdict) "
                "VALUES ('r2', ?, ?, 100, 'b', 'column', false, 'champion', ?, ?)",
                [start, end, share, verdict])
    deploy(ws, "v3")
    drift = audit_log(ws, limit=1)[0].detail["drift"]
    assert (drift["state"], drift["regime"], drift["drift_share"]) == ("ok", "b", 0.2)


def test_a_schema_2_store_migrates_and_keeps_its_history(tmp_path, monkeypatch):
    from mlops_tui.store import db as store_db
    from mlops_tui.store.db import Store
    from mlops_tui.store.schema import MIGRATIONS

    old = {v: s for v, s in MIGRATIONS.items() if v <= 2}
    monkeypatch.setattr(store_db, "MIGRATIONS", old)
    monkeypatch.setattr(store_db, "CURRENT_SCHEMA", 2)
    store = Store(tmp_path / "store.duckdb")
    store.create()
    with store.write("test") as tx:  # plain SQL: the v2 table as an older build wrote it
        tx.execute("INSERT INTO deployment_events VALUES (1, 'active', 'production', NULL, 1, "
                   "'deploy', 'someone', 'old', now()::TIMESTAMP, true, '{}')")
    monkeypatch.undo()
    assert store.migrate()[0] == 2
    with store.read() as tx:
        assert deployment_sql.current(tx, DeploymentKind.ACTIVE, "production").pinned
    with store.write("test") as tx:
        deployment_sql.append_pin_event(tx, kind=DeploymentKind.ACTIVE, subject="production",
                                        event_seq=1, pinned=False, actor="me", reason="x")
    with store.read() as tx:
        assert not deployment_sql.current(tx, DeploymentKind.ACTIVE, "production").pinned
        assert len(deployment_sql.history(tx)) == 1


# -- garbage collection protects what serving and rollback need ----------------------------


def test_models_gc_never_collects_what_serves_or_could_be_rolled_back_to(workspace):
    for seed in range(1, 8):
        register_real_version(workspace, seed=seed)
    deploy(workspace, "v1")
    deploy(workspace, "v2")  # v1 is now a rollback target
    deploy(workspace, "v3", champion_of="a")
    code, out, err = run_cli("models", "gc", "--keep", "2", "--dry-run", "--json",
                             workspace=workspace)
    assert code == 0, err
    assert json.loads(out)["collected"] == ["v4", "v5"]
    assert counts(workspace)["audit"] == 7 + 3  # a dry run writes nothing

    code, out, err = run_cli("models", "gc", "--keep", "2", "--json", workspace=workspace)
    assert code == 0, err
    document = json.loads(out)
    assert document["collected"] == ["v4", "v5"]
    assert document["kept_protected"] == ["v1", "v2", "v3"]
    assert document["freed_bytes"] > 0
    with workspace.store.read() as tx:
        kept = {n: (workspace.root / p).exists() for n, p, *_ in
                deployment_sql.artifact_states(tx)}
    assert kept == {1: True, 2: True, 3: True, 4: False, 5: False, 6: True, 7: True}
    assert verify_store(workspace).ok
    with pytest.raises(ConflictError, match="removed by 'models gc'"):
        deploy(workspace, "v4")
    for version in ("v1", "v2", "v3"):  # every protected version still deploys
        assert deploy(workspace, version, target="staging", create_target=True).event
    code, out, _ = run_cli("models", "gc", "--keep", "2", "--json", workspace=workspace)
    assert json.loads(out)["collected"] == []


def test_jobs_gc_keeps_the_jobs_of_protected_versions(workspace):
    from mlops_tui.core.models import JobState
    from mlops_tui.store import jobs as job_sql

    job_ids = [f"{n:08x}-0000-4000-8000-000000000000" for n in range(1, 4)]
    with workspace.store.write("test-jobs") as tx:
        for job_id in job_ids:
            job_sql.insert_job(tx, job_id=job_id, regime="a", runner="local", spec={})
            for state in (JobState.CREATED, JobState.RUNNING, JobState.SUCCEEDED,
                          JobState.INGESTED):
                job_sql.append_event(tx, job_id, state)
    for job_id in job_ids:
        (workspace.jobs_root / job_id).mkdir()
        (workspace.jobs_root / job_id / "job.log").write_text("trained\n")
    for seed, job_id in enumerate(job_ids[:2], 1):
        register_real_version(workspace, seed=seed, job_id=job_id)
    deploy(workspace, "v1")
    with pytest.raises(UsageError, match="invalid age"):
        from mlops_tui.services.gc import collect_jobs

        collect_jobs(workspace, older_than="soon")
    code, out, err = run_cli("jobs", "gc", "--older-than", "0h", "--json", workspace=workspace)
    assert code == 0, err
    document = json.loads(out)
    assert document["removed"] == job_ids[1:] and document["kept_protected"] == job_ids[:1]
    assert [p.name for p in workspace.jobs_root.iterdir()] == job_ids[:1]
    assert audit_log(workspace, limit=1)[0].action == "jobs-gc"


def test_a_forced_deploy_needs_a_reason_in_the_service_too(three):
    with pytest.raises(UsageError, match="--force needs --reason"):
        deploy(three, "v1", force=True, reason="   ")
    with pytest.raises(IntegrityError):
        with three.store.read() as tx:
            version = registry_sql.get_version(tx, 1)
        os.chmod(three.root / version.artifact.path, 0o644)
        (three.root / version.artifact.path).write_bytes(b"not a model")
        deploy(three, "v1", force=True, reason="force does not skip the hash")
    assert history(three) == []


COLD_PATH_PROBE = """
import sys
from mlops_tui.cli.main import run
sys.argv = ["mlops-tui", "--workspace", sys.argv[1], *sys.argv[2:]]
try:
    run()
except SystemExit as done:
    assert done.code == 0, done.code
print(sorted(m for m in ("sklearn", "pandas", "scipy", "skops") if m in sys.modules))
"""


def test_deploy_and_rollback_stay_off_the_heavy_imports(three):
    """A cold deploy or rollback loads neither scikit-learn, pandas, scipy nor skops."""
    import subprocess
    import sys

    for args in (("deploy", "v1"), ("deploy", "v2", "--champion-of", "a"),
                 ("rollback", "--to", "v3")):
        done = subprocess.run([sys.executable, "-c", COLD_PATH_PROBE, str(three.root), *args],
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "[]", (args, done.stdout)


def test_the_host_environment_is_cached_under_a_key_of_what_is_installed(workspace):
    from mlops_tui.services.gate import HOST_ENV_CACHE
    from mlops_tui.services.gate import host_environment as cached_host

    real = cached_host(workspace)
    assert real.hash == host_environment().hash  # the same as a full capture
    cache = workspace.serving_root / HOST_ENV_CACHE
    document = json.loads(cache.read_text())
    assert document["environment"]["packages"]["scikit-learn"] == real.packages["scikit-learn"]
    document["environment"]["packages"]["scikit-learn"] = "0.1"
    cache.write_text(json.dumps(document))
    assert cached_host(workspace).packages["scikit-learn"] == "0.1"  # a hit: no capture
    document["key"] = "something else was installed since"
    cache.write_text(json.dumps(document))
    assert cached_host(workspace).hash == real.hash  # a stale key: captured again
    cache.write_text("{not json")
    assert cached_host(workspace).hash == real.hash

"""Data time: every timeline event records the newest observation time it acted on, beside
the wall clock it was recorded at; `--data-time` sets it (never after the data); the drift
timeline and "what served when" place events by it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest
from conftest import register_real_version, run_cli, sha256_file
from crash_helpers import write_observations

from mlops_tui.core.errors import UsageError
from mlops_tui.core.models import DeploymentKind, JobState
from mlops_tui.services.demo import sample_config_text
from mlops_tui.services.deployment_reads import audit_log, history
from mlops_tui.services.deployments import deploy, record_deployment, resume, rollback
from mlops_tui.services.drift_inputs import read_known
from mlops_tui.services.ingest import ingest_file
from mlops_tui.services.workspace import init_workspace
from mlops_tui.store import jobs as job_sql


def _newest(path) -> datetime:
    return pq.read_table(path, columns=["ts"]).column("ts").to_pylist()[-1].replace(tzinfo=UTC)


@pytest.fixture
def line(tmp_path):
    """A workspace with the sample contract, v1..v3 registered and no data yet; returns
    (workspace, ingest(rows) -> newest observation time)."""
    workspace = init_workspace(tmp_path / "ws", config_text=sample_config_text(),
                               command="tests")
    for seed in (1, 2, 3):
        register_real_version(workspace, seed=seed)
    taken = [0]

    def ingest(rows: int) -> datetime:
        path = write_observations(tmp_path / f"rows-{taken[0]}.parquet", taken[0], rows)
        taken[0] += rows
        ingest_file(workspace, path)
        return _newest(path)

    return workspace, ingest


def test_every_event_records_the_newest_observation_unless_given(line):
    workspace, ingest = line
    before = deploy(workspace, "v1", reason="before any data").event
    assert before.data_time is None and before.timeline_at == before.at
    first = ingest(200)
    second = deploy(workspace, "v2", reason="after the first batch").event
    assert second.data_time == first and second.at > first  # two clocks
    later = ingest(200)
    given = first - timedelta(hours=1)
    back = rollback(workspace, reason="replayed", data_time=given).event
    assert back.data_time == given and back.timeline_at == given
    resume(workspace, reason="hand back")
    champion = record_deployment(workspace, kind=DeploymentKind.CHAMPION, subject="a",
                                 version_id="v3", action="promote", reason="best").event
    assert champion.data_time == later
    audit = {a.event_seq: a for a in audit_log(workspace) if a.event_seq is not None}
    for event in history(workspace):
        assert audit[event.seq].data_time == event.data_time, event.action
    newest_audit = audit_log(workspace)
    assert {a.action: a.data_time for a in newest_audit}["resume"] == later
    with workspace.store.read() as tx:
        assert tx.scalar("SELECT data_time FROM pin_events") == later.replace(tzinfo=None)


def test_job_state_events_record_data_time(line):
    workspace, ingest = line
    newest = ingest(100)
    given = newest - timedelta(days=1)
    with workspace.store.write("test") as tx:
        job_sql.insert_job(tx, job_id="j1", regime="a", runner="local", spec={},
                           data_time=given)
        assert job_sql.get_job(tx, "j1").data_time == given
        job_sql.append_event(tx, "j1", JobState.CREATED)
        assert job_sql.get_job(tx, "j1").data_time == newest


def test_a_data_time_after_the_data_is_refused(line):
    workspace, ingest = line
    deploy(workspace, "v1", reason="go")
    with pytest.raises(UsageError, match="--data-time .* no observations yet"):
        deploy(workspace, "v2", reason="x", data_time=datetime(2026, 1, 1, tzinfo=UTC))
    newest = ingest(100)
    digest = sha256_file(workspace.store.db_path)
    too_late = (newest + timedelta(minutes=1)).replace(tzinfo=None)
    for args in (("deploy", "v2"), ("rollback", "--to", "v1"),
                 ("ct", "resume", "--target", "production"), ("retrain", "--regime", "a")):
        code, out, err = run_cli(*args, "--reason", "replay", "--data-time",
                                 too_late.isoformat(), workspace=workspace)
        assert code == 2, (args, out, err)
        message = err.strip().splitlines()[-1]
        assert "--data-time" in message and "after the data" in message, err
        assert newest.replace(tzinfo=None).isoformat() in message
    assert sha256_file(workspace.store.db_path) == digest
    code, out, err = run_cli("deploy", "v2", "--reason", "replay", "--data-time", "1850-01-01",
                             workspace=workspace)
    assert code == 2 and "--data-time" in err


def test_history_and_audit_give_both_clocks(line):
    workspace, ingest = line
    newest = ingest(100)
    at = (newest - timedelta(hours=2)).replace(tzinfo=None, microsecond=0)
    code, out, err = run_cli("deploy", "v1", "--reason", "go", "--data-time", at.isoformat(),
                             "--json", workspace=workspace)
    assert code == 0, err
    import json

    event = json.loads(run_cli("deployments", "history", "--json", workspace=workspace)[1])[
        "events"][0]
    assert event["data_time"] == at.replace(tzinfo=UTC).isoformat()
    assert event["recorded_at"] == event["at"] > event["data_time"]
    entry = json.loads(run_cli("audit", "--json", workspace=workspace)[1])["entries"][0]
    assert entry["action"] == "deploy" and entry["data_time"] == event["data_time"]
    assert entry["recorded_at"] == entry["at"]
    code, out, _ = run_cli("deployments", "history", workspace=workspace)
    assert code == 0 and "data time" in out and f"{at:%Y-%m-%d %H:%M}" in out


def test_what_served_when_is_placed_at_data_time(line):
    workspace, ingest = line
    first = ingest(200)
    ingest(200)
    record_deployment(workspace, kind=DeploymentKind.ACTIVE, subject="production",
                      version_id="v2", action="deploy", reason="late", data_time=first)
    record_deployment(workspace, kind=DeploymentKind.ACTIVE, subject="production",
                      version_id="v1", action="deploy", reason="replayed earlier",
                      data_time=first - timedelta(hours=6))
    # recorded second, but it acted on older data: it served first
    assert read_known(workspace).deployments == [
        (first - timedelta(hours=6), 1), (first, 2)]


def test_resume_and_retrain_take_a_data_time_from_the_cli(line):
    workspace, ingest = line
    ingest(100)
    deploy(workspace, "v1", reason="pin it")
    earlier = ingest(100) - timedelta(minutes=30)
    code, out, err = run_cli("ct", "resume", "--target", "production", "--reason", "replay",
                             "--data-time", earlier.isoformat(), "--json", workspace=workspace)
    assert code == 0 and json.loads(out)["changed"], err
    code, out, _ = run_cli("audit", "--json", workspace=workspace)
    resumed = [e for e in json.loads(out)["entries"] if e["action"] == "resume"]
    assert resumed and resumed[0]["data_time"].startswith(
        earlier.replace(tzinfo=None).isoformat()[:16]), resumed

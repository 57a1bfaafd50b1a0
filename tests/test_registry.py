"""Registering versions, lineage, listing, and compare-and-set deployments."""

from __future__ import annotations

import re

import pytest
from conftest import data_snapshot

from mlops_tui.core.errors import ConflictError, ExitCode, InvalidNameError, NotFoundError
from mlops_tui.core.lineage import to_dot, to_text_lines, walk
from mlops_tui.core.models import DeploymentKind, Trigger
from mlops_tui.services.deployment_reads import audit_log, history, serving_state
from mlops_tui.services.deployments import record_deployment
from mlops_tui.services.lineage import lineage
from mlops_tui.services.registry import list_versions, required_packages, show_version
from mlops_tui.store import deployments as deployment_sql
from mlops_tui.store import registry as registry_sql


def make_champion(workspace, regime: str, version_id: str):
    return record_deployment(workspace, kind=DeploymentKind.CHAMPION, subject=regime,
                             version_id=version_id, action="promote", reason="test")


def test_register_then_list_and_show(workspace, register):
    version = register(metrics={"r2": 0.91}, with_data=True, note="first")
    assert version.id == "v1" and version.regime == "a" and version.parent is None
    assert version.artifact.path.startswith("artifacts/sha256/")
    assert (workspace.root / version.artifact.path).is_file()

    page = list_versions(workspace)
    assert page.total == 1 and page.versions == [version]
    detail = show_version(workspace, "v1")
    assert detail.version == version
    assert detail.env is not None and detail.env.hash == version.env_hash
    assert detail.code is not None
    assert [f.path for f in detail.code.files] == ["requirements.txt", "train.py"]
    assert detail.train is not None and detail.train.kind == "train"
    assert detail.holdout is not None and detail.holdout.rows == 10
    assert detail.champion_of == () and detail.active_on == ()
    assert version.metrics == {"r2": 0.91} and version.note == "first"
    entries = audit_log(workspace)
    assert [(e.action, e.subject) for e in entries] == [("register", "v1")]
    assert entries[0].detail["artifact"] == version.artifact.sha256


def test_show_unknown_version_suggests_close_ids(workspace, register):
    register(seed=1)
    register(seed=2)
    with pytest.raises(NotFoundError) as raised:
        show_version(workspace, "v3")
    assert raised.value.code is ExitCode.USAGE
    assert "did you mean" in raised.value.message and "v2" in raised.value.message
    with pytest.raises(InvalidNameError):
        show_version(workspace, "x'; DROP TABLE model_versions; --")
    assert list_versions(workspace).total == 2


def test_invalid_regime_is_refused_before_anything_is_stored(workspace, register):
    for regime in ("../x", "x\x00y", "a" * 10_000, "a;DROP TABLE x"):
        with pytest.raises(InvalidNameError):
            register(regime=regime)
    assert not workspace.artifacts_root.joinpath("sha256").exists()
    with workspace.store.read() as tx:
        assert registry_sql.counts(tx) == {k: 0 for k in registry_sql.counts(tx)}


def test_parent_defaults_to_the_regimes_champion(workspace, register):
    first = register(seed=1)
    second = register(seed=2)
    assert second.parent is None  # no champion yet
    make_champion(workspace, "a", first.id)
    third = register(seed=3)
    assert third.parent == first.number and third.parent_id == "v1"
    other_regime = register(regime="b", seed=4)
    assert other_regime.parent is None  # champions are per regime
    explicit = register(seed=5, parent=second.number)
    assert explicit.parent == second.number
    orphan = register(seed=6, parent=None)
    assert orphan.parent is None


def test_lineage_tree_has_every_input(workspace, register):
    parent = register(seed=1, with_data=True)
    make_champion(workspace, "a", parent.id)
    child = register(seed=2, with_data=True, image="sha256:abc123", job_id="0" * 32,
                     runner="docker", trigger=Trigger.DRIFT)
    root = lineage(workspace, child.id)
    assert (root.kind, root.id) == ("version", "v2")
    children = {(node.relation, node.kind): node for node in root.children}
    assert children[("code", "code")].id == child.code_hash
    assert children[("weights", "weights")].id == child.artifact.sha256
    assert children[("weights", "weights")].attributes["sha256"] == child.artifact.sha256
    assert children[("environment", "environment")].id == child.env_hash
    assert children[("environment", "environment")].attributes["python"]
    assert children[("train", "data")].id == child.train_snapshot
    assert children[("train", "data")].attributes["rows"] == 40
    assert children[("holdout", "data")].id == child.holdout_snapshot
    assert children[("image", "image")].id == "sha256:abc123"
    assert children[("job", "job")].attributes["runner"] == "docker"
    ancestor = children[("parent", "version")]
    assert ancestor.id == "v1"
    assert {n.kind for n in ancestor.children} == {"code", "weights", "environment", "data"}
    assert [d for d, n in walk(root) if n.id == "v1"] == [1]
    text = to_text_lines(root)
    assert text[0].startswith("v2 regime a, drift, docker")
    assert any("parent v1" in line for line in text)

    with workspace.store.read() as tx:
        edges = registry_sql.edges_of(tx, ["version:v2"])
    assert {relation for _, _, relation in edges} == {
        "code", "weights", "environment", "train", "holdout", "parent", "image", "job"}


def test_lineage_dot_is_graphviz(workspace, register):
    register(seed=1, with_data=True)
    make_champion(workspace, "a", "v1")
    register(seed=2, with_data=True, image='reg/x:"q"\\b')  # quotes must be escaped
    dot = to_dot(lineage(workspace, "v2"))
    lines = dot.splitlines()
    assert lines[0] == "digraph lineage {" and lines[-1] == "}" and dot.endswith("}\n")
    assert lines[1] == "  rankdir=LR;"
    quoted = r'"(?:[^"\\]|\\.)*"'
    node = re.compile(rf"  {quoted} \[label={quoted}, shape=\w+\];")
    edge = re.compile(rf"  {quoted} -> {quoted} \[label={quoted}\];")
    nodes = [line for line in lines[2:-1] if node.fullmatch(line)]
    edges = [line for line in lines[2:-1] if edge.fullmatch(line)]
    assert len(nodes) + len(edges) == len(lines) - 3
    assert '  "version:v1" -> "version:v2" [label="parent"];' in edges
    assert '  "image:reg/x:\\"q\\"\\\\b" -> "version:v2" [label="image"];' in edges
    declared = {re.match(rf"  ({quoted})", n).group(1) for n in nodes}
    for line in edges:
        source, target = re.findall(quoted, line)[:2]
        assert source in declared and target in declared


def test_list_filters_and_paging(workspace, register):
    register(regime="a", seed=1)
    register(regime="b", seed=2, trigger=Trigger.DRIFT)
    register(regime="a", seed=3, runner="docker", trigger=Trigger.DRIFT)
    register(regime="b", seed=4, runner="docker")
    register(regime="a", seed=5)

    def ids(page):
        return [v.id for v in page.versions]

    assert ids(list_versions(workspace)) == ["v5", "v4", "v3", "v2", "v1"]
    assert ids(list_versions(workspace, newest_first=False))[0] == "v1"
    assert ids(list_versions(workspace, regime="a")) == ["v5", "v3", "v1"]
    assert ids(list_versions(workspace, trigger="drift")) == ["v3", "v2"]
    assert ids(list_versions(workspace, runner="docker")) == ["v4", "v3"]
    both = list_versions(workspace, regime="a", runner="docker")
    assert ids(both) == ["v3"] and both.total == 1
    page = list_versions(workspace, limit=2, offset=1)
    assert ids(page) == ["v4", "v3"] and page.total == 5 and page.offset == 1
    assert ids(list_versions(workspace, limit=2, offset=4)) == ["v1"]
    assert ids(list_versions(workspace, limit=2, offset=10)) == []
    assert list_versions(workspace, regime="a", limit=1).total == 3
    assert list_versions(workspace, regime="nobody").total == 0
    with pytest.raises(InvalidNameError):
        list_versions(workspace, regime="../a")
    with pytest.raises(Exception, match="unknown trigger"):
        list_versions(workspace, trigger="cron")


def test_required_packages_of_a_ridge_pipeline(workspace, register):
    version = register()
    assert {"scikit-learn", "numpy", "skops"} <= set(version.required_packages)
    data = (workspace.root / version.artifact.path).read_bytes()
    assert required_packages(data) == version.required_packages


def test_data_snapshots_are_recorded_once(workspace, register):
    shared = data_snapshot("train", "a", seed=11)
    first = register(seed=1, train=shared)
    second = register(seed=2, train=shared)
    assert first.train_snapshot == second.train_snapshot == shared.fingerprint
    with workspace.store.read() as tx:
        assert registry_sql.counts(tx)["data_snapshots"] == 1
        assert registry_sql.get_data_snapshot(tx, shared.fingerprint) == shared


# -- deployments: compare-and-set -------------------------------------------------------


def test_record_deployment_compare_and_set(workspace, register):
    register(seed=1)
    register(seed=2)
    register(seed=3)
    first = record_deployment(workspace, kind=DeploymentKind.ACTIVE, subject="production",
                              version_id="v1", action="deploy", reason="go live",
                              expect_current=None)
    assert first.event is not None and first.event.from_version is None
    assert first.message == "v1 is now active on production"

    with pytest.raises(ConflictError) as raised:
        record_deployment(workspace, kind=DeploymentKind.ACTIVE, subject="production",
                          version_id="v2", action="deploy", reason="stale view",
                          expect_current=None)
    assert raised.value.code is ExitCode.CONFLICT
    assert "served by v1" in raised.value.message
    assert raised.value.detail == {"current": "v1"}

    with pytest.raises(ConflictError, match="served by v1, not v3"):
        record_deployment(workspace, kind=DeploymentKind.ACTIVE, subject="production",
                          version_id="v2", action="deploy", reason="stale", expect_current="v3")

    second = record_deployment(workspace, kind=DeploymentKind.ACTIVE, subject="production",
                               version_id="v2", action="deploy", reason="better",
                               expect_current="v1", pinned=True)
    assert second.event is not None
    assert (second.event.from_version, second.event.to_version) == (1, 2)
    assert second.event.pinned

    again = record_deployment(workspace, kind=DeploymentKind.ACTIVE, subject="production",
                              version_id="v2", action="deploy", reason="again")
    assert again.event is None
    assert again.message == "target production already uses v2"

    assert [e.to_version for e in history(workspace, target="production")] == [2, 1]
    assert serving_state(workspace).active["production"].to_version == 2


def test_record_deployment_refuses_unknown_versions_and_bad_subjects(workspace, register):
    register()
    with pytest.raises(NotFoundError):
        record_deployment(workspace, kind=DeploymentKind.ACTIVE, subject="production",
                          version_id="v9", action="deploy", reason="x")
    with pytest.raises(InvalidNameError):
        record_deployment(workspace, kind=DeploymentKind.CHAMPION, subject="../etc",
                          version_id="v1", action="promote", reason="x")
    assert history(workspace) == []
    assert [e.action for e in audit_log(workspace)] == ["register"]


def test_every_deployment_event_has_its_audit_row(workspace, register):
    register(seed=1)
    register(seed=2)
    make_champion(workspace, "a", "v1")
    make_champion(workspace, "a", "v2")
    record_deployment(workspace, kind=DeploymentKind.ACTIVE, subject="production",
                      version_id="v2", action="deploy", reason="r", detail={"window": "w1"})
    record_deployment(workspace, kind=DeploymentKind.ACTIVE, subject="production",
                      version_id="v1", action="rollback", reason="bad metrics")
    events = history(workspace)
    audit = {e.event_seq: e for e in audit_log(workspace) if e.event_seq is not None}
    assert len(events) == 4 and set(audit) == {e.seq for e in events}
    for event in events:
        entry = audit[event.seq]
        assert entry.action == event.action
        assert entry.subject == f"{event.kind.value}:{event.subject}"
        assert entry.detail["to"] == f"v{event.to_version}"
        assert entry.detail["reason"] == event.reason
    assert audit[3].detail["window"] == "w1"
    assert audit[4].detail["from"] == "v2"
    with workspace.store.read() as tx:
        assert deployment_sql.events_without_audit(tx) == []
    state = serving_state(workspace)
    assert state.champions["a"].to_version == 2 and state.active["production"].to_version == 1
    assert show_version(workspace, "v2").champion_of == ("a",)
    assert show_version(workspace, "v1").active_on == ("production",)
    with pytest.raises(Exception, match="not both"):
        history(workspace, target="production", regime="a")
    assert [e.subject for e in history(workspace, regime="a")] == ["a", "a"]


def test_an_image_capture_is_found_by_name_even_when_its_environment_is_known(
    workspace, register
):
    """Snapshots are stored once per hash: an image whose environment equals a version's
    (it was trained in that image) must still be found under the image's name."""
    from dataclasses import replace

    from mlops_tui.services.environments import record_environment

    version = register(regime="sedan")
    with workspace.store.read() as tx:
        trained_in = registry_sql.get_env(tx, version.env_hash)
        assert deployment_sql.env_by_source(tx, "image:trainer") is None
    record_environment(workspace, replace(trained_in, source="image:trainer"))
    with workspace.store.read() as tx:
        found = deployment_sql.env_by_source(tx, "image:trainer")
        assert registry_sql.counts(tx)["env_snapshots"] == 1
    assert found is not None and found.hash == version.env_hash

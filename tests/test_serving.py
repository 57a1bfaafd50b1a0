"""The serving folder: `current` -> an immutable generation with verified links and a manifest,
swapped atomically after the store commits, and repaired from the store when damaged."""

from __future__ import annotations

import json
import os
import shutil
import stat

import pytest
from conftest import register_real_version, run_cli

from mlops_tui.core.models import DeploymentKind
from mlops_tui.services import serving
from mlops_tui.services.deployments import deploy, record_deployment
from mlops_tui.services.maintenance import verify_store
from mlops_tui.services.workspace import open_workspace
from mlops_tui.store import registry as registry_sql


@pytest.fixture
def served(workspace):
    """v1..v3 of regime a, v4 of regime b; production serves v2; champions a=v3, b=v4."""
    for seed in (1, 2, 3):
        register_real_version(workspace, seed=seed)
    register_real_version(workspace, regime="b", seed=4)
    deploy(workspace, "v1")
    deploy(workspace, "v2")
    deploy(workspace, "v3", champion_of="a")
    deploy(workspace, "v4", champion_of="b")
    return workspace


def blob_of(workspace, number: int):
    with workspace.store.read() as tx:
        return (workspace.root / registry_sql.get_version(tx, number).artifact.path).resolve()


def test_current_points_to_an_immutable_generation_of_verified_links(served):
    root = served.serving_root
    assert os.readlink(root / "current") == "generations/g00000004"
    folder = root / "current"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["schema"] == 1 and manifest["generation"] == 4
    assert {s: e["version"] for s, e in manifest["targets"].items()} == {"production": "v2"}
    assert {s: e["version"] for s, e in manifest["champions"].items()} == {"a": "v3", "b": "v4"}
    for section, subject, number in (("targets", "production", 2), ("champions", "a", 3),
                                     ("champions", "b", 4)):
        entry = manifest[section][subject]
        link = folder / entry["file"]
        assert not os.path.isabs(os.readlink(link))  # relative: the workspace can move
        assert link.resolve() == blob_of(served, number)
        assert entry["sha256"] == blob_of(served, number).name.removesuffix(".skops")
    generation = (root / "generations" / "g00000004")
    assert stat.S_IMODE(generation.stat().st_mode) == 0o555
    assert stat.S_IMODE((generation / "manifest.json").stat().st_mode) == 0o444
    assert serving.inspect(served) == []


def test_old_generations_are_pruned_but_current_stays(served):
    for round_ in range(4):
        deploy(served, "v1" if round_ % 2 == 0 else "v2")
    folders = sorted(p.name for p in (served.serving_root / "generations").iterdir())
    assert len(folders) == serving.KEEP_GENERATIONS
    assert folders[-1] == "g00000008" == os.readlink(served.serving_root / "current").split("/")[1]
    assert not list(served.serving_root.glob(".current-*"))


def test_the_folder_follows_a_moved_workspace(served, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(served.root, moved, symlinks=True)
    copy = open_workspace(moved)
    assert serving.inspect(copy) == []
    link = moved / "serving" / "current" / "targets" / "production.skops"
    assert str(link.resolve()).startswith(str(moved.resolve()))


def _damage(workspace, how: str) -> None:
    root = workspace.serving_root
    current = root / "current"
    if how == "missing":
        current.unlink()
    elif how == "older":
        os.replace(_symlink(root, "generations/g00000003"), current)
    elif how == "not-a-link":
        current.unlink()
        current.mkdir()
    elif how == "wrong-link":
        folder = current.resolve()
        os.chmod(folder / "targets", 0o755)
        (folder / "targets" / "production.skops").unlink()
        os.symlink(blob_of(workspace, 1), folder / "targets" / "production.skops")
    elif how == "edited-manifest":
        manifest = current.resolve() / "manifest.json"
        os.chmod(manifest, 0o644)
        document = json.loads(manifest.read_text())
        document["champions"]["a"]["version"] = "v1"
        manifest.write_text(json.dumps(document))
    elif how == "escaping":
        os.replace(_symlink(root, "../../elsewhere"), current)


def _symlink(root, target: str):
    temp = root / ".test-link"
    os.symlink(target, temp)
    return temp


@pytest.mark.parametrize("how", ["missing", "older", "not-a-link", "wrong-link",
                                 "edited-manifest", "escaping"])
def test_verify_and_reconcile_repair_the_folder_from_the_store(served, how):
    _damage(served, how)
    problems = serving.inspect(served)
    assert problems, how
    if how in ("older", "edited-manifest"):
        report = verify_store(served)  # store verify repairs what is derived from the store
        assert report.ok, report.problems
        assert report.repaired == [f"serving folder: {p}" for p in problems]
    else:
        code, out, err = run_cli("serving", "reconcile", "--json", workspace=served)
        assert code == 0, err
        assert json.loads(out)["changed"] and json.loads(out)["generation"] == 4
    assert serving.inspect(served) == []
    assert serving.current_manifest(served)["champions"]["a"]["version"] == "v3"
    assert verify_store(served).repaired == []


def test_an_artifact_that_fails_verification_is_not_linked(served):
    blob = blob_of(served, 3)
    os.chmod(blob, 0o644)
    blob.write_bytes(b"tampered")
    (served.serving_root / "current").unlink()
    shutil.rmtree(served.serving_root / "generations", onerror=_writable_then_retry)
    result = serving.sync(served)
    assert any("champions/a.skops" in p and "does not match" in p for p in result.problems)
    folder = served.serving_root / "current"
    assert not (folder / "champions" / "a.skops").is_symlink()
    assert "problem" in json.loads((folder / "manifest.json").read_text())["champions"]["a"]
    report = verify_store(served)
    assert not report.ok
    assert any("champions/a.skops" in p for p in report.problems)


def _writable_then_retry(function, path, _):
    os.chmod(os.path.dirname(path), 0o755)
    if os.path.isdir(path) and not os.path.islink(path):
        os.chmod(path, 0o755)
    function(path)


def test_nothing_deployed_means_no_current(workspace):
    register_real_version(workspace, seed=1)
    assert serving.sync(workspace).generation is None
    assert not (workspace.serving_root / "current").exists()
    assert serving.inspect(workspace) == []
    record_deployment(workspace, kind=DeploymentKind.CHAMPION, subject="a", version_id="v1",
                      action="promote", reason="first", publish=False)
    assert serving.inspect(workspace)  # an unpublished change shows
    code, out, err = run_cli("serving", "status", "--json", workspace=workspace)
    assert code == 0, err
    assert json.loads(out)["matches_store"] is False
    assert verify_store(workspace).ok  # and is repaired by verify
    code, out, _ = run_cli("serving", "status", "--json", workspace=workspace)
    document = json.loads(out)
    assert document["matches_store"] and document["manifest"]["champions"]["a"]["version"] == "v1"

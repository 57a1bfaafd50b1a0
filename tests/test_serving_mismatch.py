"""A serving folder behind the store (a real SIGKILL between the commit and the publish):
every read of serving state says so and changes nothing; the next write unit of any command
repairs it.

Reads: `status`, `deployments list`, `serving status`, `predict` and the dashboard's
overview. The whole workspace is hashed before and after the reads (files, and where each
symlink points), so "reads never write" is checked, not assumed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import signal
from pathlib import Path

import pytest
from conftest import register_real_version, run_cli, train_pipeline

from mlops_tui.services import serving
from mlops_tui.services.deployment_reads import serving_state
from mlops_tui.services.deployments import deploy
from mlops_tui.services.workspace import init_workspace, open_workspace

CRASH_POINTS = ("after_commit@deploy", "generation_built@deploy", "link_staged@deploy")


def tree_digest(root: Path) -> dict[str, str]:
    """Every file's sha256 and every symlink's target, by path under `root`."""
    found = {}
    for directory, folders, files in os.walk(root):
        for name in sorted(folders + files):
            path = Path(directory) / name
            relative = path.relative_to(root).as_posix()
            if path.is_symlink():
                found[relative] = "-> " + os.readlink(path)
            elif path.is_file():
                found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[relative] = f"dir {oct(path.stat().st_mode)}"
    return found


FEATURES = ("f1", "f2", "f3")


def named_pipeline(seed: int):
    """A fitted pipeline that knows its input columns (predict reads them from it)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(40, len(FEATURES))), columns=list(FEATURES))
    return train_pipeline(seed).fit(frame, frame.sum(axis=1))


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """v1 and v2 of regime a; production serves v1."""
    ws = init_workspace(tmp_path_factory.mktemp("mismatch") / "ws")
    register_real_version(ws, seed=1, estimator=named_pipeline(1))
    register_real_version(ws, seed=2, estimator=named_pipeline(2))
    deploy(ws, "v1")
    return ws


def crashed(template, tmp_path, point: str):
    """A copy where `deploy v2` was killed after the store committed, before the swap."""
    root = tmp_path / "ws"
    shutil.copytree(template.root, root, symlinks=True)
    ws = open_workspace(root)
    code, out, err = run_cli("deploy", "v2", "--reason", "crash", workspace=ws,
                             env={"MLOPS_TUI_FAULT": point})
    assert code == -signal.SIGKILL, (code, out, err)
    assert serving_state(ws).active["production"].to_version == 2  # committed
    assert serving.current_manifest(ws)["targets"]["production"]["version"] == "v1"
    return ws


def features_file(tmp_path: Path) -> Path:
    features = list(FEATURES)
    path = tmp_path / "score.csv"
    lines = [",".join(features)] + [",".join(str(i + j) for j in range(len(features)))
                                    for i in range(5)]
    path.write_text("\n".join(lines) + "\n")
    return path


def assert_warned(err: str) -> None:
    assert "warning: serving folder does not match the store" in err, err
    assert "mlops-tui serving reconcile" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_reads_warn_without_writing_and_the_next_write_repairs(template, tmp_path, point):
    ws = crashed(template, tmp_path, point)
    before = tree_digest(ws.root)

    code, out, err = run_cli("status", "--json", workspace=ws)
    assert code == 0, err
    document = json.loads(out)
    assert document["active"]["production"]["to"] == "v2"
    assert document["serving"]["matches_store"] is False
    assert any("v1" in p and "v2" in p for p in document["serving"]["problems"]), document
    assert_warned(err)

    code, out, err = run_cli("status", workspace=ws)  # the human form warns too
    assert code == 0 and "target production: v2" in out, err
    assert_warned(err)

    code, out, err = run_cli("deployments", "list", "--json", workspace=ws)
    assert code == 0 and json.loads(out)["serving"]["matches_store"] is False, err
    assert_warned(err)

    code, out, err = run_cli("serving", "status", "--json", workspace=ws)
    assert code == 0 and json.loads(out)["matches_store"] is False, err
    assert_warned(err)

    scored = tmp_path / "scored.parquet"
    code, out, err = run_cli("predict", str(features_file(tmp_path)), "--out", str(scored),
                             "--json", workspace=ws)
    assert code == 0, err
    assert json.loads(out)["rows_by_version"] == {"v2": 5}  # the store decides what scores
    assert json.loads(out)["serving"]["matches_store"] is False
    assert_warned(err)

    assert tree_digest(ws.root) == before  # reads never write, so they never repair

    # any write command repairs it in its first write unit: here one that has nothing to do
    # with serving (it unpins the target)
    code, out, err = run_cli("ct", "resume", "--target", "production", workspace=ws)
    assert code == 0, err
    assert serving.inspect(ws) == []
    assert serving.current_manifest(ws)["targets"]["production"]["version"] == "v2"
    assert not list(ws.serving_root.glob(".current-*"))
    assert not list((ws.serving_root / "generations").glob(".build-*"))
    code, out, err = run_cli("status", "--json", workspace=ws)
    assert json.loads(out)["serving"] == {"matches_store": True, "problems": []}
    assert "warning" not in err


def test_serving_reconcile_repairs_it_too(template, tmp_path):
    ws = crashed(template, tmp_path, "after_commit@deploy")
    code, out, err = run_cli("serving", "reconcile", "--json", workspace=ws)
    assert code == 0 and json.loads(out)["changed"], err
    assert serving.inspect(ws) == []


def test_a_healthy_folder_gives_no_warning(template, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(template.root, root, symlinks=True)
    for args in (("status",), ("deployments", "list"), ("serving", "status")):
        code, out, err = run_cli(*args, "--json", workspace=root)
        assert code == 0 and "warning" not in err, (args, err)


def test_the_dashboard_overview_shows_a_banner(template, tmp_path, monkeypatch):
    from tui_helpers import clean_terminal_environment, make_app, screen_text, settle

    clean_terminal_environment(monkeypatch, tmp_path)
    ws = crashed(template, tmp_path, "after_commit@deploy")
    before = tree_digest(ws.root)

    async def scenario(expect_banner: bool) -> None:
        app = make_app(ws, readonly=True)
        async with app.run_test(size=(120, 34)) as pilot:
            await settle(pilot)
            text = screen_text(app)
            banner = app.screen.query_one("#serving-banner")
            assert banner.has_class("visible") is expect_banner, text
            if expect_banner:  # the banner wraps where its paths make it long
                words = " ".join(text.split())
                assert "serving folder does not match the store" in words, text
                assert "serving reconcile" in words, text

    asyncio.run(scenario(True))
    assert tree_digest(ws.root) == before
    serving.sync(ws)
    asyncio.run(scenario(False))

"""Training on the embedded default: the harness, a retrain end to end, the demo, the wheel.

The harness runs as a real subprocess from a copy of the package that holds nothing but
`mlops_tui.training`; retrains go through the real CLI, runner and store; the demo is built
once per test session (shared by the xdist workers behind a file lock) with the real
`mlops-tui demo` command; the wheel is really built and its contents inspected.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from conftest import ISOLATED_VARIABLES, REPO_ROOT, run_cli
from training_helpers import (
    BASE_REGIME,
    base_workspace_root,
    copy_workspace,
    raises_pipeline,
    write_sample_slice,
)

from mlops_tui.sample import packaged_ground_truth, packaged_pipeline_dir
from mlops_tui.services.workspace import Workspace
from mlops_tui.training import harness
from mlops_tui.training.contract import RESULT_SCHEMA, validate_result
from mlops_tui.training.environment import capture

TRUTH = packaged_ground_truth()


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def child_environment(**extra: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k not in ISOLATED_VARIABLES}
    return environment | {"COLUMNS": "200"} | extra


# -- the harness, on its own ---------------------------------------------------------------


def make_job_folder(root: Path, pipeline_source: str | None = None) -> tuple[Path, Path, Path]:
    """A job folder as the host writes it (spec + pipeline copy) and two snapshots beside it."""
    job_dir = root / "job"
    shutil.copytree(packaged_pipeline_dir(), job_dir / "pipeline",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if pipeline_source is not None:
        shutil.copy2(job_dir / "pipeline" / "train.py", job_dir / "pipeline" / "sample_train.py")
        (job_dir / "pipeline" / "train.py").write_text(pipeline_source)
    table = pq.read_table(write_sample_slice(root / "slice.parquet"))
    rows = table.filter(pc.equal(table[TRUTH["regime_column"]], BASE_REGIME))
    is_holdout = pa.array([i % 5 == 0 for i in range(rows.num_rows)])
    train, holdout = root / "train.parquet", root / "holdout.parquet"
    pq.write_table(rows.filter(pc.invert(is_holdout)), train)
    pq.write_table(rows.filter(is_holdout), holdout)
    spec = {
        "schema": 1, "job_id": str(uuid.uuid4()), "regime": BASE_REGIME,
        "label": TRUTH["label"], "features_numeric": TRUTH["features_numeric"],
        "features_categorical": TRUTH["features_categorical"], "metric": "r2",
        "extra_metrics": ["mae", "rmse"], "pipeline_dir": "pipeline",
    }
    (job_dir / "spec.json").write_text(json.dumps(spec))
    return job_dir, train, holdout


# Runs the harness as `python -m` would and then reports which modules it had loaded.
IMPORT_PROBE = r"""
import json, runpy, sys
sys.argv = ["mlops_tui.training.harness", *sys.argv[1:]]
try:
    runpy.run_module("mlops_tui.training.harness", run_name="__main__", alter_sys=True)
    code = 0
except SystemExit as done:
    code = done.code
watched = ("mlops_tui", "duckdb", "typer", "click", "textual", "docker")  # not rich: scikit-learn imports it
loaded = {name: getattr(module, "__file__", None) for name, module in list(sys.modules.items())
          if name.split(".")[0] in watched}
print("IMPORT-PROBE " + json.dumps({"code": code, "loaded": loaded}))
"""


def test_harness_writes_a_valid_result_and_imports_nothing_but_mlops_tui_training(
        tmp_path: Path) -> None:
    """Run from a copy of the package holding only mlops_tui/training, as in an image that
    has the harness and the pipeline's dependencies and nothing else of mlops-tui."""
    job_dir, train, holdout = make_job_folder(tmp_path)
    isolated = tmp_path / "isolated" / "mlops_tui"
    shutil.copytree(REPO_ROOT / "mlops_tui" / "training", isolated / "training",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO_ROOT / "mlops_tui" / "__init__.py", isolated / "__init__.py")

    done = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, "--job", str(job_dir), "--train", str(train),
         "--holdout", str(holdout)],
        capture_output=True, text=True, cwd=job_dir, timeout=120, check=False,
        env=child_environment(PYTHONPATH=str(isolated.parent)))

    assert done.returncode == 0, done.stdout + done.stderr
    probe = json.loads(done.stdout.split("IMPORT-PROBE ", 1)[1])
    assert probe["code"] == 0, done.stdout
    assert sorted(probe["loaded"]) == ["mlops_tui", "mlops_tui.training",
                                       "mlops_tui.training.contract",
                                       "mlops_tui.training.environment"]
    assert all(Path(f).is_relative_to(isolated) for f in probe["loaded"].values())

    document = json.loads((job_dir / "result.json").read_text())
    assert validate_result(document, json.loads((job_dir / "spec.json").read_text())["job_id"]) == []
    artifact = job_dir / document["artifact"]["file"]
    assert document["artifact"]["sha256"] == sha256_of(artifact)
    assert document["artifact"]["size"] == artifact.stat().st_size
    assert document["schema"] == RESULT_SCHEMA and document["metric"] == "r2"
    assert set(document["metrics"]) == {"r2", "mae", "rmse"}
    assert 0.5 < document["metrics"]["r2"] <= 1.0
    assert (document["rows_train"], document["rows_holdout"]) == (
        pq.read_metadata(train).num_rows, pq.read_metadata(holdout).num_rows)
    environment = document["environment"]
    assert environment["python_version"] == platform.python_version()
    assert environment["packages"] == capture()["packages"]  # the full list, not a few
    assert {"scikit-learn", "numpy", "pandas", "skops", "pyarrow"} <= set(environment["packages"])
    assert sorted(p.name for p in job_dir.iterdir()) == [
        "model.skops", "pipeline", "result.json", "spec.json"]  # no temp file left behind


def test_harness_reports_a_failing_pipeline_in_failure_json_and_writes_no_result(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job_dir, train, holdout = make_job_folder(tmp_path, raises_pipeline())

    code = harness.main(["--job", str(job_dir), "--train", str(train), "--holdout", str(holdout)])

    assert code == 1
    assert json.loads((job_dir / "failure.json").read_text()) == {
        "reason": "ValueError: adhesion sensor calibration table is empty"}
    assert not (job_dir / "result.json").exists() and not (job_dir / "model.skops").exists()
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def valid_result(job_id: str) -> dict:
    return {
        "schema": RESULT_SCHEMA, "job_id": job_id,
        "artifact": {"file": "model.skops", "sha256": "ab" * 32, "size": 10},
        "metrics": {"r2": 0.9}, "rows_train": 10, "rows_holdout": 3,
        "environment": {"python_version": "3.11.7", "implementation": "CPython",
                        "platform": "linux-x86_64", "packages": {"numpy": "2.0.0"}},
    }


@pytest.mark.parametrize(("change", "problem"), [
    ({"schema": 2}, "schema: expected 1, got 2"),
    ({"job_id": "another"}, "job_id: expected job-1, got 'another'"),
    ({"artifact": {"file": "../model.skops", "sha256": "ab" * 32, "size": 1}},
     "artifact.file: must be a plain file name in the job folder"),
    ({"artifact": {"file": "model.skops", "sha256": "xyz", "size": 1}},
     "artifact.sha256: not a sha256 hex digest"),
    ({"metrics": {"r2": "0.9"}}, "metrics.r2: expected a number"),
    ({"metrics": {"r2": math.nan}}, "metrics.r2: expected a finite number, got nan"),
    ({"rows_train": True}, "rows_train: expected int"),
    ({"environment": {"python_version": "3.11.7"}}, "environment.implementation: expected str"),
])
def test_validate_result_names_what_is_wrong(change: dict, problem: str) -> None:
    assert validate_result(valid_result("job-1"), "job-1") == []
    assert problem in validate_result(valid_result("job-1") | change, "job-1")


# -- a retrain end to end -----------------------------------------------------------------


@pytest.fixture
def trained(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A private copy of the base workspace: a small sample slice and a champion for suv."""
    return copy_workspace(base_workspace_root(tmp_path_factory), tmp_path / "ws")


def labelled_ids(directory: Path, regime: str) -> set[str]:
    """Ids of `regime`'s labelled rows in the slice the workspace ingested (regenerated)."""
    table = pq.read_table(write_sample_slice(directory / "slice-again.parquet"))
    rows = table.filter(pc.and_(pc.equal(table[TRUTH["regime_column"]], regime),
                                pc.is_valid(table[TRUTH["label"]])))
    return set(rows[TRUTH["id_column"]].to_pylist())


def test_retrain_registers_a_version_scored_against_its_champion_on_the_same_holdout(
        trained: Workspace) -> None:
    from mlops_tui.services.registry import show_version

    champion = show_version(trained, "v1")
    assert champion.champion_of == (BASE_REGIME,)

    code, out, err = run_cli("retrain", "--regime", BASE_REGIME, "--wait", "--json",
                             workspace=trained, timeout=120)

    assert code == 0, err
    document = json.loads(out)
    assert document["version"] == "v2" and document["job"]["state"] == "ingested"
    metrics = document["metrics"]
    # The champion was scored on the new version's holdout, which is the very holdout it
    # was itself scored on when it was registered: the split is deterministic.
    assert math.isclose(metrics["parent_r2"], champion.version.metrics["r2"], rel_tol=1e-9)
    assert abs(metrics["r2"] - metrics["parent_r2"]) < 0.05 and metrics["r2"] > 0.8
    assert {"parent_mae", "parent_rmse"} <= set(metrics)
    detail = show_version(trained, "v2")
    assert detail.version.parent == 1
    assert detail.holdout.fingerprint == champion.holdout.fingerprint
    assert detail.train.fingerprint == champion.train.fingerprint

    train = pq.read_table(trained.root / detail.train.path)[TRUTH["id_column"]].to_pylist()
    holdout = pq.read_table(trained.root / detail.holdout.path)[TRUTH["id_column"]].to_pylist()
    assert len(set(train)) == len(train) and len(set(holdout)) == len(holdout)
    assert not set(train) & set(holdout)
    assert set(train) | set(holdout) == labelled_ids(trained.root.parent, BASE_REGIME)
    assert 0.15 < len(holdout) / (len(train) + len(holdout)) < 0.25

    code, out, err = run_cli("lineage", "v2", "--json", workspace=trained)
    assert code == 0, err
    assert_full_lineage(trained.root, json.loads(out))
    children = {c["relation"]: c for c in json.loads(out)["children"]}
    assert children["parent"]["id"] == "v1"
    assert children["job"]["id"] == document["job"]["id"]


def assert_full_lineage(workspace_root: Path, root: dict) -> None:
    """Code snapshot, weights with a sha256 matching the stored file, environment, data."""
    children = {c["relation"]: c for c in root["children"]}
    assert {"code", "weights", "environment", "train", "holdout"} <= set(children)
    assert {"train.py", "requirements.txt", "params.toml"} <= set(
        children["code"]["attributes"]["files"])
    weights = children["weights"]["attributes"]
    assert sha256_of(workspace_root / weights["path"]) == weights["sha256"] == children[
        "weights"]["id"]
    environment = children["environment"]["attributes"]
    assert environment["python"] == platform.python_version()
    assert environment["packages"] == len(capture()["packages"])
    for kind in ("train", "holdout"):
        assert children[kind]["attributes"]["rows"] > 0
        assert children[kind]["attributes"]["regime"] == root["attributes"]["regime"]


# -- the demo -----------------------------------------------------------------------------


def cli_json(workspace: Path, *args: str) -> dict:
    code, out, err = run_cli(*args, "--json", workspace=workspace)
    assert code == 0, err
    return json.loads(out)


def test_demo_shows_progress_and_builds_versions_champions_and_an_active_version(
        shared_demo: tuple[Path, dict]) -> None:
    workspace, summary = shared_demo
    assert "round 1: training sedan, suv, pickup" in summary["stderr"]
    assert "demo built: 7 versions in" in summary["stderr"]
    assert f"try: mlops-tui -w {workspace} status" in summary["stdout"]

    status = cli_json(workspace, "status")
    assert sorted(status["regimes"]) == sorted(TRUTH["regimes"])
    assert all(status["versions_by_regime"][r] >= 2 for r in TRUTH["regimes"])
    assert sorted(status["champions"]) == sorted(TRUTH["regimes"])
    assert status["active"]["production"]["to"] == status["champions"][
        TRUTH["periods"][-1]["regime"]]["to"]  # serving the regime the line ended on
    assert status["unfinished_jobs"] == []
    listing = cli_json(workspace, "models", "list")
    assert listing["total"] == 7 == len(listing["versions"])
    for version in listing["versions"]:
        assert version["runner"] == "local" and version["job_id"]
        assert version["train_snapshot"] and version["holdout_snapshot"]
        assert version["metrics"]["r2"] > 0.5
    jobs = cli_json(workspace, "jobs", "list")["jobs"]
    assert [j["state"] for j in jobs] == ["ingested"] * 7


def test_demo_lineage_and_env_diff_return_real_data(shared_demo: tuple[Path, dict]) -> None:
    workspace, _ = shared_demo
    active = cli_json(workspace, "status")["active"]["production"]["to"]

    lineage = cli_json(workspace, "lineage", active)
    env_diff = cli_json(workspace, "env", "diff", active, "host")

    assert lineage["id"] == active
    assert_full_lineage(workspace, lineage)
    assert (env_diff["left"], env_diff["right"]) == (active, "host")
    assert env_diff["verdict"] == "compatible"
    assert env_diff["identical"] == len(capture()["packages"])


def test_demo_passes_store_verify_and_a_second_run_reuses_it(shared_demo: tuple[Path, dict]) -> None:
    workspace, _ = shared_demo

    verify = cli_json(workspace, "store", "verify")
    code, out, err = run_cli("demo", "--no-tui", "--workspace", str(workspace), "--json")

    assert verify["ok"] is True
    assert verify["checked"]["versions"] == verify["checked"]["artifacts"] == 7
    assert code == 0, err
    assert json.loads(out) == {"workspace": str(workspace), "built": False, "versions": [],
                     "seconds": 0.0}


def test_demo_refuses_to_reuse_a_workspace_that_serves_nothing(trained: Workspace) -> None:
    """An interrupted demo leaves versions but no production version: say so, don't open it."""
    code, out, err = run_cli("demo", "--no-tui", "--workspace", str(trained.root))

    assert code == 3
    assert err.strip() == (f"error: {trained.root} holds a workspace that serves no version on "
                           "production (an interrupted demo?): remove it or choose another "
                           "--workspace")


# -- a non-editable install ---------------------------------------------------------------

PACKAGED_FILES = (
    "mlops_tui/sample/data/observations.parquet",
    "mlops_tui/sample/data/ground_truth.json",
    "mlops_tui/sample/pipeline/train.py",
    "mlops_tui/sample/pipeline/requirements.txt",
    "mlops_tui/sample/pipeline/params.toml",
    "mlops_tui/services/default_config.toml",
    "mlops_tui/tui/mlops.tcss",
    *(f"mlops_tui/templates/{kind}/{name}" for kind in ("regression", "classification")
      for name in ("train.py", "params.toml")),  # what `init` writes into pipeline/
)


def test_the_wheel_carries_the_sample_data_pipeline_config_and_styles(tmp_path: Path) -> None:
    """Built from a copy of the source tree, so the build leaves nothing in the checkout."""
    source = tmp_path / "source"
    shutil.copytree(REPO_ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".ci", "benchmarks", "tests", "build", "dist", "*.egg-info", "__pycache__",
        ".venv*", ".pytest_cache", ".ruff_cache"))

    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
         "-q", "-w", str(tmp_path / "wheels"), str(source)],
        capture_output=True, text=True, timeout=300, check=False, env=child_environment())

    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = (tmp_path / "wheels").glob("mlops_tui-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        packaged = archive.read("mlops_tui/sample/data/observations.parquet")
    assert set(PACKAGED_FILES) <= names
    assert packaged == (REPO_ROOT / PACKAGED_FILES[0]).read_bytes()
    assert not any("__pycache__" in n or n.startswith("tests/") for n in names)

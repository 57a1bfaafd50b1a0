"""What the CLI prints: `jobs logs --json` (NDJSON with -f), messages and footnotes only
where they apply, and metrics in a stable order (the pipeline's metric first)."""

from __future__ import annotations

import json
import re

import pytest
from conftest import register_real_version, run_cli

from mlops_tui.cli.documents import metrics_text
from mlops_tui.services.workspace import Workspace, init_workspace


def test_metrics_text_puts_the_pipeline_metric_first_and_the_parent_scores_last():
    metrics = {"r2": 0.9, "parent_mae": 2.0, "mae": 1.0, "parent_r2": 0.8, "rmse": 1.5}
    assert metrics_text(metrics, "r2") == (
        "r2=0.9 mae=1 rmse=1.5 parent_r2=0.8 parent_mae=2")
    assert metrics_text(metrics, "rmse") == (
        "rmse=1.5 mae=1 r2=0.9 parent_mae=2 parent_r2=0.8")
    assert metrics_text({}, "r2") == ""


@pytest.fixture(scope="module")
def demo_version(shared_demo) -> tuple[str, dict]:
    """(workspace root, a version document) for a version the demo scored against its
    parent, so it has parent_* metrics."""
    root = str(shared_demo[0])
    code, out, err = run_cli("models", "list", "--json", "--limit", "0", workspace=root)
    assert code == 0, err
    version = next(v for v in json.loads(out)["versions"] if "parent_r2" in v["metrics"])
    return root, version


def test_models_show_list_and_lineage_print_the_pipeline_metric_first(demo_version):
    root, version = demo_version  # the demo's pipeline metric is r2
    code, out, err = run_cli("models", "show", version["id"], workspace=root)
    assert code == 0, err
    line = next(line for line in out.splitlines() if line.startswith("metrics"))
    names = re.findall(r"(\w+)=", line)
    assert names[0] == "r2" and names == [
        "r2", *sorted(n for n in version["metrics"] if n != "r2" and "parent" not in n),
        "parent_r2", *sorted(n for n in version["metrics"] if n.startswith("parent_")
                             and n != "parent_r2")]
    code, out, err = run_cli("lineage", version["id"], workspace=root)
    assert code == 0, err
    assert out.startswith(f"{version['id']} regime {version['regime']}, ")
    first = out.splitlines()[0]
    assert re.findall(r"(\w+)=", first) == names


def test_lineage_names_a_relation_only_where_the_label_does_not(demo_version):
    root, version = demo_version
    code, out, err = run_cli("lineage", version["id"], workspace=root)
    assert code == 0, err
    assert re.search(r"\[(\w+)\] \1\b", out) is None, out  # no "[code] code ..."
    for label in ("code ", "weights sha256 ", "environment ", "train data ", "job "):
        assert f"── {label}" in out, label
    assert f"── parent {version['parent']} regime " in out


def test_models_list_orders_metrics_by_the_configured_metric(shared_demo, tmp_path):
    import shutil

    copy = tmp_path / "demo"
    shutil.copytree(shared_demo[0], copy, symlinks=True)
    config = copy / "mlops.toml"
    text = config.read_text()
    assert 'metric = "r2"' in text
    config.write_text(text.replace('metric = "r2"', 'metric = "rmse"', 1))
    code, out, err = run_cli("models", "list", "--limit", "1", workspace=copy)
    assert code == 0, err
    cells = re.findall(r"\b(\w+)=", out)
    assert cells[0] == "rmse" and cells.index("parent_rmse") == cells.index("parent_mae") - 1


# -- jobs logs --json ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_job(shared_demo) -> tuple[str, str]:
    root = str(shared_demo[0])
    code, out, err = run_cli("jobs", "list", "--json", workspace=root)
    assert code == 0, err
    return root, json.loads(out)["jobs"][0]["id"]


def test_jobs_logs_json_is_one_document_with_the_log(demo_job):
    root, job = demo_job
    code, human, err = run_cli("jobs", "logs", job[:8], workspace=root)
    assert code == 0 and human, err
    code, out, err = run_cli("jobs", "logs", job[:8], "--json", workspace=root)
    assert code == 0, err
    document = json.loads(out)  # the whole of stdout is one document
    assert document["job"] == job and document["state"] == "ingested"
    assert document["log"] == human and document["skipped_bytes"] == 0
    assert document["refused"] is None


def test_jobs_logs_follow_json_streams_one_object_per_line(demo_job):
    root, job = demo_job
    code, human, _ = run_cli("jobs", "logs", job[:8], workspace=root)
    code, out, err = run_cli("jobs", "logs", job[:8], "-f", "--json", workspace=root)
    assert code == 0, err
    objects = [json.loads(line) for line in out.splitlines()]  # NDJSON: each line parses
    assert len(objects) > 2 and all(o["job"] == job for o in objects)
    *lines, end = objects
    assert all(set(o) == {"job", "line"} for o in lines)
    assert "".join(o["line"] + "\n" for o in lines) == human
    assert end["state"] == "ingested" and "line" not in end


def test_jobs_logs_json_error_is_one_document():
    code, out, err = run_cli("jobs", "logs", "zzzz", "--json")  # no workspace here
    assert code == 2 and set(json.loads(out)) == {"error"}


# -- env diff: the footnote about `*` only under a starred row ---------------------------


@pytest.fixture(scope="module")
def with_requirements(tmp_path_factory) -> tuple[Workspace, str]:
    ws = init_workspace(tmp_path_factory.mktemp("footnote") / "ws")
    register_real_version(ws, seed=1)
    requirements = ws.root.parent / "requirements.txt"
    requirements.write_text("scikit-learn==0.0.1\nsomething-else==1.0\n")
    return ws, str(requirements)


def test_env_diff_footnote_only_with_a_starred_row(with_requirements):
    ws, requirements = with_requirements
    code, out, err = run_cli("env", "diff", "v1", requirements, workspace=ws)
    assert code == 0, err
    assert "scikit-learn *" in out and "* needed by the model's artifact" in out
    code, out, err = run_cli("env", "diff", "host", requirements, workspace=ws)
    assert code == 0, err
    assert "something-else" in out  # rows, but none the model needs (there is no model)
    assert " *" not in out and "needed by the model's artifact" not in out


def test_every_command_takes_json():
    import typer

    from mlops_tui.cli.main import app

    missing = []

    def visit(command, path: tuple[str, ...]) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                visit(sub, (*path, name))
        elif "--json" not in {o for p in command.params for o in getattr(p, "opts", ())}:
            missing.append(" ".join(path))

    visit(typer.main.get_command(app), ())
    assert missing == []

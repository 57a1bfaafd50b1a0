"""What a CLI command pays before doing its work: the modules it imports, the lazy command
groups, and the pydantic-free option conversion (mlops_tui/cli/typer_compat.py), which must
give exactly typer's own results and messages."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Annotated

import pytest
import typer
from conftest import register_real_version, run_cli
from typer.testing import CliRunner

from mlops_tui.cli import typer_compat
from mlops_tui.services.workspace import Workspace, init_workspace

HEAVY = ("pandas", "sklearn", "skops", "docker", "pydantic", "scipy")

# the real entry point in a fresh interpreter; then what it imported, on stderr's last line
PROBE = textwrap.dedent("""
    import json, sys
    from mlops_tui.cli.main import run
    sys.argv = ["mlops-tui", *sys.argv[1:]]
    try:
        run()
    except SystemExit as done:
        code = done.code
    print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
""")


def imported_by(*args: str) -> tuple[int, set[str]]:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True,
                          text=True, timeout=60, check=False)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], set(report["modules"])


def top_level(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


@pytest.fixture(scope="module")
def registered(tmp_path_factory) -> Workspace:
    ws = init_workspace(tmp_path_factory.mktemp("startup") / "ws")
    register_real_version(ws, seed=1, metrics={"r2": 0.9})
    return ws


@pytest.mark.parametrize("args", [
    ("--version",),
    ("models", "list", "--json", "--limit", "0"),
    ("status", "--json"),
    ("models", "list", "--since-never-an-option"),  # a usage error: nothing heavy either
], ids=["version", "models-list", "status", "usage-error"])
def test_light_commands_import_no_heavy_module(registered, args):
    code, modules = imported_by("--workspace", str(registered.root), *args)
    assert code == (2 if "--since-never-an-option" in args else 0)
    assert top_level(modules) & set(HEAVY) == set(), args
    # and only the command's own module of the CLI
    others = {m for m in modules if m.endswith("_cmd")} - {"mlops_tui.cli.models_cmd"}
    assert others == set(), args


def test_version_opens_no_store():
    code, modules = imported_by("--version")
    assert code == 0
    assert "duckdb" not in top_level(modules) and "mlops_tui.store" not in modules
    assert "rich" not in top_level(modules)


def test_commands_load_only_when_used_and_help_still_lists_them_all():
    script = textwrap.dedent("""
        import json, sys, typer
        from mlops_tui.cli.main import app
        root = typer.main.get_command(app)
        with typer.Context(root) as ctx:
            names = root.list_commands(ctx)
            before = "mlops_tui.cli.deploy_cmd" in sys.modules
            models = root.get_command(ctx, "models")
            with typer.Context(models, parent=ctx) as sub:
                models_names = models.list_commands(sub)
            deploy_loaded_by_models = "mlops_tui.cli.deploy_cmd" in sys.modules
            gc = models.get_command(sub, "gc")
        print(json.dumps({"names": names, "before": before, "models": models_names,
                          "deploy_by_models": deploy_loaded_by_models,
                          "gc": gc.name, "after": "mlops_tui.cli.deploy_cmd" in sys.modules}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=True)
    result = json.loads(done.stdout)
    assert result["names"] == [
        "deploy", "rollback", "predict", "ingest", "retrain", "demo", "doctor", "init",
        "lineage", "audit", "status", "models", "env", "deployments", "ct", "serving",
        "store", "jobs", "image", "labels", "drift", "regimes"]
    assert result["models"] == ["list", "show", "gc"]
    assert not result["before"] and not result["deploy_by_models"]  # listed, not imported
    assert result["gc"] == "gc" and result["after"]  # looked up: imported


def test_a_mistyped_command_still_gets_a_suggestion():
    code, out, err = run_cli("stat")
    assert code == 2 and out == ""
    assert "No such command 'stat'. Did you mean 'status'?" in err
    code, out, err = run_cli("models", "lst")
    assert code == 2 and "Did you mean 'list'?" in err


def test_help_shows_flags_without_a_value_type():
    code, out, err = run_cli("--help")
    assert code == 0, err
    rows = {line.split()[1]: line for line in out.splitlines()
            if line.startswith("│ --")}
    assert "<bool>" not in rows["--readonly"] and "<bool>" not in rows["--version"]
    assert "<str>" in rows["--workspace"]  # an option that takes a value keeps its type
    code, out, _ = run_cli("models", "list", "--help")
    assert code == 0 and "<bool>" not in out and "<int range>" in out
    code, _, err = run_cli("--readonly", "true")  # a flag takes no value: still a usage error
    assert code == 2


# -- the fast conversion gives typer's own results and errors ------------------------------

probe = typer.Typer(add_completion=False)


@probe.command()
def convert(
    number: Annotated[int, typer.Option(min=0, max=10)] = 3,
    count: Annotated[int, typer.Option()] = 0,
    text: Annotated[str | None, typer.Option()] = None,
    at: Annotated[datetime | None, typer.Option()] = None,
    path: Annotated[Path | None, typer.Option()] = None,
    existing: Annotated[Path | None, typer.Option(exists=True, dir_okay=False)] = None,
    paths: Annotated[list[Path] | None, typer.Option("--each")] = None,
    flag: Annotated[bool, typer.Option("--flag")] = False,
) -> None:
    print(json.dumps({"number": number, "count": count, "text": text, "at": repr(at),
                      "path": repr(path), "existing": repr(existing),
                      "paths": repr(paths), "flag": flag}))


CASES = [
    [], ["--number", "7"], ["--number", "+7"], ["--number", "007"], ["--number", " 7"],
    ["--number", "1_0"], ["--number", "1.0"], ["--number", "11"], ["--number", "-1"],
    ["--number", "x"], ["--number", "١"], ["--count", "-99999999999999999999"],
    ["--text", "héllo"], ["--text", ""],
    ["--at", "2026-01-31"], ["--at", "2026-01-31T08:00"], ["--at", "2026-01-31 08:00:05.25"],
    ["--at", "2026-01-31T08:00Z"], ["--at", "2026-01-31T08:00+01:00"], ["--at", "2026-02-30"],
    ["--at", "1700000000"], ["--at", "2026-01-31T08"], ["--at", "0000-01-01"], ["--at", "soon"],
    ["--path", "a/b"], ["--path", ""], ["--existing", "missing.txt"], ["--existing", "."],
    ["--existing", "there.txt"], ["--each", "a", "--each", "b"], ["--flag"],
]


def _invoke(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(probe, args)
    return result.exit_code, result.output


@pytest.mark.parametrize("args", CASES, ids=[" ".join(c) or "defaults" for c in CASES])
def test_fast_conversion_matches_typer(args, monkeypatch, tmp_path):
    import typer.core as typer_core

    typer_compat.apply()
    (tmp_path / "there.txt").write_text("x")  # the tests run in tmp_path
    fast = _invoke(args)
    monkeypatch.setattr(typer_core, "build_runtime_param", typer_compat.ORIGINAL)
    assert _invoke(args) == fast


def test_lazy_commands_mapping():
    import typer.core

    from mlops_tui.cli.lazy import LazyCommands

    here = typer.core.TyperCommand(name="here")
    commands = LazyCommands({"here": here}, [
        ("jobs", "mlops_tui.cli.jobs_cmd:app"), ("here", None), ("absent", None),
        ("logs", "mlops_tui.cli.jobs_cmd:logs_command")])
    assert commands.names() == ["jobs", "here", "logs"] == list(commands)
    assert "jobs" in commands and "absent" not in commands and len(commands) == 3
    assert commands["here"] is here
    jobs = commands["jobs"]
    assert jobs.name == "jobs" and "list" in jobs.commands  # a Typer app becomes its group
    assert commands["jobs"] is jobs  # loaded once
    logs = commands["logs"]
    assert logs.name == "logs" and "--json" in {o for p in logs.params for o in p.opts}
    with pytest.raises(KeyError):
        commands["absent"]
    commands["extra"] = here
    del commands["jobs"]
    assert commands.names() == ["here", "logs", "extra"]
    with pytest.raises(KeyError):
        del commands["jobs"]


def test_the_program_skips_teardown_but_not_exit_handlers_or_output(registered, tmp_path):
    """As `python -m` (or the console script) the CLI leaves without the interpreter's
    teardown; exit handlers still run and all output arrives. A real exit handler, from a
    sitecustomize module on the path, marks that it ran."""
    import os

    marker = tmp_path / "handler-ran"
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import atexit\n"
        f"atexit.register(lambda: open({str(marker)!r}, 'w').write('ran'))\n")
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    for args, expected in ((("models", "list", "--json", "--limit", "0"), 0),
                           (("models", "show", "v404", "--json"), 2)):
        marker.unlink(missing_ok=True)
        code, out, err = run_cli(*args, workspace=registered, env={"PYTHONPATH": path})
        assert code == expected, err
        document = json.loads(out)  # complete: the streams were flushed
        assert ("total" in document) if expected == 0 else ("error" in document)
        assert marker.read_text() == "ran"

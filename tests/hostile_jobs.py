"""Hostile pipelines for the job-folder tests: each plants something in its work folder (its
current directory, local or in a container) when the harness exits, or trains something
that must never be registered. The host-side paths it aims at are written into the source.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from conftest import run_cli
from training_helpers import BASE_REGIME, TAMPER_TEMPLATE, WRAPPER_HEADER, store_verifies

from mlops_tui.services.workspace import Workspace

SECRET_TEXT = "root-only secret 5f1c9e"

# Each body runs in the job at exit (after result.json or failure.json was written), with
# `job` = the work folder; SECRET and NEWFILE are host paths the job must never reach.
BODIES = {
    # job.log and a temp name the host used to write, turned into links to host files
    "symlinks": (
        '    (job / "job.log").unlink()\n'
        '    os.symlink(SECRET, job / "job.log")\n'
        '    os.symlink(NEWFILE, job / ".exit.json.tmp")\n'
        '    os.symlink(NEWFILE, job / "exit.json")\n'
        '    os.symlink(SECRET, job / "runner.log")'),
    "result-fifo": (
        '    (job / "result.json").unlink()\n'
        '    os.mkfifo(job / "result.json")'),
    "log-fifo": (
        '    (job / "job.log").unlink()\n'
        '    os.mkfifo(job / "job.log")'),
    "result-hard-link": '    os.link(job / "result.json", job / "another-name.json")',
    "huge-log": '    os.truncate(job / "job.log", 10 * 2**30)  # sparse: 10 GB, no disk used',
    "inflated-metric": (
        '    document = json.loads((job / "result.json").read_text())\n'
        '    document["metrics"]["r2"] = 1e308\n'
        '    (job / "result.json").write_text(json.dumps(document))'),
    "hostile-artifact": (
        '    data = (Path(__file__).parent / "hostile.skops").read_bytes()\n'
        '    (job / "model.skops").write_bytes(data)\n'
        '    document = json.loads((job / "result.json").read_text())\n'
        '    import hashlib\n'
        '    document["artifact"]["sha256"] = hashlib.sha256(data).hexdigest()\n'
        '    document["artifact"]["size"] = len(data)\n'
        '    (job / "result.json").write_text(json.dumps(document))'),
    # the local runner's job runs as the operator: it can swap its own folders
    "work-swapped": (
        '    real = job.with_name("elsewhere")\n'
        '    os.rename(job, real)\n'
        '    os.symlink(real, job)'),
    "pipeline-swapped": (
        '    pipeline = Path(__file__).parent\n'
        '    planted = job / "planted"\n'
        '    planted.mkdir()\n'
        '    (planted / "train.py").write_text("PLANTED = True\\n")\n'
        '    os.symlink(SECRET, planted / "secret.txt")\n'
        '    os.rename(pipeline, pipeline.with_name("was-pipeline"))\n'
        '    os.symlink(planted, pipeline)'),
}

FAILING = WRAPPER_HEADER + '''
SECRET = {secret!r}
NEWFILE = {newfile!r}


def _tamper():
    job = Path.cwd()
{body}


def train(frame, params):
    atexit.register(_tamper)
    raise ValueError("calibration table is empty")
'''


def hostile_pipeline(kind: str, secret: Path, newfile: Path, *, fail: bool = False) -> str:
    body = BODIES[kind]
    if fail:
        return FAILING.format(secret=str(secret), newfile=str(newfile), body=body)
    constants = f"\nSECRET = {str(secret)!r}\nNEWFILE = {str(newfile)!r}\n"
    source = TAMPER_TEMPLATE.format(body=body)
    return source.replace("\n\ndef _tamper", constants + "\n\ndef _tamper", 1)


def posix_system_artifact() -> bytes:
    """A skops file whose schema names posix.system (never loadable as trusted)."""
    import numpy as np
    import skops.io as sio
    from sklearn.linear_model import Ridge

    data = sio.dumps(Ridge().fit(np.ones((3, 2)), [1.0, 2.0, 3.0]))
    source = zipfile.ZipFile(io.BytesIO(data))
    schema = json.loads(source.read("schema.json"))
    schema["__module__"], schema["__class__"] = "posix", "system"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name in source.namelist():
            archive.writestr(name, json.dumps(schema) if name == "schema.json"
                             else source.read(name))
    return out.getvalue()


def not_a_model_artifact() -> bytes:
    """A valid skops file that holds a plain dict, not an estimator."""
    import skops.io as sio

    return sio.dumps({"weights": [1, 2, 3]})


def plant_secret(directory: Path) -> Path:
    """A root-only file (0600) the job must neither read nor change."""
    directory.mkdir(parents=True, exist_ok=True)
    secret = directory / "secret.txt"
    secret.write_text(SECRET_TEXT + "\n")
    secret.chmod(0o600)
    return secret


def retrain(workspace: Workspace, *extra: str) -> tuple[int, dict, str]:
    code, out, err = run_cli("retrain", "--regime", BASE_REGIME, "--wait", "--json", *extra,
                             workspace=workspace, timeout=300)
    return code, json.loads(out), err


def only_job(workspace: Workspace) -> dict:
    code, out, err = run_cli("jobs", "list", "--json", workspace=workspace)
    assert code == 0, err
    return json.loads(out)["jobs"][0]


def assert_host_untouched(workspace: Workspace, secret: Path, newfile: Path,
                          *outputs: str) -> None:
    assert secret.read_text() == SECRET_TEXT + "\n"  # nothing appended
    assert secret.stat().st_mode & 0o777 == 0o600
    assert not newfile.exists() and not newfile.is_symlink()  # nothing created through a link
    for output in outputs:
        assert SECRET_TEXT not in output
    for stored in workspace.code_root.rglob("*"):  # never copied into the code store
        if stored.is_file():
            assert SECRET_TEXT.encode() not in stored.read_bytes()
    assert store_verifies(workspace) == []


def shown_everywhere(workspace: Workspace, job_id: str) -> list[str]:
    """Everything the CLI shows of a job: list, show, logs, audit, status."""
    outputs = []
    for command in (("jobs", "show", job_id, "--json"), ("jobs", "logs", job_id),
                    ("audit", "--json"), ("status", "--json"), ("jobs", "list")):
        code, out, err = run_cli(*command, workspace=workspace)
        assert code == 0, (command, err)
        outputs += [out, err]
    return outputs

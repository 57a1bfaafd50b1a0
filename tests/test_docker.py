"""Containerised retrains in a real Docker engine (docs/architecture.md, "Jobs").

Every test here talks to the real engine that `scripts/docker-engine.sh` starts (in CI,
`.ci/run` runs it first); with CI=true a missing engine or base image fails the module instead
of skipping it. The trainer image of the sample pipeline is built once per test process (the
engine keeps it, so a rerun finds it cached); fault pipelines differ only in their code, so
their images reuse its dependency layers. Workspaces hold a thin slice of the sample data.

Each test that runs a container watches the engine while the job runs and checks, with
`docker inspect` data of the real container, its name, labels, limits, user and mounts; then
that the version (if any) records runner docker and the image id.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from conftest import REPO_ROOT, run_cli
from training_helpers import (
    copy_workspace,
    install_pipeline,
    job_state,
    slow_pipeline,
    store_verifies,
    tamper_pipeline,
    version_count,
    versions_of_job,
    wait_until,
    write_sample_slice,
)

from mlops_tui.core.errors import UnavailableError, UsageError
from mlops_tui.core.models import JobState
from mlops_tui.services.workspace import Workspace, init_workspace, open_workspace

pytestmark = pytest.mark.docker

BASE_IMAGE = "mlops-base:bookworm"
REGIME = "suv"
JOB_USER = "10001:10001"
CLI_TIMEOUT = 600  # a first run builds the trainer image (and may download its wheels)
ENGINE_HINT = "start the engine and build the base image with: bash scripts/docker-engine.sh"

# Allocates and touches 2 GB in steps, far beyond the test's memory limit.
OOM_PIPELINE = '''"""Test pipeline: allocates far beyond the container's memory limit."""
import numpy


def train(frame, params):
    blocks = []
    for _ in range(64):
        blocks.append(numpy.ones(32 * 2**20 // 8))
    raise AssertionError("allocated 2 GB: the memory limit did not hold")
'''


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="module")
def engine():
    """The real engine with the base image; absent: skip locally, FAIL in CI."""
    from mlops_tui.runners import docker as docker_runner

    problem = None
    try:
        docker_runner.client()
        if docker_runner.find_image(BASE_IMAGE) is None:
            problem = f"base image {BASE_IMAGE} is not in the engine"
    except UnavailableError as error:
        problem = error.message
    if problem:
        if in_ci():
            pytest.fail(f"CI=true and no usable Docker engine: {problem}; {ENGINE_HINT}")
        pytest.skip(f"no usable Docker engine ({problem}); {ENGINE_HINT}")
    return docker_runner.client()


def configure(workspace: Workspace, **settings: object) -> Workspace:
    """Set keys named once in mlops.toml (e.g. [runner]'s); the reopened workspace."""
    text = workspace.config_path.read_text()
    for key, value in settings.items():
        literal = json.dumps(value) if not isinstance(value, bool) else str(value).lower()
        text, count = re.subn(rf"(?m)^{key}\s*=.*$", f"{key} = {literal}", text)
        assert count == 1, key
    workspace.config_path.write_text(text)
    return open_workspace(workspace.root)


@pytest.fixture(scope="module")
def base_root(engine, tmp_path_factory) -> Path:
    """A docker-runner sample workspace with a small slice, and its trainer image built."""
    from mlops_tui.sample import packaged_pipeline_dir
    from mlops_tui.services.demo import sample_config_text
    from mlops_tui.services.images import ensure_trainer_image
    from mlops_tui.services.ingest import ingest_file

    root = tmp_path_factory.mktemp("docker-base") / "ws"
    workspace = init_workspace(root, config_text=sample_config_text(), command="tests")
    shutil.copytree(packaged_pipeline_dir(), root / "pipeline",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    ingest_file(workspace, write_sample_slice(root.parent / "slice.parquet"))
    workspace = configure(workspace, kind="docker")
    ensure_trainer_image(workspace, root / "pipeline")  # once; later tests find it cached
    return root


@pytest.fixture
def ws(base_root: Path, tmp_path: Path) -> Workspace:
    return copy_workspace(base_root, tmp_path / "ws")


def store_id(workspace: Workspace) -> str:
    from mlops_tui.services.status import status

    return status(workspace).store_id


class ContainerWatch:
    """Records `docker inspect` of every container carrying a store's label, while it lives."""

    def __init__(self, engine, store: str) -> None:
        self.engine = engine
        self.store = store
        self.seen: dict[str, dict] = {}  # container id -> first inspect
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ContainerWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        from docker.errors import NotFound

        api = self.engine.api
        while not self._stop.is_set():
            for summary in api.containers(
                    all=True, filters={"label": f"mlops-tui.store-id={self.store}"}):
                if summary["Id"] not in self.seen:
                    try:
                        self.seen[summary["Id"]] = api.inspect_container(summary["Id"])
                    except NotFound:
                        pass
            time.sleep(0.05)

    def of_job(self, job_id: str) -> list[dict]:
        return [a for a in list(self.seen.values())
                if a["Config"]["Labels"].get("mlops-tui.job-id") == job_id]

    def wait_for_job(self, job_id: str, timeout: float = 120) -> dict:
        return wait_until(lambda: (self.of_job(job_id) or [None])[0], timeout,
                          f"a container for job {job_id[:8]}")


def assert_container_contract(attrs: dict, *, job_id: str, store: str, workspace: Workspace,
                              memory: int = 2 * 2**30, nano_cpus: int = 10**9) -> None:
    """The real container's name, labels, limits, user and mounts (docs/architecture.md, "Jobs")."""
    assert attrs["Name"] == f"/mlops-tui-{job_id}"
    labels = attrs["Config"]["Labels"]
    assert labels["mlops-tui.job-id"] == job_id
    assert labels["mlops-tui.store-id"] == store and store
    assert labels["mlops-tui.regime"] == REGIME
    host = attrs["HostConfig"]
    assert host["Memory"] == memory and host["MemorySwap"] == memory
    assert host["NanoCpus"] == nano_cpus
    assert host["NetworkMode"] == "none"
    assert attrs["Config"]["User"] == JOB_USER
    assert attrs["Config"]["Entrypoint"] == ["/bin/sh", "-c"]
    assert "-m mlops_tui.training.harness --job /job" in attrs["Config"]["Cmd"][0]
    mounts = {m["Destination"]: m for m in attrs["Mounts"]}
    assert set(mounts) == {"/job", "/input", "/data/train.parquet", "/data/holdout.parquet"}
    assert mounts["/job"]["RW"] is True  # only the work folder is the job's
    assert mounts["/job"]["Source"] == str(workspace.jobs_root / job_id / "work")
    assert mounts["/input"]["RW"] is False
    assert mounts["/input"]["Source"] == str(workspace.jobs_root / job_id / "input")
    assert mounts["/data/train.parquet"]["RW"] is False
    assert mounts["/data/holdout.parquet"]["RW"] is False
    assert attrs["Image"].startswith("sha256:")
    assert (workspace.jobs_root / job_id / "work").stat().st_uid == 10001
    assert (workspace.jobs_root / job_id).stat().st_uid == os.geteuid()  # host files: ours
    # hardening: no privilege gain, no capabilities, bounded PIDs and logs, read-only root
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["CapDrop"] == ["ALL"] and not host.get("CapAdd")
    assert host["PidsLimit"] == 512
    assert host["ReadonlyRootfs"] is True
    assert set(host["Tmpfs"]) == {"/tmp"} and "size=512m" in host["Tmpfs"]["/tmp"]
    assert "noexec" in host["Tmpfs"]["/tmp"] and "nosuid" in host["Tmpfs"]["/tmp"]
    assert host["LogConfig"] == {"Type": "json-file",
                                 "Config": {"max-size": "10m", "max-file": "1"}}
    assert host["Privileged"] is False


def job_of(workspace: Workspace) -> str:
    from mlops_tui.services.jobs import list_jobs

    jobs = list_jobs(workspace)
    assert len(jobs) == 1, jobs
    return jobs[0].id


def job_containers(engine, job_id: str) -> list:
    return engine.containers.list(all=True, filters={"label": f"mlops-tui.job-id={job_id}"})


def fails_with(code: int, result: tuple[int, str, str]) -> dict:
    """The --json error document of a command that must exit `code`."""
    returned, out, err = result
    assert returned == code, (returned, out, err)
    document = json.loads(out)["error"]
    assert document["code"] == code
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    return document


# -- the acceptance path ------------------------------------------------------------------


def test_retrain_in_a_container_records_image_and_container_environment(engine, ws):
    store = store_id(ws)
    with ContainerWatch(engine, store) as watch:
        code, out, err = run_cli("retrain", "--regime", REGIME, "--runner", "docker", "--wait",
                                 "--json", workspace=ws, timeout=CLI_TIMEOUT)
    assert code == 0, err
    outcome = json.loads(out)
    job_id, version_id = outcome["job"]["id"], outcome["version"]
    assert outcome["job"]["runner"] == "docker" and outcome["job"]["state"] == "ingested"
    [attrs] = watch.of_job(job_id)  # one container, inspected while it ran
    assert_container_contract(attrs, job_id=job_id, store=store, workspace=ws)

    code, out, err = run_cli("models", "show", version_id, "--json", workspace=ws)
    assert code == 0, err
    version = json.loads(out)
    assert version["runner"] == "docker"
    assert version["image"] == attrs["Image"]  # the image id is in the version
    code, out, _ = run_cli("lineage", version_id, "--json", workspace=ws)
    assert attrs["Image"] in out  # ... and in its lineage

    # The environment was captured inside the container: Debian's Python, the image's venv.
    from mlops_tui.services.registry import show_version

    detail = show_version(ws, version_id)
    assert detail.env.python_version != sys.version.split()[0]
    assert detail.env.source.startswith("image:mlops-trainer:")
    assert "textual" not in detail.env.packages and "scikit-learn" in detail.env.packages
    code, out, err = run_cli("env", "capture", "--image", attrs["Image"], "--json")
    assert code == 0, err
    assert json.loads(out)["hash"] == detail.env.hash  # the same environment, captured twice

    code, out, err = run_cli("env", "diff", version_id, "host", "--json", workspace=ws)
    assert code == 0, err
    diff = json.loads(out)
    assert diff["python"]["old"] == detail.env.python_version
    assert diff["python"]["new"] == sys.version.split()[0]
    assert diff["python"]["change"].startswith("patch-")
    assert diff["python"]["verdict"] == "compatible"  # a Python patch change is compatible
    needed = [c for c in diff["changes"] if c["needed_by_model"]]
    assert all(c["change"] in ("added",) for c in needed), needed  # pinned to the host
    assert diff["verdict"] in ("compatible", "risky")
    assert all(c["verdict"] != "incompatible" for c in diff["changes"])

    assert job_containers(engine, job_id) == []  # removed once the result was ingested
    assert "finished: succeeded" in (ws.jobs_root / job_id / "runner.log").read_text()
    assert store_verifies(ws) == []

    # Level 0 against a serving image: the bare base image cannot load this model.
    code, out, err = run_cli("env", "capture", "--image", BASE_IMAGE, "--json", workspace=ws)
    assert code == 0, err
    assert json.loads(out)["recorded_in"] == str(ws.root)  # kept for the deploy gate
    from mlops_tui.services.gate import serving_environment

    served = configure(ws, environment=f"image:{BASE_IMAGE}")
    label, env = serving_environment(served)
    assert label == f"image:{BASE_IMAGE}" and env.hash == json.loads(out)["hash"]
    code, out, err = run_cli("env", "diff", version_id, f"image:{BASE_IMAGE}", "--json",
                             workspace=ws)
    assert code == 0, err
    assert json.loads(out)["verdict"] == "incompatible"  # no scikit-learn in the base image


def test_trainer_image_is_built_once_and_listed(engine, ws):
    from mlops_tui.services.images import harness_hash

    code, out, err = run_cli("image", "build", "--json", workspace=ws, timeout=CLI_TIMEOUT)
    assert code == 0, err
    first = json.loads(out)
    code, out, err = run_cli("image", "build", "--json", workspace=ws)
    assert code == 0, err
    second = json.loads(out)
    assert second["built"] is False and second["id"] == first["id"]
    assert second["harness"] == harness_hash()
    assert second["base_image_id"] == engine.images.get(BASE_IMAGE).id
    assert second["python"] != sys.version.split()[0]  # Debian's 3.11.x, not the host's
    code, out, err = run_cli("image", "list", "--json")
    assert code == 0, err
    listed = {i["id"]: i for i in json.loads(out)["images"]}
    assert listed[first["id"]]["cache_key"] == first["cache_key"]
    labels = engine.images.get(first["id"]).labels
    assert labels["mlops-tui.cache-key"] == first["cache_key"]
    assert labels["mlops-tui.wheelhouse-lock"] == first["wheelhouse_lock"]


# -- faults, each for real ----------------------------------------------------------------


def test_unreachable_engine_exits_6_before_any_job(ws, tmp_path):
    dead = {"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    error = fails_with(6, run_cli("retrain", "--regime", REGIME, "--runner", "docker", "--json",
                                  workspace=ws, env=dead))
    assert error["kind"] == "unavailable" and "no-engine.sock" in error["message"]
    code, out, _ = run_cli("jobs", "list", "--json", workspace=ws)
    assert json.loads(out)["jobs"] == []  # no job was created


def test_auto_runner_falls_back_to_local_without_an_engine(ws, tmp_path, monkeypatch):
    from mlops_tui.services.retrain import choose_runner

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    assert choose_runner(ws, "auto") == ("local", "runner auto: no Docker engine answers, "
                                                  "using local")


def test_missing_base_image_exits_6_and_starts_nothing(engine, ws):
    ws = configure(ws, base_image="mlops-base:absent-for-tests")
    error = fails_with(6, run_cli("retrain", "--regime", REGIME, "--runner", "docker", "--json",
                                  workspace=ws))
    assert "mlops-base:absent-for-tests" in error["message"]
    assert "never pulled" in error["message"] and "base_image" in error["message"]
    code, out, _ = run_cli("jobs", "list", "--json", workspace=ws)
    assert json.loads(out)["jobs"] == []
    assert engine.containers.list(
        all=True, filters={"label": f"mlops-tui.store-id={store_id(ws)}"}) == []


@pytest.fixture(scope="module")
def shell_less_image(engine, tmp_path_factory):
    """An image without /bin/sh: a container of it is created, but cannot start."""
    context = tmp_path_factory.mktemp("no-shell")
    (context / "marker").write_text("no shell here\n")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY marker /marker\n")
    image, _ = engine.images.build(path=str(context), tag="mlops-tui-tests/no-shell:1",
                                   rm=True, pull=False, network_mode="none")
    return image.id


def test_container_start_failure_removes_the_created_container(engine, ws, shell_less_image):
    from mlops_tui.runners import docker as docker_runner

    job_id = str(uuid.uuid4())
    job_dir = ws.jobs_root / job_id
    for folder in (job_dir / "input", job_dir / "work"):
        folder.mkdir(parents=True)
    train, holdout = job_dir.parent / "train.parquet", job_dir.parent / "holdout.parquet"
    for snapshot in (train, holdout):
        snapshot.write_bytes(b"PAR1")
    spec = {"image_id": shell_less_image, "store_id": store_id(ws), "regime": REGIME}
    with pytest.raises(UnavailableError, match="failed to start .removed it."):
        docker_runner.start(ws, job_id, job_dir, train, holdout, spec)
    assert job_containers(engine, job_id) == []
    assert "failed to start and was removed" in (job_dir / "runner.log").read_text()


def run_failing_retrain(engine, workspace: Workspace, code: int) -> tuple[dict, str, dict]:
    """Run `retrain --wait` that must exit `code`; (error document, job id, inspect)."""
    store = store_id(workspace)
    with ContainerWatch(engine, store) as watch:
        error = fails_with(code, run_cli("retrain", "--regime", REGIME, "--wait", "--json",
                                         workspace=workspace, timeout=CLI_TIMEOUT))
    job_id = job_of(workspace)
    [attrs] = watch.of_job(job_id)
    return error, job_id, attrs


def test_out_of_memory_fails_the_job_naming_the_limit(engine, ws):
    install_pipeline(ws, OOM_PIPELINE)
    ws = configure(ws, memory="320m")
    before = version_count(ws)
    error, job_id, attrs = run_failing_retrain(engine, ws, 3)
    assert_container_contract(attrs, job_id=job_id, store=store_id(ws), workspace=ws,
                              memory=320 * 2**20)
    assert re.search(r"(out of memory|killed \(possibly out of memory,) \(?limit 320m\)",
                     error["message"]), error["message"]
    assert job_state(ws, job_id) is JobState.FAILED
    assert version_count(ws) == before
    assert job_containers(engine, job_id) == []  # a final failure: removed


def test_wall_clock_timeout_stops_then_fails_the_job(engine, ws):
    install_pipeline(ws, slow_pipeline())  # waits for a release file that never comes
    ws = configure(ws, timeout_seconds=3)
    started = time.monotonic()
    error, job_id, attrs = run_failing_retrain(engine, ws, 3)
    assert time.monotonic() - started < 60
    assert_container_contract(attrs, job_id=job_id, store=store_id(ws), workspace=ws)
    assert "timeout after 3s" in error["message"]
    assert attrs["Config"]["Cmd"][0].startswith("exec timeout -k 5 3 ")  # TERM, then KILL
    log = (ws.jobs_root / job_id / "work" / "job.log").read_text()
    assert f"job {job_id}: regime {REGIME}" in log  # the harness's own output was kept
    assert "failed (timeout after 3s)" in (ws.jobs_root / job_id / "runner.log").read_text()
    assert job_containers(engine, job_id) == []


@pytest.mark.parametrize("tamper", ["hash-mismatch", "malformed-json"])
def test_tampered_result_is_rejected_with_exit_5(engine, ws, tamper):
    install_pipeline(ws, tamper_pipeline(tamper))
    before = version_count(ws)
    error, job_id, attrs = run_failing_retrain(engine, ws, 5)
    assert_container_contract(attrs, job_id=job_id, store=store_id(ws), workspace=ws)
    assert "rejected" in error["message"]
    assert job_state(ws, job_id) is JobState.REJECTED
    assert version_count(ws) == before and versions_of_job(ws, job_id) == []
    assert job_containers(engine, job_id) == []
    assert store_verifies(ws) == []


def start_slow_job(workspace: Workspace) -> tuple[str, str]:
    """Start a retrain of the slow pipeline without waiting; (job id, stderr) once train()
    runs inside its container."""
    code, out, err = run_cli("retrain", "--regime", REGIME, workspace=workspace,
                             timeout=CLI_TIMEOUT)
    assert code == 0, err
    job_id = job_of(workspace)
    wait_until(lambda: (workspace.jobs_root / job_id / "work" / "harness.pid").exists(), 120,
               "the pipeline to start inside the container")
    return job_id, err


def test_launcher_killed_mid_job_then_reconcile_ingests_once(engine, ws):
    install_pipeline(ws, slow_pipeline())
    store = store_id(ws)
    command = [sys.executable, "-m", "mlops_tui.cli.main", "--workspace", str(ws.root),
               "retrain", "--regime", REGIME, "--wait"]
    with ContainerWatch(engine, store) as watch:
        launcher = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            job_id = wait_until(lambda: ws.jobs_root.exists() and [p.name for p in
                                ws.jobs_root.iterdir()], 120, "the job folder")[0]
            wait_until(lambda: (ws.jobs_root / job_id / "work" / "harness.pid").exists(), 120,
                       "the pipeline to start inside the container")
            wait_until(lambda: job_state(ws, job_id) is JobState.RUNNING, 30, "job running")
            launcher.send_signal(signal.SIGKILL)
            assert launcher.wait(10) == -signal.SIGKILL
        finally:
            if launcher.poll() is None:
                launcher.kill()
        (ws.jobs_root / job_id / "work" / "release").write_text("go\n")
        [container] = job_containers(engine, job_id)
        assert container.wait(timeout=120)["StatusCode"] == 0  # it went on without its launcher
        assert job_state(ws, job_id) is JobState.RUNNING
        code, out, err = run_cli("jobs", "reconcile", "--json", workspace=ws)
    assert code == 0, err
    [outcome] = [o for o in json.loads(out)["outcomes"] if o["job"]["id"] == job_id]
    assert outcome["job"]["state"] == "ingested" and outcome["version"]
    assert len(watch.of_job(job_id)) == 1  # followed, never started again
    assert_container_contract(watch.of_job(job_id)[0], job_id=job_id, store=store,
                              workspace=ws)
    code, out, err = run_cli("jobs", "reconcile", "--json", workspace=ws)
    assert code == 0, err
    assert [o for o in json.loads(out)["outcomes"] if o["job"]["id"] == job_id] == []
    assert versions_of_job(ws, job_id) == [outcome["version"]]  # ingested exactly once
    assert job_containers(engine, job_id) == []
    code, out, _ = run_cli("models", "show", outcome["version"], "--json", workspace=ws)
    assert json.loads(out)["image"] == watch.of_job(job_id)[0]["Image"]


def test_container_removed_by_someone_else_makes_the_job_lost(engine, ws):
    install_pipeline(ws, slow_pipeline())
    store = store_id(ws)
    with ContainerWatch(engine, store) as watch:
        job_id, _ = start_slow_job(ws)
        attrs = watch.wait_for_job(job_id)
        docker_cli = shutil.which("docker")
        if docker_cli:  # exactly what an operator would type
            subprocess.run([docker_cli, "rm", "-f", f"mlops-tui-{job_id}"], check=True,
                           capture_output=True, timeout=60)
        else:  # the same API call `docker rm -f` makes
            engine.containers.get(f"mlops-tui-{job_id}").remove(force=True)
    assert_container_contract(attrs, job_id=job_id, store=store, workspace=ws)
    code, out, err = run_cli("jobs", "reconcile", "--json", workspace=ws)
    assert code == 0, err
    [outcome] = [o for o in json.loads(out)["outcomes"] if o["job"]["id"] == job_id]
    assert outcome["job"]["state"] == "lost"
    assert "removed by someone else" in outcome["job"]["reason"]
    assert versions_of_job(ws, job_id) == []


def test_second_retrain_conflicts_and_auto_runner_says_it_picked_docker(engine, ws):
    install_pipeline(ws, slow_pipeline())
    ws = configure(ws, kind="auto")
    store = store_id(ws)
    with ContainerWatch(engine, store) as watch:
        job_id, err = start_slow_job(ws)
        assert "runner auto: a Docker engine answers, using docker" in err
        attrs = watch.wait_for_job(job_id)
        error = fails_with(3, run_cli("retrain", "--regime", REGIME, "--json", workspace=ws))
        assert job_id in error["message"] and "already running" in error["message"]
        code, out, err = run_cli("jobs", "cancel", job_id[:8], "--json", workspace=ws)
    assert code == 0, err
    assert json.loads(out)["state"] == "cancelled" and json.loads(out)["runner"] == "docker"
    assert_container_contract(attrs, job_id=job_id, store=store, workspace=ws)
    assert job_containers(engine, job_id) == []
    assert len(watch.of_job(job_id)) == 1


def test_reconcile_removes_orphan_containers_of_this_store_only(engine, ws):
    from mlops_tui.services.images import list_trainer_images

    image = list_trainer_images()[0].id
    store = store_id(ws)
    orphan_job, foreign_job = str(uuid.uuid4()), str(uuid.uuid4())
    created = []
    try:
        for job, owner in ((orphan_job, store), (foreign_job, "another-store")):
            container = engine.containers.create(
                image, ["sleep", "60"], name=f"mlops-tui-{job}", network_mode="none",
                labels={"mlops-tui.kind": "job", "mlops-tui.job-id": job,
                        "mlops-tui.store-id": owner, "mlops-tui.regime": REGIME})
            container.start()
            created.append(container)
        ws = configure(ws, kind="docker")
        code, out, err = run_cli("jobs", "reconcile", "--json", workspace=ws)
        assert code == 0, err
        [outcome] = json.loads(out)["outcomes"]
        assert outcome["job"]["id"] == orphan_job
        assert "removed orphan container" in outcome["message"]
        assert job_containers(engine, orphan_job) == []
        assert len(job_containers(engine, foreign_job)) == 1  # not this store's: left alone
    finally:
        for container in created:
            try:
                container.remove(force=True)
            except Exception:  # noqa: BLE001 - already removed by the code under test
                pass


# -- the image recipe, without the engine -------------------------------------------------


def test_host_pins_win_over_the_pipeline_requirements(tmp_path):
    from mlops_tui.services.images import HARNESS_REQUIREMENTS, effective_requirements

    (tmp_path / "requirements.txt").write_text(
        "scikit-learn==1.0.0  # too old for the host\npandas==2.2.0\nlightgbm\n")
    lines, notes = effective_requirements(tmp_path, {"scikit-learn": "1.9.1", "numpy": "2.4.6"})
    assert lines[:3] == ["scikit-learn==1.9.1", "pandas==2.2.0", "lightgbm"]
    assert "numpy==2.4.6" in lines
    assert {"pyarrow", "skops"} <= set(lines) and len(HARNESS_REQUIREMENTS) == 4
    assert notes == ["scikit-learn pinned to the host's 1.9.1 (requirements.txt: "
                     "scikit-learn==1.0.0)"]
    (tmp_path / "requirements.txt").write_text("-e ./local-package\n")
    with pytest.raises(UsageError, match=r"requirements.txt:1: .* is not a requirement"):
        effective_requirements(tmp_path, {})


@pytest.mark.parametrize(("runner", "message"), [
    ({"memory": "lots"}, "[runner] memory = 'lots': must be a size like 512m"),
    ({"cpus": 0}, "[runner] cpus = 0: must be a finite number >= 0.01"),
    ({"timeout_seconds": 0}, "[runner] timeout_seconds = 0: must be a whole number >= 1"),
])
def test_runner_limits_are_validated(runner, message):
    from mlops_tui.core.config import ConfigError, parse_config

    with pytest.raises(ConfigError) as raised:
        parse_config({"runner": runner})
    assert message in raised.value.message

"""The Docker runner: the harness in a container of a trainer image, through the docker SDK.

Same handle as the local runner. A job's container is `mlops-tui-<job_id>`, labelled with the
job id, the store id and the regime; it runs as a fixed non-root uid that owns only the job's
work folder (mounted read-write at /job), with its input (spec and pipeline) and the
train/holdout snapshots mounted read-only, a read-only root filesystem with a tmpfs for
scratch space, no new privileges, every capability dropped, a PIDs limit, a memory limit with
swap equal to it, a CPU limit, a bounded engine log, no network unless configured, and a
wall-clock timeout (enforced inside the container by `timeout`, and by whoever polls the
handle as a backstop). The harness writes its output straight into work/job.log, so the log
is kept when the container is gone and survives a launcher that died.

Outcomes are read from the container's state and the job folder (the job's files through
`JobFolder`, never following what the job planted), and the final one is written to the
host-side `exit.json`, so it can be re-read after the container is removed. This module never
touches the store (the services decide when a container may be removed) and never pulls an
image: every image must already be in the engine.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_tui.core.config import RunnerSettings
from mlops_tui.core.errors import UnavailableError
from mlops_tui.runners.base import RUNNER_FILE, JobStatus, outcome_from_folder
from mlops_tui.runners.folder import JobFolder, append_host_log, create_log, write_host_file
from mlops_tui.training.contract import CANCEL_FILE, FAILURE_FILE, LOG_FILE, RESULT_FILE

NAME = "docker"
CONTAINER_PREFIX = "mlops-tui-"
LABEL_KIND = "mlops-tui.kind"
LABEL_JOB = "mlops-tui.job-id"
LABEL_STORE = "mlops-tui.store-id"
LABEL_REGIME = "mlops-tui.regime"
LABEL_WORKSPACE = "mlops-tui.workspace"
JOB_UID = 10001  # the fixed non-root user jobs run as; it owns the job folder
STOP_GRACE_SECONDS = 5  # between the stop signal and the kill
TIMEOUT_EXIT_CODE = 124  # coreutils `timeout` exits with it when the time is up
EXIT_FILE = "exit.json"  # the final state, kept after the container is removed
TIMED_OUT_FILE = "timed-out"  # the host stopped the container at its wall-clock limit
PREPARING_GRACE_SECONDS = 600  # a job folder not yet started is trusted this long
CONTAINER_JOB_DIR = "/job"
CONTAINER_INPUT_DIR = "/input"
PIDS_LIMIT = 512  # threads count too: BLAS and joblib pools need room
SCRATCH_TMPFS = "rw,nosuid,nodev,noexec,size=512m,mode=1777"  # /tmp; counts as memory
ENGINE_LOG = {"max-size": "10m", "max-file": "1"}  # the harness logs to work/job.log instead
CONTAINER_TRAIN = "/data/train.parquet"
CONTAINER_HOLDOUT = "/data/holdout.parquet"
VENV_PYTHON = "/opt/venv/bin/python"

_clients: dict[tuple[str, float], Any] = {}


def engine_host() -> str:
    """Where the engine is expected (DOCKER_HOST, else the default socket)."""
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]


def client(timeout: float = 60.0):
    """A docker SDK client that has answered a ping, or UnavailableError (exit 6)."""
    import docker
    from docker.errors import DockerException

    key = (engine_host(), timeout)
    cached = _clients.get(key)
    try:
        if cached is None:
            cached = docker.from_env(timeout=timeout)
        cached.ping()
    except (DockerException, OSError) as error:
        _clients.pop(key, None)
        raise UnavailableError(
            f"Docker engine not reachable at {engine_host()}: {_first_line(error)} "
            "(start it, e.g. scripts/docker-engine.sh, or use --runner local)") from None
    _clients[key] = cached
    return cached


def engine_available(timeout: float = 3.0) -> bool:
    """True when an engine answers a ping within `timeout` seconds."""
    try:
        client(timeout=timeout)
    except UnavailableError:
        return False
    return True


# -- images ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageInfo:
    id: str
    tags: tuple[str, ...]
    labels: dict[str, str]
    created: str
    size: int


def _image_info(image) -> ImageInfo:
    attrs = image.attrs
    return ImageInfo(id=image.id, tags=tuple(image.tags), labels=dict(image.labels or {}),
                     created=str(attrs.get("Created", "")), size=int(attrs.get("Size") or 0))


def find_image(name: str) -> ImageInfo | None:
    """An image already in the engine (by name or id); None if absent. Never pulls."""
    from docker.errors import ImageNotFound

    try:
        return _image_info(client().images.get(name))
    except ImageNotFound:
        return None


def require_image(name: str, what: str = "image", hint: str = "") -> ImageInfo:
    image = find_image(name)
    if image is None:
        raise UnavailableError(
            f"{what} {name} is not in the Docker engine (images are never pulled)"
            + (f"; {hint}" if hint else ""))
    return image


def images_labelled(labels: dict[str, str]) -> list[ImageInfo]:
    filters = {"label": [f"{k}={v}" if v else k for k, v in labels.items()]}
    return [_image_info(i) for i in client().images.list(filters=filters)]


def build_image(context_dir: Path, tag: str, *, nocache: bool = False,
                log: Callable[[str], None] | None = None) -> ImageInfo:
    """Build `context_dir`'s Dockerfile without a network and without pulling (labels are
    in the Dockerfile: one instruction, where the API's labels cost a step each)."""
    from docker.errors import APIError

    write = log or (lambda line: None)
    lines: list[str] = []
    image_id = None
    try:
        stream = client(timeout=1800).api.build(
            path=str(context_dir), tag=tag, rm=True, forcerm=True, pull=False,
            nocache=nocache, network_mode="none", decode=True)
        for chunk in stream:
            if "error" in chunk:
                lines.append(str(chunk["error"]).strip())
                raise UnavailableError(
                    f"building image {tag} failed: {lines[-1][:300]}",
                    detail={"log_tail": lines[-15:]})
            text = str(chunk.get("stream", "")).rstrip()
            if text:
                lines.append(text)
                write(text)
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("ID"):
                image_id = aux["ID"]
    except APIError as error:
        raise UnavailableError(f"building image {tag} failed: {_first_line(error)}") from None
    return require_image(image_id or tag, "built image")


def remove_image(name: str) -> None:
    from docker.errors import NotFound

    try:
        client().images.remove(name, force=True)
    except NotFound:
        pass


def run_once(image: str, entrypoint: list[str], command: list[str], *, timeout: float = 120.0,
             memory: str = "1g") -> tuple[int, str, str]:
    """Run `entrypoint + command` in a throwaway container of `image` (no network, never
    pulled; the image's own entrypoint is replaced); return (exit code, stdout, stderr).
    The container is always removed."""
    from docker.errors import APIError

    require_image(image)
    engine = client()
    container = None
    try:
        container = engine.containers.create(
            image, command, entrypoint=entrypoint, network_mode="none", mem_limit=memory,
            memswap_limit=memory, labels={LABEL_KIND: "probe"}, detach=True)
        container.start()
        code = int(container.wait(timeout=timeout).get("StatusCode", -1))
        stdout = container.logs(stdout=True, stderr=False).decode(errors="replace")
        stderr = container.logs(stdout=False, stderr=True).decode(errors="replace")
        return code, stdout, stderr
    except APIError as error:
        raise UnavailableError(f"running {image}: {_first_line(error)}") from None
    except Exception as error:  # noqa: BLE001 - e.g. a read timeout from the engine
        raise UnavailableError(f"running {image}: {type(error).__name__}: "
                               f"{_first_line(error)}") from None
    finally:
        if container is not None:
            _remove_quietly(container)


# -- job containers -------------------------------------------------------------------------


def container_name(job_id: str) -> str:
    return CONTAINER_PREFIX + job_id


@dataclass(frozen=True)
class JobContainer:
    name: str
    job_id: str
    store_id: str
    regime: str
    state: str  # created, running, exited, dead, ...


def job_containers(store_id: str) -> list[JobContainer]:
    """Every job container carrying this store's label, in any state."""
    engine = client()
    found = engine.containers.list(
        all=True, filters={"label": [f"{LABEL_KIND}=job", f"{LABEL_STORE}={store_id}"]})
    return [JobContainer(name=c.name, job_id=c.labels.get(LABEL_JOB, ""),
                         store_id=c.labels.get(LABEL_STORE, ""),
                         regime=c.labels.get(LABEL_REGIME, ""), state=c.status)
            for c in found]


def remove_job_container(job_id: str) -> bool:
    """Remove a job's container (forcefully); False if there was none."""
    from docker.errors import NotFound

    try:
        container = client().containers.get(container_name(job_id))
    except NotFound:
        return False
    return _remove_quietly(container)


def _remove_quietly(container) -> bool:
    from docker.errors import APIError, NotFound

    try:
        container.remove(force=True)
    except NotFound:
        return False
    except APIError as error:
        if "already in progress" in str(error):
            return False
        raise
    return True


def _append_log(job_dir: Path, line: str) -> None:
    append_host_log(job_dir, f"[docker] {line}")


def _parse_time(text: str | None) -> datetime | None:
    """Docker's RFC 3339 times carry nanoseconds; Python takes microseconds."""
    if not text or text.startswith("0001-"):
        return None
    head, _, rest = text.rstrip("Z").partition(".")
    fraction = rest[:6] if rest else "0"
    try:
        return datetime.fromisoformat(f"{head}.{fraction:0<6}").replace(tzinfo=UTC)
    except ValueError:
        return None


class DockerJobHandle:
    """Follows a job's container (started here, or by a launcher that has since died)."""

    def __init__(self, job_id: str, job_dir: Path, detail: dict[str, Any]) -> None:
        self.job_id = job_id
        self.job_dir = job_dir
        self.folder = JobFolder(job_dir)
        self._detail = detail

    @property
    def timeout_seconds(self) -> int:
        return int(self._detail.get("timeout_seconds") or RunnerSettings().timeout_seconds)

    @property
    def memory(self) -> str:
        return str(self._detail.get("memory") or RunnerSettings().memory)

    def detail(self) -> dict:
        return dict(self._detail)

    def _container(self):
        from docker.errors import NotFound

        try:
            return client().containers.get(container_name(self.job_id))
        except NotFound:
            return None

    def status(self) -> JobStatus:
        recorded = self.folder.host_json(EXIT_FILE)
        if recorded is not None:
            return JobStatus(str(recorded.get("state", "lost")), str(recorded.get("reason", "")))
        container = self._container()
        if container is None:
            return self._without_container()
        state = container.attrs.get("State", {})
        if state.get("Status") in ("running", "restarting", "paused"):
            started = _parse_time(state.get("StartedAt"))
            limit = self.timeout_seconds + STOP_GRACE_SECONDS + 10
            if started is None or (datetime.now(UTC) - started).total_seconds() < limit:
                return JobStatus("running")
            # The in-container timeout did not end it: stop, then kill, from here.
            _append_log(self.job_dir, f"timeout after {self.timeout_seconds}s: stopping the "
                                      "container from the host")
            write_host_file(self.job_dir, TIMED_OUT_FILE, f"{self.timeout_seconds}\n")
            container.stop(timeout=STOP_GRACE_SECONDS)
            container.reload()
            state = container.attrs.get("State", {})
        elif state.get("Status") == "created":  # between create and start, or start failed
            created = _parse_time(container.attrs.get("Created"))
            if created is None or (datetime.now(UTC) - created).total_seconds() < 60:
                return JobStatus("running")
            return self._final(JobStatus("lost", "the container was created but never started"))
        return self._final(self._classify(state))

    def _without_container(self) -> JobStatus:
        if not self.folder.has_host_file(RUNNER_FILE):  # the container was never started
            # (the jobs service asks the launcher recorded in the spec; this is the fallback)
            if self.job_dir.exists():
                age = time.time() - self.job_dir.stat().st_mtime
                if age < PREPARING_GRACE_SECONDS:
                    return JobStatus("running")  # its launcher is still preparing it
            return self._final(outcome_from_folder(
                self.job_dir, "the launcher stopped before the container was started"))
        return self._final(outcome_from_folder(
            self.job_dir, f"container {container_name(self.job_id)} disappeared before the job "
                          "finished (removed by someone else?)"))

    def _classify(self, state: dict) -> JobStatus:
        """The outcome of an exited container, from its state and the job folder."""
        code = int(state.get("ExitCode", -1))
        oom_killed = bool(state.get("OOMKilled"))
        started = _parse_time(state.get("StartedAt"))
        finished = _parse_time(state.get("FinishedAt"))
        ran = (finished - started).total_seconds() if started and finished else 0.0
        if self.folder.has_host_file(CANCEL_FILE):
            return JobStatus("cancelled", "cancelled by an operator")
        if self.folder.exists(RESULT_FILE):  # written last and atomically: it finished
            return JobStatus("succeeded")
        timed_out = (self.folder.has_host_file(TIMED_OUT_FILE) or code == TIMEOUT_EXIT_CODE
                     or (code in (137, 143) and not oom_killed and ran >= self.timeout_seconds))
        if timed_out:
            return JobStatus("failed", f"timeout after {self.timeout_seconds}s")
        if oom_killed:
            return JobStatus("failed", f"out of memory (limit {self.memory})")
        if self.folder.exists(FAILURE_FILE):
            return outcome_from_folder(self.job_dir)
        if code == 137:
            return JobStatus("failed", f"killed (possibly out of memory, limit {self.memory})")
        return JobStatus("lost", f"the container exited with code {code} without a result or a "
                                 "failure report")

    def _final(self, status: JobStatus) -> JobStatus:
        """Keep the outcome in the job folder (the container may be removed next)."""
        if not status.finished:
            return status
        if not self.folder.has_host_file(EXIT_FILE) and self.job_dir.is_dir():
            write_host_file(self.job_dir, EXIT_FILE, json.dumps(
                {"state": status.state, "reason": status.reason,
                 "at": datetime.now(UTC).isoformat()}))
            _append_log(self.job_dir, f"container {container_name(self.job_id)} finished: "
                                      f"{status.state}" + (f" ({status.reason})" if status.reason
                                                           else ""))
        return status

    def cancel(self, grace: float = STOP_GRACE_SECONDS) -> None:
        write_host_file(self.job_dir, CANCEL_FILE, "cancelled\n")
        container = self._container()
        if container is not None and container.status in ("running", "restarting", "paused",
                                                          "created"):
            container.stop(timeout=int(grace))
        self.status()


def job_user(work_dir: Path) -> str:
    """The uid:gid a job runs as: JOB_UID when we may give it the work folder (nothing else
    of the job folder), else our own (never root)."""
    if os.geteuid() == 0:
        for path in (work_dir, *work_dir.iterdir()):  # only the empty log, before the start
            os.chown(path, JOB_UID, JOB_UID, follow_symlinks=False)
        return f"{JOB_UID}:{JOB_UID}"
    return f"{os.getuid()}:{os.getgid()}"


SHELL_ENTRYPOINT = ["/bin/sh", "-c"]  # replaces any entrypoint the base image brings


def harness_command(timeout_seconds: int) -> list[str]:
    """The shell script the container runs: the harness under a wall-clock limit (TERM, then
    KILL after the grace), its output appended to the job log."""
    harness = (f"{VENV_PYTHON} -m mlops_tui.training.harness --job {CONTAINER_JOB_DIR} "
               f"--input {CONTAINER_INPUT_DIR} --train {CONTAINER_TRAIN} "
               f"--holdout {CONTAINER_HOLDOUT}")
    return [f"exec timeout -k {STOP_GRACE_SECONDS} {int(timeout_seconds)} {harness} "
            f">>{CONTAINER_JOB_DIR}/{LOG_FILE} 2>&1"]


def container_arguments(*, job_id: str, job_dir: Path, train: Path, holdout: Path, image: str,
                        settings: RunnerSettings, labels: dict[str, str], user: str
                        ) -> dict[str, Any]:
    """Everything `containers.create` gets, as data (so it can be checked and logged)."""
    from docker.types import LogConfig, Mount

    folder = JobFolder(job_dir)
    return {
        "image": image,
        "entrypoint": SHELL_ENTRYPOINT,
        "command": harness_command(settings.timeout_seconds),
        "name": container_name(job_id),
        "labels": labels,
        "user": user,
        "working_dir": CONTAINER_JOB_DIR,
        "environment": {"HOME": "/tmp", "PYTHONUNBUFFERED": "1",
                        "PYTHONDONTWRITEBYTECODE": "1"},
        "mounts": [
            Mount(CONTAINER_JOB_DIR, str(folder.work_dir), type="bind", read_only=False),
            Mount(CONTAINER_INPUT_DIR, str(folder.input_dir), type="bind", read_only=True),
            Mount(CONTAINER_TRAIN, str(train), type="bind", read_only=True),
            Mount(CONTAINER_HOLDOUT, str(holdout), type="bind", read_only=True),
        ],
        "mem_limit": settings.memory,
        "memswap_limit": settings.memory,
        "nano_cpus": int(round(settings.cpus * 1e9)),
        "network_mode": "bridge" if settings.network else "none",
        "read_only": True,
        "tmpfs": {"/tmp": SCRATCH_TMPFS},
        "security_opt": ["no-new-privileges"],
        "cap_drop": ["ALL"],
        "pids_limit": PIDS_LIMIT,
        "log_config": LogConfig(type="json-file", config=dict(ENGINE_LOG)),
        "detach": True,
    }


def start(workspace, job_id: str, job_dir: Path, train: Path, holdout: Path,
          spec: dict) -> DockerJobHandle:
    """Create and start the job's container from spec["image_id"]; remove it again if it
    cannot start. Uses only the workspace's paths and runner settings (never its store)."""
    from docker.errors import APIError

    settings: RunnerSettings = workspace.config.runner
    image = str(spec.get("image_id") or "")
    if not image:
        raise UnavailableError(f"job {job_id[:8]} names no trainer image")
    engine = client()
    require_image(image, "trainer image")
    folder = JobFolder(job_dir)
    os.close(create_log(folder.work_dir / LOG_FILE))
    user = job_user(folder.work_dir)
    labels = {LABEL_KIND: "job", LABEL_JOB: job_id, LABEL_STORE: str(spec.get("store_id", "")),
              LABEL_REGIME: str(spec.get("regime", "")), LABEL_WORKSPACE: str(workspace.root)}
    arguments = container_arguments(job_id=job_id, job_dir=job_dir, train=train,
                                    holdout=holdout, image=image, settings=settings,
                                    labels=labels, user=user)
    try:
        container = engine.containers.create(**arguments)
    except APIError as error:
        raise UnavailableError(
            f"cannot create container {container_name(job_id)}: {_first_line(error)}") from None
    try:
        container.start()
    except Exception as error:  # noqa: BLE001 - whatever went wrong, do not leave it behind
        _remove_quietly(container)
        _append_log(job_dir, f"container failed to start and was removed: {_first_line(error)}")
        raise UnavailableError(
            f"container {container_name(job_id)} failed to start (removed it): "
            f"{_first_line(error)}") from None
    detail = {
        "runner": NAME, "container": container_name(job_id), "container_id": container.id,
        "image": spec.get("image") or image, "image_id": image, "user": user,
        "memory": settings.memory, "cpus": settings.cpus,
        "network": "bridge" if settings.network else "none",
        "timeout_seconds": settings.timeout_seconds,
        "started_at": datetime.now(UTC).isoformat(),
    }
    write_host_file(job_dir, RUNNER_FILE, json.dumps(detail, indent=2))
    _append_log(job_dir, f"container {detail['container']} started from {detail['image']} "
                         f"({image[:19]}): memory {settings.memory}, cpus {settings.cpus}, "
                         f"network {detail['network']}, timeout {settings.timeout_seconds}s, "
                         f"user {user}")
    return DockerJobHandle(job_id, job_dir, detail)


def attach(job_id: str, job_dir: Path, settings: RunnerSettings | None = None
           ) -> DockerJobHandle:
    """A handle for a job started by another (possibly dead) process."""
    detail = JobFolder(job_dir).host_json(RUNNER_FILE)
    if detail is None:
        current = settings or RunnerSettings()
        detail = {"runner": NAME, "container": container_name(job_id),
                  "memory": current.memory, "cpus": current.cpus,
                  "timeout_seconds": current.timeout_seconds}
    return DockerJobHandle(job_id, job_dir, detail)

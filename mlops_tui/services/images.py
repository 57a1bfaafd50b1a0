"""Trainer images: where a containerised retrain runs.

A trainer image is the configured base image (`[runner] base_image`, never pulled), the
pipeline's dependencies installed offline from a wheelhouse into /opt/venv, the harness
(`mlops_tui/__init__.py` stub + `mlops_tui/training/*.py` under /opt/mlops) and a copy of the
pipeline. Dependencies are the pipeline's requirements.txt plus what the harness imports, with
the `[runner] pin_to_host` packages (scikit-learn, numpy, scipy, skops by default) pinned to
this host's versions, so a model trained in the container loads on the host.

The wheelhouse is filled on the host with `pip download` for the base image's Python and
platform (skipped when every wheel is already there, as on an air-gapped machine) and resolved
to an exact lock of wheel files and hashes. An image is identified by a cache key — pipeline
fingerprint + harness hash + wheelhouse lock + base image id — kept as an image label, and is
rebuilt only when one of them changes. Resolved locks and base-image probes are cached under
the user cache (`~/.cache/mlops-tui`), so a retrain with a cached image costs milliseconds.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from mlops_tui.artifacts.blobs import file_sha256
from mlops_tui.artifacts.code import pipeline_files
from mlops_tui.core.errors import UnavailableError, UsageError
from mlops_tui.core.fingerprint import (
    canonical_json,
    manifest_hash,
    normalize_package_name,
    pipeline_fingerprint,
    sha256_hex,
)
from mlops_tui.runners import docker as docker_runner
from mlops_tui.services.workspace import Workspace

Progress = Callable[[str], None]

TRAINER_REPOSITORY = "mlops-trainer"
LABEL_KEY = "mlops-tui.cache-key"
LABEL_PIPELINE = "mlops-tui.pipeline-fingerprint"
LABEL_CODE = "mlops-tui.code"
LABEL_HARNESS = "mlops-tui.harness"
LABEL_LOCK = "mlops-tui.wheelhouse-lock"
LABEL_BASE = "mlops-tui.base-image"
LABEL_BASE_ID = "mlops-tui.base-image-id"
LABEL_PYTHON = "mlops-tui.python"
HARNESS_REQUIREMENTS = ("pandas", "pyarrow", "scikit-learn", "skops")  # what the harness imports
HARNESS_STUB = ('"""mlops-tui\'s training harness, as installed in trainer images."""\n\n'
                '__version__ = "{version}"\n')
REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
PIP_TIMEOUT_SECONDS = 1800
PROBE = ("import json, platform, sys\n"
         "libc = platform.libc_ver()\n"
         "print(json.dumps({'python_version': platform.python_version(),"
         " 'implementation': sys.implementation.name, 'machine': platform.machine(),"
         " 'abi': 'cp%d%d' % sys.version_info[:2], 'libc': list(libc)}))\n")


def cache_root() -> Path:
    """The user cache: wheelhouse (by default), resolved locks, base-image probes."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mlops-tui"


def wheelhouse_dir(workspace: Workspace) -> Path:
    configured = workspace.config.runner.wheelhouse
    if not configured:
        return cache_root() / "wheelhouse"
    path = Path(configured).expanduser()
    return path if path.is_absolute() else workspace.root / path


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Serialise work on a shared cache entry across processes (and threads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- the base image -------------------------------------------------------------------------


def preflight(workspace: Workspace) -> docker_runner.ImageInfo:
    """Before any job exists: the engine answers and the base image is there (else exit 6)."""
    docker_runner.client()
    return docker_runner.require_image(
        workspace.config.runner.base_image, "base image",
        hint="build it with scripts/docker-engine.sh, or set [runner] base_image in "
             f"{workspace.config_path.name} to an image this engine has")


@dataclass(frozen=True)
class BasePlatform:
    """The base image's Python and platform, as `pip download` needs them."""

    python_version: str
    implementation: str
    abi: str
    machine: str
    libc: tuple[str, str]

    def pip_arguments(self) -> list[str]:
        if self.implementation != "cpython":
            raise UnavailableError(f"the base image's Python is {self.implementation}; trainer "
                                   "images need CPython")
        platforms = []
        name, version = self.libc
        if name == "glibc" and re.fullmatch(r"2\.\d+", version or ""):
            newest = int(version.split(".")[1])
            platforms += [f"manylinux_2_{m}_{self.machine}" for m in range(newest, 16, -1)]
            platforms += [f"manylinux2014_{self.machine}"]  # pip adds 2010 and 1
        else:
            raise UnavailableError(f"the base image's C library is {name or 'unknown'} "
                                   f"{version}; trainer images need glibc (manylinux wheels)")
        arguments = ["--only-binary=:all:", "--python-version", self.python_version,
                     "--implementation", "cp", "--abi", self.abi, "--abi", "abi3",
                     "--abi", "none"]
        for platform in platforms:
            arguments += ["--platform", platform]
        return arguments


def base_platform(base: docker_runner.ImageInfo) -> BasePlatform:
    """Probe the base image's python3 once per image id (cached on disk)."""
    cached = cache_root() / "platforms" / f"{base.id.replace(':', '-')}.json"
    try:
        data = json.loads(cached.read_text())
    except (OSError, ValueError):
        data = None
    if data is None:
        code, stdout, stderr = docker_runner.run_once(base.id, ["python3", "-c"], [PROBE])
        if code != 0:
            raise UnavailableError(
                f"base image {base.tags[0] if base.tags else base.id[:19]} has no working "
                f"python3 (exit {code}: {(stderr.strip().splitlines() or [''])[-1][:200]})")
        data = json.loads(stdout.strip().splitlines()[-1])
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(data))
    return BasePlatform(python_version=data["python_version"],
                        implementation=data["implementation"], abi=data["abi"],
                        machine=data["machine"], libc=tuple(data["libc"]))  # type: ignore[arg-type]


# -- requirements and the wheelhouse lock ---------------------------------------------------


def host_versions(names: tuple[str, ...]) -> dict[str, str]:
    """This host's installed versions of `names` (absent ones are left out)."""
    found = {}
    for name in names:
        try:
            found[normalize_package_name(name)] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def effective_requirements(pipeline_dir: Path, host_pins: dict[str, str]
                           ) -> tuple[list[str], list[str]]:
    """(requirement lines, notes): the pipeline's requirements.txt, plus what the harness
    imports, with the host pins applied (they win over the file, and the note says so)."""
    path = pipeline_dir / "requirements.txt"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: cannot read it ({error})") from None
    lines: list[str] = []
    notes: list[str] = []
    named: set[str] = set()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = REQUIREMENT_NAME.match(line)
        if line.startswith("-") or not match:
            raise UsageError(f"{path}:{number}: {line[:60]!r} is not a requirement "
                             "(trainer images take name[==version] lines only)")
        name = normalize_package_name(match.group(1))
        named.add(name)
        if name in host_pins:
            pinned = f"{name}=={host_pins[name]}"
            if line.replace(" ", "") != pinned:
                notes.append(f"{name} pinned to the host's {host_pins[name]} "
                             f"(requirements.txt: {line})")
            line = pinned
        lines.append(line)
    for name, version in sorted(host_pins.items()):
        if name not in named:
            lines.append(f"{name}=={version}")
            named.add(name)
    for name in HARNESS_REQUIREMENTS:
        if normalize_package_name(name) not in named:
            lines.append(name)
    return lines, notes


@dataclass(frozen=True)
class LockedWheel:
    name: str
    version: str
    filename: str
    sha256: str


@dataclass(frozen=True)
class WheelhouseLock:
    """The exact wheels a trainer image installs."""

    wheels: tuple[LockedWheel, ...]

    @property
    def hash(self) -> str:
        return sha256_hex(canonical_json([(w.filename, w.sha256) for w in self.wheels]))

    def text(self) -> str:
        return "".join(f"{w.name}=={w.version} --hash=sha256:{w.sha256}  # {w.filename}\n"
                       for w in self.wheels)


def _pip(arguments: list[str], timeout: float = PIP_TIMEOUT_SECONDS
         ) -> subprocess.CompletedProcess:
    environment = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    try:
        return subprocess.run([sys.executable, "-m", "pip", *arguments], capture_output=True,
                              text=True, timeout=timeout, env=environment, check=False)
    except subprocess.TimeoutExpired:
        raise UnavailableError(f"pip {arguments[0]} took longer than {timeout:.0f}s") from None


def _pip_error(done: subprocess.CompletedProcess) -> str:
    lines = [line.strip() for line in (done.stderr + done.stdout).splitlines()
             if line.strip() and "is ignored" not in line]
    errors = [line for line in lines if line.startswith("ERROR")]
    return ((errors or lines or ["(no output)"])[-1])[:300]


def _listing(wheelhouse: Path) -> list[tuple[str, int]]:
    return sorted((p.name, p.stat().st_size) for p in wheelhouse.glob("*.whl"))


def _resolve_offline(wheelhouse: Path, requirements_file: Path, platform: BasePlatform
                     ) -> tuple[WheelhouseLock | None, str]:
    """The exact wheels pip would install from the wheelhouse alone (None: some missing)."""
    with tempfile.TemporaryDirectory(prefix="mlops-lock-") as scratch:
        report = Path(scratch) / "report.json"
        done = _pip(["install", "--dry-run", "--ignore-installed", "--no-index", "--quiet",
                     "--find-links", str(wheelhouse), "--target", str(Path(scratch) / "target"),
                     "--report", str(report), *platform.pip_arguments(),
                     "-r", str(requirements_file)], timeout=300)
        if done.returncode != 0:
            return None, _pip_error(done)
        document = json.loads(report.read_text())
    wheels = []
    for item in document.get("install", []):
        info = item.get("download_info", {})
        path = Path(unquote(urlparse(info.get("url", "")).path))
        hashes = info.get("archive_info", {}).get("hashes") or {}
        sha256 = hashes.get("sha256") or file_sha256(path)[0]
        if path.parent.resolve() != wheelhouse.resolve():  # found elsewhere: keep a copy
            shutil.copy2(path, wheelhouse / path.name)
        wheels.append(LockedWheel(normalize_package_name(item["metadata"]["name"]),
                                  item["metadata"]["version"], path.name, sha256))
    return WheelhouseLock(tuple(sorted(wheels, key=lambda w: w.name))), ""


def resolve_lock(wheelhouse: Path, requirements: list[str], platform: BasePlatform,
                 progress: Progress | None = None) -> WheelhouseLock:
    """Fill the wheelhouse if a wheel is missing (`pip download`), then lock it exactly."""
    say = progress or (lambda message: None)
    wheelhouse.mkdir(parents=True, exist_ok=True)
    requirements_text = "".join(f"{line}\n" for line in requirements)
    locks = cache_root() / "locks"

    def cache_key() -> str:
        return sha256_hex(canonical_json({
            "requirements": requirements_text, "platform": platform.pip_arguments(),
            "wheelhouse": str(wheelhouse.resolve()), "listing": _listing(wheelhouse)}))

    def cached() -> WheelhouseLock | None:
        try:
            data = json.loads((locks / f"{cache_key()}.json").read_text())
        except (OSError, ValueError):
            return None
        return WheelhouseLock(tuple(LockedWheel(**w) for w in data["wheels"]))

    found = cached()
    if found is not None:
        return found
    with _file_lock(wheelhouse / ".mlops-tui.lock"), \
            tempfile.TemporaryDirectory(prefix="mlops-req-") as scratch:
        found = cached()
        if found is not None:
            return found
        requirements_file = Path(scratch) / "requirements.txt"
        requirements_file.write_text(requirements_text)
        lock, problem = _resolve_offline(wheelhouse, requirements_file, platform)
        if lock is None:
            say(f"wheelhouse {wheelhouse}: downloading wheels for Python "
                f"{platform.python_version} ({platform.machine})")
            done = _pip(["download", "--quiet", "--dest", str(wheelhouse),
                         *platform.pip_arguments(), "-r", str(requirements_file)])
            if done.returncode != 0:
                raise UnavailableError(
                    f"wheelhouse {wheelhouse} lacks wheels ({problem}) and pip download "
                    f"failed: {_pip_error(done)}")
            lock, problem = _resolve_offline(wheelhouse, requirements_file, platform)
            if lock is None:
                raise UnavailableError(f"wheelhouse {wheelhouse}: cannot resolve the "
                                       f"requirements offline: {problem}")
        locks.mkdir(parents=True, exist_ok=True)
        (locks / f"{cache_key()}.json").write_text(json.dumps(
            {"wheels": [w.__dict__ for w in lock.wheels]}, indent=1))
    return lock


# -- the harness ----------------------------------------------------------------------------


def harness_sources() -> dict[str, bytes]:
    """Files the image gets under /opt/mlops: a package stub and the training harness."""
    from mlops_tui import __version__, training

    sources = {"mlops_tui/__init__.py": HARNESS_STUB.format(version=__version__).encode()}
    for path in sorted(Path(training.__file__).parent.glob("*.py")):
        sources[f"mlops_tui/training/{path.name}"] = path.read_bytes()
    return sources


def harness_hash() -> str:
    return manifest_hash((name, sha256_hex(data)) for name, data in harness_sources().items())


def code_hash(pipeline_dir: Path) -> str:
    """The same hash a version's code snapshot gets (a manifest of file hashes)."""
    return manifest_hash((p.relative_to(pipeline_dir).as_posix(), file_sha256(p)[0])
                         for p in pipeline_files(pipeline_dir))


# -- trainer images -------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainerImage:
    tag: str
    id: str
    cache_key: str
    pipeline_fingerprint: str
    code_hash: str
    harness_hash: str
    lock_hash: str
    base_image: str
    base_image_id: str
    python_version: str
    built: bool = False  # built now (else found in the engine)
    seconds: float = 0.0
    created: str = ""
    size: int = 0
    notes: tuple[str, ...] = ()


def _from_info(info: docker_runner.ImageInfo, **extra) -> TrainerImage:
    labels = info.labels
    key = labels.get(LABEL_KEY, "")
    tags = [t for t in info.tags if t.startswith(f"{TRAINER_REPOSITORY}:")]
    return TrainerImage(
        tag=tags[0] if tags else (info.tags[0] if info.tags else f"{TRAINER_REPOSITORY}:<none>"),
        id=info.id, cache_key=key, pipeline_fingerprint=labels.get(LABEL_PIPELINE, ""),
        code_hash=labels.get(LABEL_CODE, ""), harness_hash=labels.get(LABEL_HARNESS, ""),
        lock_hash=labels.get(LABEL_LOCK, ""), base_image=labels.get(LABEL_BASE, ""),
        base_image_id=labels.get(LABEL_BASE_ID, ""), python_version=labels.get(LABEL_PYTHON, ""),
        created=info.created, size=info.size, **extra)


DOCKERFILE = """\
FROM {base}
COPY wheels /opt/mlops/wheels
RUN python3 -m venv /opt/venv \\
 && /opt/venv/bin/python -m pip install --quiet --no-index --no-deps --no-cache-dir \\
    --disable-pip-version-check /opt/mlops/wheels/*.whl \\
 && /opt/venv/bin/python -m pip uninstall --quiet --yes pip setuptools \\
 && rm -rf /opt/mlops/wheels
ENV PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin PYTHONPATH=/opt/mlops \\
    PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HOME=/tmp LANG=C.UTF-8
USER {uid}:{uid}
COPY lock.txt /opt/mlops/lock.txt
COPY harness/ /opt/mlops/
COPY pipeline/ /opt/mlops/pipeline/
LABEL {labels}
"""  # the pipeline and the labels come last, so a code change reuses the dependency layers


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _build_context(root: Path, base_id: str, wheelhouse: Path, lock: WheelhouseLock,
                   pipeline_dir: Path, labels: dict[str, str]) -> None:
    (root / "wheels").mkdir(parents=True)
    for wheel in lock.wheels:
        source = wheelhouse / wheel.filename
        if not source.is_file() or file_sha256(source)[0] != wheel.sha256:
            raise UnavailableError(f"wheelhouse {wheelhouse}: {wheel.filename} is missing or "
                                   "changed since it was locked")
        _link_or_copy(source, root / "wheels" / wheel.filename)
    (root / "lock.txt").write_text(lock.text())
    for name, data in harness_sources().items():
        target = root / "harness" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (root / "pipeline").mkdir()
    for path in pipeline_files(pipeline_dir):
        target = root / "pipeline" / path.relative_to(pipeline_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    label_text = " ".join(f"{name}={json.dumps(value)}" for name, value in sorted(labels.items()))
    (root / "Dockerfile").write_text(DOCKERFILE.format(base=base_id, uid=docker_runner.JOB_UID,
                                                       labels=label_text))


def ensure_trainer_image(workspace: Workspace, pipeline_dir: Path, *, rebuild: bool = False,
                         progress: Progress | None = None,
                         log: Callable[[str], None] | None = None) -> TrainerImage:
    """The trainer image for this pipeline, built only when its cache key is new (or when
    `rebuild` asks for a build without the engine's layer cache)."""
    say = progress or (lambda message: None)
    settings = workspace.config.runner
    base = preflight(workspace)
    platform = base_platform(base)
    requirements, notes = effective_requirements(
        pipeline_dir, host_versions(tuple(settings.pin_to_host)))
    wheelhouse = wheelhouse_dir(workspace)
    lock = resolve_lock(wheelhouse, requirements, platform, say)
    pipeline_code = code_hash(pipeline_dir)
    fingerprint = pipeline_fingerprint(pipeline_code, lock.hash, platform.python_version, base.id)
    harness = harness_hash()
    key = sha256_hex(canonical_json({"pipeline": fingerprint, "harness": harness,
                                     "lock": lock.hash, "base_image": base.id}))
    if not rebuild:
        for info in docker_runner.images_labelled({LABEL_KEY: key}):
            return _from_info(info, notes=tuple(notes))
    tag = f"{TRAINER_REPOSITORY}:{key[:16]}"
    labels = {
        docker_runner.LABEL_KIND: "trainer", LABEL_KEY: key, LABEL_PIPELINE: fingerprint,
        LABEL_CODE: pipeline_code, LABEL_HARNESS: harness, LABEL_LOCK: lock.hash,
        LABEL_BASE: settings.base_image, LABEL_BASE_ID: base.id,
        LABEL_PYTHON: platform.python_version,
    }
    builds = cache_root() / "builds"
    with _file_lock(builds / f"{key[:16]}.lock"):
        if not rebuild:  # another process may have built it while we waited
            for info in docker_runner.images_labelled({LABEL_KEY: key}):
                return _from_info(info, notes=tuple(notes))
        for note in notes:
            say(note)
        say(f"building trainer image {tag} from {settings.base_image} "
            f"(Python {platform.python_version}, {len(lock.wheels)} wheels, offline)")
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="context-", dir=builds) as context:
            _build_context(Path(context), base.id, wheelhouse, lock, pipeline_dir, labels)
            info = docker_runner.build_image(Path(context), tag, nocache=rebuild, log=log)
    seconds = time.monotonic() - started
    say(f"built trainer image {tag} ({info.id[:19]}) in {seconds:.1f}s")
    return _from_info(info, built=True, seconds=seconds, notes=tuple(notes))


def log_into(job_dir: Path) -> Callable[[str], None]:
    """A build-log sink that appends to the job's host-side runner log (so the job shows its
    image; never into the folder the job writes)."""
    from mlops_tui.runners.folder import append_host_log

    def write(line: str) -> None:
        append_host_log(job_dir, f"[image] {line}")

    return write


def list_trainer_images() -> list[TrainerImage]:
    """Every trainer image in the engine, newest first."""
    infos = docker_runner.images_labelled({docker_runner.LABEL_KIND: "trainer"})
    return sorted((_from_info(i) for i in infos), key=lambda image: image.created, reverse=True)

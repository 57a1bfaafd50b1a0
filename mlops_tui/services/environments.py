"""Environment capture and diff (Level 0): model vs model, vs host, vs a requirements file."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mlops_tui.core.envdiff import EnvDiff, diff_environments
from mlops_tui.core.errors import UsageError
from mlops_tui.core.fingerprint import environment_hash, normalize_package_name
from mlops_tui.core.models import EnvSnapshot
from mlops_tui.core.names import VERSION_PATTERN
from mlops_tui.services.registry import env_from_capture, require_version
from mlops_tui.services.workspace import Workspace
from mlops_tui.store import registry as registry_sql
from mlops_tui.training.environment import capture

REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*===?\s*([^\s;#]+)")


def capture_host() -> EnvSnapshot:
    return env_from_capture(capture(), source="host")


# Runs the capture module's own source in the image (the image need not have mlops-tui), with
# the first interpreter found: a trainer image's venv, else the image's python3 or python.
IMAGE_PYTHONS = ("/opt/venv/bin/python", "python3", "python")
_IMAGE_SCRIPT = ('for p in ' + " ".join(IMAGE_PYTHONS) + '; do '
                 'if command -v "$p" >/dev/null 2>&1; then exec "$p" -c "$1"; fi; done; '
                 'echo "no python interpreter" >&2; exit 127')


def capture_image(image: str) -> EnvSnapshot:
    """The environment inside a Docker image (Level 0: will a model load where it is served?).

    Runs a throwaway container without a network; the image is never pulled (exit 6 if the
    engine has no such image or does not answer)."""
    import json

    from mlops_tui.core.errors import UnavailableError
    from mlops_tui.runners import docker as docker_runner
    from mlops_tui.training import environment

    if not image.strip() or image.startswith("-"):
        raise UsageError(f"invalid image name {image[:60]!r}")
    source = Path(environment.__file__).read_text(encoding="utf-8")
    code, stdout, stderr = docker_runner.run_once(
        image, ["/bin/sh", "-c"], [_IMAGE_SCRIPT, "sh", source])
    if code != 0:
        last = (stderr.strip().splitlines() or ["(no output)"])[-1][:200]
        raise UnavailableError(f"cannot capture the environment of image {image}: exit {code}: "
                               f"{last} (looked for {', '.join(IMAGE_PYTHONS)})")
    try:
        captured = json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise UnavailableError(f"image {image}: the environment capture printed no JSON "
                               f"({stdout.strip()[:120]!r})") from None
    return env_from_capture(captured, source=f"image:{image}")


def record_environment(workspace: Workspace, env: EnvSnapshot) -> None:
    """Keep a captured snapshot in the store (e.g. an image's, for the deploy gate's
    `[serving] environment = "image:NAME"`). Snapshots are stored once per hash."""
    with workspace.store.write("env-capture") as tx:
        registry_sql.record_capture(tx, env)


def env_from_requirements(path: Path) -> EnvSnapshot:
    """A partial environment: the exact pins (`name==version`) of a requirements/lock file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"requirements file {path} does not exist") from None
    except UnicodeDecodeError:
        raise UsageError(f"requirements file {path} is not UTF-8 text") from None
    except OSError as error:
        raise UsageError(f"requirements file {path}: {error.strerror}") from None
    packages: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.split("#", 1)[0].strip()
        if not stripped or stripped.startswith("-"):
            continue
        match = REQUIREMENT.match(stripped)
        if not match:
            raise UsageError(
                f"{path}:{number}: {stripped[:60]!r} is not an exact pin (name==version)")
        packages[normalize_package_name(match.group(1))] = match.group(2)
    return EnvSnapshot(
        hash=environment_hash("", "", "", packages), python_version="", implementation="",
        platform="", packages=packages, source=f"requirements:{path.name}",
        captured_at=datetime.now(UTC),
    )


@dataclass(frozen=True)
class ResolvedEnv:
    label: str
    env: EnvSnapshot
    needed: tuple[str, ...] = ()  # packages the model's artifact needs, for a version
    partial: bool = False  # a requirements file: silence is not removal


def resolve_env(workspace: Workspace, spec: str) -> ResolvedEnv:
    """`host`, `image:NAME`, a version id (v12), or a path to a requirements file."""
    if spec == "host":
        return ResolvedEnv("host", capture_host())
    if spec.startswith("image:"):
        return ResolvedEnv(spec, capture_image(spec.removeprefix("image:")))
    if VERSION_PATTERN.fullmatch(spec.strip()):
        with workspace.store.read() as tx:
            version = require_version(tx, spec)
            env = registry_sql.get_env(tx, version.env_hash)
        if env is None:
            raise UsageError(f"version {version.id} has no environment snapshot")
        return ResolvedEnv(version.id, env, version.required_packages)
    path = Path(spec)
    if path.exists() or "/" in spec or spec.endswith((".txt", ".lock")):
        return ResolvedEnv(path.name, env_from_requirements(path), partial=True)
    raise UsageError(
        f"cannot read environment {spec[:40]!r}: expected a version id (v12), 'host', "
        "'image:NAME', or a requirements file path")


def diff(workspace: Workspace, left_spec: str, right_spec: str) -> EnvDiff:
    """Diff A -> B. The packages the model(s) need come from whichever side is a version."""
    left = resolve_env(workspace, left_spec)
    right = resolve_env(workspace, right_spec)
    return diff_environments(
        left.env, right.env, set(left.needed) | set(right.needed),
        left_label=left.label, right_label=right.label,
        compare_missing=not (left.partial or right.partial),
    )

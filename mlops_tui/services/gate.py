"""The environment gate: will a version load in the serving environment (this host, or a
captured image)? A version's environment is diffed with it and given the verdicts of
`core.envdiff`; an incompatible version is refused unless forced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_tui.core.envdiff import EnvDiff, Verdict, diff_environments
from mlops_tui.core.errors import ConflictError, IntegrityError, UsageError
from mlops_tui.core.models import EnvSnapshot, ModelVersion
from mlops_tui.services.registry import require_version
from mlops_tui.store import Tx
from mlops_tui.store import deployments as deployment_sql
from mlops_tui.store import registry as registry_sql

if TYPE_CHECKING:  # annotations only
    from mlops_tui.services.workspace import Workspace


@dataclass(frozen=True)
class GateResult:
    """A version's environment against the serving environment, with the verdict."""

    version: str
    environment: str  # "host" or "image:NAME"
    diff: EnvDiff

    @property
    def verdict(self) -> Verdict:
        return self.diff.verdict

    def document(self) -> dict[str, Any]:
        """The audited summary: verdict, reasons, and every change that is not compatible."""
        return {
            "environment": self.environment, "verdict": self.verdict.label,
            "reasons": self.diff.reasons,
            "changes": [
                {"name": c.name, "old": c.old, "new": c.new, "change": c.kind,
                 "needed_by_model": c.needed, "verdict": c.verdict.label, "reason": c.reason}
                for c in self.diff.all_changes if c.verdict is not Verdict.COMPATIBLE],
        }


HOST_ENV_CACHE = ".host-env.json"


def _installed_fingerprint() -> str:
    """What decides this interpreter's environment: Python, platform, and the names of the
    installed distributions' metadata folders (which carry their versions). A directory
    listing, not a read of every METADATA file."""
    import hashlib
    import os
    import platform
    import sys

    digest = hashlib.sha256(f"{sys.executable}|{sys.version}|{platform.platform()}".encode())
    for entry in sys.path:
        try:
            names = sorted(n for n in os.listdir(entry or ".")
                           if n.endswith((".dist-info", ".egg-info")))
        except OSError:
            continue
        if names:  # a folder without distributions (a script's own directory) changes nothing
            digest.update(f"\0{entry}\0{'|'.join(names)}".encode())
    return digest.hexdigest()


def host_environment(workspace: Workspace) -> EnvSnapshot:
    """This host's environment, captured in full; cached in the serving folder under a key
    that changes whenever a distribution is added, removed or changes version, because a
    full capture reads every METADATA file (~50 ms) and deploy is on a fast path."""
    import json
    import os

    from mlops_tui.services.registry import env_from_capture
    from mlops_tui.training.environment import capture

    key = _installed_fingerprint()
    cache = workspace.serving_root / HOST_ENV_CACHE
    try:
        document = json.loads(cache.read_text(encoding="utf-8"))
        if document.get("key") == key:
            return env_from_capture(document["environment"], source="host")
    except (OSError, ValueError, KeyError, TypeError, IntegrityError):
        pass  # no cache, or a stale or damaged one: capture again
    captured = capture()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        temp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        temp.write_text(json.dumps({"key": key, "environment": captured}), encoding="utf-8")
        os.replace(temp, cache)
    except OSError:
        pass  # a read-only workspace just captures every time
    return env_from_capture(captured, source="host")


def serving_environment(workspace: Workspace, tx: Tx | None = None) -> tuple[str, EnvSnapshot]:
    """(label, snapshot) of the environment served versions must load in ([serving])."""
    configured = workspace.config.serving.environment.strip()
    if configured == "host":
        return "host", host_environment(workspace)
    if configured.startswith("image:") and len(configured) > len("image:"):
        if tx is None:
            with workspace.store.read() as read_tx:
                env = deployment_sql.env_by_source(read_tx, configured)
        else:
            env = deployment_sql.env_by_source(tx, configured)
        if env is None:
            name = configured.removeprefix("image:")
            raise ConflictError(
                f"[serving] environment is {configured}, but no environment was captured from "
                f"that image: run 'mlops-tui env capture --image {name}' first")
        return configured, env
    raise UsageError(f"{workspace.config_path}: [serving] environment must be 'host' or "
                     f"'image:NAME', not {configured[:40]!r}")


def check_gate(workspace: Workspace, version: ModelVersion | str,
               env: EnvSnapshot | None = None) -> GateResult:
    """Diff a version's environment with the serving environment (the verdicts of core/envdiff.py)."""
    if isinstance(version, str) or env is None or workspace.config.serving.environment != "host":
        with workspace.store.read() as tx:
            if isinstance(version, str):
                version = require_version(tx, version)
            env = env or registry_sql.get_env(tx, version.env_hash)
            label, serving_env = serving_environment(workspace, tx)
    else:
        label, serving_env = serving_environment(workspace)
    if env is None:
        raise IntegrityError(f"{version.id} has no environment snapshot "
                             f"({version.env_hash[:12]}): run 'mlops-tui store verify'")
    diff = diff_environments(env, serving_env, version.required_packages,
                             left_label=version.id, right_label=label)
    return GateResult(version.id, label, diff)


def apply_gate(workspace: Workspace, version: ModelVersion, env: EnvSnapshot | None, force: bool
          ) -> tuple[GateResult, list[str]]:
    """Refuse an incompatible version unless forced; warn about a risky one."""
    gate = check_gate(workspace, version, env)
    reasons = "; ".join(gate.diff.reasons[:3])
    more = len(gate.diff.reasons) - 3
    if more > 0:
        reasons += f"; and {more} more"
    if gate.verdict is Verdict.INCOMPATIBLE and not force:
        raise ConflictError(
            f"environment gate refused {version.id}: incompatible with {gate.environment} "
            f"because {reasons} (pass --force --reason to override)",
            detail={"gate": gate.document()})
    warnings = []
    if gate.verdict is Verdict.INCOMPATIBLE:
        warnings.append(f"forced past the environment gate: {version.id} is incompatible with "
                        f"{gate.environment} because {reasons}")
    elif gate.verdict is Verdict.RISKY:
        warnings.append(f"{version.id} is risky on {gate.environment} because {reasons}")
    return gate, warnings

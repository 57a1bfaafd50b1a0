"""`mlops-tui doctor`: everything that can be wrong with a workspace, each with its fix.

A read: it writes nothing (no repair, no lock file content, no cache). Checks: the store
opens and its schema, the invariants and the artifact and code hashes (`store verify`'s
checks), leftovers, who holds the store lock now, free space and filesystem type of each
workspace folder, the Docker engine (version, live-restore, the base and trainer images;
never pulled), the serving folder against the store, and what the local runner means.

Exit code: 5 with any integrity problem, else 6 when the configured runner's engine (or
base image) is unavailable, else 3 with warnings, else 0.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_tui.core.errors import MlopsError, StoreBusyError
from mlops_tui.services.workspace import Workspace
from mlops_tui.store.lock import current_writer
from mlops_tui.store.schema import CURRENT_SCHEMA
from mlops_tui.store.space import free_bytes

OK, INFO, WARNING, INTEGRITY, UNAVAILABLE = "ok", "info", "warning", "integrity", "unavailable"
LOW_DISK_BYTES = 1 << 30  # below this a retrain or an ingest may run out mid-way
NETWORK_FILESYSTEMS = ("nfs", "nfs4", "cifs", "smb3", "fuse.sshfs", "9p")
FOLDERS = ("artifacts", "code", "data", "jobs", "serving")


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok, info, warning, integrity, unavailable
    message: str
    fix: str = ""  # the command (or step) that fixes it
    detail: dict[str, Any] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        found: dict[str, Any] = {"name": self.name, "status": self.status,
                                 "message": self.message}
        if self.fix:
            found["fix"] = self.fix
        if self.detail:
            found["detail"] = self.detail
        return found


@dataclass(frozen=True)
class DoctorReport:
    workspace: str
    checks: list[Check]

    @property
    def exit_code(self) -> int:
        statuses = {c.status for c in self.checks}
        for status, code in ((INTEGRITY, 5), (UNAVAILABLE, 6), (WARNING, 3)):
            if status in statuses:
                return code
        return 0

    def document(self) -> dict[str, Any]:
        return {"workspace": self.workspace, "ok": self.exit_code == 0,
                "exit_code": self.exit_code, "checks": [c.document() for c in self.checks]}


def diagnose(workspace: Workspace) -> DoctorReport:
    checks: list[Check] = []
    store_ok = _store(workspace, checks)
    if store_ok:
        for step in (_invariants, _leftovers, _serving):
            _guarded(step, workspace, checks)
    _lock(workspace, checks)
    _disk(workspace, checks)
    _guarded(_docker, workspace, checks)
    _runner_note(workspace, checks)
    return DoctorReport(str(workspace.root), checks)


def _guarded(step: Callable[[Workspace, list[Check]], None], workspace: Workspace,
             checks: list[Check]) -> None:
    """A check that cannot run is itself a finding, never a crash of the whole report."""
    try:
        step(workspace, checks)
    except StoreBusyError as error:
        checks.append(Check(step.__name__.strip("_"), WARNING, error.message,
                            "run doctor again when the writer has finished"))
    except MlopsError as error:
        checks.append(Check(step.__name__.strip("_"), INTEGRITY, error.message,
                            "mlops-tui store verify"))


def _store(workspace: Workspace, checks: list[Check]) -> bool:
    """The store opens and has a schema this version understands."""
    try:
        version = workspace.store.schema_version()
    except StoreBusyError as error:
        checks.append(Check("store", WARNING, error.message,
                            "run doctor again when the writer has finished"))
        return False
    except MlopsError as error:
        checks.append(Check("store", INTEGRITY, error.message,
                            "restore the store from a backup (mlops-tui store backup makes "
                            "them)"))
        return False
    checks.append(Check("store", OK, f"{workspace.store_path} opens"))
    if version > CURRENT_SCHEMA:
        checks.append(Check("schema", INTEGRITY, f"schema {version} is newer than this "
                            f"mlops-tui understands ({CURRENT_SCHEMA})", "upgrade mlops-tui"))
        return False
    if version < CURRENT_SCHEMA:
        checks.append(Check("schema", WARNING, f"schema {version}; this mlops-tui needs "
                            f"{CURRENT_SCHEMA}",
                            "mlops-tui store backup BEFORE.duckdb && mlops-tui store migrate"))
        return False
    checks.append(Check("schema", OK, f"schema {version} (current)"))
    return True


def _invariants(workspace: Workspace, checks: list[Check]) -> None:
    from mlops_tui.services.maintenance import check_invariants

    records, files, checked = check_invariants(workspace)
    counted = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in checked.items())
    fix = "restore the named records or files from a backup; 'mlops-tui store verify' lists them"
    checks.append(Check("invariants", INTEGRITY if records else OK,
                        "; ".join(records) if records else f"hold ({counted})",
                        fix if records else "", {"problems": records} if records else {}))
    checks.append(Check("artifact hashes", INTEGRITY if files else OK,
                        "; ".join(files) if files else
                        f"{checked['artifacts']} artifacts and {checked['code_snapshots']} code "
                        "snapshots match their recorded sha256",
                        fix if files else "", {"problems": files} if files else {}))


def _leftovers(workspace: Workspace, checks: list[Check]) -> None:
    from mlops_tui.services import leftovers

    found = leftovers.find(workspace)
    if not found:
        checks.append(Check("leftovers", OK, "no orphan or leftover files"))
        return
    size = sum(f.size for f in found)
    checks.append(Check("leftovers", WARNING,
                        f"{len(found)} leftover(s), {size:,} bytes: "
                        + "; ".join(f"{f.kind} {f.path}" for f in found[:5])
                        + ("; …" if len(found) > 5 else ""),
                        "mlops-tui store verify --repair",
                        {"leftovers": [f.document() for f in found]}))


def _serving(workspace: Workspace, checks: list[Check]) -> None:
    from mlops_tui.services.serving_check import problems_for_readers

    problems = problems_for_readers(workspace)
    if problems:
        checks.append(Check("serving", WARNING, "serving/current does not match the store: "
                            + "; ".join(problems), "mlops-tui serving reconcile",
                            {"problems": problems}))
    else:
        checks.append(Check("serving", OK, "serving/current matches the store"))


def _lock(workspace: Workspace, checks: list[Check]) -> None:
    writer = current_writer(workspace.store.lock_path)
    if writer is None:
        checks.append(Check("lock", OK, "no writer holds store.lock now"))
        return
    who = (f"pid {writer.get('pid')} on {writer.get('host')} ({writer.get('command')}, since "
           f"{writer.get('since')})") if writer else "a writer that did not say who it is"
    checks.append(Check("lock", INFO, f"store.lock is held by {who}", detail={"holder": writer}))


def mount_of(path: Path, mounts_file: Path = Path("/proc/mounts")) -> tuple[str, str]:
    """(mount point, filesystem type) of the mount that holds `path`."""
    resolved = str(path.resolve())
    best = ("/", "unknown")
    try:
        lines = mounts_file.read_text().splitlines()
    except OSError:
        return best
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best[0]):
            best = (point, parts[2])
    return best


def _disk(workspace: Workspace, checks: list[Check]) -> None:
    """Free space and filesystem type of each workspace folder, one line per filesystem."""
    by_mount: dict[str, tuple[str, int, list[str]]] = {}
    for name in ("", *FOLDERS):
        folder = workspace.root / name
        if not folder.is_dir():
            continue
        point, kind = mount_of(folder)
        if point not in by_mount:
            by_mount[point] = (kind, free_bytes(folder), [])
        by_mount[point][2].append(name or "workspace")
    for point, (kind, free, folders) in by_mount.items():
        status = WARNING if free < LOW_DISK_BYTES else OK
        checks.append(Check(
            "disk", status, f"{free / 1e9:,.1f} GB free on {point} ({kind}) for "
            + ", ".join(folders),
            "free space on that filesystem ('mlops-tui models gc' and 'mlops-tui jobs gc' "
            "remove old weights and job folders)" if status == WARNING else "",
            {"free_bytes": free, "mount": point, "filesystem": kind, "folders": folders}))
        if kind in NETWORK_FILESYSTEMS:
            checks.append(Check("filesystem", INFO,
                                f"{point} is {kind}: store.lock excludes writers on one host "
                                "only; do not write the workspace from two hosts at once"))


def _docker(workspace: Workspace, checks: list[Check]) -> None:
    kind = workspace.config.runner.kind
    required = kind == "docker"
    down = UNAVAILABLE if required else WARNING
    try:
        from mlops_tui.runners import docker as docker_runner

        engine = docker_runner.client(timeout=5.0)
    except ImportError:
        checks.append(Check("docker", down, "the docker Python package is not installed",
                            "pip install docker" + ("" if required else
                                                    ", or keep [runner] kind = \"local\"")))
        return
    except MlopsError as error:
        checks.append(Check("docker", down, error.message,
                            "start the Docker engine" + ("" if required else
                                                         " (jobs run locally meanwhile)")))
        return
    version = engine.version().get("Version", "?")
    info = engine.info()
    live = bool(info.get("LiveRestoreEnabled"))
    checks.append(Check("docker", OK, f"engine {version} at {docker_runner.engine_host()}, "
                        f"live-restore {'on' if live else 'off'}",
                        detail={"version": version, "live_restore": live}))
    if not live:
        checks.append(Check("docker live-restore", INFO,
                            "restarting the engine stops running jobs (they end as lost)",
                            "set \"live-restore\": true in /etc/docker/daemon.json"))
    base = workspace.config.runner.base_image
    if docker_runner.find_image(base) is None:
        checks.append(Check("base image", down, f"base image {base} is not in the engine "
                            "(images are never pulled)",
                            f"build it (scripts/docker-engine.sh) or set [runner] base_image in "
                            f"{workspace.config_path.name}"))
    else:
        checks.append(Check("base image", OK, f"{base} is in the engine"))
    from mlops_tui.services.images import list_trainer_images

    trainers = list_trainer_images()
    checks.append(Check("trainer images", OK if trainers else INFO,
                        f"{len(trainers)} trainer image(s)" + (f", newest {trainers[0].tag}"
                                                              if trainers else
                                                              ": the first docker retrain "
                                                              "builds one"),
                        "" if trainers else "mlops-tui image build"))


def _runner_note(workspace: Workspace, checks: list[Check]) -> None:
    kind = workspace.config.runner.kind
    if kind not in ("local", "auto"):
        return
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    when = "" if kind == "local" else " (runner auto: whenever no Docker engine answers)"
    checks.append(Check("local runner", INFO,
                        f"the local runner runs the pipeline as {user} without isolation"
                        f"{when}: it can read and write whatever {user} can",
                        "set [runner] kind = \"docker\" to run jobs in containers"))

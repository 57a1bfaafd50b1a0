"""Code snapshots: a pipeline directory's files stored by content hash, plus a manifest."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mlops_tui.artifacts.blobs import blob_path, put_bytes, verify
from mlops_tui.core.fingerprint import manifest_hash
from mlops_tui.core.models import CodeFile, CodeSnapshot

SKIPPED_PARTS = {"__pycache__", ".git", ".ipynb_checkpoints", ".mypy_cache", ".pytest_cache"}


def pipeline_files(directory: Path) -> list[Path]:
    """Files that make up the pipeline (no caches, no hidden files, no bytecode)."""
    files = []
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if not path.is_file() or path.suffix in (".pyc", ".pyo"):
            continue
        if any(part in SKIPPED_PARTS or part.startswith(".") for part in relative.parts):
            continue
        files.append(path)
    return files


def _git_state(directory: Path) -> tuple[str | None, bool | None]:
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(directory), *args],
                capture_output=True, text=True, timeout=10, check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None, None
    status = git("status", "--porcelain", "--", ".")
    return commit, bool(status)


def snapshot(code_root: Path, directory: Path) -> CodeSnapshot:
    """Store every pipeline file under `code_root`; return the snapshot (not yet registered)."""
    entries = []
    for path in pipeline_files(directory):
        sha256, _ = put_bytes(code_root, path.read_bytes())
        entries.append(CodeFile(path.relative_to(directory).as_posix(), sha256, path.stat().st_size))
    commit, dirty = _git_state(directory)
    return CodeSnapshot(
        hash=manifest_hash((f.path, f.sha256) for f in entries),
        files=tuple(entries),
        git_commit=commit,
        git_dirty=dirty,
    )


def verify_snapshot(code_root: Path, code: CodeSnapshot) -> list[str]:
    """Problems with a stored snapshot: missing or changed files (empty when intact)."""
    problems = []
    if manifest_hash((f.path, f.sha256) for f in code.files) != code.hash:
        problems.append(f"code snapshot {code.hash[:12]}: manifest does not match its hash")
    for entry in code.files:
        path = blob_path(code_root, entry.sha256)
        if not path.exists():
            problems.append(f"code snapshot {code.hash[:12]}: {entry.path} is missing")
            continue
        try:
            verify(path, entry.sha256)
        except Exception as error:  # noqa: BLE001 - reported, not raised
            problems.append(f"code snapshot {code.hash[:12]}: {entry.path}: {error}")
    return problems


def restore(code_root: Path, code: CodeSnapshot, destination: Path) -> None:
    """Write a snapshot's files into `destination`, verifying each."""
    for entry in code.files:
        data = verify(blob_path(code_root, entry.sha256), entry.sha256)
        target = destination / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def snapshot_document(code: CodeSnapshot) -> dict:
    """A snapshot as plain data (kept in a job's spec until the job's version registers)."""
    return {"hash": code.hash, "git_commit": code.git_commit, "git_dirty": code.git_dirty,
            "files": [[f.path, f.sha256, f.size] for f in code.files]}


def snapshot_from_document(document: dict) -> CodeSnapshot:
    return CodeSnapshot(
        hash=str(document["hash"]),
        files=tuple(CodeFile(str(path), str(sha256), int(size))
                    for path, sha256, size in document["files"]),
        git_commit=document.get("git_commit"), git_dirty=document.get("git_dirty"))

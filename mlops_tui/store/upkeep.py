"""What the store references on disk, for finding leftovers no record points to."""

from __future__ import annotations

from datetime import datetime

from mlops_tui.store import rows
from mlops_tui.store.db import Tx


def referenced_files(tx: Tx) -> set[str]:
    """Paths (relative to the workspace) of every batch, label file and version artifact."""
    found = {r[0] for r in tx.all("SELECT path FROM batches")}
    found |= {f"data/labels/{r[0]}.parquet" for r in tx.all("SELECT sha256 FROM label_files")}
    found |= {r[0] for r in tx.all("SELECT artifact_path FROM model_versions")}
    return found


def job_folders_state(tx: Tx) -> dict[str, tuple[str, datetime, bool, bool]]:
    """job id -> (state, since, ever ran, registered a version)."""
    return {r[0]: (r[1], rows.aware(r[2]), bool(r[3]), bool(r[4])) for r in tx.all(
        "SELECT j.id, j.state, j.state_at, "
        "EXISTS (SELECT 1 FROM job_events e WHERE e.job_id = j.id AND e.state = 'running'), "
        "EXISTS (SELECT 1 FROM model_versions m WHERE m.job_id = j.id) "
        "FROM current_jobs j")}

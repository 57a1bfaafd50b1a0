"""Free space on the filesystem that holds a workspace folder."""

from __future__ import annotations

import os
from pathlib import Path


def free_bytes(path: Path) -> int:
    """Bytes a non-root writer may still use on the filesystem holding `path`."""
    info = os.statvfs(path)
    return info.f_bavail * info.f_frsize

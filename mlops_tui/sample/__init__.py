"""The bundled sample scenario: a paint line whose car model (the regime) changes over time.

`generator` makes the data deterministically; a copy of its Parquet output and ground truth
ships inside the package (`data/`) so demos and tests work from any directory, and `pipeline/`
is the default training pipeline for it. Heavy imports stay in `generator`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "generate",
    "packaged_ground_truth",
    "packaged_observations_path",
    "packaged_pipeline_dir",
    "write",
]

_PACKAGE = "mlops_tui.sample"


def _resource_path(*parts: str) -> Path:
    """A real filesystem path for a packaged resource (copied out if the package is zipped)."""
    resource = resources.files(_PACKAGE).joinpath(*parts)
    if isinstance(resource, Path):
        return resource
    target = Path(tempfile.gettempdir()) / "mlops_tui_sample" / Path(*parts)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        if resource.is_dir():
            for child in resource.iterdir():
                _resource_path(*parts, child.name)
        else:
            with resource.open("rb") as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return target


def packaged_observations_path() -> Path:
    """Path of the packaged `observations.parquet` (identical to a fresh default generation)."""
    return _resource_path("data", "observations.parquet")


def packaged_ground_truth() -> dict[str, Any]:
    """The packaged ground truth document (periods, changes, windows)."""
    text = resources.files(_PACKAGE).joinpath("data", "ground_truth.json").read_text("utf-8")
    return json.loads(text)


def packaged_pipeline_dir() -> Path:
    """Directory of the default training pipeline (train.py, requirements.txt, params.toml)."""
    return _resource_path("pipeline")


def __getattr__(name: str) -> Any:
    """Expose `generate` and `write` without importing numpy/pyarrow at package import."""
    if name in ("generate", "write"):
        from mlops_tui.sample import generator

        return getattr(generator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

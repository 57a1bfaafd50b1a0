"""Capture the running interpreter's environment (standard library only).

Runs on the host and inside jobs and images, so it imports nothing but the stdlib.
"""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import re
import sys


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def capture() -> dict:
    """Python version, implementation, platform and every installed distribution."""
    packages: dict[str, str] = {}
    for distribution in importlib.metadata.distributions():
        name = distribution.metadata["Name"]
        if name:
            packages.setdefault(_normalize(name), distribution.version)
    return {
        "python_version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": f"{sys.platform}-{platform.machine()}",
        "packages": dict(sorted(packages.items())),
    }


@functools.lru_cache(maxsize=1)
def _packages_distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()  # scans every installed package: once


def module_distributions(modules: set[str]) -> dict[str, list[str]]:
    """Map top-level module names to the distributions that provide them."""
    mapping = _packages_distributions()
    return {m: sorted({_normalize(d) for d in mapping.get(m, [])}) for m in sorted(modules)}


if __name__ == "__main__":  # used to capture the environment inside an image
    import json

    json.dump(capture(), sys.stdout, sort_keys=True)

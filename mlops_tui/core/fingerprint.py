"""Stable content hashes for environments, manifests and pipelines."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def normalize_package_name(name: str) -> str:
    """PEP 503 normal form, so `Scikit_Learn` and `scikit-learn` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def environment_hash(
    python_version: str, implementation: str, platform: str, packages: Mapping[str, str]
) -> str:
    normalized = {normalize_package_name(k): v for k, v in packages.items()}
    return sha256_hex(
        canonical_json(
            {
                "python": python_version,
                "implementation": implementation,
                "platform": platform,
                "packages": normalized,
            }
        )
    )


def manifest_hash(files: Iterable[tuple[str, str]]) -> str:
    """Hash of a code manifest: sorted (relative path, file sha256) pairs."""
    return sha256_hex(canonical_json(sorted(files)))


def pipeline_fingerprint(
    code_hash: str, lock_hash: str, python_version: str, base_image_id: str | None = None
) -> str:
    """What Level 2 watches: training code, dependency lock, Python and base image."""
    return sha256_hex(
        canonical_json(
            {
                "code": code_hash,
                "lock": lock_hash,
                "python": python_version,
                "base_image": base_image_id,
            }
        )
    )

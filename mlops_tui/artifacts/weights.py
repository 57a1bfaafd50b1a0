"""Model weights with skops: save, verify-then-load, trusted types from code and config.

The trusted list never comes from the artifact itself. Types skops already trusts are
accepted; anything else must be on TRUSTED_TYPES or the operator's `trusted_types`.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlops_tui.artifacts.blobs import put_bytes, verify
from mlops_tui.core.errors import IntegrityError

FORMAT = "skops"
SUFFIX = ".skops"

# Types beyond skops' defaults that the shipped pipelines need.
TRUSTED_TYPES: tuple[str, ...] = (
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)


class UntrustedTypeError(IntegrityError):
    kind = "untrusted-type"


def dumps(estimator: Any) -> bytes:
    import skops.io as sio

    return sio.dumps(estimator)


def save(artifact_root: Path, estimator: Any) -> tuple[str, int, Path]:
    """Persist `estimator`; return (sha256, size, path)."""
    data = dumps(estimator)
    sha256, path = put_bytes(artifact_root, data, SUFFIX)
    return sha256, len(data), path


def artifact_modules(data: bytes) -> set[str]:
    """Top-level modules named in a skops file's schema (read as JSON, nothing executed)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError) as error:
        raise IntegrityError(f"not a skops artifact: {error}") from None
    modules: set[str] = set()
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            module = node.get("__module__")
            if isinstance(module, str):
                modules.add(module.split(".")[0])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    modules.discard("builtins")
    return modules


def untrusted_types(data: bytes, extra_trusted: Iterable[str] = ()) -> list[str]:
    """Types in a skops file beyond skops' defaults and the trusted list (nothing loaded).
    IntegrityError when the bytes are not a skops file at all."""
    import skops.io as sio

    try:
        found = set(sio.get_untrusted_types(data=data))
    except Exception as error:  # noqa: BLE001 - zip, JSON or schema errors of a hostile file
        raise IntegrityError(f"not a skops artifact: {type(error).__name__}: "
                             f"{str(error)[:200]}") from None
    return sorted(found - set(TRUSTED_TYPES) - set(extra_trusted))


def _refuse_untrusted(name: str, refused: list[str]) -> None:
    if refused:
        raise UntrustedTypeError(
            f"{name}: refused to load type {refused[0]}"
            + (f" and {len(refused) - 1} more" if len(refused) > 1 else "")
            + " (not on the trusted list; add it to [artifacts] trusted_types in mlops.toml "
            "only if you trust where this model came from)",
            detail={"types": refused},
        )


def loads_checked(data: bytes, *, name: str, extra_trusted: Iterable[str] = (),
                  kind: str | None = None) -> Any:
    """Deserialise untrusted bytes only if every type is trusted, then check the result is
    a fitted-model-like estimator: it has `predict`, and with `kind` ("regressor" or
    "classifier") scikit-learn agrees it is one."""
    _refuse_untrusted(name, untrusted_types(data, extra_trusted))
    import skops.io as sio

    try:
        estimator = sio.loads(data, trusted=sorted(set(sio.get_untrusted_types(data=data))))
    except Exception as error:  # noqa: BLE001 - a damaged archive fails in many ways
        raise IntegrityError(f"{name}: cannot be loaded: {type(error).__name__}: "
                             f"{str(error)[:200]}") from None
    if not callable(getattr(estimator, "predict", None)):
        raise IntegrityError(f"{name}: holds a {type(estimator).__name__}, not an estimator "
                             "with predict()")
    if kind is not None:
        from sklearn.base import is_classifier, is_regressor

        check = is_regressor if kind == "regressor" else is_classifier
        if not check(estimator):
            raise IntegrityError(f"{name}: holds a {type(estimator).__name__}, which is not a "
                                 f"{kind} (the pipeline's metric needs one)")
    return estimator


def load(
    path: Path,
    sha256: str,
    *,
    extra_trusted: Iterable[str] = (),
    recorded_sklearn: str | None = None,
    allow_version_mismatch: bool = False,
) -> Any:
    """Verify the hash, check every type against the trusted list, then deserialise."""
    data = verify(path, sha256)
    import skops.io as sio

    _refuse_untrusted(path.name, untrusted_types(data, extra_trusted))
    untrusted = set(sio.get_untrusted_types(data=data))
    if recorded_sklearn and not allow_version_mismatch:
        import sklearn

        if sklearn.__version__ != recorded_sklearn:
            raise IntegrityError(
                f"{path.name} was trained with scikit-learn {recorded_sklearn}, this host has "
                f"{sklearn.__version__}; pass --allow-version-mismatch to load anyway",
                detail={"recorded": recorded_sklearn, "host": sklearn.__version__},
            )
    return sio.loads(data, trusted=sorted(untrusted))

"""Environment diff and the compatibility verdict (docs/operator-guide.md §5).

Python: patch change compatible, minor risky, major (or implementation) incompatible.
Packages the model's artifact needs: minor/major change or removal incompatible, patch risky.
Other packages: major change risky, else compatible; added/removed compatible.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from mlops_tui.core.fingerprint import normalize_package_name
from mlops_tui.core.models import EnvSnapshot


class Verdict(IntEnum):
    COMPATIBLE = 0
    RISKY = 1
    INCOMPATIBLE = 2

    @property
    def label(self) -> str:
        return self.name.lower()


RELEASE = re.compile(r"^\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?")
TAG = re.compile(r"[-_.]?(dev|alpha|a|beta|b|rc|c|preview|pre|post|rev|r)[-_.]?(\d*)")
TAG_RANK = {"dev": 0, "alpha": 1, "a": 1, "beta": 2, "b": 2, "rc": 3, "c": 3, "preview": 3,
            "pre": 3, "post": 5, "rev": 5, "r": 5}


def release_tuple(version: str) -> tuple[int, int, int] | None:
    match = RELEASE.match(version or "")
    if not match:
        return None
    return tuple(int(part) if part is not None else 0 for part in match.groups())  # type: ignore[return-value]


def _tag_key(version: str) -> tuple:
    """Order of what follows the release (PEP 440): .dev < a < b < rc < final < .post, a
    trailing .devN sorts before its release, a local tag (+cpu) after it."""
    match = RELEASE.match(version)
    rest = version[match.end():].lower() if match else version.lower()
    public, _, local = rest.partition("+")
    found: dict[str, tuple[int, int]] = {}
    for name, number in TAG.findall(public):
        rank = TAG_RANK[name]
        part = "dev" if rank == 0 else "post" if rank == 5 else "pre"
        found.setdefault(part, (rank, int(number or 0)))
    pre = found.get("pre") or ((-1, 0) if "dev" in found and "post" not in found else (4, 0))
    post = (1, found["post"][1]) if "post" in found else (0, 0)
    dev = (0, found["dev"][1]) if "dev" in found else (1, 0)
    return pre, post, dev, TAG.sub("", public).strip("-_."), local


def classify_change(old: str | None, new: str | None) -> str:
    """added, removed, same, or {major,minor,patch}-{up,down}; `other` for unparseable."""
    if old is None and new is None:
        return "same"
    if old is None:
        return "added"
    if new is None:
        return "removed"
    if old == new:
        return "same"
    old_release, new_release = release_tuple(old), release_tuple(new)
    if old_release is None or new_release is None:
        return "other"
    if old_release == new_release:
        # only a pre/post/dev/local tag changed: order the tags, not the strings
        old_key, new_key = _tag_key(old), _tag_key(new)
        if old_key == new_key:
            return "patch-up" if new > old else "patch-down"
        return "patch-up" if new_key > old_key else "patch-down"
    for position, level in enumerate(("major", "minor", "patch")):
        if old_release[position] != new_release[position]:
            direction = "up" if new_release[position] > old_release[position] else "down"
            return f"{level}-{direction}"
    return "other"


@dataclass(frozen=True)
class Change:
    """One difference between two environments, with its own verdict and reason."""

    name: str
    kind: str
    old: str | None
    new: str | None
    needed: bool
    verdict: Verdict
    reason: str

    @property
    def label(self) -> str:
        """Word for the operator: added, removed, upgraded, downgraded or breaking."""
        if self.verdict is Verdict.INCOMPATIBLE:
            return "breaking"
        if self.kind in ("added", "removed"):
            return self.kind
        if self.kind.endswith("-down"):
            return "downgraded"
        return "upgraded" if self.kind.endswith("-up") else "changed"


@dataclass(frozen=True)
class EnvDiff:
    left: str
    right: str
    python: Change | None
    changes: tuple[Change, ...]
    identical: int
    verdict: Verdict

    @property
    def reasons(self) -> list[str]:
        worst = [c for c in self.all_changes if c.verdict == self.verdict and c.verdict > 0]
        return [c.reason for c in worst]

    @property
    def all_changes(self) -> tuple[Change, ...]:
        return ((self.python,) if self.python else ()) + self.changes


def _python_change(left: EnvSnapshot, right: EnvSnapshot) -> Change | None:
    if not left.python_version or not right.python_version:
        return None  # e.g. a requirements file names no Python
    if left.implementation and right.implementation and left.implementation != right.implementation:
        return Change(
            "python", "implementation", f"{left.implementation} {left.python_version}",
            f"{right.implementation} {right.python_version}", True, Verdict.INCOMPATIBLE,
            f"Python implementation changes {left.implementation} -> {right.implementation}",
        )
    kind = classify_change(left.python_version, right.python_version)
    if kind == "same":
        return None
    level = kind.split("-")[0]
    verdict = {"major": Verdict.INCOMPATIBLE, "minor": Verdict.RISKY}.get(level, Verdict.COMPATIBLE)
    return Change(
        "python", kind, left.python_version, right.python_version, True, verdict,
        f"Python {left.python_version} -> {right.python_version} ({level} change)",
    )


def _package_verdict(kind: str, needed: bool) -> Verdict:
    level = kind.split("-")[0]
    if needed:
        if kind == "removed" or level in ("major", "minor"):
            return Verdict.INCOMPATIBLE
        if kind == "added":
            return Verdict.COMPATIBLE
        return Verdict.RISKY
    return Verdict.RISKY if level == "major" else Verdict.COMPATIBLE


def _reason(name: str, kind: str, old: str | None, new: str | None, needed: bool) -> str:
    why = " (the model's artifact needs it)" if needed else ""
    if kind == "added":
        return f"{name} {new} added{why}"
    if kind == "removed":
        return f"{name} {old} missing{why}"
    return f"{name} {old} -> {new} ({kind.replace('-', ' ')}){why}"


def diff_environments(
    left: EnvSnapshot,
    right: EnvSnapshot,
    needed_packages: Iterable[str] = (),
    *,
    left_label: str = "left",
    right_label: str = "right",
    compare_missing: bool = True,
) -> EnvDiff:
    """Compare `left` (e.g. the model's) with `right` (e.g. the serving host).

    `compare_missing=False` ignores packages absent on the right (a requirements file lists
    only a few packages; its silence about the rest is not a removal).
    """
    needed = {normalize_package_name(n) for n in needed_packages}
    old_packages = {normalize_package_name(k): v for k, v in left.packages.items()}
    new_packages = {normalize_package_name(k): v for k, v in right.packages.items()}
    changes: list[Change] = []
    identical = 0
    for name in sorted(old_packages.keys() | new_packages.keys()):
        old, new = old_packages.get(name), new_packages.get(name)
        if new is None and not compare_missing:
            continue
        kind = classify_change(old, new)
        if kind == "same":
            identical += 1
            continue
        is_needed = name in needed
        changes.append(
            Change(name, kind, old, new, is_needed, _package_verdict(kind, is_needed),
                   _reason(name, kind, old, new, is_needed))
        )
    python = _python_change(left, right)
    verdicts = [c.verdict for c in changes] + ([python.verdict] if python else [])
    return EnvDiff(
        left=left_label,
        right=right_label,
        python=python,
        changes=tuple(changes),
        identical=identical,
        verdict=max(verdicts, default=Verdict.COMPATIBLE),
    )

"""Validation of operator-supplied names (regimes, targets, version ids)."""

from __future__ import annotations

import difflib
import re

from mlops_tui.core.errors import InvalidNameError, NotFoundError

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
VERSION_PATTERN = re.compile(r"v?([0-9]{1,12})")
# C0 and C1 control characters (NUL, ESC, CSI...): refused in ids and column names.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
PLAIN_COLUMN = re.compile(r"[^\s,\[\]'\"]([^,\[\]'\"]*[^\s,\[\]'\"])?")


def shown_column(name: str) -> str:
    """A column name for a message: as is when plain, else repr-escaped and shortened."""
    if PLAIN_COLUMN.fullmatch(name) and name.isprintable() and len(name) <= 60:
        return name
    text = repr(name)
    return text if len(text) <= 60 else text[:57] + "...'"


def _shown(value: str) -> str:
    """A value safe and short enough to echo in a one-line message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "...'"


def validate_name(value: str, what: str = "name") -> str:
    """Return `value` if it is a plain identifier (no paths, NUL, SQL or shell syntax)."""
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value) or ".." in value:
        raise InvalidNameError(
            f"invalid {what} {_shown(value)}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def parse_version_id(value: str) -> int:
    """Accept `v12` or `12`; return the sequence number."""
    match = VERSION_PATTERN.fullmatch(value.strip()) if isinstance(value, str) else None
    if not match:
        raise InvalidNameError(f"invalid version id {_shown(value)}: expected e.g. v12")
    return int(match.group(1))


def format_version_id(number: int) -> str:
    return f"v{number}"


def not_found(what: str, value: str, known: list[str]) -> NotFoundError:
    """A NotFoundError with a did-you-mean suggestion drawn from `known`."""
    close = difflib.get_close_matches(value, known, n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return NotFoundError(f"unknown {what} {_shown(value)}{hint}")

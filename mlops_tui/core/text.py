"""Strings from the store or from outside (reasons, job logs, error messages, names in
data) made safe to show on a terminal: what a terminal would obey instead of print is
shown as a visible escape, so text can never move the cursor, clear the screen, set a
window title, open a hyperlink or reorder what is shown.

Markup is the other half: the CLI and the dashboard render these strings with markup off
(rich `Text`, `markup=False`), so brackets stay brackets.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls (0x9b alone starts a CSI on many terminals), the bidi
# embeddings/overrides/isolates, and lone surrogates (undecodable bytes of a file name;
# printing one would fail with an encoding error).
_OTHERS = "\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_SINGLE_LINE = re.compile(f"[\x00-\x1f{_OTHERS}]")
_MULTI_LINE = re.compile(f"[\x00-\x08\x0b-\x1f{_OTHERS}]")  # keeps tab and newline
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(found: re.Match[str]) -> str:
    character = found.group()
    if character in _SHORT:
        return _SHORT[character]
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: object, *, multiline: bool = False) -> str:
    """`value` as text with every control character shown as an escape (`\\x1b`, `\\u202e`).

    With `multiline` (a log, a block of lines) tab and newline stay, and a CRLF line end
    becomes a newline; a lone carriage return, which would overwrite the line, is escaped.
    """
    text = value if isinstance(value, str) else str(value)
    if multiline:
        text = text.replace("\r\n", "\n")
        return _MULTI_LINE.sub(_escape, text)
    return _SINGLE_LINE.sub(_escape, text)


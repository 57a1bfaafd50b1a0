"""Strings from the store or from outside (reasons, job logs, error messages, names in
data) made safe to show on a terminal: what a terminal would obey instead of print is
shown as a visible escape, so text can never move the cursor, clear the screen, set a
window title, open a hyperlink or reorder what is shown.

Markup is the other half: the CLI and the dashboard render these strings with markup off
(rich `Text`, `markup=False`), so brackets stay brackets.
"""

from __future__ import annotations

# C0 controls, DEL, C1 controls (0x9b alone starts a CSI on many terminals), the bidi
# embeddings/overrides/isolates, and lone surrogates (undecodable bytes of a file name;
# printing one would fail with an encoding error). A translation table: str.translate runs
# in C, so a log of millions of control bytes is escaped in well under a second.
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
_ESCAPED = [*range(0x00, 0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F),
            *range(0x2066, 0x206A), *range(0xD800, 0xE000)]


def _escape(code: int) -> str:
    character = chr(code)
    if character in _SHORT:
        return _SHORT[character]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_SINGLE_LINE = {code: _escape(code) for code in _ESCAPED}
_MULTI_LINE = {code: text for code, text in _SINGLE_LINE.items() if chr(code) not in "\t\n"}


def printable(value: object, *, multiline: bool = False) -> str:
    """`value` as text with every control character shown as an escape (`\\x1b`, `\\u202e`).

    With `multiline` (a log, a block of lines) tab and newline stay, and a CRLF line end
    becomes a newline; a lone carriage return, which would overwrite the line, is escaped.
    """
    text = value if isinstance(value, str) else str(value)
    if multiline:
        return text.replace("\r\n", "\n").translate(_MULTI_LINE)
    return text.translate(_SINGLE_LINE)

"""Plain-text pieces the views share: sparklines, ages, symbols. States are words or
symbols, never colour alone, so the dashboard reads the same with NO_COLOR."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from rich.text import Text

from mlops_tui.core.text import printable

SPARK_BLOCKS = "▁▂▃▄▅▆▇█"

# Verdict words and their symbols: drift results, env verdicts, job states.
DRIFT_SYMBOLS = {"drift": "▲", "drifted": "▲", "ok": "·", "no-drift": "·",
                 "inconclusive": "?", "missing": " "}
VERDICT_SYMBOLS = {"compatible": "✓", "risky": "!", "incompatible": "✗"}
CHANGE_SYMBOLS = {"added": "+", "removed": "-", "upgraded": "↑", "downgraded": "↓",
                  "breaking": "✗", "changed": "~"}
JOB_SYMBOLS = {"requested": "…", "created": "…", "running": "▶", "succeeded": "✓",
               "ingested": "✓", "failed": "✗", "rejected": "✗", "lost": "?", "cancelled": "■"}


def sparkline(values: Sequence[float], width: int = 12) -> str:
    """The last `width` values as block characters (equal values draw a flat middle line)."""
    finite = [v for v in values if v is not None and math.isfinite(v)][-width:]
    if not finite:
        return "-"
    low, high = min(finite), max(finite)
    if high - low < 1e-12:
        return SPARK_BLOCKS[3] * len(finite)
    scale = (len(SPARK_BLOCKS) - 1) / (high - low)
    return "".join(SPARK_BLOCKS[round((v - low) * scale)] for v in finite)


def trend_arrow(values: Sequence[float], higher_is_better: bool = True) -> str:
    """↗ better, ↘ worse, → flat: the newest value against the one before it."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if len(finite) < 2 or abs(finite[-1] - finite[-2]) < 1e-9:
        return "→"
    better = (finite[-1] > finite[-2]) == higher_is_better
    return "↗" if better else "↘"


def age(then: datetime, now: datetime) -> str:
    """A short age like 5m, 3h, 2d (never negative)."""
    seconds = max(0.0, (now - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def stamp(moment: datetime | None) -> str:
    """UTC minute precision: what every view shows for a time."""
    return f"{moment:%Y-%m-%d %H:%M}" if moment else "-"


def short_path(path: str | Path) -> str:
    """The path with the home directory shown as ~."""
    text = str(path)
    home = os.path.expanduser("~")
    if home not in ("", "/") and (text == home or text.startswith(home + os.sep)):
        return "~" + text[len(home):]
    return text


def version_label(number: int | None) -> str:
    return f"v{number}" if number is not None else "-"


def plain_text(value: object, *, multiline: bool = False) -> Text:
    """A stored or outside string as a Text that shows it literally: control characters
    escaped (mlops_tui.core.text), never parsed as markup."""
    if isinstance(value, Text):
        return printable_text(value, multiline=multiline)
    return Text(printable(value, multiline=multiline))


def printable_text(text: Text, *, multiline: bool = False) -> Text:
    """`text` with its control characters escaped and its styles kept on the same pieces."""
    if printable(text.plain, multiline=multiline) == text.plain:
        return text
    cuts = sorted({offset for span in text.spans for offset in (span.start, span.end)})
    result = Text(style=text.style, justify=text.justify, overflow=text.overflow,
                  no_wrap=text.no_wrap, end=text.end)
    for piece in text.divide(cuts):
        start = len(result)
        result.append(printable(piece.plain, multiline=multiline))
        for span in piece.spans:  # each span covers its whole piece: the cuts are its ends
            result.stylize(span.style, start, len(result))
    return result


def clip(text: str, width: int) -> str:
    """`text` cut to `width` characters with an ellipsis."""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"

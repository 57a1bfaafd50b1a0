"""Two adjustments to the typer in use, applied once when the CLI loads.

1. Recent typer converts every option value through a pydantic TypeAdapter, and importing
   pydantic costs more than most of our commands. The plain types our commands declare (str,
   int with a range, naive ISO times, paths, lists of those) are converted here exactly as that
   adapter would convert them; anything else, and every value the fast path is unsure of
   (errors included), goes to typer's own converter, so results and messages are typer's.
2. typer's help prints a value type even for flags (`--json <bool>`), yet a flag takes no
   value (`--readonly true` is a usage error): flags show no type.

On a typer without these internals (older releases use click's types, without pydantic)
nothing is patched.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any, get_args, get_origin

_DECLINE = object()  # the fast path does not handle this value: typer's converter does
_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
# a naive ISO date or date-time; both parsers agree on these (zones and timestamps differ)
_NAIVE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}"
                         r"(:[0-9]{2}(\.[0-9]{1,6})?)?)?", re.ASCII)
_applied = False
_check_path = None  # typer's path checks, set by apply()
ORIGINAL = None  # typer's own build_runtime_param, once apply() replaced it


def _plain_info(info: Any) -> bool:
    return getattr(info, "parser", None) is None and getattr(info, "click_type", None) is None


def _leaf(annotation: Any, info: Any):
    """A converter `value -> result or _DECLINE` for one plain annotation, else None."""
    if annotation is str:
        return lambda value, param, ctx: value if isinstance(value, str) else _DECLINE
    if annotation is bool:  # a flag's own True/False; words ("yes", "1") go to typer
        return lambda value, param, ctx: value if isinstance(value, bool) else _DECLINE
    if annotation is int and not getattr(info, "clamp", False):
        low, high = getattr(info, "min", None), getattr(info, "max", None)

        def to_int(value: Any, param: Any, ctx: Any) -> Any:
            if isinstance(value, str) and _INTEGER.fullmatch(value):
                value = int(value)
            elif type(value) is not int:
                return _DECLINE
            if (low is not None and value < low) or (high is not None and value > high):
                return _DECLINE  # typer words the range error
            return value

        return to_int
    if annotation is datetime and getattr(info, "formats", None) is None:
        def to_time(value: Any, param: Any, ctx: Any) -> Any:
            if isinstance(value, datetime):
                return value
            if isinstance(value, str) and _NAIVE_TIME.fullmatch(value):
                try:
                    return datetime.fromisoformat(value)
                except ValueError:
                    return _DECLINE  # e.g. Feb 30: typer words it
            return _DECLINE

        return to_time
    if annotation is Path and getattr(info, "path_type", None) is None and _check_path:
        def to_path(value: Any, param: Any, ctx: Any) -> Any:
            if isinstance(value, str) and value:
                value = Path(value)
            elif not isinstance(value, Path):
                return _DECLINE
            # given a Path, typer's own checks (exists, readable, ...) need no pydantic
            return _check_path(value, info, path_type=Path, param=param, ctx=ctx)

        return to_path
    return None


def _converter(annotation: Any, info: Any):
    if not _plain_info(info):
        return None
    if get_origin(annotation) is list:
        (item,) = get_args(annotation) or (None,)
        leaf = _leaf(item, info)
        if leaf is None:
            return None

        def to_list(value: Any, param: Any, ctx: Any) -> Any:
            if not isinstance(value, (list, tuple)):
                value = [value]
            items = [leaf(v, param, ctx) for v in value]
            return _DECLINE if any(i is _DECLINE for i in items) else items

        return to_list
    return _leaf(annotation, info)


def apply() -> None:
    """Patch typer once; a no-op on a typer without the internals described above."""
    global _applied
    if _applied:
        return
    _applied = True
    try:
        from typer import core as typer_core
        from typer._coercion import RuntimeParam
    except ImportError:
        return
    original = getattr(typer_core, "build_runtime_param", None)
    if original is None:
        return
    global _check_path, ORIGINAL
    ORIGINAL = original
    try:
        from typer._param_types import coerce_cli_path as _check_path
    except ImportError:
        _check_path = None  # paths then go to typer's converter

    class FastRuntimeParam(RuntimeParam):  # type: ignore[misc, valid-type]
        """Converts plain values without pydantic; typer's converter for the rest."""

        def __init__(self, descriptor: Any, convert) -> None:
            super().__init__(parameter_info=descriptor.parameter_info,
                             annotation=descriptor.annotation)
            object.__setattr__(self, "_descriptor", descriptor)
            object.__setattr__(self, "_convert", convert)
            object.__setattr__(self, "_fallback", None)

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            result = self._convert(value, param, ctx)
            if result is not _DECLINE:
                return result
            if self._fallback is None:
                object.__setattr__(self, "_fallback", original(self._descriptor))
            return self._fallback._coerce_value(value, param=param, ctx=ctx)

    def build_runtime_param(descriptor: Any) -> Any:
        if getattr(descriptor, "file_annotation", None) is None:
            convert = _converter(descriptor.annotation, descriptor.parameter_info)
            if convert is not None:
                return FastRuntimeParam(descriptor, convert)
        return original(descriptor)

    typer_core.build_runtime_param = build_runtime_param

    option = getattr(typer_core, "TyperOption", None)
    shown = getattr(option, "display_type_rich", None)
    if shown is not None:
        def display_type_rich(self, ctx: Any) -> str | None:
            if getattr(self, "is_flag", False) and not getattr(self, "count", False):
                return None  # a flag takes no value
            return shown(self, ctx)

        option.display_type_rich = display_type_rich

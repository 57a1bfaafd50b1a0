"""Commands and sub-apps registered by module path, imported only when that command runs or
help lists it: `mlops-tui models list` loads the models module, not the deploy, drift or
data modules and what they import.

    app = typer.Typer(cls=lazy_group([
        ("deploy", "mlops_tui.cli.deploy_cmd:deploy_command"),  # a command function
        ("models", "mlops_tui.cli.models_cmd:app"),              # a typer.Typer sub-app
        ("status", None),                                         # defined on `app` itself
    ]))

Names keep the listed order (help shows them so); commands defined on the app itself and
not listed come first.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping, Sequence
from typing import Any

import typer
from typer.core import TyperGroup

Entry = tuple[str, "str | None"]


def _load(name: str, target: str) -> Any:
    """The click command for `module:attribute` (a Typer app or a command function)."""
    module_name, _, attribute = target.partition(":")
    obj = getattr(importlib.import_module(module_name), attribute)
    if isinstance(obj, typer.Typer):
        command = typer.main.get_group(obj)  # as add_typer would: no completion options
    else:
        single = typer.Typer(add_completion=False)
        single.command(name)(obj)
        command = typer.main.get_command(single)
    command.name = name
    return command


class LazyCommands(MutableMapping):
    """A group's name -> command mapping whose lazy entries import on first lookup."""

    def __init__(self, loaded: dict[str, Any], entries: Sequence[Entry]) -> None:
        self._loaded = dict(loaded)
        self._targets = {name: target for name, target in entries if target}
        listed = [name for name, _ in entries]
        self._order = [n for n in self._loaded if n not in listed] + [
            n for n in listed if n in self._loaded or n in self._targets]

    def names(self) -> list[str]:
        """Every name, in order, importing nothing."""
        return self._order + [n for n in self._loaded if n not in self._order]

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            target = self._targets.get(name)
            if target is None:
                raise KeyError(name)
            self._loaded[name] = _load(name, target)
        return self._loaded[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._loaded[name] = command
        self._targets.pop(name, None)

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self._loaded.pop(name, None)
        self._targets.pop(name, None)
        self._order = [n for n in self._order if n != name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __contains__(self, name: object) -> bool:
        return name in self._loaded or name in self._targets


def lazy_group(entries: Sequence[Entry]) -> type[TyperGroup]:
    """A TyperGroup class whose commands in `entries` load on demand (see the module doc)."""

    class LazyGroup(TyperGroup):
        def __init__(self, *args: Any, commands: Any = None, **kwargs: Any) -> None:
            super().__init__(*args, commands=LazyCommands(dict(commands or {}), entries),
                             **kwargs)

        def list_commands(self, ctx: Any) -> list[str]:
            return self.commands.names()  # names only; help then loads what it shows

    return LazyGroup

"""The scriptable CLI: one Typer sub-app per noun; each command is parse -> service -> emit."""

"""Every key binding of the dashboard, each with an id (for `[keymap]`) and a tooltip.

One key means one action in every view. Dangerous actions carry the
DANGER mark in their description and are removed in read-only mode.
"""

from __future__ import annotations

from textual.binding import Binding, BindingsMap

DANGER = "⚠"

# id -> (default key, footer description, tooltip, action)
DANGEROUS: dict[str, tuple[str, str, str, str]] = {
    "retrain": ("t", f"{DANGER}Retrain", "Start a retrain job for the selected regime",
                "retrain"),
    "deploy": ("d", f"{DANGER}Deploy", "Make the selected version active on the serving target",
               "deploy"),
    "rollback": ("b", f"{DANGER}Rollback",
                 "Roll the serving target back (to the selected history row's version)",
                 "rollback"),
    "cancel-job": ("x", f"{DANGER}Cancel", "Stop the selected (or newest) running job",
                   "cancel_job"),
}
DANGEROUS_ACTIONS = frozenset(spec[3] for spec in DANGEROUS.values())
ACTION_IDS = {spec[3]: binding_id for binding_id, spec in DANGEROUS.items()}  # action -> id


def dangerous_bindings() -> list[Binding]:
    return [Binding(key, action, description, id=binding_id, tooltip=tooltip)
            for binding_id, (key, description, tooltip, action) in DANGEROUS.items()]


def view_bindings(dangerous: bool = True) -> list[Binding]:
    """Keys every view shares: jump, filter, keys, back, refresh, then the actions (left
    out entirely in read-only mode)."""
    return [
        Binding("colon", "command_line", "View", id="command-line",
                tooltip="Jump to a view: :overview :models :drift :lineage :env :jobs :history"),
        Binding("slash", "filter", "Filter", id="filter",
                tooltip="Filter the rows of this view (esc clears)"),
        Binding("question_mark", "keys", "Keys", id="keys",
                tooltip="Show every key of this view"),
        # the app's `q`, listed here so the footer shows it before the actions, which a
        # narrow terminal cuts first
        Binding("q", "app.quit", "Quit", id="quit", tooltip="Leave the dashboard"),
        Binding("escape", "back", "Back", id="back", show=False,
                tooltip="Close the filter, or go back to the previous view"),
        Binding("r", "reload", "Refresh", id="refresh", show=False,
                tooltip="Read the store again now"),
        *(dangerous_bindings() if dangerous else []),
    ]


def app_bindings() -> list[Binding]:
    return [
        Binding("q", "quit", "Quit", id="quit", show=False, tooltip="Leave the dashboard"),
        Binding("ctrl+q", "quit", "Quit", id="quit-ctrl", show=False, priority=True,
                tooltip="Leave the dashboard"),
        Binding("ctrl+c", "interrupt", "Interrupt", id="interrupt", show=False, priority=True,
                tooltip="Leave at once with exit status 130, as an interrupted command"),
        Binding("ctrl+p", "command_palette", "Palette", id="palette", show=False,
                priority=True, tooltip="Search every view and action"),
    ]


def with_view_bindings(own: BindingsMap, dangerous: bool) -> BindingsMap:
    """A view's own keys first (the footer shows them first), then the shared ones."""
    return BindingsMap.merge([own, BindingsMap(view_bindings(dangerous))])


def known_binding_ids() -> set[str]:
    """Ids a `[keymap]` may rebind (gathered from every screen and widget class)."""
    from mlops_tui.tui.screens import ALL_SCREENS
    from mlops_tui.tui.widgets import ALL_WIDGETS

    ids = {b.id for b in app_bindings() + view_bindings() if b.id}
    for cls in (*ALL_SCREENS, *ALL_WIDGETS):
        ids.update(b.id for b in cls.BINDINGS if isinstance(b, Binding) and b.id)
    return ids

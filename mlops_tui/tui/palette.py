"""Command palette entries: every view, and every action of the screen it was opened on."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from mlops_tui.tui.keys import DANGER, DANGEROUS

if TYPE_CHECKING:
    from mlops_tui.tui.app import MlopsApp


class DashboardCommands(Provider):
    """`Open :models`, `⚠ Rollback`…; actions are absent in read-only mode."""

    def _entries(self) -> list[tuple[str, str, object]]:
        app: MlopsApp = self.app  # type: ignore[assignment]
        from mlops_tui.tui.screens import VIEWS

        entries: list[tuple[str, str, object]] = []
        for name, screen_class in VIEWS.items():
            entries.append((f"Open :{name}", f"Go to the {screen_class.VIEW_TITLE} view",
                            partial(app.open_view, name)))
        screen = self.screen
        if not app.readonly and hasattr(screen, "prepare_action"):
            for binding_id, (_key, description, tooltip, _action) in DANGEROUS.items():
                if binding_id not in screen.ACTIONS:
                    continue  # acts on rows of another view
                title = description.replace(DANGER, f"{DANGER} ")
                entries.append((title, tooltip + " (asks first)",
                                partial(screen.prepare_action, binding_id)))
        return entries

    async def discover(self) -> Hits:
        for title, help_text, command in self._entries():
            yield DiscoveryHit(title, command, help=help_text)  # type: ignore[arg-type]

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, command in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), command,  # type: ignore[arg-type]
                          text=title, help=help_text)

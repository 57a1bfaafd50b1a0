"""History: deployment events (append-only; a rollback is a new event) and the audit log.
The rollback key rolls the serving target back to the selected event's version."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable

from mlops_tui.core.models import AuditEntry, DeploymentEvent, DeploymentKind
from mlops_tui.tui.actions import ActionContext
from mlops_tui.tui.screens.base import DashboardScreen
from mlops_tui.tui.text import clip, stamp
from mlops_tui.tui.widgets.status import Plain
from mlops_tui.tui.widgets.tables import RowTable, refill, selected_key


@dataclass(frozen=True)
class HistoryData:
    events: list[DeploymentEvent]
    audit: list[AuditEntry]


FIRST_DETAILS = ("from", "to", "reason", "version", "regime", "trigger", "runner", "job")


def audit_detail(entry: AuditEntry) -> str:
    """The audit row's detail in one line: what changed first, nested documents by their
    verdict or state word."""
    def shown(value: object) -> str:
        if isinstance(value, dict):
            return str(value.get("verdict") or value.get("state") or "{…}")
        return str(value)

    keys = [k for k in FIRST_DETAILS if k in entry.detail]
    keys += sorted(k for k in entry.detail if k not in FIRST_DETAILS)
    return ", ".join(f"{k}={shown(entry.detail[k])}" for k in keys
                     if entry.detail[k] is not None)


class HistoryScreen(DashboardScreen):
    """Newest first. Select an event and press the rollback key to go back to its version."""

    VIEW = "history"
    ACTIONS = frozenset({"rollback"})
    VIEW_TITLE = "History"
    FILTER_HINT = "filter events and audit rows by any text"
    BINDINGS = [
        Binding("tab", "app.focus_next", "Events/Audit", id="history-switch",
                tooltip="Move between the deployment events and the audit log"),
    ]

    def __init__(self, argument: str | None = None) -> None:
        super().__init__(argument)
        self.data: HistoryData | None = None

    def compose_body(self) -> ComposeResult:
        with Vertical(id="events-pane", classes="pane"):
            yield Plain("Deployment events", id="events-title", classes="pane-title")
            yield RowTable(id="events")
        with Vertical(id="audit-pane", classes="pane"):
            yield Plain("Audit", id="audit-title", classes="pane-title")
            yield RowTable(id="audit")

    def on_mount(self) -> None:
        self.query_one("#events", DataTable).add_columns(
            "#", "at (UTC)", "subject", "change", "action", "pin", "actor", "reason")
        self.query_one("#audit", DataTable).add_columns(
            "#", "at (UTC)", "action", "subject", "actor", "detail")
        super().on_mount()
        self.query_one("#events", DataTable).focus()

    def focus_body(self) -> None:
        self.query_one("#events", DataTable).focus()

    def fetch(self, request: object) -> HistoryData:
        from mlops_tui.services.deployment_reads import audit_log, history

        workspace = self.app.workspace
        return HistoryData(history(workspace, limit=500), audit_log(workspace, limit=500))

    def show(self, data: HistoryData) -> None:
        self.data = data
        self._fill()

    def _fill(self) -> None:
        if self.data is None:
            return
        needle = self.filter_text.lower()
        event_rows = []
        for e in self.data.events:
            subject = f"{'target' if e.kind is DeploymentKind.ACTIVE else 'champion'} {e.subject}"
            change = f"{'v' + str(e.from_version) if e.from_version else '-'} → v{e.to_version}"
            cells = (str(e.seq), stamp(e.at), subject, change, e.action,
                     "pinned" if e.pinned else "-", clip(e.actor, 24), clip(e.reason, 60))
            if not needle or needle in " ".join(cells).lower():
                event_rows.append((str(e.seq), cells))
        refill(self.query_one("#events", DataTable), event_rows)
        audit_rows = []
        for a in self.data.audit:
            cells = (str(a.seq), stamp(a.at), a.action, a.subject, clip(a.actor, 24),
                     clip(audit_detail(a), 80))
            if not needle or needle in " ".join(cells).lower():
                audit_rows.append((str(a.seq), cells))
        refill(self.query_one("#audit", DataTable), audit_rows)
        self.query_one("#events-title", Plain).update(
            f"Deployment events ({len(event_rows)}) · select one, b rolls back to its version")
        self.query_one("#audit-title", Plain).update(f"Audit ({len(audit_rows)})")

    def apply_filter(self, text: str) -> None:
        self._fill()

    def selected_event(self) -> DeploymentEvent | None:
        key = selected_key(self.query_one("#events", DataTable))
        if self.data is None or key is None:
            return None
        return next((e for e in self.data.events if str(e.seq) == key), None)

    def action_context(self) -> ActionContext:
        event = self.selected_event()
        if event is None:
            return ActionContext(refusal="select a serving target's deployment event first")
        if event.kind is not DeploymentKind.ACTIVE:
            return ActionContext(refusal=(
                f"event #{event.seq} is a champion change of regime {event.subject}, not a "
                "serving change: select a target's row to roll that target back"))
        return ActionContext(version_id=f"v{event.to_version}",
                             rollback_to=f"v{event.to_version}", target=event.subject)

"""Lineage: a version's inputs (code, weights, environment, data, image, job) and its
ancestry, as a tree."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from mlops_tui.core.lineage import LineageNode
from mlops_tui.tui.actions import ActionContext
from mlops_tui.tui.messages import VersionChosen
from mlops_tui.tui.screens.base import DashboardScreen
from mlops_tui.tui.text import plain_text
from mlops_tui.tui.widgets.status import Plain


def resolve_version(workspace, requested: str | None) -> str:
    """The version a view opens on: the one asked for, else the default target's active one."""
    from mlops_tui.core.errors import NotFoundError
    from mlops_tui.services.deployment_reads import serving_state
    from mlops_tui.services.registry import list_versions

    if requested:
        return requested.split()[0]
    active = serving_state(workspace).active.get(workspace.config.serving.default_target)
    if active is not None:
        return f"v{active.to_version}"
    newest = list_versions(workspace, limit=1).versions
    if not newest:
        raise NotFoundError("no model versions yet: run 'mlops-tui retrain --regime R' first")
    return newest[0].id


class LineageScreen(DashboardScreen):
    """`:lineage v12`; without a version, the selected one or the active one."""

    VIEW = "lineage"
    ACTIONS = frozenset({"deploy", "retrain"})
    VIEW_TITLE = "Lineage"
    FILTER_HINT = "find a node by text (enter keeps the cursor there)"
    BINDINGS = [
        Binding("e", "env", "Env diff", id="lineage-env",
                tooltip="Diff the highlighted version's environment with the serving one"),
        Binding("m", "models", "Models", id="lineage-models", tooltip="Back to the versions list"),
    ]

    def __init__(self, argument: str | None = None) -> None:
        super().__init__(argument)
        self.root_node: LineageNode | None = None

    def compose_body(self) -> ComposeResult:
        yield Plain("loading…", id="lineage-title", classes="pane-title")
        yield Tree("lineage", id="lineage-tree")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one(Tree).focus()

    def focus_body(self) -> None:
        self.query_one(Tree).focus()

    def fetch_request(self) -> str | None:
        return self.argument or self.app.selected_version

    def fetch(self, request: str | None) -> LineageNode:
        from mlops_tui.services.lineage import lineage

        return lineage(self.app.workspace, resolve_version(self.app.workspace, request))

    def show(self, data: LineageNode) -> None:
        same = self.root_node is not None and self.root_node.key == data.key
        self.root_node = data
        if same:
            return  # lineage is immutable: keep the tree as the operator left it
        tree = self.query_one(Tree)
        tree.clear()
        tree.root.set_label(plain_text(data.label))
        tree.root.data = data
        self._add_children(tree.root, data, depth=0)
        tree.root.expand()
        depth = sum(1 for _ in _chain(data)) - 1
        self.query_one("#lineage-title", Plain).update(
            f"Lineage of {data.id}: {depth} ancestor{'s' if depth != 1 else ''} · "
            "enter/space expands · e env diff")
        self.post_message(VersionChosen(data.id, data.attributes.get("regime")))

    def _add_children(self, parent: TreeNode, node: LineageNode, depth: int) -> None:
        for child in node.children:
            label = ("parent " if child.relation == "parent" else "") + child.label
            if child.children:
                branch = parent.add(plain_text(label), data=child, expand=depth < 1)
                self._add_children(branch, child, depth + 1)
            else:
                parent.add_leaf(plain_text(label), data=child)

    def apply_filter(self, text: str) -> None:
        if not text:
            return
        tree = self.query_one(Tree)
        needle = text.lower()
        stack = [tree.root]
        while stack:
            node = stack.pop(0)
            if needle in str(node.label).lower():
                parent = node.parent
                while parent is not None:
                    parent.expand()
                    parent = parent.parent
                self.call_after_refresh(tree.move_cursor, node)
                return
            stack.extend(node.children)

    def _highlighted_version(self) -> str | None:
        tree = self.query_one(Tree)
        node = tree.cursor_node
        while node is not None:
            data = node.data
            if isinstance(data, LineageNode) and data.kind == "version":
                return data.id
            node = node.parent
        return self.root_node.id if self.root_node else None

    def action_context(self) -> ActionContext:
        version_id = self._highlighted_version()
        regime = self.root_node.attributes.get("regime") if self.root_node else None
        return ActionContext(regime=regime, version_id=version_id)

    def action_env(self) -> None:
        version_id = self._highlighted_version()
        if version_id:
            self.app.open_view("env", f"{version_id} host")

    def action_models(self) -> None:
        self.app.open_view("models")

    def extra_keys(self) -> list[tuple[str, str]]:
        return [("↑↓", "Move in the tree"), ("enter/space", "Expand or collapse a node")]


def _chain(node: LineageNode):
    current: LineageNode | None = node
    while current is not None:
        yield current
        current = next((c for c in current.children if c.relation == "parent"), None)

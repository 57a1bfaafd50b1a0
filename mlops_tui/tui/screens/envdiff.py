"""Environment diff: two versions, or a version and the host (or serving image), with each
change labelled (added, removed, upgraded, downgraded, breaking) and the verdict."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable

from mlops_tui.core.envdiff import EnvDiff
from mlops_tui.tui.actions import ActionContext
from mlops_tui.tui.screens.base import DashboardScreen
from mlops_tui.tui.screens.lineage import resolve_version
from mlops_tui.tui.text import CHANGE_SYMBOLS, VERDICT_SYMBOLS
from mlops_tui.tui.widgets.status import Plain
from mlops_tui.tui.widgets.tables import RowTable, add_rows, selected_key


@dataclass(frozen=True)
class EnvDiffData:
    left: str
    right: str
    diff: EnvDiff
    identical: tuple[tuple[str, str], ...]  # (package, version) the same on both sides
    summary: str  # what each side is (python, platform, package count)
    request: str = ""  # the two sides as asked for (a refresh asks again, not by label)


def resolve_side(workspace, spec: str):
    """A version, `host`, a requirements file, or the serving image (`image:NAME`)."""
    from mlops_tui.services.environments import ResolvedEnv, resolve_env

    if spec.startswith("image:"):
        from mlops_tui.services.gate import serving_environment

        label, env = serving_environment(workspace)
        if label == spec:
            return ResolvedEnv(label, env)
    return resolve_env(workspace, spec)


def compare_environments(workspace, left_spec: str, right_spec: str) -> EnvDiffData:
    """The service's resolution of both sides and the core diff, plus the identical rows."""
    from mlops_tui.core.envdiff import diff_environments
    from mlops_tui.core.fingerprint import normalize_package_name

    left = resolve_side(workspace, left_spec)
    right = resolve_side(workspace, right_spec)
    result = diff_environments(
        left.env, right.env, set(left.needed) | set(right.needed),
        left_label=left.label, right_label=right.label,
        compare_missing=not (left.partial or right.partial))
    right_packages = {normalize_package_name(k): v for k, v in right.env.packages.items()}
    identical = tuple(sorted(
        (name, version) for name, version in (
            (normalize_package_name(k), v) for k, v in left.env.packages.items())
        if right_packages.get(name) == version))
    summary = f"{left.label}: {left.env.summary()}  ·  {right.label}: {right.env.summary()}"
    return EnvDiffData(left.label, right.label, result, identical, summary,
                       f"{left_spec} {right_spec}")


class EnvDiffScreen(DashboardScreen):
    """`:env v3 v7`, `:env v3 host`, `:env v3` (against the serving environment)."""

    VIEW = "env"
    ACTIONS = frozenset({"deploy"})
    VIEW_TITLE = "Env diff"
    FILTER_HINT = "filter packages by name"
    BINDINGS = [
        Binding("n", "next_change", "Next change", id="env-next",
                tooltip="Move to the next changed package"),
        Binding("p", "previous_change", "Prev change", id="env-previous",
                tooltip="Move to the previous changed package"),
        Binding("i", "toggle_identical", "Identical", id="env-identical",
                tooltip="Show or hide packages that are the same on both sides"),
        Binding("s", "swap", "Swap", id="env-swap", tooltip="Swap the two sides"),
        Binding("h", "against_host", "vs host", id="env-host",
                tooltip="Compare the left side with this host"),
    ]

    def __init__(self, argument: str | None = None) -> None:
        super().__init__(argument)
        self.data: EnvDiffData | None = None
        self.hide_identical = True

    def compose_body(self) -> ComposeResult:
        yield Plain("loading…", id="env-verdict", classes="verdict")
        yield Plain("", id="env-reasons")
        yield RowTable(id="env-table")
        yield Plain("", id="env-summary", classes="summary")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("", "change", "package", "left", "right", "verdict")
        super().on_mount()
        self.query_one(DataTable).focus()

    def focus_body(self) -> None:
        self.query_one(DataTable).focus()

    def fetch_request(self) -> str | None:
        return self.argument or self.app.selected_version

    def fetch(self, request: str | None) -> EnvDiffData:
        words = (request or "").split()
        workspace = self.app.workspace
        left = words[0] if words else resolve_version(workspace, None)
        right = words[1] if len(words) > 1 else workspace.config.serving.environment.strip()
        return compare_environments(workspace, left, right)

    def show(self, data: EnvDiffData) -> None:
        self.data = data
        self.argument = data.request  # labels (e.g. a file's name) may not resolve again
        diff = data.diff
        word = diff.verdict.label
        self.query_one("#env-verdict", Plain).update(
            f"{data.left} → {data.right}: {VERDICT_SYMBOLS[word]} {word.upper()} · "
            f"{len(diff.all_changes)} changes, {diff.identical} identical")
        reasons = diff.reasons[:3]
        self.query_one("#env-reasons", Plain).update(
            "\n".join(f"because {r}" for r in reasons) if reasons else "no risky change")
        self.query_one("#env-summary", Plain).update(
            data.summary + "  ·  * = the model's artifact needs it")
        self._fill()

    def _fill(self) -> None:
        if self.data is None:
            return
        table = self.query_one(DataTable)
        keep = selected_key(table)
        table.clear()
        needle = self.filter_text.lower()
        rows = []
        for change in self.data.diff.all_changes:
            name = change.name + (" *" if change.needed else "")
            rows.append((change.name, (
                CHANGE_SYMBOLS.get(change.label, "~"), change.label, name, change.old or "-",
                change.new or "-", f"{VERDICT_SYMBOLS[change.verdict.label]} "
                                   f"{change.verdict.label}")))
        if not self.hide_identical or not rows:  # nothing differs: show what is the same
            rows += [(f"={name}", ("=", "same", name, version, version, ""))
                     for name, version in self.data.identical]
            rows.sort(key=lambda row: row[1][2])
        add_rows(table, [(key, cells) for key, cells in rows
                         if not needle or needle in cells[2].lower()])
        if keep is not None and keep in table.rows:
            table.move_cursor(row=table.get_row_index(keep), animate=False)

    def apply_filter(self, text: str) -> None:
        self._fill()

    def _change_rows(self) -> list[int]:
        table = self.query_one(DataTable)
        return [index for index, key in enumerate(table.rows)
                if not str(key.value).startswith("=")]

    def action_next_change(self) -> None:
        table = self.query_one(DataTable)
        later = [i for i in self._change_rows() if i > table.cursor_row]
        if later:
            table.move_cursor(row=later[0])

    def action_previous_change(self) -> None:
        table = self.query_one(DataTable)
        earlier = [i for i in self._change_rows() if i < table.cursor_row]
        if earlier:
            table.move_cursor(row=earlier[-1])

    def action_toggle_identical(self) -> None:
        self.hide_identical = not self.hide_identical
        self._fill()
        shown = "hidden" if self.hide_identical else "shown"
        self.notify(f"identical packages {shown}", markup=False)

    def action_swap(self) -> None:
        if self.data is not None:
            self.set_argument(f"{self.data.right} {self.data.left}")

    def action_against_host(self) -> None:
        if self.data is not None:
            self.set_argument(f"{self.data.left} host")

    def action_context(self) -> ActionContext:
        left = self.data.left if self.data else None
        return ActionContext(version_id=left if left and left.startswith("v") else None)

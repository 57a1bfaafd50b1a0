"""Models: every version, paged from SQL (LIMIT/OFFSET), filterable by regime, trigger,
runner and status, with a detail pane (metrics, code, artifact, environment, data)."""

from __future__ import annotations

from dataclasses import dataclass, field

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.worker import get_current_worker

from mlops_tui.core.errors import MlopsError
from mlops_tui.core.models import ModelVersion, Trigger
from mlops_tui.services.registry import VersionDetail
from mlops_tui.tui.actions import ActionContext
from mlops_tui.tui.messages import DetailLoaded, PageLoaded, StoreFailed, VersionChosen
from mlops_tui.tui.screens.base import DashboardScreen, failure_kind
from mlops_tui.tui.text import stamp
from mlops_tui.tui.widgets.paged_table import PAGE_SIZE, Column, PagedTable
from mlops_tui.tui.widgets.status import Plain

STATUS_WORDS = ("champion", "active", "pinned")
RUNNERS = ("local", "docker")
TRIGGERS = tuple(t.value for t in Trigger)


@dataclass(frozen=True)
class VersionFilter:
    """What the `/` line asked for; `unknown` words are reported, not applied."""

    regime: str | None = None
    trigger: str | None = None
    runner: str | None = None
    status: str | None = None
    unknown: tuple[str, ...] = ()

    @property
    def sql_part(self) -> tuple[str | None, str | None, str | None]:
        return self.regime, self.trigger, self.runner

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in (("regime", self.regime), ("trigger", self.trigger),
                                        ("runner", self.runner), ("status", self.status)) if v]
        return " ".join(parts)


def parse_filter(text: str, regimes: tuple[str, ...]) -> VersionFilter:
    """`sedan drift`, `regime=suv status=champion`, unique prefixes (`sed`) too."""
    vocab = {"regime": regimes, "trigger": TRIGGERS, "runner": RUNNERS, "status": STATUS_WORDS}
    chosen: dict[str, str] = {}
    unknown = []
    for token in text.split():
        key, _, value = token.partition("=") if "=" in token else ("", "", token)
        key = key.lower()
        fields = [key] if key in vocab else list(vocab) if not key else []
        exact = [(f, value) for f in fields if value in vocab[f]]
        prefixed = [(f, v) for f in fields for v in vocab[f] if v.startswith(value.lower())]
        match = exact[:1] or (prefixed if len(prefixed) == 1 else [])
        if match:
            chosen[match[0][0]] = match[0][1]
        else:
            unknown.append(token)
    return VersionFilter(chosen.get("regime"), chosen.get("trigger"), chosen.get("runner"),
                         chosen.get("status"), tuple(unknown))


@dataclass(frozen=True)
class ModelsRequest:
    filter_text: str
    regimes: tuple[str, ...]
    shown_filter: VersionFilter | None
    cursor: int
    roles: dict[int, str] | None = None  # reused while typing a filter: serving is unchanged


@dataclass(frozen=True)
class ModelsData:
    """The first page for a filter, its total, and who serves what (for the status column)."""

    version_filter: VersionFilter
    total: int
    offset: int
    versions: list[ModelVersion]
    regimes: tuple[str, ...]
    roles: dict[int, str] = field(default_factory=dict)
    listed: list[ModelVersion] | None = None  # a status filter: every matching version


def roles_by_version(workspace) -> dict[int, str]:
    """version number -> "★ sedan ● production ⚲" from the current serving state."""
    from mlops_tui.services.deployment_reads import serving_state

    state = serving_state(workspace)
    roles: dict[int, list[str]] = {}
    for regime, event in state.champions.items():
        roles.setdefault(event.to_version, []).append(
            f"★{regime}" + ("⚲" if event.pinned else ""))
    for target, event in state.active.items():
        roles.setdefault(event.to_version, []).append(
            f"●{target}" + ("⚲" if event.pinned else ""))
    return {number: " ".join(words) for number, words in roles.items()}


def version_cells(version: ModelVersion, metric: str, roles: dict[int, str]) -> tuple[str, ...]:
    value = version.metrics.get(metric)
    # what an operator decides on first (id, regime, status, metric): a narrow table cuts
    # from the right, so the decorative columns go last
    return (version.id, version.regime, roles.get(version.number, ""),
            f"{value:.4f}" if value is not None else "-", stamp(version.created_at),
            version.trigger.value, version.runner)


class ModelsScreen(DashboardScreen):
    """All versions, newest first; `end` goes to the oldest."""

    VIEW = "models"
    ACTIONS = frozenset({"deploy", "retrain"})
    VIEW_TITLE = "Models"
    FILTER_HINT = "filter: regime, trigger, runner or status words, e.g. 'sedan drift champion'"
    BINDINGS = [
        Binding("l", "lineage", "Lineage", id="models-lineage",
                tooltip="Open the selected version's lineage"),
        Binding("e", "env", "Env diff", id="models-env",
                tooltip="Diff the selected version's environment with the serving one"),
    ]

    def __init__(self, argument: str | None = None) -> None:
        super().__init__(argument)
        self.version_filter = VersionFilter()
        self.shown_filter: VersionFilter | None = None
        self.regimes: tuple[str, ...] = ()
        self.roles: dict[int, str] = {}
        self.listed: list[ModelVersion] | None = None
        self.detail_key: str | None = None  # the version the detail pane shows
        self.metric = ""

    def compose_body(self) -> ComposeResult:
        self.metric = self.app.workspace.config.pipeline.metric
        columns = [Column("version", 8), Column("regime", 9), Column("status", 14),
                   Column(self.metric, 7), Column("created (UTC)", 16), Column("trigger", 11),
                   Column("runner", 6)]
        yield Plain("loading…", id="models-title", classes="pane-title")
        with Horizontal(id="models-body"):
            yield PagedTable(columns, id="versions")
            with Vertical(id="detail-pane", classes="pane"):
                yield Plain("Detail", classes="pane-title")
                with VerticalScroll(id="detail-scroll"):
                    yield Plain("select a version", id="version-detail")

    def on_mount(self) -> None:
        if self.argument:
            self.filter_text = self.argument
        super().on_mount()
        self.query_one(PagedTable).focus()

    def focus_body(self) -> None:
        self.query_one(PagedTable).focus()

    # -- loading: count and first page in one read ----------------------------------------

    def fetch_request(self, keystroke: bool = False) -> ModelsRequest:
        return ModelsRequest(self.filter_text, self.regimes, self.shown_filter,
                             self.query_one(PagedTable).cursor,
                             self.roles if keystroke and self.shown_filter is not None else None)

    def fetch(self, request: ModelsRequest) -> ModelsData:
        from mlops_tui.services.registry import list_versions
        from mlops_tui.services.status import status

        workspace = self.app.workspace
        regimes = request.regimes or tuple(status(workspace).regimes)
        wanted = parse_filter(request.filter_text, regimes)
        roles = request.roles if request.roles is not None else roles_by_version(workspace)
        if wanted.status is not None:
            listed = self._status_versions(wanted, roles)
            return ModelsData(wanted, len(listed), 0, listed[:PAGE_SIZE], regimes, roles, listed)
        same_rows = wanted == request.shown_filter
        offset = (request.cursor // PAGE_SIZE) * PAGE_SIZE if same_rows else 0
        regime, trigger, runner = wanted.sql_part
        page = list_versions(workspace, regime=regime, trigger=trigger, runner=runner,
                             limit=PAGE_SIZE, offset=offset)
        return ModelsData(wanted, page.total, offset, page.versions, regimes, roles)

    def _status_versions(self, wanted: VersionFilter, roles: dict[int, str]
                         ) -> list[ModelVersion]:
        """Champions, active or pinned versions: few, so read one by one and filter here."""
        from mlops_tui.services.registry import show_version

        marks = {"champion": "★", "active": "●", "pinned": "⚲"}[wanted.status or "champion"]
        numbers = sorted((n for n, text in roles.items() if marks in text), reverse=True)
        versions = [show_version(self.app.workspace, f"v{n}").version for n in numbers]
        return [v for v in versions
                if (wanted.regime is None or v.regime == wanted.regime)
                and (wanted.trigger is None or v.trigger.value == wanted.trigger)
                and (wanted.runner is None or v.runner == wanted.runner)]

    def show(self, data: ModelsData) -> None:
        self.regimes = data.regimes
        self.roles = data.roles
        self.listed = data.listed
        table = self.query_one(PagedTable)
        if data.version_filter != self.shown_filter:
            generation = table.reset(data.total)
            self.shown_filter = data.version_filter
        else:
            generation = table.invalidate(data.total)
        table.put_page(generation, data.offset, *self._page_rows(data.versions))
        self._show_title(data)
        if table.row_key() is not None:  # after a deploy or a refresh: its status changed too
            self.load_detail(table.row_key())

    def _page_rows(self, versions: list[ModelVersion]) -> tuple[list, list]:
        rows = [version_cells(v, self.metric, self.roles) for v in versions]
        return rows, [v.id for v in versions]

    def _show_title(self, data: ModelsData) -> None:
        described = data.version_filter.describe()
        title = f"Versions: {data.total:,}" + (f" matching {described}" if described else "")
        if data.version_filter.unknown:
            title += f" · ignored {' '.join(data.version_filter.unknown)!r} (not a regime, " \
                     "trigger, runner or status)"
        self.query_one("#models-title", Plain).update(title + " · newest first, end = oldest")

    def apply_filter(self, text: str) -> None:
        if parse_filter(text, self.regimes) != self.shown_filter:
            self.load(self.fetch_request(keystroke=True))

    # -- pages beyond the first ---------------------------------------------------------------

    def on_paged_table_page_wanted(self, message: PagedTable.PageWanted) -> None:
        message.stop()
        if self.listed is not None:
            versions = self.listed[message.offset:message.offset + message.limit]
            message.table.put_page(message.generation, message.offset, *self._page_rows(versions))
            return
        if self.shown_filter is not None:
            self.load_page(self.shown_filter, message.generation, message.offset, message.limit)

    @work(thread=True, exit_on_error=False, group="page")
    def load_page(self, wanted: VersionFilter, generation: int, offset: int, limit: int) -> None:
        from mlops_tui.services.registry import list_versions

        regime, trigger, runner = wanted.sql_part
        try:
            page = list_versions(self.app.workspace, regime=regime, trigger=trigger,
                                 runner=runner, limit=limit, offset=offset)
        except MlopsError as error:
            self.post_message(PageLoaded(generation, offset, [], [], failed=True))
            self.post_message(StoreFailed(failure_kind(error), error.message))
            return
        rows, keys = self._page_rows(page.versions)
        self.post_message(PageLoaded(generation, offset, rows, keys))

    def on_page_loaded(self, message: PageLoaded) -> None:
        message.stop()
        table = self.query_one(PagedTable)
        if message.failed:
            table.page_failed(message.generation, message.offset)
        else:
            table.put_page(message.generation, message.offset, message.rows, message.keys)

    # -- detail pane ----------------------------------------------------------------------------

    def on_paged_table_row_highlighted(self, message: PagedTable.RowHighlighted) -> None:
        message.stop()
        if message.key is None:
            return
        row = message.table.row_values(message.index)
        self.post_message(VersionChosen(message.key, row[1] if row else None))
        if message.key != self.detail_key:  # never the detail of another row meanwhile
            self.query_one("#version-detail", Plain).update(f"{message.key}: loading…")
            self.detail_key = None
        self.load_detail(message.key)

    def on_paged_table_row_chosen(self, message: PagedTable.RowChosen) -> None:
        message.stop()
        self.app.open_view("lineage", message.key)

    @work(thread=True, exclusive=True, exit_on_error=False, group="detail")
    def load_detail(self, version_id: str) -> None:
        from mlops_tui.services.registry import show_version

        try:
            detail = show_version(self.app.workspace, version_id)
        except MlopsError as error:
            self.post_message(StoreFailed(failure_kind(error), error.message))
            return
        if not get_current_worker().is_cancelled:
            self.post_message(DetailLoaded(version_id, detail))

    def on_detail_loaded(self, message: DetailLoaded) -> None:
        message.stop()
        if message.key == self.query_one(PagedTable).row_key():
            self.detail_key = message.key
            self.query_one("#version-detail", Plain).update(
                "\n".join(detail_lines(message.detail, self.metric)))

    # -- actions ------------------------------------------------------------------------------

    def _selected(self) -> tuple[str | None, str | None]:
        table = self.query_one(PagedTable)
        row = table.row_values()
        return table.row_key(), row[1] if row else None

    def action_context(self) -> ActionContext:
        version_id, regime = self._selected()
        return ActionContext(regime=regime, version_id=version_id)

    def action_lineage(self) -> None:
        version_id, _ = self._selected()
        if version_id:
            self.app.open_view("lineage", version_id)

    def action_env(self) -> None:
        version_id, _ = self._selected()
        if version_id:
            self.app.open_view("env", f"{version_id} host")


def detail_lines(detail: VersionDetail, metric: str) -> list[str]:
    """The detail pane's text: one fact per line, label first."""
    v = detail.version
    lines = [f"{v.id} · regime {v.regime} · {v.trigger.value} · {v.runner}",
             f"created   {stamp(v.created_at)} UTC"]
    roles = [f"★ champion of {r}" for r in detail.champion_of]
    roles += [f"● active on {t}" for t in detail.active_on]
    lines.append("status    " + (" · ".join(roles) if roles else "candidate"))
    ordered = sorted(v.metrics.items(), key=lambda kv: (kv[0] != metric, kv[0]))
    lines.append("metrics   " + ("  ".join(f"{k}={val:.4g}" for k, val in ordered) or "-"))
    lines.append(f"parent    {v.parent_id or 'none'}")
    lines.append(f"artifact  sha256 {v.artifact.sha256[:16]}… · {v.artifact.size:,} bytes · "
                 f"{v.artifact.format}")
    code = detail.code
    if code is not None:
        files = ", ".join(f.path for f in code.files[:4]) + (" …" if len(code.files) > 4 else "")
        git = f" · git {code.git_commit[:10]}{' dirty' if code.git_dirty else ''}" if (
            code.git_commit) else ""
        lines.append(f"code      {code.hash[:12]} · {len(code.files)} files ({files}){git}")
    else:
        lines.append(f"code      {v.code_hash[:12]} (snapshot missing)")
    env = detail.env
    if env is not None:
        needed = [f"{name} {env.packages.get(name, '?')}" for name in v.required_packages]
        lines.append(f"env       {env.hash[:12]} · {env.summary()} · {env.platform or '-'}")
        lines.append(f"          source {env.source}" + (
            f" · needs {', '.join(needed)}" if needed else ""))
    else:
        lines.append(f"env       {v.env_hash[:12]} (snapshot missing)")
    for snapshot in (detail.train, detail.holdout):
        if snapshot is not None:
            lines.append(f"{snapshot.kind:<9} {snapshot.fingerprint[:12]} · {snapshot.rows:,} rows "
                         f"· {stamp(snapshot.time_min)} → {stamp(snapshot.time_max)}")
    if v.job_id:
        lines.append(f"job       {v.job_id[:8]}" + (f" · image {v.image[:24]}" if v.image else ""))
    if v.note:
        lines.append(f"note      {v.note}")
    return lines

"""Jobs: running and past retrain jobs, the selected job's log followed live, cancel."""

from __future__ import annotations

import time

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Log
from textual.worker import get_current_worker

from mlops_tui.core.errors import MlopsError
from mlops_tui.core.models import JobRecord
from mlops_tui.core.text import printable
from mlops_tui.tui.actions import ActionContext
from mlops_tui.tui.messages import LogRead
from mlops_tui.tui.screens.base import DashboardScreen
from mlops_tui.tui.text import JOB_SYMBOLS, age, clip, stamp
from mlops_tui.tui.widgets.status import Plain
from mlops_tui.tui.widgets.tables import RowTable, refill, selected_key

LOG_TAIL_BYTES = 64 * 1024
LOG_POLL_SECONDS = 0.3


class JobsScreen(DashboardScreen):
    """`:jobs [JOB]`: jobs newest first; the highlighted job's log below, followed live."""

    VIEW = "jobs"
    ACTIONS = frozenset({"cancel-job", "retrain"})
    VIEW_TITLE = "Jobs"
    FILTER_HINT = "filter jobs by id, regime, runner or state"
    BINDINGS = [
        Binding("f", "toggle_follow", "Follow log", id="jobs-follow",
                tooltip="Start or stop following the highlighted job's log"),
    ]

    def __init__(self, argument: str | None = None) -> None:
        super().__init__(argument)
        self.jobs: list[JobRecord] = []
        self.following: str | None = None
        self.follow_enabled = True

    def compose_body(self) -> ComposeResult:
        with Vertical(id="jobs-list-pane", classes="pane"):
            yield Plain("Jobs", id="jobs-list-title", classes="pane-title")
            yield RowTable(id="jobs-table")
        with Vertical(id="log-pane", classes="pane"):
            yield Plain("Log", id="log-title", classes="pane-title")
            yield Log(id="job-log", auto_scroll=True)

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("job", "regime", "runner", "state", "since",
                                              "reason")
        super().on_mount()
        self.query_one(DataTable).focus()

    def focus_body(self) -> None:
        self.query_one(DataTable).focus()

    def fetch(self, request: object) -> list[JobRecord]:
        from mlops_tui.services.jobs import list_jobs

        return list_jobs(self.app.workspace, limit=200)

    def show(self, data: list[JobRecord]) -> None:
        self.jobs = data
        self._fill()
        if self.argument and self.following is None:
            match = next((j for j in data if j.id.startswith(self.argument)), None)
            if match is not None:
                table = self.query_one(DataTable)
                table.move_cursor(row=table.get_row_index(match.id), animate=False)

    def _fill(self) -> None:
        now = self.app.clock()
        needle = self.filter_text.lower()
        rows = []
        for job in self.jobs:
            words = f"{job.id} {job.regime} {job.runner} {job.state.value}"
            if needle and needle not in words.lower():
                continue
            rows.append((job.id, (
                job.short_id, job.regime, job.runner,
                f"{JOB_SYMBOLS.get(job.state.value, '')} {job.state.value}",
                f"{stamp(job.state_at)} ({age(job.state_at, now)})", clip(job.reason, 40))))
        refill(self.query_one(DataTable), rows)
        running = sum(1 for j in self.jobs if j.state.unfinished)
        self.query_one("#jobs-list-title", Plain).update(
            f"Jobs: {len(self.jobs)} ({running} running) · f follows the log · x cancels")

    def apply_filter(self, text: str) -> None:
        self._fill()

    def _selected_job(self) -> JobRecord | None:
        key = selected_key(self.query_one(DataTable))
        return next((j for j in self.jobs if j.id == key), None)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        job = self._selected_job()
        if job is not None and job.id != self.following and self.follow_enabled:
            self.start_following(job)

    def start_following(self, job: JobRecord) -> None:
        self.following = job.id
        self.query_one(Log).clear()
        self.query_one("#log-title", Plain).update(
            f"Log of job {job.short_id} ({job.regime}, {job.state.value})"
            + (" · following" if job.state.unfinished else ""))
        self.follow_log(job)

    @work(thread=True, exclusive=True, exit_on_error=False, group="log")
    def follow_log(self, job: JobRecord) -> None:
        """Re-read the log's tail until the job's process ends (then once more) or the view
        moves on. The runner's handle says when it ended; the store learns it on reconcile."""
        from mlops_tui.services.jobs import handle_for, read_log_tail

        workspace = self.app.workspace
        worker = get_current_worker()
        handle = handle_for(workspace, job) if job.state.unfinished else None
        last_size = -1
        finished = handle is None
        while not worker.is_cancelled:
            text, size = read_log_tail(workspace, job, LOG_TAIL_BYTES)
            if size != last_size or finished:
                last_size = size
                self.post_message(LogRead(job.id, text, size, finished))
            if finished:
                return
            time.sleep(LOG_POLL_SECONDS)
            try:
                finished = handle.status().finished
            except (MlopsError, OSError):
                continue  # the runner cannot be asked right now: keep following the file

    def on_log_read(self, message: LogRead) -> None:
        message.stop()
        if message.job_id != self.following:
            return
        log = self.query_one(Log)
        log.clear()
        log.write(printable(message.text, multiline=True) or "(the log is empty so far)")
        if message.finished:
            self.query_one("#log-title", Plain).update(
                f"Log of job {message.job_id[:8]} · ended · {message.size:,} bytes")

    def action_toggle_follow(self) -> None:
        self.follow_enabled = not self.follow_enabled
        if self.follow_enabled:
            job = self._selected_job()
            if job is not None:
                self.start_following(job)
        else:
            self.workers.cancel_group(self, "log")
            self.following = None
            self.query_one("#log-title", Plain).update("Log (not following; f to follow)")

    def action_context(self) -> ActionContext:
        job = self._selected_job()
        return ActionContext(regime=job.regime if job else None,
                             job_id=job.id if job else None)

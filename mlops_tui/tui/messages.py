"""Messages the dashboard's workers and widgets post: past-tense data, nothing else.

Workers run in threads and talk to the UI only through these; a widget tells
its parent what happened with them and never reaches into a sibling.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message


class StoreFailed(Message):
    """A load could not read the store (busy, unavailable, broken): keep the last data."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__()
        self.kind = kind
        self.message = message


class DataLoaded(Message):
    """A screen's worker read its data; `data` is the screen's own typed value."""

    def __init__(self, data: Any) -> None:
        super().__init__()
        self.data = data


class PageLoaded(Message):
    """Rows [offset, offset + len(rows)) of a paged table's `generation` (or its failure)."""

    def __init__(self, generation: int, offset: int, rows: list[tuple[str, ...]],
                 keys: list[str], failed: bool = False) -> None:
        super().__init__()
        self.generation = generation
        self.offset = offset
        self.rows = rows
        self.keys = keys
        self.failed = failed


class DetailLoaded(Message):
    """The detail of one selected item (a version, a job, a histogram)."""

    def __init__(self, key: str, detail: Any) -> None:
        super().__init__()
        self.key = key
        self.detail = detail


class ActionPrepared(Message):
    """A dangerous action is ready to be confirmed (its preview has been computed)."""

    def __init__(self, plan: Any) -> None:
        super().__init__()
        self.plan = plan


class ActionFinished(Message):
    """A confirmed action ran through its service; `message` says what changed."""

    def __init__(self, action: str, message: str) -> None:
        super().__init__()
        self.action = action
        self.message = message


class ActionFailed(Message):
    """An action (or its preparation) was refused or failed; shown in a modal."""

    def __init__(self, action: str, kind: str, message: str) -> None:
        super().__init__()
        self.action = action
        self.kind = kind
        self.message = message


class JobsReconciled(Message):
    """A refresh followed unfinished jobs; `messages` are the outcomes worth telling."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__()
        self.messages = messages


class VersionChosen(Message):
    """The operator moved to a version: other views open on it."""

    def __init__(self, version_id: str, regime: str | None = None) -> None:
        super().__init__()
        self.version_id = version_id
        self.regime = regime


class LogRead(Message):
    """The tail of a followed job log as it is now (high rate: a newer one replaces it)."""

    def __init__(self, job_id: str, text: str, size: int, finished: bool) -> None:
        super().__init__()
        self.job_id = job_id
        self.text = text
        self.size = size
        self.finished = finished

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, LogRead) and message.job_id == self.job_id

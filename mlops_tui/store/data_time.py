"""Data time: the newest observation time in the store, the clock timeline events act on."""

from __future__ import annotations

from datetime import datetime

from mlops_tui.store.db import Tx, naive_utc


def newest_observation(tx: Tx) -> datetime | None:
    """The newest observation time ingested (naive UTC), None before any data."""
    return tx.scalar("SELECT max(time_max) FROM batches")


def event_data_time(tx: Tx, given: datetime | None) -> datetime | None:
    """The data time to record with an event: the caller's, else the newest observation read
    in the event's own write transaction."""
    return naive_utc(given) if given is not None else newest_observation(tx)

"""The only package that imports duckdb or holds SQL."""

from mlops_tui.store.db import Store, Tx, utcnow

__all__ = ["Store", "Tx", "utcnow"]

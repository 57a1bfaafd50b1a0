"""Reference profiles: what a training snapshot looked like, compact enough to keep forever.

A profile holds, per feature: counts, missing share, mean and std, the drift test chosen for
it (fixed here, shown with every result), and its bins:

- numeric, at most 1,000 reference rows or at most 1,000 distinct values: an *exact* grid, one
  bin at every distinct reference value and one between each neighbouring pair, so the KS
  statistic is exact and the raw reference values are kept;
- numeric, larger: a *quantile* grid of 1,000 bins (>= 100) between the 0.05% and 99.95%
  reference quantiles, each edge snapped to a lattice of 8,192 equal cells so the store can
  bin values with arithmetic (see `lattice_code_sql` in store/counts.py);
- beyond those (the exact grid's min and max, the quantile grid's lattice) both add 37
  geometric bins each side, widths doubling from 1/64 of the span (range or lattice) up to
  2^30 spans, so tails and values far outside the reference keep a bounded position error;
- categorical: the reference's categories; code 0 collects categories the reference never saw.

Values are binned by integer *codes*; codes group into bins. `assign_codes` is the numpy
reference implementation of the binning (the store's SQL must agree with it, and a test checks
that it does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlops_tui.core.drift import CATEGORICAL, NUMERIC, Bins

SMALL_REFERENCE_ROWS = 1000
EXACT_DISTINCT_LIMIT = 1000
QUANTILE_BINS = 1000
LATTICE_CELLS = 8192
TAIL_SHARE = 0.0005
OVERFLOW_BINS = 37
OVERFLOW_FIRST_EXPONENT = -6  # the first geometric edge sits 2**-6 ranges beyond the edge
PROFILE_SCHEMA = 1


def overflow_edges(scale: float) -> np.ndarray:
    """Distances beyond the reference range at which overflow bins start (OVERFLOW_BINS + 1)."""
    exponents = np.arange(OVERFLOW_FIRST_EXPONENT, OVERFLOW_FIRST_EXPONENT + OVERFLOW_BINS)
    return np.concatenate([[0.0], scale * np.exp2(exponents.astype(np.float64))])


def overflow_index(distance: np.ndarray, scale: float) -> np.ndarray:
    """Geometric bin of a positive distance beyond the reference range."""
    with np.errstate(divide="ignore"):
        exponent = np.floor(np.log2(np.maximum(distance, 1e-300) / scale))
    return np.clip(exponent - OVERFLOW_FIRST_EXPONENT + 1, 0, OVERFLOW_BINS - 1).astype(np.int64)


@dataclass(frozen=True)
class NumericGrid:
    """Bins of one numeric feature. `kind` is "exact" or "quantile"."""

    kind: str
    low: float  # reference min
    high: float  # reference max
    scale: float  # the span (exact: reference range, 1.0 when constant; quantile: lattice)
    values: tuple[float, ...] = ()  # exact: distinct reference values, sorted
    lattice_low: float = 0.0  # quantile: the lattice spans [lattice_low, lattice_high)
    lattice_high: float = 0.0
    cells: int = 0
    cuts: tuple[int, ...] = ()  # quantile: lattice cells where a bin starts (0 first)

    @property
    def inner_codes(self) -> int:
        if self.kind == "exact":
            return 2 * len(self.values) - 1
        return self.cells

    @property
    def anchors(self) -> tuple[float, float]:
        """Where the geometric bins start: the exact grid's min and max, the lattice's ends."""
        if self.kind == "exact":
            return self.low, self.high
        return self.lattice_low, self.lattice_high

    @property
    def code_count(self) -> int:
        """Codes 0 .. code_count-1 hold values; code `code_count` holds missing ones."""
        return self.inner_codes + 2 * OVERFLOW_BINS

    @property
    def cell_width(self) -> float:
        return (self.lattice_high - self.lattice_low) / self.cells if self.cells else 0.0

    def bin_starts(self) -> np.ndarray:
        """First code of each bin (bins are runs of consecutive codes)."""
        low = np.arange(OVERFLOW_BINS)
        high = OVERFLOW_BINS + self.inner_codes + np.arange(OVERFLOW_BINS)
        if self.kind == "exact":
            inner = OVERFLOW_BINS + np.arange(self.inner_codes)
        else:
            inner = OVERFLOW_BINS + np.concatenate(
                [[0], np.asarray(self.cuts, dtype=np.int64)])
        return np.concatenate([low, inner, high]).astype(np.int64)

    def bin_edges(self) -> tuple[np.ndarray, np.ndarray]:
        """(left, right) value of every bin; a value bin of the exact grid has left == right."""
        below = overflow_edges(self.scale)
        anchor_low, anchor_high = self.anchors
        low_left = anchor_low - below[1:][::-1]
        low_right = anchor_low - below[:-1][::-1]
        high_left = anchor_high + below[:-1]
        high_right = anchor_high + below[1:]
        if self.kind == "exact":
            values = np.asarray(self.values, dtype=np.float64)
            inner_left = np.empty(self.inner_codes)
            inner_right = np.empty(self.inner_codes)
            inner_left[0::2] = values
            inner_right[0::2] = values
            inner_left[1::2] = values[:-1]
            inner_right[1::2] = values[1:]
        else:
            starts = self.lattice_low + np.asarray((0, *self.cuts), dtype=np.float64) * self.cell_width
            inner_left = starts
            inner_right = np.append(starts[1:], self.lattice_high)
        return (np.concatenate([low_left, inner_left, high_left]),
                np.concatenate([low_right, inner_right, high_right]))

    def bins(self) -> Bins:
        left, right = self.bin_edges()
        return Bins(positions=(left + right) / 2, widths=right - left)

    def coarse(self, max_bins: int = 128) -> tuple[np.ndarray, Bins]:
        """Runs of neighbouring bins merged to at most `max_bins` inner groups (the overflow
        bins stay), for cheap comparisons such as regime matching: (group starts, Bins)."""
        left, right = self.bin_edges()
        inner = len(left) - 2 * OVERFLOW_BINS
        step = max(1, -(-inner // max_bins))
        starts = np.concatenate([np.arange(OVERFLOW_BINS),
                                 OVERFLOW_BINS + np.arange(0, inner, step),
                                 OVERFLOW_BINS + inner + np.arange(OVERFLOW_BINS)])
        ends = np.append(starts[1:], len(left)) - 1
        return starts, Bins(positions=(left[starts] + right[ends]) / 2,
                            widths=right[ends] - left[starts])

    def bin_of_code(self) -> np.ndarray:
        """Lookup: code -> bin (length code_count + 1; the missing code maps to `bins`)."""
        starts = self.bin_starts()
        sizes = np.diff(np.append(starts, self.code_count))
        return np.append(np.repeat(np.arange(len(starts)), sizes), len(starts))

    def group(self, code_counts: np.ndarray) -> np.ndarray:
        """Counts per code (..., code_count) -> counts per bin (..., bins)."""
        return np.add.reduceat(code_counts[..., : self.code_count], self.bin_starts(), axis=-1)

    def assign_codes(self, values: np.ndarray) -> np.ndarray:
        """The code of every value; NaN (missing) gets `code_count`."""
        values = np.asarray(values, dtype=np.float64)
        codes = np.full(values.shape, self.code_count, dtype=np.int64)
        present = ~np.isnan(values)
        x = values[present]
        out = np.empty(x.shape, dtype=np.int64)
        anchor_low, anchor_high = self.anchors
        below = x < anchor_low
        above = x > anchor_high if self.kind == "exact" else x >= anchor_high
        out[below] = OVERFLOW_BINS - 1 - overflow_index(anchor_low - x[below], self.scale)
        out[above] = (OVERFLOW_BINS + self.inner_codes
                      + overflow_index(x[above] - anchor_high, self.scale))
        inside = ~(below | above)
        xi = x[inside]
        if self.kind == "exact":
            values_sorted = np.asarray(self.values, dtype=np.float64)
            edges = np.empty(2 * len(values_sorted))
            edges[0::2] = np.nextafter(values_sorted, -np.inf)
            edges[1::2] = values_sorted
            # codes: value i -> 2i, between value i and i+1 -> 2i+1 (x >= low here)
            out[inside] = OVERFLOW_BINS + np.searchsorted(edges, xi, side="left") - 1
        else:
            cell = np.minimum(np.floor((xi - self.lattice_low) / self.cell_width),
                              self.cells - 1)
            out[inside] = OVERFLOW_BINS + cell.astype(np.int64)
        codes[present] = out
        return codes

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "low": self.low, "high": self.high, "scale": self.scale,
                "values": list(self.values), "lattice_low": self.lattice_low,
                "lattice_high": self.lattice_high, "cells": self.cells, "cuts": list(self.cuts)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NumericGrid:
        return cls(kind=data["kind"], low=data["low"], high=data["high"], scale=data["scale"],
                   values=tuple(data["values"]), lattice_low=data["lattice_low"],
                   lattice_high=data["lattice_high"], cells=data["cells"],
                   cuts=tuple(data["cuts"]))


def numeric_grid(values: np.ndarray) -> NumericGrid:
    """The grid for a reference column (NaN already removed, at least one value)."""
    values = np.sort(np.asarray(values, dtype=np.float64))
    low, high = float(values[0]), float(values[-1])
    scale = high - low if high > low else 1.0
    distinct = np.unique(values)
    if len(values) <= SMALL_REFERENCE_ROWS or len(distinct) <= EXACT_DISTINCT_LIMIT:
        return NumericGrid("exact", low, high, scale, values=tuple(distinct.tolist()))
    lattice_low = float(np.quantile(values, TAIL_SHARE))
    lattice_high = float(np.quantile(values, 1 - TAIL_SHARE))
    if lattice_high <= lattice_low:
        return NumericGrid("exact", low, high, scale, values=tuple(distinct.tolist()))
    width = (lattice_high - lattice_low) / LATTICE_CELLS
    levels = np.linspace(TAIL_SHARE, 1 - TAIL_SHARE, QUANTILE_BINS + 1)[1:-1]
    snapped = np.round((np.quantile(values, levels) - lattice_low) / width).astype(np.int64)
    cuts = np.unique(snapped[(snapped > 0) & (snapped < LATTICE_CELLS)])
    return NumericGrid("quantile", low, high, lattice_high - lattice_low, lattice_low=lattice_low,
                       lattice_high=lattice_high, cells=LATTICE_CELLS, cuts=tuple(cuts.tolist()))


@dataclass(frozen=True)
class FeatureProfile:
    name: str
    dtype: str  # NUMERIC or CATEGORICAL
    test: str  # the registered drift test, fixed when the profile is made
    rows: int
    missing: int
    mean: float | None = None
    std: float | None = None
    grid: NumericGrid | None = None
    counts: tuple[int, ...] = ()  # per bin (numeric) or per category (categorical)
    categories: tuple[str, ...] = ()
    raw: tuple[float, ...] = ()  # the reference values themselves for small references

    @property
    def present(self) -> int:
        return self.rows - self.missing

    @property
    def missing_share(self) -> float:
        return self.missing / self.rows if self.rows else 0.0

    @property
    def constant(self) -> bool:
        if self.dtype == NUMERIC:
            return self.grid is None or self.grid.high <= self.grid.low
        return len(self.categories) <= 1

    def reference_counts(self) -> np.ndarray:
        """Counts per bin (numeric) or per code (categorical: code 0 is "unseen")."""
        counts = np.asarray(self.counts, dtype=np.float64)
        return counts if self.dtype == NUMERIC else np.concatenate([[0.0], counts])

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "test": self.test, "rows": self.rows,
                "missing": self.missing, "mean": self.mean, "std": self.std,
                "grid": self.grid.to_dict() if self.grid else None, "counts": list(self.counts),
                "categories": list(self.categories), "raw": list(self.raw)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureProfile:
        return cls(name=data["name"], dtype=data["dtype"], test=data["test"], rows=data["rows"],
                   missing=data["missing"], mean=data["mean"], std=data["std"],
                   grid=NumericGrid.from_dict(data["grid"]) if data["grid"] else None,
                   counts=tuple(data["counts"]), categories=tuple(data["categories"]),
                   raw=tuple(data["raw"]))


@dataclass(frozen=True)
class Profile:
    """A reference profile, keyed by the data snapshot's fingerprint."""

    snapshot: str
    rows: int
    features: dict[str, FeatureProfile] = field(default_factory=dict)
    regime: str | None = None
    schema: int = PROFILE_SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.schema, "snapshot": self.snapshot, "rows": self.rows,
                "regime": self.regime,
                "features": [f.to_dict() for f in self.features.values()]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        features = [FeatureProfile.from_dict(f) for f in data["features"]]
        return cls(snapshot=data["snapshot"], rows=data["rows"], regime=data.get("regime"),
                   features={f.name: f for f in features}, schema=data.get("schema", 1))


def choose_test(dtype: str, rows: int, categories: int, override: str = "auto") -> str:
    """The test a feature gets (docs/drift.md); `override` names a registered test instead."""
    if override != "auto":
        return override
    if dtype == NUMERIC:
        return "ks" if rows <= SMALL_REFERENCE_ROWS else "wasserstein"
    if rows <= SMALL_REFERENCE_ROWS:
        return "z" if categories == 2 else "chi2"
    return "jensenshannon"


def numeric_profile(name: str, values: np.ndarray, test_override: str = "auto"
                    ) -> FeatureProfile:
    values = np.asarray(values, dtype=np.float64)
    present = values[~np.isnan(values)]
    rows, missing = int(values.size), int(values.size - present.size)
    if present.size == 0:
        return FeatureProfile(name, NUMERIC, choose_test(NUMERIC, 0, 0, test_override),
                              rows, missing)
    grid = numeric_grid(present)
    counts = np.bincount(grid.assign_codes(present), minlength=grid.code_count + 1)
    return FeatureProfile(
        name, NUMERIC, choose_test(NUMERIC, int(present.size), 0, test_override), rows, missing,
        mean=float(present.mean()), std=float(present.std()), grid=grid,
        counts=tuple(int(c) for c in grid.group(counts)),
        raw=tuple(present.tolist()) if present.size <= SMALL_REFERENCE_ROWS else ())


def categorical_profile(name: str, values: list[str | None] | np.ndarray,
                        test_override: str = "auto") -> FeatureProfile:
    array = np.asarray(values, dtype=object)
    missing_mask = np.array([v is None for v in array.tolist()], dtype=bool)
    present = array[~missing_mask].astype(str)
    categories, counts = np.unique(present, return_counts=True)
    order = np.lexsort((categories, -counts))  # most frequent first, ties by name
    categories, counts = categories[order], counts[order]
    rows, missing = int(array.size), int(missing_mask.sum())
    return FeatureProfile(
        name, CATEGORICAL,
        choose_test(CATEGORICAL, int(present.size), len(categories), test_override), rows,
        missing, counts=tuple(int(c) for c in counts),
        categories=tuple(str(c) for c in categories))


def category_codes(profile: FeatureProfile, values: list[str | None] | np.ndarray
                   ) -> np.ndarray:
    """Codes of categorical values: 0 unseen, i + 1 category i, len + 1 missing."""
    lookup = {c: i + 1 for i, c in enumerate(profile.categories)}
    missing = len(profile.categories) + 1
    return np.array([missing if v is None else lookup.get(str(v), 0) for v in values],
                    dtype=np.int64)


def build_profile(snapshot: str, columns: dict[str, np.ndarray | list], numeric: tuple[str, ...],
                  categorical: tuple[str, ...], regime: str | None = None,
                  numeric_test: str = "auto", categorical_test: str = "auto") -> Profile:
    """Profile every feature of a reference data set given as columns of values."""
    rows = len(next(iter(columns.values()))) if columns else 0
    features: dict[str, FeatureProfile] = {}
    for name in numeric:
        features[name] = numeric_profile(name, np.asarray(columns[name], dtype=np.float64),
                                         numeric_test)
    for name in categorical:
        features[name] = categorical_profile(name, columns[name], categorical_test)
    return Profile(snapshot=snapshot, rows=rows, features=features, regime=regime)

"""Windows and regimes: how the observation stream is cut, which regime each window belongs
to, and which reference each window is judged against. Pure: data and `now` in, values out.

Regime identification (docs/drift.md):

- with a regime column, a window's regime is its label; a window holding two labels is
  `mixed`; a labelled window whose data sits farther than the threshold from its label's
  reference profile, or nearer to another regime's, gets a warning;
- without one, each window (and each of its 4 sub-windows) is matched to the known regimes'
  reference profiles: the nearest within the threshold wins, else "unknown regime"; a window
  whose sub-windows match different regimes is `mixed`.

The distance of a window to a profile is the mean, over the features, of the feature's
distance statistic: Wasserstein / reference std for numeric features, Jensen-Shannon for
categorical ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from mlops_tui.core.config import ORIGIN_ANCHORS

SUBWINDOWS = 4
UNKNOWN = "unknown regime"
_UNITS_US = {"min": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000, "w": 604_800_000_000}
# Weeks start on Monday: the epoch (1970-01-01) was a Thursday.
_WEEK_OFFSET_US = 4 * 86_400_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class WindowSpec:
    """A UTC-aligned period (period_us) or a row count (rows)."""

    text: str
    period_us: int = 0
    rows: int = 0
    offset_us: int = 0

    def start(self, window_index: int) -> datetime:
        return EPOCH + timedelta(microseconds=self.offset_us + window_index * self.period_us)

    def index_of(self, moment: datetime) -> int:
        micros = int((moment.astimezone(UTC) - EPOCH) / timedelta(microseconds=1))
        return (micros - self.offset_us) // self.period_us

    @property
    def key(self) -> str:
        """The window's name for cached counts: its text, plus the origin when it is not
        the epoch's (counts cut on another grid are other counts)."""
        legacy = _WEEK_OFFSET_US if self.text.endswith("w") else 0
        if self.rows or self.offset_us == legacy:
            return self.text
        return f"{self.text}+{self.offset_us}"


def _micros(moment: datetime) -> int:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return (aware - EPOCH) // timedelta(microseconds=1)


def window_origin(setting: str, window: str, first: datetime | None) -> datetime | None:
    """The moment period windows are counted from ([data] window_origin), None for the
    epoch's grid. `first` is the first observation of the first batch ingested: `first`
    floors it to the window's unit (minute, hour, day; Monday for weeks), `midnight` to
    its day, `monday` to its week, `month-start` to the 1st of its month; an ISO
    timestamp is itself (UTC unless it names a zone)."""
    if setting == "epoch" or window.endswith("rows"):
        return None
    if setting not in ORIGIN_ANCHORS:
        value = datetime.fromisoformat(setting)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if first is None:
        return None
    first = (first if first.tzinfo else first.replace(tzinfo=UTC)).astimezone(UTC)
    if setting == "first":
        unit = re.fullmatch(r"\d+(min|h|d|w)", window)
        setting = {"min": "minute", "h": "hour", "d": "midnight", "w": "monday"}[
            unit.group(1) if unit else "d"]
    if setting == "minute":
        return first.replace(second=0, microsecond=0)
    if setting == "hour":
        return first.replace(minute=0, second=0, microsecond=0)
    day = first.replace(hour=0, minute=0, second=0, microsecond=0)
    if setting == "midnight":
        return day
    if setting == "monday":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)  # month-start


def parse_window(text: str, origin: datetime | None = None) -> WindowSpec:
    """`15min`, `6h`, `1d`, `1w` or `5000rows`. Period windows start at `origin` plus a whole
    number of periods (before it too); without one, on the epoch's grid (UTC midnights,
    weeks from Monday)."""
    rows = re.fullmatch(r"(\d+)rows", text)
    if rows:
        count = int(rows.group(1))
        if count < SUBWINDOWS:
            raise ValueError(f"window {text!r}: at least {SUBWINDOWS} rows")
        return WindowSpec(text, rows=count)
    period = re.fullmatch(r"(\d+)(min|h|d|w)", text)
    if not period or int(period.group(1)) == 0:
        raise ValueError(f"window {text!r} is not a period like 6h or a row count like 5000rows")
    unit = period.group(2)
    period_us = int(period.group(1)) * _UNITS_US[unit]
    if origin is not None:
        return WindowSpec(text, period_us=period_us, offset_us=_micros(origin) % period_us)
    return WindowSpec(text, period_us=period_us,
                      offset_us=_WEEK_OFFSET_US if unit == "w" else 0)


def window_count(spec: WindowSpec, first: datetime, last: datetime, rows: int) -> int:
    """How many windows a history from `first` to `last` (`rows` rows) is cut into."""
    if spec.rows:
        return -(-rows // spec.rows)
    first, last = (m if m.tzinfo else m.replace(tzinfo=UTC) for m in (first, last))
    return spec.index_of(last) - spec.index_of(first) + 1


@dataclass(frozen=True)
class WindowRegime:
    """Which regime a window belongs to, how that was decided, and how sure it is."""

    regime: str | None  # None: unknown regime (or no data)
    method: str  # "column", "profile" or "none"
    distance: float | None  # to the chosen regime's reference profile
    mixed: bool = False
    warning: str = ""
    nearest: str | None = None

    @property
    def label(self) -> str:
        if self.mixed:
            return "mixed"
        return self.regime or UNKNOWN


def _nearest(distances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index and value of the smallest distance per row (NaN rows give -1, inf)."""
    filled = np.where(np.isnan(distances), np.inf, distances)
    index = filled.argmin(axis=-1)
    value = np.take_along_axis(filled, index[..., None], axis=-1)[..., 0]
    return np.where(np.isfinite(value), index, -1), value


def from_column(label_counts: np.ndarray, labels: tuple[str, ...], distances: np.ndarray,
                regimes: tuple[str, ...], threshold: float) -> list[WindowRegime]:
    """Regimes from a regime column. `label_counts` is (windows, len(labels) + 2): column 0
    labels the store did not know, 1.. `labels`, last missing. `distances` is
    (windows, len(regimes)) to each regime's reference profile (NaN without one)."""
    named = label_counts[:, 1:-1]
    distinct = (named > 0).sum(axis=1) + (label_counts[:, 0] > 0)
    top = named.argmax(axis=1)
    nearest, nearest_distance = _nearest(distances) if distances.size else (
        np.full(len(label_counts), -1), np.full(len(label_counts), np.inf))
    out = []
    for w in range(label_counts.shape[0]):
        if label_counts[w, :-1].sum() == 0:
            out.append(WindowRegime(None, "none", None))
            continue
        if distinct[w] > 1:
            out.append(WindowRegime(None, "column", None, mixed=True))
            continue
        if label_counts[w, 0] > 0:
            out.append(WindowRegime(None, "column", None, warning="label not in the store"))
            continue
        regime = labels[top[w]]
        column = regimes.index(regime) if regime in regimes else -1
        distance = float(distances[w, column]) if column >= 0 else float("nan")
        warning = ""
        near = regimes[nearest[w]] if nearest[w] >= 0 else None
        if column < 0 or not np.isfinite(distance):
            warning = f"no reference profile for regime {regime}"
        elif distance > threshold:
            warning = (f"does not match regime {regime}'s profile (distance {distance:.3f} > "
                       f"{threshold})")
        elif near is not None and near != regime and nearest_distance[w] < distance:
            warning = (f"labelled {regime} but nearer to {near}'s profile "
                       f"({nearest_distance[w]:.3f} < {distance:.3f})")
        out.append(WindowRegime(regime, "column", distance if np.isfinite(distance) else None,
                                warning=warning, nearest=near))
    return out


def from_profiles(window_distances: np.ndarray, sub_distances: np.ndarray,
                  regimes: tuple[str, ...], threshold: float, rows: np.ndarray,
                  sub_rows: np.ndarray, min_rows: int) -> list[WindowRegime]:
    """Regimes inferred from reference profiles. `window_distances` is (windows, regimes),
    `sub_distances` (windows, SUBWINDOWS, regimes)."""
    if not regimes:
        return [WindowRegime(None, "none", None, warning="no regime has a reference profile")
                for _ in range(len(rows))]
    nearest, distance = _nearest(window_distances)
    sub_nearest, sub_distance = _nearest(sub_distances)
    sub_ok = (sub_distance <= threshold) & (sub_rows >= max(min_rows // SUBWINDOWS, 1))
    out = []
    for w in range(len(rows)):
        if rows[w] == 0:
            out.append(WindowRegime(None, "none", None))
            continue
        matched = {int(i) for i in sub_nearest[w][sub_ok[w]]}
        if len(matched) > 1:
            names = ", ".join(sorted(regimes[i] for i in matched))
            out.append(WindowRegime(None, "profile", None, mixed=True,
                                    warning=f"sub-windows match {names}"))
            continue
        near = regimes[nearest[w]] if nearest[w] >= 0 else None
        value = float(distance[w]) if np.isfinite(distance[w]) else None
        if near is not None and value is not None and value <= threshold:
            out.append(WindowRegime(near, "profile", value, nearest=near))
        else:
            out.append(WindowRegime(None, "profile", value, nearest=near,
                                    warning=f"nearest profile {near} at {value:.3f} > {threshold}"
                                    if value is not None else "no profile to compare"))
    return out


@dataclass(frozen=True)
class ReferenceChoice:
    """Which version's reference profile a window is judged against, and why."""

    version: int | None
    basis: str  # "deployed", "auto-deploy", "regime", "requested" or "none"
    note: str = ""


def reference_plan(window_starts: list[datetime], window_regimes: list[WindowRegime],
                   deployments: list[tuple[datetime, int]], champions: dict[str, int],
                   requested_regime: str | None = None) -> list[ReferenceChoice]:
    """The serving version per window: the target's active version at the window's start
    from its deployment history; before any deployment, what auto-deploy would serve, the
    champion of the regime of the latest earlier window that had one (the window's own
    regime for the first). With `requested_regime`, that regime's champion everywhere."""
    if requested_regime is not None:
        version = champions.get(requested_regime)
        return [ReferenceChoice(version, "requested" if version else "none",
                                "" if version else f"regime {requested_regime} has no champion")
                for _ in window_starts]
    times = np.array([d[0].timestamp() for d in deployments], dtype=np.float64)
    versions = [d[1] for d in deployments]
    choices = []
    previous_regime: str | None = None
    for start, regime in zip(window_starts, window_regimes, strict=True):
        at = int(np.searchsorted(times, start.timestamp(), side="right")) - 1
        if at >= 0:
            choices.append(ReferenceChoice(versions[at], "deployed"))
        else:
            serving = previous_regime or (regime.regime if not regime.mixed else None)
            version = champions.get(serving) if serving else None
            if version is not None:
                choices.append(ReferenceChoice(
                    version, "auto-deploy" if previous_regime else "regime",
                    f"no deployment before this window: {serving}'s champion"))
            else:
                choices.append(ReferenceChoice(None, "none", "no champion for the regime"
                                               if serving else "regime not known yet"))
        if regime.regime and not regime.mixed:
            previous_regime = regime.regime
    return choices


@dataclass(frozen=True)
class WindowMetric:
    """The serving version's metric on a window's labelled rows."""

    version: int
    metric: str
    value: float | None
    rows: int
    note: str = ""

"""Regimes as the data shows them: each regime's reference, and the windows identified as it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mlops_tui.core.drift import WindowDrift
from mlops_tui.core.names import not_found, validate_name
from mlops_tui.core.profiles import FeatureProfile
from mlops_tui.core.regimes import UNKNOWN
from mlops_tui.services.drift_compute import compute_drift, reference_versions
from mlops_tui.services.workspace import Workspace


@dataclass(frozen=True)
class RegimeSummary:
    name: str
    version: int | None  # the regime's reference: its champion, else its newest version
    champion: bool
    snapshot: str | None
    reference_rows: int | None
    windows: int  # windows identified as this regime (mixed ones excluded)
    warnings: int
    first_seen: datetime | None
    last_seen: datetime | None
    mean_distance: float | None


@dataclass(frozen=True)
class RegimeDetail:
    summary: RegimeSummary
    features: tuple[FeatureProfile, ...]
    windows: tuple[WindowDrift, ...]


def _summaries(workspace: Workspace) -> tuple[list[RegimeSummary], list[WindowDrift], dict]:
    report = compute_drift(workspace, with_metrics=False)
    references = reference_versions(workspace)
    names = sorted(set(references) | {w.regime.regime for w in report.windows
                                      if w.regime.regime})
    out = []
    for name in names:
        # whole windows: a split window's parts are counted once, as mixed
        mine = [w for w in report.windows if w.regime.regime == name and not w.regime.mixed
                and not w.split]
        distances = [w.regime.distance for w in mine if w.regime.distance is not None]
        version, champion, profile = references.get(name, (None, False, None))
        out.append(RegimeSummary(
            name=name, version=version, champion=champion,
            snapshot=profile.snapshot if profile else None,
            reference_rows=profile.rows if profile else None, windows=len(mine),
            warnings=sum(1 for w in mine if w.regime.warning),
            first_seen=mine[0].start if mine else None,
            last_seen=mine[-1].start if mine else None,
            mean_distance=sum(distances) / len(distances) if distances else None))
    return out, report.windows, references


def list_regimes(workspace: Workspace) -> tuple[list[RegimeSummary], dict[str, int]]:
    """Every regime with its reference and how many windows were identified as it; plus
    the count of mixed and unknown windows."""
    summaries, windows, _ = _summaries(workspace)
    other = {"mixed": sum(1 for w in windows if w.regime.mixed)
             + len({w.start for w in windows if w.split}),
             UNKNOWN: sum(1 for w in windows if not w.regime.mixed and not w.regime.regime
                          and w.rows > 0 and not w.split)}
    return summaries, other


def show_regime(workspace: Workspace, name: str) -> RegimeDetail:
    validate_name(name, "regime")
    summaries, windows, references = _summaries(workspace)
    found = [s for s in summaries if s.name == name]
    if not found:
        raise not_found("regime", name, [s.name for s in summaries])
    profile = references.get(name, (None, False, None))[2]
    mine = tuple(w for w in windows if w.regime.regime == name
                 or (w.regime.mixed is False and w.regime.nearest == name and not w.regime.regime))
    return RegimeDetail(found[0], tuple(profile.features.values()) if profile else (), mine)

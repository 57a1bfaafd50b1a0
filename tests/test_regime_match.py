"""Regime discovery without a column (core/regime_match.py), checked on scenarios it was not
tuned to: the packaged sample (default seed and seed 2) with its regime column removed, regimes
whose operating points move slowly over many returns, and the four-regime classification
scenario. A small pure harness cuts each scenario into windows, fingerprints them with numpy,
steps the state machine and scores the final assignment against the truth, with discovered
names mapped to true regimes by majority."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from scenarios import (
    CLASSIFICATION_FEATURES,
    MOVING_FEATURES,
    four_regime_classification_scenario,
    moving_regimes_scenario,
)

from mlops_tui.core import regime_match as rm
from mlops_tui.core.profiles import build_profile
from mlops_tui.sample import generator

SAMPLE_PARQUET = Path(generator.__file__).parent / "data" / "observations.parquet"
SUBS = 4


@dataclass
class Window:
    fp: rm.Fingerprint
    rows: int
    subs: list[tuple[rm.Fingerprint, int]]
    truth: str | None  # None: the window holds more than one regime


def _fp(frame: pd.DataFrame, numeric, categorical) -> rm.Fingerprint:
    return rm.fingerprint({f: frame[f].to_numpy(np.float64) for f in numeric},
                          {f: frame[f].tolist() for f in categorical})


def cut(frame: pd.DataFrame, keys: np.ndarray, numeric, categorical,
        subs: int = SUBS) -> list[Window]:
    """Windows by `keys` (one per distinct key, in order); the `regime` column is used only as
    the truth. Sub-windows: `subs` equal row slices of each window."""
    out = []
    for _, part in frame.groupby(keys, sort=True):
        regimes = part["regime"].unique()
        slices = np.array_split(np.arange(len(part)), subs) if subs else []
        out.append(Window(_fp(part, numeric, categorical), len(part),
                          [(_fp(part.iloc[s], numeric, categorical), len(s)) for s in slices],
                          str(regimes[0]) if len(regimes) == 1 else None))
    return out


def discover(windows: list[Window], config: rm.MatchConfig | None = None,
             use_subs: bool = True) -> tuple[list[str | None], list[rm.Assignment], rm.State]:
    """Step every window; return each window's final regime id (candidates resolved by the
    regime they created), the assignments and the final state."""
    state = rm.State(config or rm.MatchConfig())
    final: list[str | None] = []
    steps = []
    for w in windows:
        state, a = state_step(state, w, use_subs)
        steps.append(a)
        final.append(a.regime)
        for index in a.created:
            final[index] = a.regime
    return final, steps, state


def state_step(state, w: Window, use_subs: bool):
    return rm.step(state, w.fp, w.rows, w.subs if use_subs else None)


@dataclass
class Score:
    accuracy: float
    correct: int
    single: int
    mapping: dict[str, str]
    late_returns: list[int]  # first full windows of a return that were not recognised
    returns: int

    def __str__(self) -> str:
        return (f"{self.correct}/{self.single} = {self.accuracy:.1%} of single-regime windows; "
                f"returns recognised {self.returns - len(self.late_returns)}/{self.returns}; "
                f"mapping {self.mapping}")


def score(windows: list[Window], final: list[str | None]) -> Score:
    votes: dict[str, Counter] = {}
    for w, rid in zip(windows, final, strict=True):
        if rid is not None and w.truth is not None:
            votes.setdefault(rid, Counter())[w.truth] += 1
    mapping = {rid: c.most_common(1)[0][0] for rid, c in votes.items()}
    single = [(w.truth, mapping.get(rid)) for w, rid in zip(windows, final, strict=True)
              if w.truth is not None]
    correct = sum(t == m for t, m in single)
    # A return: the first single-regime window of a regime seen before, after another one.
    seen, late, returns, previous = set(), [], 0, None
    for i, w in enumerate(windows):
        if w.truth is None:
            continue
        if w.truth != previous:
            if w.truth in seen:
                returns += 1
                if mapping.get(final[i]) != w.truth:
                    late.append(i)
            seen.add(w.truth)
            previous = w.truth
    return Score(correct / len(single), correct, len(single), mapping, late, returns)


# --- harness inputs ---------------------------------------------------------------------------

def sample_windows(seed: int) -> list[Window]:
    table = (pq.read_table(SAMPLE_PARQUET) if seed == generator.DEFAULT_SEED
             else generator.generate(seed)[0])
    frame = table.to_pandas().rename(columns={generator.REGIME_COLUMN: "regime"})
    ignore = {"shift"}  # the sample's [drift] ignore: time-of-day features
    categorical = [f for f in generator.FEATURES_CATEGORICAL if f not in ignore]
    start = pd.Timestamp(generator.START)
    keys = ((frame[generator.TIME_COLUMN] - start) // pd.Timedelta(generator.WINDOW)).to_numpy()
    return cut(frame, keys, generator.FEATURES_NUMERIC, categorical)


def moving_windows(seed: int, **kwargs) -> list[Window]:
    frame = moving_regimes_scenario(seed, **kwargs)
    keys = ((frame["ts"] - frame["ts"].iloc[0].floor("D")) // pd.Timedelta("6h")).to_numpy()
    return cut(frame, keys, MOVING_FEATURES, ["grade"])


def ar1_windows(seed: int, spread: float, days: int = 60, rows: int = 288,
                phi: float = 0.8) -> list[Window]:
    """Daily windows; visits A B A C B A of `days` days; each day's feature means follow an
    AR(1) process (phi, stationary sd `spread`) around the regime's centre; B and C lie 2 sd
    from A on three of six features."""
    rng = np.random.default_rng(seed)
    centres = {"A": np.zeros(6), "B": np.r_[2.0, 2.0, -2.0, 0, 0, 0],
               "C": np.r_[-2.0, 2.0, 2.0, 0, 0, 0]}
    level, out = np.zeros(6), []
    for regime in "ABACBA":
        for _ in range(days):
            level = phi * level + spread * math.sqrt(1 - phi ** 2) * rng.standard_normal(6)
            x = centres[regime] + level + rng.standard_normal((rows, 6))
            out.append(Window(rm.fingerprint({f"x{i}": x[:, i] for i in range(6)}), rows, [],
                              regime))
    return out


def classification_windows(seed: int) -> list[Window]:
    frame = four_regime_classification_scenario(seed)
    return cut(frame, frame["row"].to_numpy() // 50, CLASSIFICATION_FEATURES, [])


def online(windows: list[Window], steps: list[rm.Assignment], mapping: dict[str, str]) -> float:
    """Share of single-regime windows right when they were stepped (candidates count wrong)."""
    pairs = [(w.truth, mapping.get(a.regime)) for w, a in zip(windows, steps, strict=True)
             if w.truth is not None]
    return sum(t == m for t, m in pairs) / len(pairs)


# --- the pieces ---------------------------------------------------------------------------

def normal(rows: int, shift: float = 0.0, seed: int = 0, **cats) -> rm.Fingerprint:
    rng = np.random.default_rng(seed)
    return rm.fingerprint({"a": rng.standard_normal(rows) + shift,
                           "b": rng.standard_normal(rows)}, cats or None)


def test_fingerprint_holds_quantiles_scale_and_shares() -> None:
    fp = rm.fingerprint({"x": np.array([*range(1, 101), np.nan])},
                        {"c": ["u", "u", "v", None]})
    assert fp.rows == 101
    assert fp.quantiles["x"][0] == pytest.approx(5.95) and len(fp.quantiles["x"]) == 19
    assert fp.scales["x"] == pytest.approx(49.5 / 1.349)
    assert fp.shares["c"] == {"u": 0.5, "v": 0.25, rm.MISSING: 0.25}
    back = rm.Fingerprint.from_dict(fp.to_dict())
    assert rm.distance(back, fp) == 0.0 and back.shares == fp.shares


def test_distance_is_the_shift_in_reference_sds_and_rms_over_features() -> None:
    ref = normal(20000)
    shifted = normal(20000, shift=1.5, seed=1)
    per_feature = rm.feature_distances(shifted, ref)
    assert per_feature["a"] == pytest.approx(1.5, abs=0.05)
    assert per_feature["b"] == pytest.approx(0.0, abs=0.05)
    assert rm.distance(shifted, ref) == pytest.approx(1.5 / math.sqrt(2), abs=0.05)
    # Categorical: Cohen's h for two categories (0.5 vs 0.2: h = 0.6435).
    p = rm.fingerprint({}, {"c": ["u"] * 5 + ["v"] * 5})
    q = rm.fingerprint({}, {"c": ["u"] * 2 + ["v"] * 8})
    assert rm.distance(p, q) == pytest.approx(2 * math.sqrt((math.sqrt(.5) - math.sqrt(.2)) ** 2
                                                            + (math.sqrt(.5) - math.sqrt(.8)) ** 2))
    assert rm.distance(p, q) == pytest.approx(0.6435, abs=0.01)
    # A feature present in one and all-missing in the other is as far as it gets.
    gone = rm.fingerprint({"a": np.full(50, np.nan), "b": np.zeros(50)})
    assert rm.feature_distances(gone, ref)["a"] == rm.MAX_FEATURE_DISTANCE


def test_threshold_widens_for_small_windows() -> None:
    cfg = rm.MatchConfig()
    assert cfg.threshold(360) == 0.5
    assert cfg.threshold(50) == pytest.approx(3.6 / math.sqrt(50))
    assert cfg.threshold(30) == pytest.approx(0.657, abs=0.001)
    # Same-regime noise at 50 rows stays under it.
    ref = normal(5000)
    noise = [rm.distance(normal(50, seed=s), ref) for s in range(1, 200)]
    assert np.percentile(noise, 99) < cfg.threshold(50)


def test_three_unmatched_windows_make_a_regime_and_a_return_is_recognised() -> None:
    state = rm.State()
    seq = [0.0] * 3 + [4.0] * 3 + [0.0] * 2 + [np.nan]
    out = []
    for i, shift in enumerate(seq):
        if np.isnan(shift):  # too few rows: nothing moves
            state, a = rm.step(state, normal(10, seed=i), 10)
        else:
            state, a = rm.step(state, normal(300, shift, seed=i), 300)
        out.append(a)
    assert [a.status for a in out] == ["candidate", "candidate", "created"] * 2 + [
        "matched", "matched", "too-few-rows"]
    assert [a.candidate for a in out[:3]] == [1, 2, 3]
    assert out[2].created == (0, 1, 2) and out[2].regime == "r1"
    assert out[5].created == (3, 4, 5) and out[5].regime == "r2"
    assert out[6].regime == "r1" and out[6].confident and out[6].nearest[1][0] == "r2"
    assert [r.id for r in state.regimes] == ["r1", "r2"] and state.seen == 9


def test_a_disagreeing_window_restarts_the_candidate_run() -> None:
    state = rm.State()
    for i, shift in enumerate([0.0, 0.0, 4.0, 0.0, 0.0]):
        state, a = rm.step(state, normal(300, shift, seed=i), 300)
    assert a.status == "candidate" and a.candidate == 2 and not state.regimes
    # With memory, agreeing windows need not be adjacent.
    state = rm.State(rm.MatchConfig(candidate_memory=8))
    for i, shift in enumerate([0.0, 0.0, 4.0, 0.0]):
        state, a = rm.step(state, normal(300, shift, seed=i), 300)
    assert a.status == "created" and a.created == (0, 1, 3)


def test_reference_follows_slow_change_and_resets_to_a_champion() -> None:
    state = rm.State()
    for i in range(3):
        state, _ = rm.step(state, normal(300, seed=i), 300)
    for i in range(40):  # 0.1 sd per window, 4 sd in all: far beyond tau from the start
        state, a = rm.step(state, normal(300, 0.1 * (i + 1), seed=10 + i), 300)
        assert a.regime == "r1", (i, a)
    assert rm.distance(normal(5000, 4.0, seed=99), state.regime("r1").fingerprint) < 0.5
    frozen = rm.State(rm.MatchConfig(refresh_weight=0.0))
    for i in range(3):
        frozen, _ = rm.step(frozen, normal(300, seed=i), 300)
    statuses = []
    for i in range(40):
        frozen, a = rm.step(frozen, normal(300, 0.1 * (i + 1), seed=10 + i), 300)
        statuses.append(a.status)
    assert "created" in statuses  # without the update the regime splits
    champion = normal(5000, -3.0, seed=5)
    state = rm.reset_reference(state, "r1", champion)
    assert rm.distance(champion, state.regime("r1").fingerprint) == 0.0


def test_ids_are_stable_and_names_never_reused() -> None:
    state = rm.add_regime(rm.State(), "r1", normal(300, 8.0))
    state = rm.rename(state, "r1", "sedan")
    for i in range(3):
        state, a = rm.step(state, normal(300, seed=i), 300)
    assert a.regime == "r2"  # r1 is taken as an id even though its name is now sedan
    assert [(r.id, r.name) for r in state.regimes] == [("r1", "sedan"), ("r2", "r2")]
    with pytest.raises(ValueError):
        rm.add_regime(state, "sedan", normal(10))
    regime, near = rm.match(state, normal(300, 8.0, seed=3), 300)
    assert regime == "r1" and [n[0] for n in near] == ["r1", "r2"]
    assert rm.match(state, normal(300, 20.0), 300)[0] is None


def test_a_window_straddling_a_switch_is_mixed_and_its_unknown_part_joins_the_new_regime(
) -> None:
    state = rm.State()
    for i in range(3):
        state, _ = rm.step(state, normal(400, seed=i), 400)
    halves = [normal(100, seed=20), normal(100, seed=21), normal(100, 4.0, seed=22),
              normal(100, 4.0, seed=23)]
    whole = rm.blend(rm.blend(halves[0], halves[1], 0.5), rm.blend(halves[2], halves[3], 0.5),
                     0.5)
    state, mixed = rm.step(state, whole, 400, [(fp, 100) for fp in halves])
    assert mixed.status == "mixed"
    assert [(s.first_sub, s.last_sub, s.regime) for s in mixed.segments] == [
        (0, 1, "r1"), (2, 3, None)]
    for i in range(3):
        state, a = rm.step(state, normal(400, 4.0, seed=30 + i), 400)
    assert a.status == "created" and a.created == (4, 5, 6) and a.created_segments == (3,)


@pytest.mark.parametrize("rows", [400, 5000])
def test_fingerprint_from_profile_matches_the_rows(rows: int) -> None:
    rng = np.random.default_rng(rows)
    columns = {"x": rng.gamma(2.0, 3.0, rows), "c": list(rng.choice(["u", "v", "w"], rows))}
    profile = build_profile("snap", columns, ("x",), ("c",))
    direct = rm.fingerprint({"x": columns["x"]}, {"c": columns["c"]})
    derived = rm.fingerprint_from_profile(profile)
    assert rm.distance(derived, direct) < 0.02
    assert derived.scales["x"] == pytest.approx(direct.scales["x"], rel=0.02)


# --- scenarios it was not tuned to --------------------------------------------------------

@pytest.mark.parametrize("seed", [generator.DEFAULT_SEED, 2])
def test_sample_regimes_are_discovered_without_the_column(seed: int) -> None:
    windows = sample_windows(seed)
    final, steps, state = discover(windows)
    result = score(windows, final)
    print(f"sample seed {seed}: {result}; online {online(windows, steps, result.mapping):.1%}")
    assert result.accuracy >= 0.95, result
    assert result.returns == 2 and not result.late_returns, result
    assert len(state.regimes) == 3 and sorted(result.mapping.values()) == [
        "pickup", "sedan", "suv"]
    # The four changeover windows are found mixed from their sub-windows; the unknown part of
    # the one before a new regime's first windows joins that regime.
    changeovers = [i for i, w in enumerate(windows) if w.truth is None]
    assert [a.index for a in steps if a.status == "mixed"] == changeovers
    created = [a for a in steps if a.status == "created"]
    assert [a.created_segments for a in created] == [(), (changeovers[0],), (changeovers[2],)]


@pytest.mark.parametrize("seed", [0, 1])
def test_moving_regimes(seed: int) -> None:
    windows = moving_windows(seed)
    final, steps, state = discover(windows)
    result = score(windows, final)
    print(f"moving seed {seed}: {result}; online {online(windows, steps, result.mapping):.1%}")
    assert result.accuracy >= 0.90, result
    assert len(state.regimes) == 3


@pytest.mark.parametrize("seed", [0, 1])
def test_four_regime_classification_identification(seed: int) -> None:
    """No fixed target: the figure is reported, and a floor guards against regressions
    (measured 94.5% and 97.5% with consecutive candidates, 100% and 99.5% with memory 16)."""
    windows = classification_windows(seed)
    figures = {}
    for memory in (0, 16):
        final, steps, state = discover(windows, rm.MatchConfig(candidate_memory=memory))
        result = score(windows, final)
        figures[memory] = result
        print(f"classification seed {seed} candidate_memory {memory}: {result}; "
              f"online {online(windows, steps, result.mapping):.1%}; "
              f"created at windows {[a.index for a in steps if a.status == 'created']}")
        assert len(state.regimes) == 4
    assert figures[0].accuracy >= 0.9 and figures[16].accuracy >= 0.97


@pytest.mark.parametrize(("spread", "seed"), [(0.3, 0), (0.5, 0), (0.5, 1)])
def test_natural_variation_does_not_split_regimes(spread: float, seed: int) -> None:
    windows = ar1_windows(seed, spread)
    final, steps, state = discover(windows)
    result = score(windows, final)
    print(f"AR(1) spread {spread} seed {seed}: {result}; "
          f"online {online(windows, steps, result.mapping):.1%}")
    assert len(state.regimes) == 3 and result.accuracy >= 0.95, result
    if spread == 0.5:  # without the regime's own spread the threshold splits it up
        _, _, fixed = discover(windows, rm.MatchConfig(spread_factor=0.0))
        assert len(fixed.regimes) > 10


def test_a_checkpoint_resumes_exactly() -> None:
    windows = moving_windows(3)[:120]
    whole, steps, _ = discover(windows)
    state = rm.State()
    resumed: list[rm.Assignment] = []
    for i, w in enumerate(windows):
        if i % 25 == 0:
            state = rm.state_from_dict(json.loads(json.dumps(rm.state_to_dict(state))))
        state, a = state_step(state, w, True)
        resumed.append(a)
    assert [(a.regime, a.status, a.created) for a in resumed] == [
        (a.regime, a.status, a.created) for a in steps]
    assert [a.distance for a in resumed] == pytest.approx([a.distance for a in steps])

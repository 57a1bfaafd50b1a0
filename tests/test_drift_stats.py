"""Drift statistics against independent implementations (scipy) and hand-computed values.

Production code never calls scipy; these tests do, on the same counts, to tight tolerances,
and compare the grid statistics with the exact statistic on raw values within the
documented error bound.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats
from scipy.spatial.distance import jensenshannon

from mlops_tui.core import drift
from mlops_tui.core.profiles import (
    SMALL_REFERENCE_ROWS,
    categorical_profile,
    category_codes,
    choose_test,
    numeric_grid,
    numeric_profile,
)


def _binned(grid, values: np.ndarray) -> np.ndarray:
    return grid.group(np.bincount(grid.assign_codes(values), minlength=grid.code_count + 1))


# -- special functions ------------------------------------------------------------------------

def test_special_functions_match_scipy() -> None:
    a = np.array([0.5, 1.0, 1.5, 2.0, 5.0, 10.0, 50.0, 200.0, 500.5])
    x = np.array([0.01, 0.5, 3.0, 1.9, 20.0, 3.0, 60.0, 180.0, 520.0])
    assert drift.gamma_q(a, x) == pytest.approx(special.gammaincc(a, x), rel=1e-12)
    z = np.linspace(0, 8, 41)
    assert drift.normal_two_sided(z) == pytest.approx(2 * stats.norm.sf(z), rel=1e-12)
    lam = np.linspace(0, 4, 81)
    assert drift.kolmogorov_sf(lam) == pytest.approx(stats.kstwobign.sf(lam), abs=1e-14)
    values = np.array([0.1, 0.5, 1.0, 3.3, 100.0, 1000.5])
    assert drift.log_gamma(values) == pytest.approx(special.gammaln(values), rel=1e-12)
    statistic, dof = np.array([0.1, 1.0, 5.0, 30.0, 300.0]), np.array([1, 2, 10, 20, 290])
    assert drift.chi2_sf(statistic, dof) == pytest.approx(stats.chi2.sf(statistic, dof),
                                                          rel=1e-12)


# -- KS on an exact grid ----------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ks_statistic_is_scipys_exactly_and_p_value_is_smirnovs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = np.round(rng.normal(size=700), 2)  # ties on purpose
    windows = [np.round(rng.normal(loc=shift, scale=1 + abs(shift), size=size), 2)
               for shift, size in ((0.0, 300), (0.2, 120), (0.5, 50), (-3.0, 40))]
    grid = numeric_grid(reference)
    assert grid.kind == "exact"
    current = np.stack([_binned(grid, w) for w in windows])
    output = drift.get_test("ks").compute(_binned(grid, reference), current)
    for w, values in enumerate(windows):
        expected = stats.ks_2samp(reference, values)
        assert output.statistic[w] == pytest.approx(expected.statistic, abs=1e-12)
        n, m = len(reference), len(values)
        asymptotic = stats.kstwobign.sf(math.sqrt(n * m / (n + m)) * expected.statistic)
        assert output.p_value[w] == pytest.approx(asymptotic, abs=1e-12)
        # The documented gap to scipy's exact small-sample p-value.
        assert abs(output.p_value[w] - expected.pvalue) < 0.035


def test_ks_hand_computed() -> None:
    reference = np.array([1.0, 2.0, 3.0, 4.0])
    current = np.array([3.0, 4.0, 5.0, 6.0])
    grid = numeric_grid(reference)
    output = drift.get_test("ks").compute(_binned(grid, reference), _binned(grid, current)[None])
    assert output.statistic[0] == pytest.approx(0.5)  # F_ref(2) - F_cur(2) = 0.5 - 0


# -- chi-square and z -------------------------------------------------------------------------

def test_chi2_matches_chi2_contingency() -> None:
    reference = np.array([0.0, 50.0, 30.0, 20.0])  # code 0: categories unseen in the reference
    current = np.array([[0.0, 40.0, 35.0, 25.0], [5.0, 10.0, 60.0, 30.0], [0.0, 0.0, 9.0, 1.0]])
    output = drift.get_test("chi2").compute(reference, current)
    for w in range(current.shape[0]):
        table = np.stack([reference, current[w]])
        table = table[:, table.sum(axis=0) > 0]
        expected = stats.chi2_contingency(table, correction=False)
        assert output.statistic[w] == pytest.approx(expected.statistic, rel=1e-12)
        assert output.p_value[w] == pytest.approx(expected.pvalue, rel=1e-10)


def test_chi2_hand_computed() -> None:
    # 2 x 2: [[10, 20], [20, 10]]: expected 15 everywhere -> 4 * 25 / 15.
    output = drift.get_test("chi2").compute(np.array([10.0, 20.0]), np.array([[20.0, 10.0]]))
    assert output.statistic[0] == pytest.approx(100 / 15)


def test_z_test_matches_the_normal_and_chi_square_forms() -> None:
    reference = np.array([120.0, 80.0])
    current = np.array([[50.0, 50.0], [70.0, 30.0], [0.0, 10.0]])
    output = drift.get_test("z").compute(reference, current)
    for w in range(3):
        p1, p2 = reference[0] / reference.sum(), current[w, 0] / current[w].sum()
        pooled = (reference[0] + current[w, 0]) / (reference.sum() + current[w].sum())
        z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / reference.sum()
                                                           + 1 / current[w].sum()))
        assert output.statistic[w] == pytest.approx(abs(z), rel=1e-12)
        assert output.p_value[w] == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-10)
        table = np.stack([reference, current[w]])
        expected = stats.chi2_contingency(table, correction=False)
        assert output.p_value[w] == pytest.approx(expected.pvalue, rel=1e-10)


# -- distances --------------------------------------------------------------------------------

def test_jensenshannon_and_psi() -> None:
    reference = np.array([0.0, 60.0, 30.0, 10.0])
    current = np.array([[0.0, 55.0, 35.0, 10.0], [10.0, 10.0, 10.0, 70.0]])
    output = drift.get_test("jensenshannon").compute(reference, current)
    for w in range(2):
        assert output.statistic[w] == pytest.approx(jensenshannon(reference, current[w]),
                                                    abs=1e-12)
    p = np.maximum(reference / reference.sum(), drift.PSI_FLOOR)
    q = np.maximum(current[1] / current[1].sum(), drift.PSI_FLOOR)
    psi = drift.get_test("psi").compute(reference, current).statistic
    assert psi[1] == pytest.approx(float(((q - p) * np.log(q / p)).sum()), rel=1e-12)
    assert psi[0] < psi[1]


@pytest.mark.parametrize("make", [
    lambda rng, n, shift: rng.normal(shift, 1.0, n),
    lambda rng, n, shift: rng.lognormal(shift, 1.0, n),  # skewed, long right tail
    lambda rng, n, shift: rng.standard_t(2, n) + shift,  # heavy tails both sides
])
def test_wasserstein_on_the_grid_matches_scipy_and_the_exact_statistic(make) -> None:
    rng = np.random.default_rng(3)
    reference = make(rng, 40_000, 0.0)
    grid = numeric_grid(reference)
    assert grid.kind == "quantile" and len(grid.cuts) + 1 >= 100
    windows = [make(rng, 5_000, shift) for shift in (0.0, 0.05, 0.3, 2.0)]
    windows.append(np.concatenate([make(rng, 4_000, 0.0), rng.uniform(1e3, 1e4, 100)]))
    ref_counts = _binned(grid, reference)
    current = np.stack([_binned(grid, w) for w in windows])
    bins, scale = grid.bins(), float(reference.std())
    test = drift.get_test("wasserstein")
    output = test.compute(ref_counts, current, bins, np.asarray(scale))
    bound = drift.wasserstein_error_bound(ref_counts, current, bins, scale)
    for w, values in enumerate(windows):
        on_bins = stats.wasserstein_distance(bins.positions, bins.positions, ref_counts,
                                             current[w]) / scale
        assert output.statistic[w] == pytest.approx(on_bins, rel=1e-10, abs=1e-12)
        exact = stats.wasserstein_distance(reference, values) / scale
        assert abs(output.statistic[w] - exact) <= bound[w] + 1e-12
    assert bound[:3].max() < 0.05  # near the reference distribution the bound stays small


def test_wasserstein_bound_is_tight_enough_for_the_fixed_threshold() -> None:
    rng = np.random.default_rng(5)
    reference = rng.normal(size=200_000)
    grid = numeric_grid(reference)
    current = np.stack([_binned(grid, rng.normal(size=50_000)) for _ in range(3)])
    bound = drift.wasserstein_error_bound(_binned(grid, reference), current, grid.bins(),
                                          float(reference.std()))
    assert bound.max() < 0.015  # vs the fixed threshold 0.1


def test_every_test_is_vectorised_over_windows() -> None:
    """One call over a windows x bins matrix equals one call per window."""
    rng = np.random.default_rng(9)
    reference = rng.integers(1, 50, size=12).astype(float)
    current = rng.integers(0, 50, size=(6, 12)).astype(float)
    bins = drift.Bins(np.arange(12.0), np.ones(12))
    for name, test in drift.REGISTRY.items():
        reference_in = reference[:2] if name == "z" else reference
        current_in = current[:, :2] if name == "z" else current
        together = test.compute(reference_in, current_in, bins if name == "wasserstein" else None,
                                np.asarray(2.0))
        for w in range(current.shape[0]):
            alone = test.compute(reference_in, current_in[w:w + 1],
                                 bins if name == "wasserstein" else None, np.asarray(2.0))
            assert together.statistic[w] == pytest.approx(alone.statistic[0], rel=1e-12)


# -- verdicts ---------------------------------------------------------------------------------

def test_inconclusive_windows_say_why_and_never_carry_nan() -> None:
    rows = np.array([0, 500, 500, 10, 500])
    present = np.array([0, 500, 0, 10, 500])
    mixed = np.array([False, True, False, False, False])
    reasons = drift.inconclusive_reasons(rows, present, mixed, min_rows=30)
    assert reasons[0] == "empty window"
    assert "mixed" in reasons[1]
    assert "all missing" in reasons[2]
    assert reasons[3] == "too few values (10 < 30)"
    assert reasons[4] == ""
    reference = np.array([10.0, 30.0, 60.0])
    current = np.array([[0, 0, 0], [200, 200, 100], [0, 0, 0], [5, 3, 2], [100, 300, 100]],
                       dtype=float)
    results = drift.judge_feature("f", drift.get_test("jensenshannon"), reference, current,
                                  drift.Threshold(0.1, "fixed"), reasons)
    assert [r.verdict for r in results] == ["inconclusive"] * 4 + ["drift"]
    assert all(r.statistic is None for r in results[:4])
    assert results[4].statistic == pytest.approx(jensenshannon(reference, current[4]))
    constant = drift.judge_feature("f", drift.get_test("jensenshannon"), reference, current,
                                   drift.Threshold(0.1, "fixed"), [""] * 5,
                                   reference_problem="constant in the reference")
    assert {r.verdict for r in constant} == {"inconclusive"}
    assert drift.dataset_verdict(constant, 0.5) == (None, "inconclusive")


def test_dataset_share() -> None:
    make = lambda verdict: drift.FeatureDrift("f", "ks", 0.1, 0.5, 0.05, verdict)  # noqa: E731
    assert drift.dataset_verdict([make("drift"), make("ok"), make("inconclusive")],
                                 0.5) == (0.5, "drift")
    assert drift.dataset_verdict([make("drift"), make("ok"), make("ok")], 0.5)[1] == "ok"


def test_reference_threshold_needs_five_chunks_and_says_so() -> None:
    rng = np.random.default_rng(1)
    for name in ("jensenshannon", "chi2"):  # significance tests fall back the same way
        few = rng.multinomial(360, [0.5, 0.3, 0.2], size=4).astype(float)
        threshold = drift.reference_threshold(drift.get_test(name), few, 0.1, chunk_rows=360)
        assert threshold.value == 0.1 and threshold.basis == "fixed"
        assert threshold.statistic is None
        assert "4 chunk(s) of 360 rows, 5 needed" in threshold.note


def test_reference_threshold_is_the_99th_percentile_of_leave_one_out_chunks() -> None:
    rng = np.random.default_rng(1)
    many = rng.multinomial(360, [0.5, 0.3, 0.2], size=40).astype(float)
    rest = many.sum(axis=0) - many
    values = np.array([jensenshannon(rest[i], many[i]) for i in range(40)])
    derived = drift.reference_threshold(drift.get_test("jensenshannon"), many, 0.1,
                                        chunk_rows=360)
    top, second = np.sort(values)[-1], np.sort(values)[-2]
    # numpy's linear percentile at 99 over 40 values: 0.61 of the way from 2nd to 1st
    assert derived.basis == "reference"
    assert derived.value == pytest.approx(second + 0.61 * (top - second), rel=1e-10)
    assert derived.statistic == derived.value
    assert "99th percentile over 40 leave-one-out reference chunks of 360 rows" in derived.note


def test_reference_threshold_of_a_significance_test_is_the_p_value_of_its_cut() -> None:
    rng = np.random.default_rng(2)
    # Chunks whose shares wander (as day-to-day variation does): the cut is far stricter
    # than p < 0.05.
    shares = rng.dirichlet([50, 30, 20], size=20)
    many = np.stack([rng.multinomial(300, s) for s in shares]).astype(float)
    rest = many.sum(axis=0) - many
    statistics = np.array([stats.chi2_contingency(np.stack([rest[i], many[i]]),
                                                  correction=False)[0] for i in range(20)])
    derived = drift.reference_threshold(drift.get_test("chi2"), many, 0.05, chunk_rows=300)
    top, second = np.sort(statistics)[-1], np.sort(statistics)[-2]
    cut = second + 0.81 * (top - second)  # linear percentile at 99 over 20 values
    assert derived.basis == "reference" and derived.statistic == pytest.approx(cut, rel=1e-9)
    # `value` is that statistic's p-value at a chunk's size (2 degrees of freedom here).
    assert derived.value == pytest.approx(stats.chi2.sf(cut, 2), rel=1e-6)
    assert derived.value < 0.05
    # KS: D over the chunks of an exact grid, the p-value of the cut by Smirnov's formula.
    values = np.concatenate([rng.normal(loc=rng.normal(scale=0.5), size=60)
                             for _ in range(10)])
    grid = numeric_profile("x", values).grid
    chunks = np.stack([_binned(grid, values[i * 60:(i + 1) * 60]) for i in range(10)])
    ks = drift.reference_threshold(drift.get_test("ks"), chunks.astype(float), 0.05,
                                   chunk_rows=60)
    d = [stats.ks_2samp(np.delete(values, np.s_[i * 60:(i + 1) * 60]),
                        values[i * 60:(i + 1) * 60]).statistic for i in range(10)]
    top, second = np.sort(d)[-1], np.sort(d)[-2]
    assert ks.statistic == pytest.approx(second + 0.91 * (top - second), rel=1e-9)
    assert ks.value == pytest.approx(stats.kstwobign.sf(math.sqrt(540 * 60 / 600)
                                                        * ks.statistic), rel=1e-6)


def test_a_significance_threshold_is_never_looser_than_the_fixed_p_value() -> None:
    # Six chunks alike but for one count: every leave-one-out p-value is far above 0.05.
    iid = np.tile([150.0, 90.0, 60.0], (6, 1))
    iid[0] = [151.0, 89.0, 60.0]
    derived = drift.reference_threshold(drift.get_test("chi2"), iid, 0.05, chunk_rows=300)
    rest = iid.sum(axis=0) - iid
    p = [stats.chi2_contingency(np.stack([rest[i], iid[i]]), correction=False)[1]
         for i in range(6)]
    assert min(p) > 0.9  # the cut's own p-value would be looser than 0.05
    assert derived.basis == "reference" and derived.value == 0.05
    assert "the fixed p < 0.05 is stricter" in derived.note


def test_a_p_value_threshold_that_underflows_compares_the_statistic() -> None:
    test = drift.get_test("chi2")
    reference = np.array([500.0, 300.0, 200.0])
    threshold = drift.Threshold(0.0, "reference", "derived", statistic=6.0)
    current = np.array([[50.0, 30.0, 20.0], [20.0, 30.0, 50.0], [5000.0, 3000.0, 2000.0]])
    results = drift.judge_feature("f", test, reference, current, threshold, ["", "", ""])
    assert [r.verdict for r in results] == ["ok", "drift", "ok"]
    assert [r.statistic >= 6.0 for r in results] == [False, True, False]


def test_min_effect_keeps_a_large_window_from_flagging_a_negligible_shift() -> None:
    rng = np.random.default_rng(3)
    reference_values = rng.normal(size=20_000)
    profile = numeric_profile("x", reference_values)
    grid, test = profile.grid, drift.get_test("ks")
    reference = profile.reference_counts()
    shifted = rng.normal(loc=0.05, size=200_000)
    window = _binned(grid, shifted)[None, :].astype(float)
    big = _binned(grid, rng.normal(loc=0.5, size=2_000))[None, :].astype(float)
    fixed = drift.Threshold(0.05, "fixed")
    kwargs = {"bins": grid.bins(), "scale": profile.std}
    tiny, = drift.judge_feature("x", test, reference, window, fixed, [""], **kwargs)
    assert tiny.verdict == "drift" and tiny.p_value < 1e-6  # significant, yet 0.05 sd
    kept, = drift.judge_feature("x", test, reference, window, fixed, [""], min_effect=0.1,
                                **kwargs)
    assert kept.verdict == "ok" and kept.reason == "below the minimum effect 0.1"
    assert kept.effect == pytest.approx(
        stats.wasserstein_distance(reference_values, shifted) / profile.std, abs=0.01)
    moved, = drift.judge_feature("x", test, reference, big, fixed, [""], min_effect=0.1,
                                 **kwargs)
    assert moved.verdict == "drift" and moved.effect > 0.4
    # Categorical effect: 2 x Hellinger, Cohen's h for a binary feature.
    h = drift.effect_size(np.array([50.0, 50.0]), np.array([[60.0, 40.0]]), None, None)[0]
    assert h == pytest.approx(2 * math.asin(math.sqrt(0.6)) - 2 * math.asin(math.sqrt(0.5)),
                              abs=2e-3)
    assert h == pytest.approx(2 * math.sqrt((math.sqrt(.5) - math.sqrt(.6)) ** 2
                                            + (math.sqrt(.5) - math.sqrt(.4)) ** 2), rel=1e-12)


def test_min_effect_is_a_checked_drift_key() -> None:
    from mlops_tui.core.config import ConfigError, parse_config

    assert parse_config({}).drift.min_effect == 0.1
    assert parse_config({"drift": {"min_effect": 0}}).drift.min_effect == 0
    with pytest.raises(ConfigError, match=r"\[drift\] min_effect = -0.1: must be"):
        parse_config({"drift": {"min_effect": -0.1}})


# -- the test chosen per feature --------------------------------------------------------------

def test_test_choice_by_dtype_and_reference_size() -> None:
    assert choose_test("numeric", SMALL_REFERENCE_ROWS, 0) == "ks"
    assert choose_test("numeric", SMALL_REFERENCE_ROWS + 1, 0) == "wasserstein"
    assert choose_test("categorical", 500, 2) == "z"
    assert choose_test("categorical", 500, 3) == "chi2"
    assert choose_test("categorical", 5000, 2) == "jensenshannon"
    assert choose_test("numeric", 5000, 0, "psi") == "psi"
    rng = np.random.default_rng(0)
    small = numeric_profile("x", rng.normal(size=800))
    assert small.test == "ks" and len(small.raw) == 800
    large = numeric_profile("x", np.append(rng.normal(size=5000), np.nan))
    assert large.test == "wasserstein" and large.raw == () and large.missing == 1
    colours = categorical_profile("c", ["red", "blue", None, "red"])
    assert colours.categories == ("red", "blue") and colours.counts == (2, 1)
    assert colours.test == "z" and colours.missing == 1
    assert category_codes(colours, ["blue", "green", None]).tolist() == [2, 0, 3]

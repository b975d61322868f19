"""The two intervals of the human metrics (calaudit/human/intervals.py): they hold their
estimate, are reproducible, carry the annotator noise where votes are few, agree across
methods, and cover what docs/metrics.md (section 13) says they cover.

The coverage simulation is tests/human_coverage.py (``python tests/human_coverage.py
--repetitions 500 --calibrated-repetitions 300`` prints the documented tables, about 7
minutes); the runs here are seeded and smaller (393 repetitions of each model, about
8 s): enough for an exact binomial test to tell an interval covering 95% from one
covering 90% (tests/nominal_coverage.py).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from human_coverage import ESTIMANDS, INTERVALS, estimands, runs, summary
from nominal_coverage import CATCH, PASS, cutoff, per_repetition, probabilities, verdict

import calaudit.human.intervals as intervals_module
from calaudit.human.intervals import HumanIntervals, human_intervals
from calaudit.human.metrics import HUMAN_METRICS, TERM_NAMES, human_metrics, row_terms
from calaudit.predictions.human_labels import human_from_soft, human_from_votes
from calaudit.errors import Location

NAMES = list(HUMAN_METRICS)


def case(n, k=4, votes=(3, 5), seed=0):
    """A miscalibrated model and 3-5 votes per item drawn from a true human distribution."""
    rng = np.random.default_rng(seed)
    truth = rng.dirichlet(np.full(k, 0.7), size=n)
    logits = 2.0 * np.log(truth + 0.03) + rng.normal(0.0, 0.5, (n, k))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    counts = rng.multinomial(rng.integers(votes[0], votes[1] + 1, n), truth).astype(float)
    return proba, human_from_votes(counts, location=Location("votes"))


def run(proba, human, resamples=400, seed=0, **options) -> HumanIntervals:
    estimates = human_metrics(proba, human.distribution)
    return human_intervals(proba, human, estimates=estimates, resamples=resamples, seed=seed, **options)


def width(result, name):
    interval = result.intervals[name]
    return interval.high - interval.low


# --- what every interval promises ----------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 5, 40, 300])
def test_both_intervals_hold_their_estimate_within_the_metric_range(n):
    for seed in range(3):
        proba, human = case(n, seed=seed)
        estimates = human_metrics(proba, human.distribution)
        found = human_intervals(proba, human, estimates=estimates, resamples=200, seed=seed)
        for result in (found.plain, found.with_annotator_noise):
            assert result.resamples == 200 and result.level == 0.95 and result.interval == "basic"
            for name, interval in result.intervals.items():
                info = HUMAN_METRICS[name]
                assert interval.low <= estimates[name] <= interval.high, (n, seed, name, interval)
                assert info.low <= interval.low and interval.high <= info.high, (name, interval)
        finite = {name for name, value in estimates.items() if np.isfinite(value)}
        assert set(found.plain.intervals) == finite
        assert set(found.annotator_noise_shift) == finite


def test_the_same_seed_gives_the_same_intervals_and_another_seed_others():
    proba, human = case(150)
    first, again, other = run(proba, human, seed=7), run(proba, human, seed=7), run(proba, human, seed=8)
    assert first.plain.to_dict() == again.plain.to_dict()
    assert first.with_annotator_noise.to_dict() == again.with_annotator_noise.to_dict()
    assert first.annotator_noise_shift == again.annotator_noise_shift
    assert first.plain.to_dict() != other.plain.to_dict()
    assert first.plain.seed == 7 and first.plain.method == "exact"
    assert first.with_annotator_noise.method == "exact"


def test_the_annotator_noise_interval_is_wider_where_votes_are_few():
    """Redrawing the votes adds their noise a second time (the row bootstrap already
    carries it). For TVD, KL, cross-entropy and |entropy gap| that widens the interval
    by 15-60% here; for the signed entropy gap and agreement the averaging over redraws
    narrows the rows' spread about as much as the redraw noise adds (1.0-1.15 times)."""
    proba, human = case(300, votes=(3, 5), seed=2)
    found = run(proba, human, resamples=1000)
    for name in ("human_tvd", "human_kl", "human_cross_entropy", "human_entropy_gap_abs"):
        assert width(found.with_annotator_noise, name) > 1.1 * width(found.plain, name), name
    for name in ("human_entropy_gap", "human_plurality_agreement"):
        assert width(found.with_annotator_noise, name) > 0.97 * width(found.plain, name), name


def test_the_annotator_noise_interval_is_centred_like_the_plain_one():
    """The nested draws are re-centred on the plain ones: the interval with annotator
    noise is about the same figure as the plain one (centres within 10% of the plain
    width), although the shift, reported apart, is about 1-2 plain widths here."""
    proba, human = case(300, votes=(3, 5), seed=2)
    found = run(proba, human, resamples=1000)
    for name in ("human_tvd", "human_kl", "human_entropy_gap", "human_plurality_agreement"):
        plain, nested = found.plain.intervals[name], found.with_annotator_noise.intervals[name]
        span = plain.high - plain.low
        assert abs(found.annotator_noise_shift[name]) > 0.5 * span, name
        assert abs((nested.low + nested.high) / 2 - (plain.low + plain.high) / 2) < 0.1 * span, name
    assert found.with_annotator_noise.widened == ()  # it holds the estimate without widening


def test_votes_that_cannot_change_give_the_plain_intervals():
    """One vote per item (or unanimous items) cannot be redrawn differently: the nested
    resamples are the plain ones, so both intervals and a zero shift come out."""
    rng = np.random.default_rng(4)
    proba = rng.dirichlet(np.ones(3), size=80)
    one_vote = np.eye(3)[rng.integers(0, 3, 80)]
    for counts in (one_vote, 4.0 * one_vote):
        human = human_from_votes(counts, location=Location("votes"))
        found = run(proba, human, resamples=300)
        for name, interval in found.plain.intervals.items():  # equal up to the order of summation
            nested = found.with_annotator_noise.intervals[name]
            assert (nested.low, nested.high) == pytest.approx((interval.low, interval.high), abs=1e-12), name
        assert all(abs(shift) < 1e-12 for shift in found.annotator_noise_shift.values())


def test_the_nested_resamples_redraw_votes_from_the_multinomial():
    """One item, 2 + 2 votes, the model at 50/50: TVD of a redraw is |B/4 - 1/2| with B ~
    Binomial(4, 1/2): 1/2 w.p. 1/8, 1/4 w.p. 1/2, 0 w.p. 3/8, so its mean is 3/16 above
    the estimate (0). Agreement: the redraw is untied w.p. 5/8."""
    human = human_from_votes(np.array([[2.0, 2.0]]), location=Location("votes"))
    found = run(np.array([[0.5, 0.5]]), human, resamples=20000, seed=1)
    assert found.annotator_noise_shift["human_tvd"] == pytest.approx(3 / 16, abs=0.01)
    assert "human_plurality_agreement" not in found.annotator_noise_shift  # tied: no estimate
    # cross-entropy is linear in H: redrawing leaves its mean where it was
    assert found.annotator_noise_shift["human_cross_entropy"] == pytest.approx(0.0, abs=0.01)


def test_soft_labels_get_no_annotator_noise_interval():
    rng = np.random.default_rng(6)
    proba = rng.dirichlet(np.ones(3), size=60)
    soft = human_from_soft(rng.dirichlet(np.ones(3), size=60), location=Location("soft"), row_sum_tolerance=1e-6)
    found = run(proba, soft)
    assert found.with_annotator_noise is None and found.annotator_noise_shift is None
    assert set(found.plain.intervals) == set(NAMES)


def test_the_nested_bootstrap_can_be_skipped():
    proba, human = case(50)
    found = run(proba, human, annotator_noise=False)
    assert found.with_annotator_noise is None and found.annotator_noise_shift is None
    assert found.plain.intervals == run(proba, human, annotator_noise=True).plain.intervals


def test_a_subset_of_rows_by_mask_or_indices_is_the_subset_itself():
    proba, human = case(200, seed=9)
    hard = np.zeros(200, dtype=bool)
    hard[::3] = True
    sub_proba, sub_human = proba[hard], human.take(hard)
    estimates = human_metrics(sub_proba, sub_human.distribution)
    direct = human_intervals(sub_proba, sub_human, estimates=estimates, resamples=300, seed=3)
    for rows in (hard, np.flatnonzero(hard)):
        found = human_intervals(proba, human, estimates=estimates, resamples=300, seed=3, rows=rows)
        assert found.plain.to_dict() == direct.plain.to_dict()
        assert found.with_annotator_noise.to_dict() == direct.with_annotator_noise.to_dict()


def test_no_rows_and_metrics_without_an_estimate_get_no_interval():
    proba, human = case(30)
    empty = human_intervals(proba, human, estimates={}, resamples=200, rows=np.zeros(30, dtype=bool))
    assert empty.plain.intervals == {} and empty.with_annotator_noise.intervals == {}
    only = human_intervals(proba, human, estimates={"human_tvd": 0.2, "human_kl": math.nan}, resamples=200)
    assert set(only.plain.intervals) == {"human_tvd"}


def test_three_hundred_classes_with_few_votes_stay_exact_and_cheap():
    """A redraw only touches the classes a row has votes for (at most 5 here), whatever K is."""
    proba, human = case(400, k=300, seed=12)
    found = run(proba, human, resamples=300)
    assert found.with_annotator_noise.method == "exact"
    assert intervals_module._Support(proba, human.votes).width <= 5


@pytest.mark.parametrize("scale", [1, 20_000])  # 20,000 x up to 9 votes: beyond the c log c table
def test_the_voted_classes_give_the_same_terms_as_the_full_matrix(scale):
    proba, human = case(500, k=6, votes=(1, 9), seed=13)
    human = human_from_votes(human.votes * scale, location=Location("votes"))
    support = intervals_module._Support(proba, human.votes)
    assert (support._table is None) == (scale > 1)
    counts = np.rint(support.h * support.votes[:, None]).astype(np.int64)  # the observed votes
    compact = support.terms(np.arange(500), counts)
    full = row_terms(proba, human.distribution)
    for j, name in enumerate(TERM_NAMES):
        np.testing.assert_allclose(compact[:, j], full[name], rtol=0, atol=1e-12, err_msg=name)


# --- the cheaper methods agree with the exact ones ------------------------------------


def _assert_close(result, reference, tolerance):
    for name, interval in reference.intervals.items():
        span = interval.high - interval.low
        got = result.intervals[name]
        assert abs(got.low - interval.low) <= tolerance * span, (name, got, interval)
        assert abs(got.high - interval.high) <= tolerance * span, (name, got, interval)


def test_the_grouped_nested_method_agrees_with_the_exact_one(monkeypatch):
    proba, human = case(400, seed=21)
    exact = run(proba, human, resamples=2000, seed=5)
    monkeypatch.setattr(intervals_module, "NESTED_BUDGET", 0.0)
    grouped = run(proba, human, resamples=2000, seed=5)
    assert (exact.with_annotator_noise.method, grouped.with_annotator_noise.method) == ("exact", "grouped")
    # Ends within 12% of the interval's width, shifts within 10% of it (resampling noise
    # of 2,000 resamples and 32 redraws per row).
    _assert_close(grouped.with_annotator_noise, exact.with_annotator_noise, 0.12)
    _assert_close(grouped.plain, exact.plain, 0.12)
    for name, shift in exact.annotator_noise_shift.items():
        assert abs(grouped.annotator_noise_shift[name] - shift) <= 0.1 * width(exact.with_annotator_noise, name)


def test_the_normal_row_bootstrap_agrees_with_the_exact_one(monkeypatch):
    proba, human = case(2000, seed=22)
    exact = run(proba, human, resamples=2000, seed=6)
    monkeypatch.setattr(intervals_module, "ROW_BUDGET", 0.0)
    normal = run(proba, human, resamples=2000, seed=6)
    assert (normal.plain.method, normal.with_annotator_noise.method) == ("normal", "grouped")
    _assert_close(normal.plain, exact.plain, 0.12)
    _assert_close(normal.with_annotator_noise, exact.with_annotator_noise, 0.12)


# --- coverage (tests/human_coverage.py) --------------------------------------------------

#: Repetitions of each model (the overconfident one and the crowd-calibrated one, on
#: disjoint seeds): 2 x 393 = 786 independent repetitions, enough for the pooled
#: binomial test. 100 items, 5 votes, 400 resamples (with 200 the plain interval's
#: pooled coverage is 0.934: the quantile's rank costs a point at B = 200).
REPETITIONS = 393
RESAMPLES = 400
SEEDS = {"overconfident": 5000, "crowd-calibrated": 1_005_000}


@pytest.fixture(scope="module")
def per_run():
    """Both models' per-repetition values (tests/human_coverage.py, :func:`runs`)."""
    return {process: runs(n=100, resamples=RESAMPLES, repetitions=REPETITIONS, seed=seed, process=process)
            for process, seed in SEEDS.items()}


@pytest.fixture(scope="module")
def rates(per_run):
    return summary(per_run["overconfident"])


def _pooled(per_run, interval: str, estimand: str, names) -> np.ndarray:
    """Per repetition of both models, the share of ``names`` whose ``interval`` held
    ``estimand`` (a missing interval counts as a miss)."""
    return np.concatenate([
        per_repetition(np.nan_to_num(np.column_stack([per_run[process][(interval, estimand)][name]
                                                      for name in names]), nan=0.0))
        for process in SEEDS])


def test_the_pooled_coverage_tests_tell_95_from_90_percent():
    trials = len(SEEDS) * REPETITIONS
    passing, failing = probabilities(trials)
    assert passing >= PASS and failing >= CATCH, (trials, cutoff(trials), passing, failing)


def test_the_simulated_estimands_are_what_they_claim():
    depth, crowd = estimands()["depth"], estimands()["crowd"]
    # Five votes make H look more certain than the crowd: entropy gap and KL run high.
    assert depth["human_entropy_gap"] > crowd["human_entropy_gap"] + 0.1
    assert depth["human_kl"] > crowd["human_kl"] + 0.1
    # Cross-entropy is linear in H: the same at any depth (up to Monte Carlo noise).
    assert depth["human_cross_entropy"] == pytest.approx(crowd["human_cross_entropy"], abs=0.005)
    # Fewer votes, more bias: the figure depends on the annotation depth.
    three = estimands(votes=3)["depth"]
    assert three["human_kl"] > depth["human_kl"] + 0.05 and three["human_tvd"] > depth["human_tvd"]
    assert three["human_cross_entropy"] == pytest.approx(crowd["human_cross_entropy"], abs=0.005)


def test_every_interval_holds_its_estimate_in_the_simulation(rates):
    for interval in INTERVALS:
        assert all(rate == 1.0 for rate in rates[(interval, "estimate")].values()), rates[(interval, "estimate")]


def test_the_plain_interval_covers_the_value_at_this_annotation_depth(rates, per_run):
    """Measured 0.916-0.980 over every metric, 100-1,000 items, 3 or 5 votes and both
    models (300-500 repetitions; docs/metrics.md, section 13). Pooled over the six
    metrics and both models, the exact binomial test (a 95% interval passes with
    probability 0.999, a 90% one fails with probability 0.99); one metric at a time, a
    floor of 0.88 over 393 repetitions only catches a metric far below."""
    covered = rates[("plain", "depth")]
    assert set(covered) == set(NAMES)
    assert all(0.88 <= rate <= 0.995 for rate in covered.values()), covered
    passed, account = verdict(_pooled(per_run, "plain", "depth", NAMES))
    assert passed, account


def test_both_intervals_cover_the_crowd_cross_entropy(per_run):
    """Cross-entropy is linear in H, so its plug-in value is unbiased for the crowd's
    (measured 0.926-0.980 plain; 0.973-0.993 with annotator noise, which counts the vote
    noise twice: the row bootstrap already carries it). One metric over 786 independent
    repetitions of both models: each interval must pass the binomial test on its own."""
    for interval in INTERVALS:
        passed, account = verdict(_pooled(per_run, interval, "crowd", ["human_cross_entropy"]))
        assert passed, (interval, account)


def test_the_annotator_noise_interval_covers_the_value_at_this_annotation_depth(rates, per_run):
    """Re-centred on the plain draws and wider, it covers the depth-5 value at least at
    the nominal rate for every metric (measured 0.944-1.000 over every setting: 0.98-1.00
    for TVD and KL, 0.94-0.98 for agreement and the entropy gaps): the pooled binomial
    test, and a floor of 0.90 per metric."""
    covered = rates[("annotator noise", "depth")]
    assert set(covered) == set(NAMES)
    assert all(rate >= 0.90 for rate in covered.values()), covered
    passed, account = verdict(_pooled(per_run, "annotator noise", "depth", NAMES))
    assert passed, account


def test_the_shift_has_the_sign_of_the_few_votes_bias_and_part_of_its_size(rates):
    """Redraws start from the observed H, which is already more certain than the crowd,
    so they find only part of the bias (5 votes, overconfident model: 55% for TVD, 62%
    for KL and the entropy gap, 75% for agreement; less with 3 votes or for a
    crowd-calibrated model): the shift is reported as a lower estimate of it."""
    depth, crowd = estimands()["depth"], estimands()["crowd"]
    shift = rates[("shift", "mean")]
    for name in ("human_tvd", "human_kl", "human_entropy_gap", "human_plurality_agreement"):
        bias = depth[name] - crowd[name]
        assert 0.3 * abs(bias) < shift[name] * math.copysign(1.0, bias) < 0.8 * abs(bias), (name, shift, bias)


def test_neither_interval_covers_the_crowd_value_of_the_biased_metrics(rates):
    """The shift is not subtracted, so the interval with annotator noise does not move
    towards the crowd: for TVD, KL and the entropy gap neither interval holds the
    unlimited crowd's value (measured at most 0.022 over every setting)."""
    for interval in INTERVALS:
        for name in ("human_tvd", "human_kl", "human_entropy_gap"):
            assert rates[(interval, "crowd")][name] <= 0.05, (interval, name)


def test_the_annotator_noise_interval_is_wider_on_average(rates):
    """Measured 1.05-1.71 times the plain width on average (KL 1.5-1.7, TVD 1.3, the
    signed entropy gap 1.05-1.15, agreement 1.07-1.13)."""
    plain, noisy = rates[("plain", "width")], rates[("annotator noise", "width")]
    assert all(noisy[name] > plain[name] for name in NAMES), (plain, noisy)


@pytest.fixture(scope="module")
def calibrated_rates(per_run):
    return summary(per_run["crowd-calibrated"])


def test_a_model_that_knows_the_crowd_still_shows_distance_at_five_votes(calibrated_rates):
    """``P = H_true``: every crowd value is at its best, yet five votes put the plug-in
    TVD near 0.19 and |entropy gap| near 0.25. Both intervals cover those depth-5
    values; neither reaches the crowd's 0 for TVD or |entropy gap|; both cover the
    crowd's cross-entropy (docs/metrics.md, section 13)."""
    depth, crowd = estimands("crowd-calibrated")["depth"], estimands("crowd-calibrated")["crowd"]
    assert crowd["human_tvd"] == 0.0 and crowd["human_kl"] == 0.0 and crowd["human_entropy_gap_abs"] == 0.0
    assert depth["human_tvd"] > 0.15 and depth["human_entropy_gap_abs"] > 0.2
    # Per-metric floors (the pooled binomial tests above include this model). The
    # lowest, agreement's plain interval, covers about 0.925 here (1,000 repetitions):
    # 0.88 is over 3 binomial sd below that at 393 repetitions.
    assert all(0.88 <= rate <= 1.0 for rate in calibrated_rates[("plain", "depth")].values())
    assert all(rate >= 0.88 for rate in calibrated_rates[("annotator noise", "depth")].values())
    for interval in INTERVALS:
        assert calibrated_rates[(interval, "crowd")]["human_tvd"] <= 0.05
        assert calibrated_rates[(interval, "crowd")]["human_entropy_gap_abs"] <= 0.05
        assert calibrated_rates[(interval, "crowd")]["human_cross_entropy"] >= 0.88


def test_the_coverage_table_lists_every_metric_and_estimand(rates):
    assert set(ESTIMANDS) == {"depth", "crowd"}
    for key in [(interval, estimand) for interval in INTERVALS for estimand in ESTIMANDS]:
        assert set(rates[key]) == set(NAMES), key
    assert set(rates[("shift", "mean")]) == set(NAMES)


# --- the nested bootstrap's agree/counted covariance (issue 19) ----------------------


def _exact_vote_moments(votes, top):
    """Mean and covariance of (agree, counted) under a redraw Multinomial(n, votes / n),
    by enumerating every outcome (independent of intervals.py): counted when the largest
    count is unique, agree when that class is the model's top class ``top``."""
    from itertools import product

    from scipy.stats import multinomial

    n = int(sum(votes))
    law = multinomial(n, np.asarray(votes, dtype=float) / n)
    moments = np.zeros(5)  # E[a], E[c], E[a a], E[a c], E[c c]
    for outcome in product(range(n + 1), repeat=len(votes)):
        if sum(outcome) != n:
            continue
        p = law.pmf(outcome)
        counted = float(list(outcome).count(max(outcome)) == 1)
        agree = counted * float(int(np.argmax(outcome)) == top)
        moments += p * np.array([agree, counted, agree * agree, agree * counted, counted * counted])
    mean_a, mean_c = moments[:2]
    return np.array([mean_a, mean_c]), np.array([[moments[2] - mean_a**2, moments[3] - mean_a * mean_c],
                                                  [moments[3] - mean_a * mean_c, moments[4] - mean_c**2]])


@pytest.mark.parametrize(("votes", "proba"), [
    ((2, 2), (0.7, 0.3)),  # a 2-2 tie: the redraw is tied 6 times in 16
    ((2, 2, 2, 0), (0.1, 0.6, 0.2, 0.1)),  # a three-way tie among four classes
    ((4, 2), (0.2, 0.8)),  # the model's top class is the runner-up
])
def test_the_redraws_agree_and_counted_moments_match_the_multinomial_exactly(votes, proba):
    """Even vote counts and many ties, where agreement's noise is mostly in `counted`:
    each row's 32 redraws estimate E and Cov of (agree, counted) without bias (ddof 1);
    over 3,000 identical rows the averages must equal the enumerated law within 4
    standard errors (about 0.5% of the variances)."""
    n_rows = 3000
    counts = np.tile(np.asarray(votes, dtype=float), (n_rows, 1))
    p = np.tile(np.asarray(proba), (n_rows, 1))
    support = intervals_module._Support(p, counts)
    mean, _, pair = intervals_module._redraw_moments(np.random.default_rng(3), support, n_rows)
    agree, counted = TERM_NAMES.index("agree"), TERM_NAMES.index("counted")
    expected_mean, expected = _exact_vote_moments(votes, int(np.argmax(proba)))
    estimates = {"mean agree": (mean[:, agree], expected_mean[0]), "mean counted": (mean[:, counted], expected_mean[1]),
                 "var agree": (pair[:, 0], expected[0, 0]), "cov": (pair[:, 1], expected[0, 1]),
                 "var counted": (pair[:, 2], expected[1, 1])}
    for name, (values, truth) in estimates.items():
        error = 4 * values.std() / np.sqrt(n_rows) + 1e-12
        assert abs(values.mean() - truth) <= error, (name, values.mean(), truth, error)
    assert expected[0, 1] > 0.01  # agree implies counted: a real covariance to get right


@pytest.mark.parametrize("votes", [(2, 2), (2, 2, 2, 0)])
def test_the_grouped_nested_sums_carry_the_agree_counted_covariance_of_the_exact_method(votes):
    """All rows alike, so the nested sums' spread is pure vote noise: N times the
    multinomial covariance. The exact method redraws every drawn row; the grouped one
    adds normal noise from the rows' redraw moments through a Cholesky factor. Both
    covariance matrices of the resampled (agree, counted) sums must match N * Cov (the
    grouped one is 1/32 high by construction: the rows' mean terms, each from 32
    redraws, vary too) within 10% of the variances."""
    n_rows, resamples = 200, 3000
    counts = np.tile(np.asarray(votes, dtype=float), (n_rows, 1))
    proba = np.tile(np.linspace(0.6, 0.4, len(votes)) / np.linspace(0.6, 0.4, len(votes)).sum(), (n_rows, 1))
    human = human_from_votes(counts, location=Location("votes"))
    support = intervals_module._Support(proba, counts)
    terms = row_terms(proba, human.distribution, tie_tolerance=human.tie_tolerance)
    table = np.column_stack([terms[name] for name in TERM_NAMES])
    _, expected = _exact_vote_moments(votes, 0)
    expected *= n_rows
    columns = [TERM_NAMES.index("agree"), TERM_NAMES.index("counted")]
    _, exact = intervals_module._exact_nested(np.random.default_rng(1), table, support, resamples)
    _, grouped = intervals_module._grouped_nested(np.random.default_rng(2), table, support, resamples, True)
    scale = np.sqrt(np.outer(np.diag(expected), np.diag(expected)))
    for name, sums, inflation in (("exact", exact, 1.0), ("grouped", grouped, 1.0 + 1.0 / intervals_module.REDRAWS)):
        found = np.cov(sums[:, columns].T)
        assert np.all(np.abs(found - inflation * expected) <= 0.10 * scale), (name, found, expected)

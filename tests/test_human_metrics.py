"""The human metrics (calaudit/human/metrics.py) against an independent reference.

The reference below is written from the definitions of docs/metrics.md, section 13
(Baan et al. 2022: DistCE = TVD, EntCE = the absolute entropy gap) with plain Python
loops over rows and classes and ``math.log``; a second one uses scipy's
``rel_entr`` / ``entropy``. Neither shares code with calaudit.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import rel_entr
from scipy.stats import entropy as scipy_entropy

from calaudit.human.metrics import HUMAN_METRICS, TERM_NAMES, human_metrics, metrics_from_terms, row_terms

EPS = 2.220446049250313e-16
#: Two shares closer than this tie for the plurality (docs/metrics.md, section 13).
TIE = 1e-9
TOL = 1e-12
NAMES = ["human_tvd", "human_kl", "human_cross_entropy", "human_entropy_gap", "human_entropy_gap_abs",
         "human_plurality_agreement"]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- the reference: loops over rows and classes, from the definitions ---------------


def ref_entropy(row):
    return -sum(v * math.log(v) for v in row if v > 0)


def ref_metrics(proba, human):
    tvd, kl, ce, gap, abs_gap = [], [], [], [], []
    agree = counted = 0
    for p_row, h_row in zip(np.asarray(proba).tolist(), np.asarray(human).tolist()):
        tvd.append(0.5 * sum(abs(p - h) for p, h in zip(p_row, h_row)))
        kl.append(sum(h * (math.log(h) - math.log(max(p, EPS))) for p, h in zip(p_row, h_row) if h > 0))
        ce.append(-sum(h * math.log(max(p, EPS)) for p, h in zip(p_row, h_row) if h > 0))
        difference = ref_entropy(p_row) - ref_entropy(h_row)
        gap.append(difference)
        abs_gap.append(abs(difference))
        top = max(h_row)
        winners = [k for k, h in enumerate(h_row) if h >= top - TIE]
        if len(winners) == 1:
            counted += 1
            agree += p_row.index(max(p_row)) == winners[0]  # first index on a tie of P
    n = len(tvd)
    return {
        "human_tvd": sum(tvd) / n, "human_kl": sum(kl) / n, "human_cross_entropy": sum(ce) / n,
        "human_entropy_gap": sum(gap) / n, "human_entropy_gap_abs": sum(abs_gap) / n,
        "human_plurality_agreement": agree / counted if counted else float("nan"),
    }


def scipy_metrics(proba, human):
    """TVD, KL, cross-entropy and entropy gap through scipy (rel_entr: x log(x/y), 0 at x = 0)."""
    floored = np.maximum(proba, EPS)
    kl = rel_entr(human, floored).sum(axis=1)
    entropy_h = scipy_entropy(human, axis=1)
    entropy_p = scipy_entropy(proba, axis=1)
    return {
        "human_tvd": 0.5 * np.abs(proba - human).sum(axis=1).mean(), "human_kl": kl.mean(),
        "human_cross_entropy": (kl + entropy_h).mean(), "human_entropy_gap": (entropy_p - entropy_h).mean(),
        "human_entropy_gap_abs": np.abs(entropy_p - entropy_h).mean(),
    }


def random_case(rng, n, k, votes=5):
    """Model probabilities with some exact zeros and tiny values, votes-based H (with zeros and ties)."""
    proba = rng.dirichlet(np.full(k, 0.5), size=n)
    proba[rng.random((n, k)) < 0.15] = 0.0
    proba[rng.random((n, k)) < 0.05] = 1e-300
    proba[proba.sum(axis=1) == 0, 0] = 1.0
    proba /= proba.sum(axis=1, keepdims=True)
    counts = rng.multinomial(votes, rng.dirichlet(np.full(k, 0.7), size=n)).astype(float)
    return proba, counts / votes


# --- against the references ----------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("shape", [(1, 2), (7, 3), (60, 5), (40, 12)])
def test_every_metric_matches_the_loop_reference(seed, shape):
    proba, human = random_case(np.random.default_rng(seed), *shape)
    got = human_metrics(proba, human)
    want = ref_metrics(proba, human)
    assert list(got) == NAMES
    for name in NAMES:
        if math.isnan(want[name]):
            assert math.isnan(got[name]), name
        else:
            assert got[name] == pytest.approx(want[name], abs=TOL, rel=TOL), name


@pytest.mark.parametrize("seed", range(4))
def test_soft_labels_without_zeros_match_scipy(seed):
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(6), size=80)
    human = rng.dirichlet(np.ones(6) * 2.0, size=80)
    got = human_metrics(proba, human)
    for name, value in scipy_metrics(proba, human).items():
        assert got[name] == pytest.approx(value, abs=TOL, rel=TOL), name


def test_three_hundred_classes_over_many_row_blocks():
    rng = np.random.default_rng(3)
    proba, human = random_case(rng, 2000, 300, votes=7)  # 2,000 rows of 300 classes: about ten blocks
    got = human_metrics(proba, human)
    for name, value in scipy_metrics(proba, human).items():
        assert got[name] == pytest.approx(value, abs=TOL, rel=TOL), name
    assert got["human_plurality_agreement"] == pytest.approx(ref_metrics(proba, human)["human_plurality_agreement"])


def test_row_terms_are_the_per_row_definitions():
    proba, human = random_case(np.random.default_rng(11), 30, 4)
    terms = row_terms(proba, human)
    assert list(terms) == list(TERM_NAMES)
    for i in range(30):
        one = ref_metrics(proba[i : i + 1], human[i : i + 1])
        for name in NAMES[:5]:
            assert terms[name][i] == pytest.approx(one[name], abs=TOL), (i, name)
        tied = math.isnan(one["human_plurality_agreement"])
        assert terms["counted"][i] == (0.0 if tied else 1.0)
        assert terms["agree"][i] == (0.0 if tied else one["human_plurality_agreement"])
    assert metrics_from_terms(terms) == human_metrics(proba, human)


# --- hand-built cases ------------------------------------------------------------------


def test_agreement_leaves_out_tied_rows_and_counts_them():
    human = np.array([[0.5, 0.5, 0.0],  # tied: left out although the model picks one of them
                      [0.6, 0.4, 0.0],  # plurality 0, model says 0: agrees
                      [0.2, 0.8, 0.0],  # plurality 1, model says 0: disagrees
                      [0.4, 0.4, 0.2]])  # tied again
    proba = np.array([[0.9, 0.1, 0.0], [0.7, 0.2, 0.1], [0.5, 0.3, 0.2], [0.1, 0.8, 0.1]])
    terms = row_terms(proba, human)
    assert terms["counted"].tolist() == [0.0, 1.0, 1.0, 0.0]
    assert terms["agree"].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert human_metrics(proba, human)["human_plurality_agreement"] == 0.5


def test_agreement_is_undefined_when_every_row_is_tied():
    human = np.array([[0.5, 0.5], [0.5, 0.5]])
    values = human_metrics(np.array([[0.9, 0.1], [0.2, 0.8]]), human)
    assert math.isnan(values["human_plurality_agreement"])
    assert values["human_tvd"] == pytest.approx((0.4 + 0.3) / 2)


def test_a_tie_of_the_model_goes_to_the_first_class():
    proba = np.array([[0.4, 0.4, 0.2], [0.4, 0.4, 0.2]])
    human = np.array([[0.8, 0.2, 0.0], [0.2, 0.8, 0.0]])
    assert row_terms(proba, human)["agree"].tolist() == [1.0, 0.0]


def test_zeros_follow_zero_log_zero_and_the_eps_floor():
    proba = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.0]])
    human = np.array([[1.0, 0.0, 0.0], [0.6, 0.4, 0.0], [0.5, 0.5, 0.0]])
    terms = row_terms(proba, human)
    # Row 0: identical one-hots, everything 0 (0 log 0 = 0 in both entropies, no eps in them).
    assert [terms[name][0] for name in NAMES[:5]] == [0.0, 0.0, 0.0, 0.0, 0.0]
    # Row 1: people gave 60% to a class the model ruled out: the eps floor keeps it finite.
    assert terms["human_cross_entropy"][1] == pytest.approx(-0.6 * math.log(EPS), rel=TOL)
    assert terms["human_kl"][1] == pytest.approx(0.6 * math.log(0.6 / EPS) + 0.4 * math.log(0.4), rel=TOL)
    assert terms["human_tvd"][1] == pytest.approx(0.6)
    assert terms["human_entropy_gap"][1] == pytest.approx(-(-0.6 * math.log(0.6) - 0.4 * math.log(0.4)))
    assert terms["human_kl"][2] == 0.0 and terms["human_tvd"][2] == 0.0


def test_probabilities_below_eps_keep_their_own_entropy():
    """No eps inside entropy(P): a probability of 1e-300 contributes -p log p, not -p log eps."""
    proba = np.array([[1.0 - 1e-300, 1e-300]])
    human = np.array([[0.5, 0.5]])
    terms = row_terms(proba, human)
    assert terms["human_entropy_gap"][0] == pytest.approx(1e-300 * 690.77552789821368 - math.log(2.0), rel=1e-12)
    assert terms["human_cross_entropy"][0] == pytest.approx(-0.5 * math.log(EPS), rel=TOL)


def test_inputs_are_read_only_and_untouched():
    proba, human = random_case(np.random.default_rng(5), 20, 4)
    before = (proba.copy(), human.copy())
    proba.flags.writeable = False
    human.flags.writeable = False
    human_metrics(proba, human)
    assert np.array_equal(proba, before[0]) and np.array_equal(human, before[1])


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match=r"same \(N, K\) shape"):
        row_terms(np.full((3, 2), 0.5), np.full((3, 3), 1 / 3))


def test_no_rows_gives_nan_everywhere():
    values = human_metrics(np.zeros((0, 3)), np.zeros((0, 3)))
    assert list(values) == NAMES and all(math.isnan(value) for value in values.values())


def test_registry_names_directions_and_ranges():
    assert list(HUMAN_METRICS) == NAMES
    assert [HUMAN_METRICS[name].better for name in NAMES] == ["lower", "lower", "lower", "zero", "lower", "higher"]
    assert (HUMAN_METRICS["human_tvd"].low, HUMAN_METRICS["human_tvd"].high) == (0.0, 1.0)
    assert HUMAN_METRICS["human_entropy_gap"].low == -math.inf
    # KL and cross-entropy cannot exceed -log(eps): every log is floored there.
    assert HUMAN_METRICS["human_kl"].high == HUMAN_METRICS["human_cross_entropy"].high == pytest.approx(-math.log(EPS))
    for info in HUMAN_METRICS.values():
        assert info.interval and not info.binned and info.definition and info.meaning


# --- properties ------------------------------------------------------------------------

_share = st.one_of(st.just(0.0), st.just(1e-300), st.floats(1e-6, 1.0))


@st.composite
def paired_distributions(draw):
    """``(P, H)``: rows of K shares with exact zeros and tiny values, each summing to 1."""
    k = draw(st.integers(2, 6))
    n = draw(st.integers(1, 6))

    def matrix():
        values = np.array(draw(st.lists(st.lists(_share, min_size=k, max_size=k), min_size=n, max_size=n)))
        values[values.sum(axis=1) == 0, 0] = 1.0
        return values / values.sum(axis=1, keepdims=True)

    return matrix(), matrix()


@SETTINGS
@given(paired_distributions())
def test_a_model_that_says_what_people_said_is_at_zero(pair):
    _, human = pair
    values = human_metrics(human, human)
    assert values["human_tvd"] == 0.0
    assert values["human_kl"] == 0.0
    assert values["human_entropy_gap"] == 0.0 and values["human_entropy_gap_abs"] == 0.0
    assert values["human_cross_entropy"] == pytest.approx(np.mean([ref_entropy(row) for row in human]), abs=TOL)
    agreement = values["human_plurality_agreement"]
    assert math.isnan(agreement) or agreement == 1.0


@SETTINGS
@given(paired_distributions())
def test_ranges_and_identities(pair):
    proba, human = pair
    values = human_metrics(proba, human)
    assert values["human_kl"] >= 0.0
    assert 0.0 <= values["human_tvd"] <= 1.0
    assert values["human_cross_entropy"] >= 0.0
    assert values["human_cross_entropy"] <= HUMAN_METRICS["human_cross_entropy"].high + TOL
    assert values["human_entropy_gap_abs"] >= abs(values["human_entropy_gap"]) - TOL
    entropy_h = np.mean([ref_entropy(row) for row in human])
    assert values["human_cross_entropy"] == pytest.approx(values["human_kl"] + entropy_h, abs=1e-10)
    agreement = values["human_plurality_agreement"]
    assert math.isnan(agreement) or 0.0 <= agreement <= 1.0
    want = ref_metrics(proba, human)
    for name in NAMES:
        if math.isnan(want[name]):
            assert math.isnan(values[name])
        else:
            assert values[name] == pytest.approx(want[name], abs=1e-10, rel=1e-10), name

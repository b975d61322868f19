"""The human-label analysis through the audit API and the CLI: the JSON ``human``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from calaudit import audit
from calaudit.errors import UsageError
from calaudit.result import AuditResult

ROOT = Path(__file__).resolve().parent.parent
CROWD = ROOT / "sample_data" / "crowd" / "predictions.csv"


def _crowd(n=600, k=3, seed=0, votes_per_item=5):
    rng = np.random.default_rng(seed)
    truth = rng.dirichlet(np.full(k, 0.7), size=n)
    votes = rng.multinomial(votes_per_item, truth)
    logits = 3.0 * np.log(np.maximum(truth, 0.02)) + rng.normal(0, 0.5, size=(n, k))
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    return proba / proba.sum(axis=1, keepdims=True), votes


def _tvd(p, h):
    return float(np.mean(0.5 * np.abs(p - h).sum(axis=1)))


def test_votes_without_labels_audit_against_the_plurality_and_the_crowd():
    proba, votes = _crowd()
    result = audit(None, proba, votes=votes, bootstrap=200, seed=1)
    human = result.human
    h = votes / votes.sum(axis=1, keepdims=True)
    assert human.kind == "votes" and human.label_from == "plurality"
    assert human.metrics["human_tvd"] == pytest.approx(_tvd(proba, h), abs=1e-12)
    assert human.n_annotators == {"min": 5.0, "median": 5.0, "max": 5.0}
    tied = (np.sort(h, axis=1)[:, -1] == np.sort(h, axis=1)[:, -2])
    assert human.tied_rows == int(tied.sum()) > 0
    # The audit's labels are the plurality where it is unique.
    # (accuracy of the model against them, computed independently)
    labels = np.argmax(h, axis=1)
    right = (np.argmax(proba, axis=1) == labels)[~tied]
    agreement = human.metrics["human_plurality_agreement"]
    assert agreement == pytest.approx(right.mean(), abs=1e-12)


def test_hard_and_easy_parts_partition_the_rows_with_their_own_figures():
    proba, votes = _crowd(seed=2)
    result = audit(None, proba, votes=votes, bootstrap=200, seed=0)
    human = result.human
    h = votes / votes.sum(axis=1, keepdims=True)
    assert human.hard.n + human.easy.n == proba.shape[0]
    assert human.hard.share == pytest.approx(human.hard.n / proba.shape[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(h > 0, h * np.log(np.where(h > 0, h, 1)), 0).sum(axis=1)
    hard = entropy >= human.split.threshold - 1e-9
    assert human.hard.n == int(hard.sum())
    assert human.hard.metrics["human_tvd"] == pytest.approx(_tvd(proba[hard], h[hard]), abs=1e-12)
    assert human.hard.confidence == pytest.approx(proba[hard].max(axis=1).mean())
    assert human.hard.human_share == pytest.approx(h[hard].max(axis=1).mean())
    # People disagree on the hard rows, by construction of the split.
    assert human.hard.human_share < human.easy.human_share
    for part in (human.hard, human.easy):
        for name, value in part.metrics.items():
            interval = part.intervals.intervals[name]
            assert interval.low <= value <= interval.high


@pytest.mark.parametrize("split", ["70/30", "0", "median"])
def test_model_share_of_each_part_against_an_independent_computation(split):
    """``model_share``: the mean probability the model gave the most common human answer,
    a tied row counting the mean over its tied classes (each equally likely to be "the"
    answer; the first tied class would favour the classes listed first). Computed here
    row by row from the vote counts, with ties found on the counts themselves."""
    proba, votes = _crowd(n=400, k=4, seed=5, votes_per_item=4)  # 4 votes: many 2-2 and 1-1-1-1 ties
    human = audit(None, proba, votes=votes, bootstrap=0, hard_split=split).human
    h = votes / votes.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(h > 0, h * np.log(np.where(h > 0, h, 1)), 0).sum(axis=1)
    threshold = float(np.median(entropy)) if split == "median" else {"70/30": 0.6108643020548935, "0": 0.0}[split]
    hard = (entropy >= threshold - 1e-9) & (entropy > 1e-9)
    shares = []
    for row in range(proba.shape[0]):  # a plain loop over rows: the independent reference
        top = max(votes[row])
        tied = [k for k in range(4) if votes[row][k] == top]
        shares.append(sum(proba[row][k] for k in tied) / len(tied))
    shares = np.array(shares)
    ties = np.array([list(v).count(max(v)) > 1 for v in votes])
    assert ties[hard].sum() > 20  # the parts hold many ties to get right
    for part, rows in ((human.hard, hard), (human.easy, ~hard)):
        assert part.n == int(rows.sum())
        if part.n:
            assert part.model_share == pytest.approx(float(shares[rows].mean()), abs=1e-12), part.name
            assert part.human_share == pytest.approx(float(h[rows].max(axis=1).mean()), abs=1e-12)
            assert part.confidence == pytest.approx(float(proba[rows].max(axis=1).mean()), abs=1e-12)


def test_both_intervals_hold_the_figure_and_annotator_noise_widens_them():
    proba, votes = _crowd(n=800, seed=3, votes_per_item=3)
    human = audit(None, proba, votes=votes, bootstrap=300, seed=0).human
    wider = 0
    for name, value in human.metrics.items():
        plain = human.intervals.intervals[name]
        noisy = human.intervals_with_annotator_noise.intervals[name]
        assert plain.low <= value <= plain.high and noisy.low <= value <= noisy.high
        wider += (noisy.high - noisy.low) > (plain.high - plain.low)
    assert wider >= len(human.metrics) - 1
    assert set(human.annotator_noise_shift) == set(human.metrics)


def test_soft_labels_have_no_annotator_interval_and_say_why():
    proba, votes = _crowd(seed=4)
    soft = votes / votes.sum(axis=1, keepdims=True)
    human = audit(None, proba, soft_labels=soft, bootstrap=200).human
    assert human.kind == "soft" and human.n_annotators is None
    assert human.intervals is not None and human.intervals_with_annotator_noise is None
    assert any("no vote counts" in note for note in human.notes)


def test_labels_given_are_used_and_the_json_round_trips():
    proba, votes = _crowd(seed=5)
    labels = np.argmax(proba, axis=1)  # any labels: here the model is always "right"
    result = audit(labels, proba, votes=votes, bootstrap=0)
    assert result.human.label_from == "labels" and result.metrics["accuracy"] == 1.0
    data = json.loads(json.dumps(result.to_dict()))
    assert set(data["human"]) >= {"n_annotators", "metrics", "intervals", "intervals_with_annotator_noise", "hard",
                                  "easy", "split", "tied_rows"}
    assert data["human"]["split"]["rule"] == "70/30"
    again = AuditResult.from_dict(data)
    assert again.human.to_dict() == result.human.to_dict()


def test_api_errors():
    proba, votes = _crowd(n=50)
    with pytest.raises(UsageError, match="y_true is None"):
        audit(None, proba)
    with pytest.raises(UsageError, match=r"shape \(50, 2\) does not match the predictions' \(50, 3\)"):
        audit(None, proba, votes=votes[:, :2] + 1)
    with pytest.raises(UsageError, match="not both"):
        audit(None, proba, votes=votes, soft_labels=votes / votes.sum(axis=1, keepdims=True))


def test_sample_crowd_file_through_the_cli(tmp_path):
    from click.testing import CliRunner

    from calaudit.cli import cli

    out = tmp_path / "audit.json"
    run = CliRunner().invoke(cli, ["run", str(CROWD), "--json", str(out), "--bootstrap", "200", "-q"])
    assert run.exit_code == 0, run.output
    data = json.loads(out.read_text())
    human = data["human"]
    votes = np.loadtxt(CROWD, delimiter=",", skiprows=1, usecols=(4, 5, 6))
    counts = votes.sum(axis=1)
    assert human["n_annotators"] == {"min": counts.min(), "median": float(np.median(counts)), "max": counts.max()}
    assert human["label_from"] == "plurality"
    assert "votes_negative" not in data["input"].get("extra_columns", [])


def test_human_metrics_can_be_gated_in_run_and_check(tmp_path):
    from click.testing import CliRunner

    from calaudit.cli import cli

    out = tmp_path / "audit.json"
    runner = CliRunner()
    run = runner.invoke(cli, ["run", str(CROWD), "--json", str(out), "--bootstrap", "0", "-q"])
    assert run.exit_code == 0, run.output
    tvd = json.loads(out.read_text())["human"]["metrics"]["human_tvd"]
    passed = runner.invoke(cli, ["check", str(out), "--fail-if", f"human_tvd>{tvd + 0.01}", "-q"])
    assert passed.exit_code == 0, passed.output
    failed = runner.invoke(cli, ["check", str(out), "--fail-if", f"human_tvd>{tvd - 0.01}"])
    assert failed.exit_code == 1 and "human_tvd" in failed.output
    # A model audited without votes cannot pass a gate on a human metric.
    digits = ROOT / "sample_data" / "digits_gaussian_nb.csv"
    missing = runner.invoke(cli, ["run", str(digits), "--bootstrap", "0", "--fail-if", "human_kl>1", "-q"])
    assert missing.exit_code == 1 and "human_kl was not computed" in missing.output


def test_explicit_label_column_that_is_missing_is_an_error_even_with_votes(tmp_path):
    from click.testing import CliRunner

    from calaudit.cli import cli

    run = CliRunner().invoke(cli, ["run", str(CROWD), "--label-col", "truth", "--bootstrap", "0"])
    assert run.exit_code == 3
    assert "no label column 'truth' (given with --label-col)" in run.output

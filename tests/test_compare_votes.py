"""``calaudit compare`` with human votes: each model's human metrics, the paired human
differences, the ranking by closeness to people, votes given once (``--votes FILE``)
and votes that disagree between inputs (issue 22, sections 1 and 4)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from clitools import error_line, invoke

from calaudit.decisions.alignment import align_predictions
from calaudit.decisions.compare import paired_differences, paired_draws, rank_models
from calaudit.decisions.compare_human import HUMAN_DIFFERENCES, human_terms, rank_by_people
from calaudit.decisions.comparison_result import Ranking
from calaudit.errors import Location
from calaudit.predictions.human_labels import human_from_votes
from calaudit.predictions.value import Predictions
from calaudit.stats.bootstrap import exact_block_size

EPS = np.finfo(float).eps
CLASSES = ("neg", "neu", "pos")


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _crowd(n: int, seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """5 votes per item from a crowd split; three models: sharper than the crowd, close
    to it, and one that says the same confidence everywhere, its accuracy (well
    calibrated against the plurality vote, far from how people split)."""
    rng = np.random.default_rng(seed)
    truth = np.array([rng.dirichlet(np.full(3, 2.0 if rng.random() < 0.35 else 0.3)) for _ in range(n)])
    votes = rng.multinomial(5, truth).astype(float)
    logs = np.log(np.maximum(truth, 0.02))
    sharp = _softmax(3.0 * logs + rng.normal(0, 0.7, (n, 3)))
    close = _softmax(logs + rng.normal(0, 0.4, (n, 3)))
    top = np.argmax(logs + rng.normal(0, 0.6, (n, 3)), axis=1)
    # As sure as it is right against the plurality vote: calibrated for the labels, blind to the split.
    sure = float(np.mean(top == human_from_votes(votes, location=Location("votes")).plurality_labels(seed=0)))
    flat = np.full((n, 3), (1.0 - sure) / 2)
    flat[np.arange(n), top] = sure
    return votes, [sharp, close, flat]


def _hand_terms(proba: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-item cross-entropy and TVD against the human split, by hand."""
    ce = np.array([-sum(h[i, k] * np.log(max(proba[i, k], EPS)) for k in range(h.shape[1]))
                   for i in range(h.shape[0])])
    tvd = np.array([0.5 * sum(abs(proba[i, k] - h[i, k]) for k in range(h.shape[1])) for i in range(h.shape[0])])
    return ce, tvd


def _sets(votes: np.ndarray, probas: list[np.ndarray]) -> list[Predictions]:
    human = human_from_votes(votes, location=Location("votes"))
    labels = human.plurality_labels(seed=0)
    return [dataclasses.replace(Predictions.from_arrays(labels, p), human=human) for p in probas]


def _paired(sets, names, *, resamples=200, seed=3):
    """The comparison's paired draws and differences of ECE and the human metrics (the
    smooth ECE and the other metrics left out: they cost most and are tested elsewhere)."""
    from calaudit.human.metrics import HUMAN_METRICS, human_metrics
    from calaudit.stats.metric_info import METRICS
    from calaudit.stats.metrics import compute_metrics

    draws = paired_draws(sets, n_bins=15, resamples=resamples, seed=seed, metrics=frozenset({"ece"}),
                         terms=human_terms(sets))
    references = [{"ece": compute_metrics(p.y_true, p.y_proba, n_bins=15).values["ece"],
                   **human_metrics(p.y_proba, p.human.distribution)} for p in sets]
    compared = {"ece": METRICS["ece"], **{m: HUMAN_METRICS[m] for m in HUMAN_DIFFERENCES}}
    differences, _ = paired_differences(names, references, draws, metrics=compared)
    return references, differences


def test_human_differences_are_paired_on_the_same_resamples_and_match_hand_figures():
    votes, probas = _crowd(300, seed=1)
    names = ["sharp", "close", "flat"]
    sets = _sets(votes, probas)
    _, differences = _paired(sets, names)
    h = votes / votes.sum(axis=1, keepdims=True)
    terms = [_hand_terms(p, h) for p in probas]
    # The paired bootstrap's rows, drawn as the comparison draws them (one block here).
    n = votes.shape[0]
    assert exact_block_size(n, 3, 15) >= 200
    rows = np.random.default_rng(3).integers(0, n, (200, n))
    by_key = {(d.a, d.b, d.metric): d for d in differences}
    for a, b in ((0, 1), (0, 2), (1, 2)):
        for metric, index in (("human_cross_entropy", 0), ("human_tvd", 1)):
            item = by_key[(names[a], names[b], metric)]
            estimate = terms[a][index].mean() - terms[b][index].mean()
            resampled = terms[a][index][rows].mean(axis=1) - terms[b][index][rows].mean(axis=1)
            q_low, q_high = np.quantile(resampled, [0.025, 0.975])
            assert item.difference == pytest.approx(estimate, abs=1e-12)
            assert item.low == pytest.approx(min(2 * estimate - q_high, estimate), abs=1e-12)
            assert item.high == pytest.approx(max(2 * estimate - q_low, estimate), abs=1e-12)
            assert item.distinguishable == (item.low > 1e-9 or item.high < -1e-9)
            assert item.interval == "basic"


def test_the_ranking_says_which_model_is_closest_to_people_and_that_the_orders_differ():
    votes, probas = _crowd(500, seed=2)
    names = ["sharp", "close", "flat"]
    references, differences = _paired(_sets(votes, probas), names)
    h = votes / votes.sum(axis=1, keepdims=True)
    ce = {name: _hand_terms(p, h)[0].mean() for name, p in zip(names, probas)}
    calibration = rank_models(names, {n: r["ece"] for n, r in zip(names, references)}, differences, 500)
    ranking = rank_by_people(names, {n: r["human_cross_entropy"] for n, r in zip(names, references)}, differences,
                             500, calibration)
    assert list(ranking.order) == sorted(names, key=ce.get)
    assert ranking.metric == "human_cross_entropy"
    assert calibration.order[0] == "flat" and ranking.order[0] == "close"  # planted: the orders differ
    assert ("The two orders differ: flat is the best calibrated against the plurality vote, but close is the "
            "closest to how people disagree.") in ranking.sentence
    apart = {(d.a, d.b) for d in differences if d.metric == "human_cross_entropy" and d.distinguishable}
    if ("sharp", "close") in apart:
        assert "close is closer than sharp to how people disagree" in ranking.sentence or \
            "close is closer than flat" in ranking.sentence
    document = Ranking("ece", calibration.order, f"{calibration.sentence} {ranking.sentence}", ranking).to_dict()
    assert document["orders_differ"] is True and document["human"]["order"] == list(ranking.order)
    # The same order both ways: nothing is said about orders that differ.
    same = rank_by_people(["close", "sharp"], {"close": 0.5, "sharp": 0.9}, differences, 500,
                          Ranking("ece", ("close", "sharp"), ""))
    assert list(same.order) == ["close", "sharp"] and "orders differ" not in same.sentence
    assert Ranking("ece", ("close", "sharp"), "", same).to_dict()["orders_differ"] is False


def test_human_labels_follow_the_rows_and_classes_when_inputs_are_matched_by_id():
    votes, probas = _crowd(120, seed=4)
    human = human_from_votes(votes, location=Location("votes"))
    labels = human.plurality_labels(seed=0)
    ids = pd.DataFrame({"item": [f"i{k:03d}" for k in range(120)]})
    first = dataclasses.replace(Predictions.from_arrays(labels, probas[0], class_names=CLASSES,
                                                        extra_columns=ids), human=human)
    order = np.random.default_rng(0).permutation(120)
    columns = [2, 0, 1]  # the classes in another order too
    shuffled_human = human_from_votes(votes[order][:, columns], location=Location("votes"))
    second = dataclasses.replace(
        Predictions.from_arrays(np.asarray(CLASSES)[labels[order]], probas[0][order][:, columns],
                                class_names=[CLASSES[c] for c in columns],
                                extra_columns=ids.iloc[order].reset_index(drop=True)), human=shuffled_human)
    (a, b), _ = align_predictions([first, second], ["a", "b"], id_col="item")
    np.testing.assert_array_equal(b.human.votes, a.human.votes)
    np.testing.assert_array_equal(b.human.distribution, a.human.distribution)
    np.testing.assert_allclose(b.y_proba, a.y_proba, rtol=0, atol=1e-15)


def _write(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


def _files(tmp_path: Path, n: int = 100, seed: int = 5):
    votes, probas = _crowd(n, seed)
    ids = [f"c{k:04d}" for k in range(n)]
    vote_columns = {f"votes_{c}": votes[:, j].astype(int) for j, c in enumerate(CLASSES)}
    order = np.random.default_rng(seed).permutation(n)
    a = pd.DataFrame({"id": ids, **{f"prob_{c}": probas[0][:, j] for j, c in enumerate(CLASSES)}, **vote_columns})
    b = pd.DataFrame({"id": ids, **{f"prob_{c}": probas[1][:, j] for j, c in enumerate(CLASSES)}, **vote_columns})
    c = pd.DataFrame({"id": ids, **{f"prob_{c}": probas[2][:, j] for j, c in enumerate(CLASSES)}})  # no labels
    v = pd.DataFrame({"id": ids, **vote_columns})
    return votes, probas, ids, a, b.iloc[order], c.iloc[order[::-1]], v.iloc[order[::-1]]


def _run(*args, cwd: Path):
    """The command in this process (click's runner), from ``cwd``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        return invoke(*args)


def test_votes_file_applies_to_every_input_and_the_json_holds_the_human_figures(tmp_path):
    votes, probas, ids, a, b, c, v = _files(tmp_path)
    paths = [_write(tmp_path / name, frame) for name, frame in (("a.csv", a), ("b.csv", b), ("c.csv", c))]
    votes_path = _write(tmp_path / "votes.csv", v)
    done = _run("compare", *paths, "--id-col", "id", "--votes", votes_path, "--bootstrap", "200", "--out-dir",
                "out", "-q", cwd=tmp_path)
    assert done.exit_code == 0, done.stderr
    document = json.loads((tmp_path / "out" / "compare.json").read_text())
    h = votes / votes.sum(axis=1, keepdims=True)
    for model, proba in zip(document["models"], probas):
        ce, tvd = _hand_terms(proba, h)
        assert model["human"]["metrics"]["human_cross_entropy"] == pytest.approx(ce.mean(), abs=1e-9)
        assert model["human"]["metrics"]["human_tvd"] == pytest.approx(tvd.mean(), abs=1e-9)
        assert model["human"]["kind"] == "votes"
    metrics = {d["metric"] for d in document["differences"]}
    assert {"human_cross_entropy", "human_tvd", "ece"} <= metrics
    assert document["votes"]["source"].endswith("votes.csv") and document["votes"]["kind"] == "votes"
    assert len(document["votes"]["sha256"]) == 64
    ensemble = document["ensemble"]
    assert set(ensemble) >= {"metrics", "intervals", "human", "differences", "disagreement", "members"}
    assert ensemble["members"] == ["a", "b", "c"]
    assert {"value", "low", "high", "method"} <= set(ensemble["disagreement"])
    assert ensemble["human"]["metrics"]["human_cross_entropy"] == pytest.approx(
        _hand_terms(sum(probas) / 3, h)[0].mean(), abs=1e-9)
    # c.csv has no label column: its labels are the plurality vote of votes.csv, as a's.
    assert document["models"][2]["source"]["label_from"] == "plurality"
    for model in document["models"]:  # both intervals, as run gives them
        assert set(model["human"]["intervals"]["metrics"]) >= {"human_cross_entropy", "human_tvd"}
        assert set(model["human"]["intervals_with_annotator_noise"]["metrics"]) >= {"human_cross_entropy"}
    # The terminal says it in words.
    shown = (tmp_path / "out" / "summary.txt").read_text()
    assert "Against what people said: 5 votes per item." in shown
    assert "Where people disagree, do the models disagree too?" in shown
    assert "[ensemble]" in shown and "human_cross_entropy" in shown
    assert document["ranking"]["human"]["sentence"] in shown
    # Each model's figure is read against the noise floor (one per vote depth: the same for every model).
    floor = document["models"][0]["human"]["noise_floor"]["metrics"]["human_tvd"]["value"]
    assert 0 < floor < min(model["human"]["metrics"]["human_tvd"] for model in document["models"])
    assert "Knowing the crowd's split" in shown and f"{floor:.4f}" in shown


def test_votes_needs_an_id_column_and_every_id_needs_votes(tmp_path):
    _, _, ids, a, b, c, v = _files(tmp_path, n=60)
    paths = [_write(tmp_path / name, frame) for name, frame in (("a.csv", a), ("c.csv", c))]
    done = _run("compare", *paths, "--votes", _write(tmp_path / "votes.csv", v), cwd=tmp_path)
    assert done.exit_code == 2 and "--votes needs --id-col" in done.stderr
    short = _write(tmp_path / "short.csv", v[v["id"] != ids[7]])
    done = _run("compare", *paths, "--id-col", "id", "--votes", short, cwd=tmp_path)
    line = error_line(done, 3)
    assert f"id '{ids[7]}'" in line and "has no votes in" in line and "short.csv" in line


def test_votes_that_differ_between_inputs_are_refused_naming_the_id_the_files_and_both_values(tmp_path):
    _, _, ids, a, b, c, v = _files(tmp_path, n=60)
    changed = b.copy()
    where = int(np.flatnonzero(changed["id"].to_numpy() == ids[11])[0])
    before = changed.iloc[where][["votes_neg", "votes_neu", "votes_pos"]].astype(int).tolist()
    changed.iloc[where, changed.columns.get_loc("votes_neg")] = before[0] + 1
    changed.iloc[where, changed.columns.get_loc("votes_pos")] = before[2] + 2
    paths = [_write(tmp_path / "a.csv", a), _write(tmp_path / "b.csv", changed)]
    done = _run("compare", *paths, "--id-col", "id", "--bootstrap", "200", cwd=tmp_path)
    line = error_line(done, 3)
    assert f"id '{ids[11]}'" in line and "a.csv" in line and "b.csv" in line
    assert (f"neg={before[0]}, neu={before[1]}, pos={before[2]}" in line
            and f"neg={before[0] + 1}, neu={before[1]}, pos={before[2] + 2}" in line), line
    assert f"row {where + 1}" in line
    # The same against a votes file.
    done = _run("compare", paths[1], _write(tmp_path / "c.csv", c), "--id-col", "id", "--votes",
                _write(tmp_path / "votes.csv", v), cwd=tmp_path)
    line = error_line(done, 3)
    assert f"id '{ids[11]}'" in line and "votes.csv" in line and "b.csv" in line


def test_votes_in_one_input_are_shared_with_an_input_that_has_labels(tmp_path):
    votes, probas, ids, a, b, c, v = _files(tmp_path, n=80)
    with_labels = pd.DataFrame({"id": a["id"], "label": None})
    h = votes / votes.sum(axis=1, keepdims=True)
    human = human_from_votes(votes, location=Location("votes"))
    with_labels["label"] = np.asarray(CLASSES)[human.plurality_labels(seed=0, ids=np.asarray(ids, dtype=object),
                                                                      class_names=CLASSES)]
    labelled = pd.concat([with_labels, c.sort_index()[[f"prob_{k}" for k in CLASSES]]], axis=1)
    paths = [_write(tmp_path / "a.csv", a), _write(tmp_path / "c.csv", labelled)]
    done = _run("compare", *paths, "--id-col", "id", "--bootstrap", "200", "--json", "-", "--no-ensemble",
                cwd=tmp_path)
    assert done.exit_code == 0, done.stderr
    document = json.loads(done.stdout)
    ce, _ = _hand_terms(probas[2], h)
    assert document["models"][1]["human"]["metrics"]["human_cross_entropy"] == pytest.approx(ce.mean(), abs=1e-9)
    assert document["models"][1]["human"]["label_from"] == "labels"
    assert document["ensemble"] is None

"""The comparison report's sections about people's votes and the ensemble, in a real
browser (tests/browser.py): they render, show every model and the ensemble, ask the
question in plain words, and load nothing from outside."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from browser import _load, _open_page, artifact_path

from calaudit.auditing import audit_predictions
from calaudit.decisions.compare import compare_audits
from calaudit.decisions.ensemble import ensemble_predictions
from calaudit.errors import Location
from calaudit.predictions.human_labels import human_from_votes
from calaudit.predictions.value import Predictions
from calaudit.report.compare_narrative import disagreement_answer
from calaudit.reporters import compare_html

HOSTILE = "<img src=x onerror=alert(1)>"


def _comparison():
    rng = np.random.default_rng(8)
    n = 120
    truth = np.array([rng.dirichlet(np.full(3, 2.0 if rng.random() < 0.4 else 0.3)) for _ in range(n)])
    human = human_from_votes(rng.multinomial(5, truth), location=Location("votes"))
    labels = human.plurality_labels(seed=0)
    logs = np.log(np.maximum(truth, 0.02))
    probas = []
    for sharpen in (3.0, 1.0):
        z = sharpen * logs + rng.normal(0, 0.5, (n, 3))
        probas.append(np.exp(z) / np.exp(z).sum(axis=1, keepdims=True))
    names = [HOSTILE, "Vendor B"]
    sets = [dataclasses.replace(Predictions.from_arrays(labels, p), human=human) for p in probas]
    audits = [audit_predictions(p, bootstrap=200) for p in sets]
    members = ensemble_predictions(sets, names)
    return compare_audits(sets, names, audits, n_bins=15, bootstrap=200, seed=0, alignment={"by": "order"},
                          ensemble=(members, audit_predictions(members, bootstrap=200)))


def test_the_human_and_ensemble_sections_render_in_a_browser(tmp_path: Path) -> None:
    comparison = _comparison()
    page_path = tmp_path / "compare.html"
    page_path.write_text(compare_html.render(comparison), encoding="utf-8")
    with _open_page(page_path, width=1100, height=900, timeout_s=30, ignore_console=(), extra_args=()) as (
        page, recorder, _version,
    ):
        _load(page, recorder, "svg.main-svg", 30)
        page.screenshot(path=str(artifact_path("compare-votes.png")), full_page=True, animations="disabled")
        human = page.inner_text("#compare-human")
        question = page.inner_text("#compare-disagreement")
        heights = page.eval_on_selector_all("#compare-human, #compare-disagreement",
                                            "els => els.map(e => e.getBoundingClientRect().height)")
        rows = page.eval_on_selector_all("#compare-human tbody tr", "els => els.map(e => e.innerText)")
        headers = page.eval_on_selector_all("#compare-metrics thead th", "els => els.map(e => e.innerText)")
        injected = page.evaluate("() => document.querySelectorAll('main img').length")
    assert recorder.console_errors == [], recorder.console_messages
    assert recorder.requests == [] and recorder.dialogs == []
    assert injected == 0
    assert len(heights) == 2 and min(heights) > 50
    assert "Which model is closest to how people disagree?" in human
    assert comparison.ranking.human.sentence in human
    assert len(rows) == 3 and rows[0].startswith(HOSTILE) and rows[2].startswith("Ensemble (mean of the models)")
    assert question.startswith("Where people disagree, do the models disagree too?")
    assert disagreement_answer(comparison) in question
    assert "Ensemble (mean of the models)" in headers

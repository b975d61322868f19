"""The notebook cards in a real headless Chromium (tests/browser.py), as a notebook shows
them: ``_repr_html_`` pasted into a page that has styles of its own.

The cards render with no console error, no request and no dialog, even with hostile
class and model names; their visible text holds the verdict; the verdict is drawn in
its colour (the report's); and their scoped style leaves the rest of the page alone.
These tests never skip: without Chromium or Playwright they fail with the install
command (browser.BrowserUnavailable). The screenshot lands in test-artifacts/.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

import calaudit
from browser import _load, _open_page, artifact_path
from calaudit.auditing import audit_predictions
from calaudit.decisions.compare import compare_audits
from calaudit.predictions import Predictions

REPO = Path(__file__).resolve().parents[1]
HOSTILE_CLASSES = ["<script>alert(1)</script>", "<img src=x onerror=alert(2)>", "dog", "fox"]
HOSTILE_MODEL = "<b onmouseover=alert(3)>Vendor A</b>"
#: What a notebook page around the card might hold: a serif font, its own .verdict and tables.
PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>notebook</title>
<style>body {{ font-family: serif; color: #333; }} td {{ padding: 20px; }}</style></head>
<body><p class="verdict" id="outside">The notebook's own paragraph.</p>
<div class="output" id="audit-output">{audit}</div>
<div class="output" id="compare-output">{compare}</div>
<table><tr><td id="outside-cell">a cell of the notebook</td></tr></table>
</body></html>"""


def css_colour(variable: str) -> str:
    """A colour of the report's stylesheet as the browser reports it: 'rgb(r, g, b)'."""
    css = (REPO / "templates" / "report.css").read_text(encoding="utf-8")
    value = re.search(rf"{re.escape(variable)}:\s*#([0-9a-fA-F]{{6}})\s*;", css)
    assert value, variable
    red, green, blue = (int(value[1][i:i + 2], 16) for i in (0, 2, 4))
    return f"rgb({red}, {green}, {blue})"


def overconfident(n: int, seed: int, sharpen: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, (n, 4))
    truth = np.exp(z - z.max(axis=1, keepdims=True))
    truth /= truth.sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > truth.cumsum(axis=1)).sum(axis=1).clip(0, 3)
    model = np.exp(sharpen * (z - z.max(axis=1, keepdims=True)))
    return y, model / model.sum(axis=1, keepdims=True)


def test_the_cards_render_in_a_browser_with_nothing_from_outside(tmp_path: Path) -> None:
    y, sharp = overconfident(1200, seed=0, sharpen=3.0)
    _, honest = overconfident(1200, seed=0, sharpen=1.0)
    result = calaudit.audit(y, sharp, class_names=HOSTILE_CLASSES, bootstrap=200)
    assert result.verdict.level == "red"
    sets = [Predictions.from_arrays(y, p) for p in (sharp, honest)]
    audits = [audit_predictions(p, bootstrap=200) for p in sets]
    comparison = compare_audits(sets, [HOSTILE_MODEL, "Vendor B"], audits, n_bins=15, bootstrap=200, seed=0,
                                alignment={"by": "order"})
    page_path = tmp_path / "notebook.html"
    page_path.write_text(PAGE.format(audit=result._repr_html_(), compare=comparison._repr_html_()),
                         encoding="utf-8")
    with _open_page(page_path, width=900, height=1400, timeout_s=30, ignore_console=(), extra_args=()) as (
        page, recorder, _version,
    ):
        _load(page, recorder, ".calaudit-card svg circle", 30)
        page.screenshot(path=str(artifact_path("notebook-cards.png")), full_page=True, animations="disabled")
        audit_text = page.inner_text("#audit-output")
        compare_text = page.inner_text("#compare-output")
        injected = page.evaluate("() => document.querySelectorAll("
                                 "'.calaudit-card script, .calaudit-card img, .calaudit-card b').length")
        verdict_style = page.eval_on_selector("#audit-output .verdict",
                                              "e => [getComputedStyle(e).backgroundColor, getComputedStyle(e).color]")
        outside = page.eval_on_selector("#outside", "e => getComputedStyle(e).borderTopStyle")
        outside_cell = page.eval_on_selector("#outside-cell", "e => getComputedStyle(e).paddingTop")
        circles = page.eval_on_selector_all(".calaudit-card svg circle",
                                            "els => els.map(e => e.getBoundingClientRect().width)")
        marks = page.eval_on_selector_all("#audit-output .icon-array .mark",
                                          "els => els.map(e => e.getBoundingClientRect().width)")
    assert recorder.console_errors == [], recorder.console_messages
    assert recorder.requests == [], recorder.requests
    assert recorder.dialogs == []
    assert injected == 0
    assert result.verdict.label in audit_text and result.verdict.headline in audit_text
    for name in HOSTILE_CLASSES[:2]:
        assert name in audit_text  # shown as text, as the vendor wrote it
    assert verdict_style == [css_colour("--red-bg"), css_colour("--red")]
    assert comparison.ranking.sentence in compare_text and HOSTILE_MODEL in compare_text
    assert outside == "none" and outside_cell == "20px"  # the card's style stays in the card
    assert len(circles) == len([b for b in result.reliability.bins if b.count > 0]) and min(circles) > 0
    assert len(marks) == 100 and min(marks) > 0

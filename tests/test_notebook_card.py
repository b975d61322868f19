"""The notebook cards (issue 20, part 4): ``AuditResult._repr_html_`` and
``ComparisonResult._repr_html_`` give a compact, self-contained HTML card.

* the card says the verdict with its colour in words, draws the icon array of the most
  confident band and a reliability diagram whose markers sit at each bin's confidence
  and accuracy (both checked against numpy on the rows), and lists the key metrics
  with their intervals;
* it needs nothing from outside: no script, image, link or url(), and every vendor
  string (class names, file names, model names) is escaped;
* a result read back from its JSON shows the same card, also in a fresh interpreter
  that imported nothing but ``calaudit.result``;
* its colours are the report's.

tests/test_notebook_card_browser.py renders the cards in a real browser.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import calaudit
from calaudit.auditing import audit_predictions
from calaudit.decisions.compare import compare_audits
from calaudit.predictions import Predictions
from calaudit.report.card import MARGIN, PLOT, TOP
from calaudit.result import AuditResult
from calaudit.stats.verdict import LEVEL_MEANINGS

REPO = Path(__file__).resolve().parents[1]
HOSTILE_CLASSES = ("<script>alert(1)</script>", 'dog & "friends"', "O'Brien <b>bold</b>",
                   "https://evil.example/x.png")
HOSTILE_PATH = "/data/<img src=x onerror=alert(1)>.csv"
#: Everything a card is built of: no script, image, frame, link or form.
CARD_TAGS = {"div", "style", "p", "span", "strong", "code", "svg", "title", "path", "circle", "text", "table",
             "thead", "tbody", "tr", "th", "td"}


class Parsed(HTMLParser):
    """The tags, attributes, style text and visible text of a fragment."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.style: list[str] = []
        self.text: list[str] = []
        self._open: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in ("path", "circle"):
            self._open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1] == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        (self.style if self._open and self._open[-1] == "style" else self.text).append(data)

    @property
    def words(self) -> str:
        return re.sub(r"\s+", " ", " ".join(self.text))


def overconfident(n: int = 1500, seed: int = 0, sharpen: float = 2.5) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z) and a model reporting softmax(sharpen z)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, (n, 4))
    truth = np.exp(z - z.max(axis=1, keepdims=True))
    truth /= truth.sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > truth.cumsum(axis=1)).sum(axis=1).clip(0, 3)
    model = np.exp(sharpen * (z - z.max(axis=1, keepdims=True)))
    return y, model / model.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def audited() -> tuple[AuditResult, np.ndarray, np.ndarray]:
    y, proba = overconfident()
    return calaudit.audit(y, proba, class_names=["cat", "dog", "eel", "fox"], bootstrap=200, seed=1), y, proba


def assert_self_contained(card: str) -> Parsed:
    parsed = Parsed(card)
    assert {tag for tag, _ in parsed.tags} <= CARD_TAGS
    for tag, attrs in parsed.tags:
        for name in attrs:
            assert name not in ("src", "href", "xlink:href", "srcset", "action", "style") and not name.startswith(
                "on"), (tag, name)
    style = re.sub(r"/\*.*?\*/", "", " ".join(parsed.style), flags=re.S)
    assert "url(" not in style and "@import" not in style
    assert parsed.tags[0][0] == "div" and parsed.tags[0][1]["class"] == "calaudit-card"
    selectors = [part.strip() for rule in re.findall(r"(?:^|})\s*([^{}]+)\{", style) for part in rule.split(",")]
    assert selectors and all(part.startswith(".calaudit-card") for part in selectors), selectors
    return parsed


def test_the_card_says_the_verdict_and_the_key_metrics_with_their_intervals(audited):
    result, y, proba = audited
    card = result._repr_html_()
    parsed = assert_self_contained(card)
    assert "http" not in card  # no address of any kind, not even the SVG namespace
    words = parsed.words
    verdict = result.verdict
    assert verdict.key == "overconfident"  # the data were made so
    assert verdict.label in words and verdict.headline in words
    assert f"({verdict.level}: {LEVEL_MEANINGS[verdict.level]})" in words  # the colour, in words
    accuracy = float((proba.argmax(axis=1) == y).mean())
    assert f"Accuracy {accuracy:.4f}" in words
    for name, title in (("accuracy", "Accuracy"), ("ece", "Expected calibration error (15 bins)"),
                        ("brier", "Brier score"), ("nll", "Negative log-likelihood"),
                        ("confidence_gap", "Confidence gap")):
        low, high = result.interval(name)
        assert low <= result.metrics[name] <= high
        assert f"{title} {result.metrics[name]:.4f} {low:.4f} - {high:.4f}" in words, name
    assert f"{y.size:,} cases" in words and "4 classes (cat, dog, eel, fox)" in words


def test_the_icon_array_and_the_diagram_show_the_rows(audited):
    result, y, proba = audited
    parsed = Parsed(result._repr_html_())
    confidence, right = proba.max(axis=1), proba.argmax(axis=1) == y
    top = confidence > 0.9  # the report's most confident band, 90-100%
    assert top.sum() >= 0.02 * y.size  # enough calls to be quoted
    marks = [attrs["class"] for tag, attrs in parsed.tags
             if tag == "span" and attrs.get("class", "").startswith("mark")]
    assert marks[:100].count("mark right") == round(100 * right[top].mean())
    assert len(marks) == 102  # 100 in the array, 2 in its legend
    circles = [attrs for tag, attrs in parsed.tags if tag == "circle"]
    edges = np.linspace(0.0, 1.0, 16)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, 14)  # bins (lower, upper]
    filled = [k for k in range(15) if np.any(which == k)]
    assert len(circles) == len(filled)
    for circle, k in zip(circles, filled):
        rows = which == k
        assert (float(circle["cx"]) - MARGIN) / PLOT == pytest.approx(confidence[rows].mean(), abs=0.005)
        assert 1 - (float(circle["cy"]) - TOP) / PLOT == pytest.approx(right[rows].mean(), abs=0.005)
    largest = max(range(len(filled)), key=lambda i: float(circles[i]["r"]))
    assert np.sum(which == filled[largest]) == max(np.sum(which == k) for k in filled)


def test_vendor_strings_are_escaped_and_the_card_still_needs_nothing_from_outside(audited):
    result, _, _ = audited
    document = result.to_dict()
    document["class_names"] = list(HOSTILE_CLASSES)
    document["input"]["path"] = HOSTILE_PATH
    card = AuditResult.from_dict(json.loads(json.dumps(document)))._repr_html_()
    parsed = assert_self_contained(card)
    assert "<script>" not in card and "<b>" not in card and "<img" not in card
    words = parsed.words
    for name in HOSTILE_CLASSES:
        assert name in words  # shown as the vendor wrote it, as text
    assert "<img src=x onerror=alert(1)>.csv" in words


def test_a_result_read_from_json_shows_the_same_card(audited):
    result, _, _ = audited
    again = AuditResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again._repr_html_() == result._repr_html_()


def test_the_card_shows_in_a_fresh_interpreter_that_imported_only_the_result(audited, tmp_path):
    result, _, _ = audited
    path = tmp_path / "audit.json"
    path.write_text(json.dumps(result.to_dict()), encoding="utf-8")
    code = ("import json, sys\nfrom calaudit.result import AuditResult\n"
            f"card = AuditResult.from_dict(json.load(open({str(path)!r})))._repr_html_()\n"
            "print(card.count('calaudit-card'), 'calaudit.reporters.card' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(REPO), "PATH": ""})
    assert done.returncode == 0, done.stderr
    count, loaded = done.stdout.split()
    assert int(count) >= 2 and loaded == "True"  # the card's div and its scoped style


def test_a_result_without_verdict_or_intervals_says_so(audited):
    result, _, _ = audited
    bare = dataclasses.replace(result, verdict=None, intervals=None)
    words = assert_self_contained(bare._repr_html_()).words
    assert "No verdict recorded" in words and "95% interval" not in words
    assert f"Accuracy {result.metrics['accuracy']:.4f} higher" in words


def test_the_card_has_the_reports_colours():
    card = (REPO / "templates" / "card.css").read_text(encoding="utf-8")
    report = (REPO / "templates" / "report.css").read_text(encoding="utf-8")
    pattern = r"(--[a-z-]+):\s*(#[0-9a-fA-F]{3,6})\s*;"
    colours = dict(re.findall(pattern, card))
    assert colours and colours == {k: v for k, v in re.findall(pattern, report) if k in colours}
    assert set(colours) == set(dict(re.findall(pattern, report)))


def compared(names: tuple[str, str]) -> tuple[object, list[AuditResult]]:
    y, sharp = overconfident(n=800, seed=2, sharpen=3.0)
    _, honest = overconfident(n=800, seed=2, sharpen=1.0)
    sets = [Predictions.from_arrays(y, p) for p in (sharp, honest)]
    audits = [audit_predictions(p, n_bins=15, bootstrap=200) for p in sets]
    comparison = compare_audits(sets, list(names), audits, n_bins=15, bootstrap=200, seed=0,
                                alignment={"by": "order"})
    return comparison, audits


def test_the_comparison_card_ranks_the_models_with_their_intervals():
    names = ("Vendor <b>A</b>", "Vendor B & co")
    comparison, audits = compared(names)
    card = comparison._repr_html_()
    parsed = assert_self_contained(card)
    assert "<b>" not in card
    words = parsed.words
    assert comparison.ranking.sentence in words
    # The honest model is better calibrated: it comes first.
    assert audits[1].metrics["ece"] < audits[0].metrics["ece"]
    assert words.index(names[1]) < words.index(names[0])
    for name, audit in zip(names, audits):
        ece_low, ece_high = audit.interval("ece")
        acc_low, acc_high = audit.interval("accuracy")
        row = (f"{name} {audit.verdict.label} ({audit.verdict.level}) {audit.metrics['ece']:.4f} "
               f"{ece_low:.4f} - {ece_high:.4f} {audit.metrics['accuracy']:.4f} {acc_low:.4f} - {acc_high:.4f}")
        assert row in words.replace("\u2714 ", "").replace("\u2716 ", "").replace("! ", ""), row

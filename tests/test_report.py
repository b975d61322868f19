"""The stakeholder HTML report (``--report``, ``report.html`` in ``--out-dir``), without a browser.

What the issue asks of the report, checked on the HTML text itself:

* structure: the first-screen sections (verdict, in-numbers, decisions,
  vendor-questions), then the charts, then the appendix (metrics, rule, bins,
  per-class, data, provenance, glossary), in that order; a stored fingerprint of the
  section ids and headings; rendering is deterministic once the volatile parts
  (time, version, sha256, absolute paths, the inlined plotly.js) are scrubbed;
* the verdict in words and colour for all four kinds, with the rule in the appendix;
* every figure shown equals the JSON of the same run (``--json``): band sentences,
  best / worst band, icon array, metrics, bin and per-class tables, chart data;
* self-contained and safe: plotly.js inlined once, a CSP forbidding the network, no
  remote URL, every vendor string escaped (class names, file names, ONNX metadata),
  print CSS for A4, under 8 MB for K = 100;
* ``calaudit check RESULT.json --report`` renders the same report; an installed
  (non-editable) wheel renders it too.

Expected values are computed from the JSON result or independently, never written
in as figures. The HTML is parsed with the standard library only (html.parser).
"""

from __future__ import annotations

import html as html_lib
import json
import math
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.offline
import pytest
from click.testing import CliRunner

import calaudit
import calaudit.cli.group as cli_module
from calaudit.cli import cli
from calaudit.report.narrative import MIN_BAND_CASES
from calaudit.reporters import html as html_reporter
from calaudit.result import AuditResult

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DATA = REPO / "sample_data"

#: name -> CLI arguments (input, and the data directory of an ONNX model).
SAMPLES: dict[str, tuple[Path, ...]] = {
    "digits_gaussian_nb": (SAMPLE_DATA / "digits_gaussian_nb.csv",),
    "digits_logistic_regression": (SAMPLE_DATA / "digits_logistic_regression.csv",),
    "breast_cancer_gaussian_nb": (SAMPLE_DATA / "breast_cancer_gaussian_nb.csv",),
    "breast_cancer_logistic_regression": (SAMPLE_DATA / "breast_cancer_logistic_regression.parquet",),
    "digits_mlp": (SAMPLE_DATA / "digits_mlp.onnx", SAMPLE_DATA / "digits_images"),
    "breast_cancer_forest": (SAMPLE_DATA / "breast_cancer_forest.onnx", SAMPLE_DATA / "breast_cancer_table"),
}

#: The ids the issue names, in the order the report must present them.
SECTION_IDS = (
    "verdict", "in-numbers", "decisions", "vendor-questions", "charts",
    "appendix", "metrics", "rule", "bins", "per-class", "data", "provenance", "glossary",
)
FIRST_SCREEN_IDS = ("verdict", "in-numbers", "decisions", "vendor-questions")
APPENDIX_IDS = ("metrics", "rule", "bins", "per-class", "data", "provenance", "glossary")

#: The stored structure of every sample's report (each has <= 10 classes and the default
#: 15 bins): sections and headings in document order, the input's name as [INPUT].
#: A change here is a change of the report's structure: update it on purpose.
STRUCTURE_FINGERPRINT = [
    "h1 Can we trust how sure [MODEL] says it is?",
    "section#verdict",
    "section#in-numbers",
    "h2#in-numbers-title What it said, and what happened",
    "section#decisions",
    "h2#decisions-title What this means for decisions",
    "section#vendor-questions",
    "h2#vendor-questions-title Questions to ask the vendor",
    "section#charts",
    "h2#charts-title Does the model deliver what it promises?",
    "h3 Class by class",
    "section#routing",
    "h2#routing-title Which cases should a person review?",
    "section#appendix",
    "h2#appendix-title Appendix for analysts",
    "h3#metrics Metrics",
    "h3#rule How the verdict is decided",
    "h3#routing-method How the review thresholds were found",
    "h3#bins Reliability table (15 equal-width bins, 95% Wilson intervals)",
    "h3#per-class Per-class figures",
    "h3#data Data",
    "h3#provenance Provenance",
    "h3#glossary Glossary",
]

#: The issue's words for each verdict, and the colours each may take.
VERDICT_WORDS = {
    "calibrated": "well calibrated",
    "overconfident": "overconfident",
    "underconfident": "underconfident",
    "insufficient": "too little data to tell",
}
VERDICT_LEVELS = {
    "calibrated": {"green"},
    "overconfident": {"red", "amber"},
    "underconfident": {"amber"},
    "insufficient": {"grey"},
}

#: Okabe and Ito's colour-blind-safe palette (2008); greys and white are also allowed.
OKABE_ITO = {"#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000"}

XSS_CLASS = "<script>alert(1)</script>"
XSS_FILE_STEM = "<img src=x onerror=alert(1)>"
QUOTED_CLASS = 'dog & "friends"'
MAX_REPORT_BYTES = 8_000_000


# --------------------------------------------------------------------------- HTML tree

VOID_TAGS = frozenset("area base br col embed hr img input link meta param source track wbr".split())
BLOCK_TAGS = frozenset(
    "address article aside blockquote dd div dl dt figcaption figure footer h1 h2 h3 h4 h5 h6 header li main "
    "nav ol p section table tbody td tfoot th thead tr ul".split()
)


@dataclass(eq=False)
class Element:
    tag: str
    attrs: dict[str, str | None]
    parent: Element | None = None
    children: list[Any] = field(default_factory=list)

    @property
    def id(self) -> str | None:
        return self.attrs.get("id")

    @property
    def classes(self) -> list[str]:
        return (self.attrs.get("class") or "").split()

    def iter(self):
        yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter()

    def text(self) -> str:
        """The text content; block elements are set apart by spaces (see :func:`norm`)."""
        parts = []
        for child in self.children:
            if isinstance(child, str):
                parts.append(child)
            elif child.tag in BLOCK_TAGS:
                parts.append(f" {child.text()} ")
            else:
                parts.append(child.text())
        return "".join(parts)

    def find_all(self, tag: str | tuple[str, ...] | None = None, *, cls: str | None = None) -> list[Element]:
        tags = (tag,) if isinstance(tag, str) else tag
        return [
            el for el in self.iter()
            if el is not self and (tags is None or el.tag in tags) and (cls is None or cls in el.classes)
        ]

    def by_id(self, element_id: str) -> Element:
        found = [el for el in self.iter() if el.id == element_id]
        assert len(found) == 1, f"expected one element with id={element_id!r}, found {len(found)}"
        return found[0]

    def next_sibling(self, tag: str) -> Element:
        assert self.parent is not None
        siblings = [c for c in self.parent.children if isinstance(c, Element)]
        for el in siblings[siblings.index(self) + 1:]:
            if el.tag == tag:
                return el
        raise AssertionError(f"no <{tag}> after <{self.tag} id={self.id!r}>")


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]
        self.stray_end_tags: list[str] = []
        #: End tags that closed elements left open inside them ("</section>" over an open <div>).
        self.misnested: list[str] = []

    def handle_starttag(self, tag, attrs):
        element = Element(tag, dict(attrs), parent=self.stack[-1])
        self.stack[-1].children.append(element)
        if tag not in VOID_TAGS:
            self.stack.append(element)

    def handle_startendtag(self, tag, attrs):
        self.stack[-1].children.append(Element(tag, dict(attrs), parent=self.stack[-1]))

    def handle_endtag(self, tag):
        if tag in VOID_TAGS:
            return
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                if depth != len(self.stack) - 1:
                    self.misnested.append(f"</{tag}> closes open <{self.stack[-1].tag}>")
                del self.stack[depth:]
                return
        self.stray_end_tags.append(tag)

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def parse(text: str) -> TreeBuilder:
    builder = TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder


def norm(text: str) -> str:
    return " ".join(text.split())


def table_records(table: Element, required: tuple[str, ...]) -> list[dict[str, str]]:
    """The body rows as {column header: cell text}; the ``required`` headers must exist
    (columns the report adds later are allowed)."""
    head = table.find_all("thead")
    assert len(head) == 1
    headers = [norm(th.text()) for th in head[0].find_all("th")]
    missing = [h for h in required if h not in headers]
    assert not missing, f"columns {missing} missing from {headers}"
    records = []
    for row in table_rows(table):
        assert len(row) == len(headers), (headers, row)
        records.append(dict(zip(headers, row)))
    return records


def table_rows(table: Element) -> list[list[str]]:
    body = table.find_all("tbody")
    assert len(body) == 1
    return [[norm(cell.text()) for cell in row.find_all(("td", "th"))] for row in body[0].find_all("tr")]


def json_blocks(text: str) -> dict[str, str]:
    """id -> raw content of every <script type="application/json"> block (regex on the
    raw text, so an early </script> inside a block would show as broken JSON)."""
    blocks = re.findall(r'<script type="application/json" id="([^"]+)">(.*?)</script>', text, flags=re.S)
    return dict(blocks)


def load_block(block_id: str, raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise AssertionError(f"JSON block {block_id} is broken (ended early by a '</script>'?): {exc}") from None


def charts(text: str) -> dict[str, dict]:
    specs = {}
    for block_id, raw in json_blocks(text).items():
        assert block_id.startswith("data-")
        specs[block_id[len("data-"):]] = load_block(block_id, raw)
    return specs


def plotly_script_span(text: str) -> tuple[int, int]:
    """Start and end of the inline <script> holding plotly.js."""
    banner = text.find("plotly.js v")
    assert banner >= 0, "plotly.js is not in the report"
    start = text.rfind("<script>", 0, banner)
    end = text.find("</script>", banner)
    assert start >= 0 and end > banner
    return start + len("<script>"), end


def without_plotly(text: str) -> str:
    start, end = plotly_script_span(text)
    return text[:start] + "[PLOTLY.JS]" + text[end:]


MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"


def scrub(text: str, *, roots: tuple[Path | str, ...] = ()) -> str:
    """The report with its volatile parts replaced by placeholders."""
    text = without_plotly(text)
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)", "[TIMESTAMP]", text)
    text = re.sub(rf"\b\d{{1,2}} (?:{MONTHS}) \d{{4}}, \d\d:\d\d UTC", "[DATE]", text)
    text = re.sub(r"calaudit \d+\.\d+[^\s\"<]*", "calaudit [VERSION]", text)
    text = re.sub(r"(<th scope=\"row\">calaudit version</th><td>)[^<]*(</td>)", r"\1[VERSION]\2", text)
    text = re.sub(r"\b[0-9a-f]{64}\b", "[SHA256]", text)
    for root in sorted((str(r) for r in roots), key=len, reverse=True):
        text = text.replace(root, "[PATH]")
    return text


def structure_fingerprint(tree: Element, input_name: str) -> list[str]:
    out = []
    for el in tree.iter():
        if el.tag == "section":
            out.append(f"section#{el.id}")
        elif el.tag in ("h1", "h2", "h3"):
            ident = f"#{el.id}" if el.id else ""
            text = norm(el.text()).replace(input_name, "[INPUT]")
            # An ONNX model is "the model X", a prediction file "the model behind X".
            text = text.replace("the model behind [INPUT]", "[MODEL]").replace("the model [INPUT]", "[MODEL]")
            out.append(f"{el.tag}{ident} {text}")
    return out


def pct(value: float, digits: int = 0) -> str:
    return f"{value * 100:.{digits}f}%"


def band_label(b: dict) -> str:
    return f"{round(b['lower'] * 100)}-{round(b['upper'] * 100)}%"


# --------------------------------------------------------------------------- running the CLI

def run_cli(*args: object, cwd: Path):
    """``calaudit ARGS`` in-process, in ``cwd``, with no CALAUDIT_* settings around."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if (name.startswith("CALAUDIT_") and name != "CALAUDIT_CHROMIUM") or name == "GITHUB_STEP_SUMMARY":
                mp.delenv(name)
        mp.chdir(cwd)
        mp.setitem(cli_module._state, "debug", False)
        return CliRunner().invoke(cli, [str(a) for a in args], prog_name="calaudit")


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items()
        if not ((k.startswith("CALAUDIT_") and k != "CALAUDIT_CHROMIUM") or k == "GITHUB_STEP_SUMMARY")
    }
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env


@dataclass
class Report:
    name: str
    args: tuple[Path, ...]
    text: str
    doc: dict[str, Any]
    tree: Element
    builder: TreeBuilder
    workdir: Path
    html_path: Path
    json_path: Path

    @property
    def input_name(self) -> str:
        return self.args[0].name


def render_sample(name: str, args: tuple[Path, ...], workdir: Path) -> Report:
    workdir.mkdir(parents=True, exist_ok=True)
    html_path, json_path = workdir / f"{name}.html", workdir / f"{name}.json"
    result = run_cli("run", *args, "--report", html_path, "--json", json_path, "-q", cwd=workdir)
    assert result.exit_code == 0, result.output
    text = html_path.read_text(encoding="utf-8")
    builder = parse(text)
    doc = json.loads(json_path.read_text(encoding="utf-8"))
    return Report(name, args, text, doc, builder.root, builder, workdir, html_path, json_path)


@pytest.fixture(scope="module")
def sample_reports(tmp_path_factory) -> dict[str, Report]:
    base = tmp_path_factory.mktemp("reports")
    return {name: render_sample(name, args, base / name) for name, args in SAMPLES.items()}


@pytest.fixture(params=list(SAMPLES))
def report(request, sample_reports) -> Report:
    return sample_reports[request.param]


# --------------------------------------------------------------------------- structure

def test_sections_present_in_order(report: Report) -> None:
    ids = [el.id for el in report.tree.iter() if el.id in SECTION_IDS]
    assert ids == list(SECTION_IDS)
    for section_id in FIRST_SCREEN_IDS + ("charts", "appendix"):
        assert report.tree.by_id(section_id).tag == "section"
    appendix = report.tree.by_id("appendix")
    for section_id in APPENDIX_IDS:
        element = report.tree.by_id(section_id)
        assert appendix in _ancestors(element), f"#{section_id} is outside the appendix"
        assert norm(element.text()), f"#{section_id} has no heading text"


def _ancestors(element: Element) -> list[Element]:
    out = []
    while element.parent is not None:
        element = element.parent
        out.append(element)
    return out


def test_html_is_well_formed(report: Report) -> None:
    assert report.builder.stray_end_tags == []
    assert report.builder.misnested == []
    assert [el.tag for el in report.builder.stack] == ["#document"], "elements left open"
    top = [c for c in report.tree.children if isinstance(c, Element)]
    assert [el.tag for el in top] == ["html"]
    assert top[0].attrs.get("lang")
    assert [el.tag for el in top[0].children if isinstance(el, Element)] == ["head", "body"]
    assert report.text.lstrip().lower().startswith("<!doctype html>")
    metas = report.tree.find_all("meta")
    assert any(m.attrs.get("charset", "").lower() == "utf-8" for m in metas)
    ids = [el.id for el in report.tree.iter() if el.id]
    assert len(ids) == len(set(ids)), "duplicate ids"


def test_structure_matches_stored_fingerprint(report: Report) -> None:
    assert structure_fingerprint(report.tree, report.input_name) == STRUCTURE_FINGERPRINT


def test_rendering_from_json_is_deterministic(report: Report) -> None:
    first = html_reporter.render(AuditResult.from_dict(report.doc))
    second = html_reporter.render(AuditResult.from_dict(json.loads(json.dumps(report.doc))))
    assert first == second
    roots = (REPO, report.workdir)
    assert scrub(first, roots=roots) == scrub(report.text, roots=roots)
    assert structure_fingerprint(parse(first).root, report.input_name) == STRUCTURE_FINGERPRINT


def test_scrubbing_hides_only_volatile_parts(report: Report) -> None:
    roots = (REPO, report.workdir, "/elsewhere/checkout")
    original = scrub(report.text, roots=roots)
    doc = json.loads(json.dumps(report.doc))
    doc["created_at"] = "2001-02-03T04:05:06Z"
    doc["tool"]["version"] = "9.8.7"
    doc["input"]["sha256"] = "0" * 64
    doc["input"]["path"] = doc["input"]["path"].replace(str(REPO), "/elsewhere/checkout")
    changed = html_reporter.render(AuditResult.from_dict(doc))
    assert changed != report.text
    assert scrub(changed, roots=roots) == original
    # ...but a figure is not volatile: changing one must show.
    doc["metrics"]["brier"] += 0.25
    assert scrub(html_reporter.render(AuditResult.from_dict(doc)), roots=roots) != original


def test_title_and_heading_name_the_input(report: Report) -> None:
    title = report.tree.find_all("title")
    assert len(title) == 1 and report.input_name in title[0].text()
    h1 = report.tree.find_all("h1")
    assert len(h1) == 1 and report.input_name in norm(h1[0].text())


# --------------------------------------------------------------------------- first screen

def test_verdict_in_words_and_colour_matches_json(report: Report) -> None:
    verdict = report.doc["verdict"]
    section = report.tree.by_id("verdict")
    assert f"verdict-{verdict['level']}" in section.classes
    assert verdict["level"] in VERDICT_LEVELS[verdict["key"]]
    label = norm(report.tree.by_id("verdict-title").text())
    assert label == verdict["label"]
    assert label.lower() == VERDICT_WORDS[verdict["key"]]
    headline = section.find_all("p", cls="headline")
    assert [norm(p.text()) for p in headline] == [norm(verdict["headline"])]
    icon = section.find_all("span", cls="verdict-icon")
    assert len(icon) == 1 and norm(icon[0].text()), "no icon beside the colour"


def expected_bands(doc: dict) -> list[dict]:
    n = doc["n_samples"]
    floor = max(MIN_BAND_CASES, math.ceil(0.02 * n))
    return [b for b in reversed(doc["confidence_bands"]["bins"]) if b["count"] >= floor]


BAND_SENTENCE = re.compile(
    r"^Of the (?P<count>[\d,]+) times the model said it was (?P<lo>\d+)-(?P<hi>\d+)% sure, "
    r"it was right (?:(?P<correct>[\d,]+) times|(?P<once>once)) \((?P<pct>\d+)%\)\."
    r"(?: Only (?P<few>\d+) cases: this could be chance\.)?$"
)


def test_band_sentences_match_json(report: Report) -> None:
    bins = report.doc["confidence_bands"]["bins"]
    assert report.doc["confidence_bands"]["n_bins"] == 10
    by_label = {band_label(b): b for b in bins}
    items = report.tree.by_id("in-numbers").find_all("ul", cls="band-sentences")
    assert len(items) == 1
    sentences = [norm(li.text()) for li in items[0].find_all("li")]
    assert sentences, "no natural-frequency sentence"
    quoted = []
    for sentence in sentences:
        match = BAND_SENTENCE.match(sentence)
        assert match, f"not a natural-frequency sentence: {sentence!r}"
        band = by_label[f"{match['lo']}-{match['hi']}%"]
        assert int(match["count"].replace(",", "")) == band["count"]
        assert (1 if match["once"] else int(match["correct"].replace(",", ""))) == band["correct"]
        # Small bands carry their warning, and only they do.
        assert (match["few"] is not None) == (band["count"] < 30)
        assert match["few"] is None or int(match["few"]) == band["count"]
        assert match["pct"] == f"{band['accuracy'] * 100:.0f}"
        assert math.isclose(band["accuracy"], band["correct"] / band["count"], rel_tol=1e-12)
        quoted.append(band)
    assert quoted == expected_bands(report.doc), "quoted bands: every band with enough cases, most confident first"
    busiest = max(bins, key=lambda b: b["count"])
    assert busiest in quoted


def test_best_and_worst_bands_match_json(report: Report) -> None:
    bands = expected_bands(report.doc)
    section = report.tree.by_id("in-numbers")
    paragraphs = [p for p in section.find_all("p") if "most trustworthy" in p.text()]
    best = min(bands, key=lambda b: abs(b["gap"])) if len(bands) >= 2 else None
    worst = max(bands, key=lambda b: abs(b["gap"])) if len(bands) >= 2 else None
    if best is None or best is worst:
        assert paragraphs == []
        return
    assert len(paragraphs) == 1
    text = norm(paragraphs[0].text())
    strong = [norm(s.text()) for s in paragraphs[0].find_all("strong")]
    assert strong == [band_label(best), band_label(worst)]
    for band in (best, worst):
        assert f"said {pct(band['mean_confidence'])}, right {pct(band['accuracy'])}" in text


def test_icon_array_shows_the_top_band_out_of_100(report: Report) -> None:
    top = expected_bands(report.doc)[0]
    arrays = report.tree.by_id("verdict").find_all("div", cls="icon-array")
    assert len(arrays) == 1
    marks = arrays[0].find_all("span", cls="mark")
    right = [m for m in marks if "right" in m.classes]
    wrong = [m for m in marks if "wrong" in m.classes]
    assert len(marks) == 100 and len(right) + len(wrong) == 100
    assert len(right) == round(top["accuracy"] * 100)
    caption = norm(report.tree.by_id("verdict").find_all("p", cls="icon-caption")[0].text())
    assert band_label(top) in caption
    assert f"about {len(right)} were right" in caption


def test_uncertainty_in_plain_words(report: Report) -> None:
    paragraph = report.tree.by_id("in-numbers").find_all("p", cls="uncertainty")
    assert len(paragraph) == 1
    text = norm(paragraph[0].text())
    assert f"{report.doc['n_samples']:,} cases" in text
    points = round(report.doc["verdict"]["margin"] * 100)
    assert f"about {points} percentage point{'' if points == 1 else 's'} either way" in text


def test_decisions_and_vendor_questions_are_listed(report: Report) -> None:
    for section_id in ("decisions", "vendor-questions"):
        items = [norm(li.text()) for li in report.tree.by_id(section_id).find_all("li")]
        assert len(items) >= 2, section_id
        assert all(len(item.split()) >= 5 for item in items)


JARGON = re.compile(r"\b(ECE|MCE|Brier|NLL|log-likelihood|Wilson|logits?|bins?|calibration error)\b", re.I)


def test_first_screen_speaks_without_jargon(report: Report) -> None:
    for section_id in ("verdict", "in-numbers", "decisions"):
        text = norm(report.tree.by_id(section_id).text())
        assert not JARGON.search(text), f"#{section_id}: {JARGON.search(text)[0]!r} in {text!r}"


# --------------------------------------------------------------------------- appendix

def test_metrics_table_matches_json(report: Report) -> None:
    table = report.tree.by_id("metrics").next_sibling("table")
    records = table_records(table, ("Metric", "Value", "Better", "Meaning", "Definition"))
    metrics, definitions = report.doc["metrics"], report.doc["metric_definitions"]
    shown = {}
    for tr, record in zip(table.find_all("tbody")[0].find_all("tr"), records):
        shown[norm(tr.find_all("code")[0].text())] = record
    assert len(shown) == len(records), "a metric is listed twice"
    assert set(shown) == set(metrics)
    for name, value in metrics.items():
        record = shown[name]
        assert record["Value"].split()[0] == f"{value:.4f}", (name, record["Value"])
        assert record["Meaning"] == norm(definitions[name]["meaning"]), name
        assert record["Definition"] == norm(definitions[name]["definition"]), name
        for key, param in definitions[name]["params"].items():
            assert f"{key} = {param}" in record["Metric"]
        better = definitions[name]["better"]
        if better in ("lower", "higher"):
            assert record["Better"] == better, (name, record["Better"])
        else:  # "closer to 0", "closer to 1", ...
            assert re.search(r"\d", record["Better"]), (name, record["Better"])


def test_rule_is_in_the_appendix(report: Report) -> None:
    verdict, metrics = report.doc["verdict"], report.doc["metrics"]
    rule = report.tree.by_id("rule")
    paragraphs = []
    sibling = rule
    for _ in range(2):
        sibling = sibling.next_sibling("p")
        paragraphs.append(norm(sibling.text()))
    assert paragraphs[0] == norm(verdict["rule"])
    here = paragraphs[1]
    for figure in (
        pct(metrics["accuracy"], 1), pct(metrics["accuracy"] + metrics["confidence_gap"], 1),
        pct(verdict["margin"], 1), f"{metrics['ece']:.4f}",
        f"{verdict['overconfident_share']:.4f}", f"{verdict['underconfident_share']:.4f}",
    ):
        assert figure in here, (figure, here)


BIN_COLUMNS = ("Bin", "Confidence band", "Cases", "Right", "Mean confidence", "Accuracy", "95% interval", "Gap")
PER_CLASS_COLUMNS = ("Class", "Examples", "Share", "Predicted", "Mean probability", "Class ECE")


def test_bin_table_matches_json(report: Report) -> None:
    reliability = report.doc["reliability"]
    heading = norm(report.tree.by_id("bins").text())
    assert str(reliability["n_bins"]) in heading
    expected = [
        dict(zip(BIN_COLUMNS, (
            str(b["bin"]), f"({b['lower']:.3f}, {b['upper']:.3f}]", f"{b['count']:,}", f"{b['correct']:,}",
            f"{b['mean_confidence']:.4f}", f"{b['accuracy']:.4f}", f"{b['accuracy_low']:.4f} - {b['accuracy_high']:.4f}",
            f"{b['gap']:.4f}",
        )))
        for b in reliability["bins"]
    ]
    records = table_records(report.tree.by_id("bins").next_sibling("table"), BIN_COLUMNS)
    assert [{k: r[k] for k in BIN_COLUMNS} for r in records] == expected
    assert sum(b["count"] for b in reliability["bins"]) == report.doc["n_samples"]


def test_per_class_table_matches_json(report: Report) -> None:
    expected = [
        dict(zip(PER_CLASS_COLUMNS, (
            c["name"], f"{c['support']:,}", pct(c["frequency"], 1), f"{c['predicted']:,}",
            f"{c['mean_probability']:.4f}", f"{c['ece']:.4f}",
        )))
        for c in report.doc["per_class"]
    ]
    records = table_records(report.tree.by_id("per-class").next_sibling("table"), PER_CLASS_COLUMNS)
    assert [{k: r[k] for k in PER_CLASS_COLUMNS} for r in records] == expected
    assert [c["name"] for c in report.doc["per_class"]] == report.doc["class_names"]


def test_data_summary_matches_json(report: Report) -> None:
    doc = report.doc
    paragraph = report.tree.by_id("data").next_sibling("p")
    text = norm(paragraph.text())
    assert f"{doc['n_samples']:,}" in text and f"{doc['n_classes']} classes" in text
    supports = [c["support"] for c in doc["per_class"]]
    most = {c["name"] for c in doc["per_class"] if c["support"] == max(supports)}
    least = {c["name"] for c in doc["per_class"] if c["support"] == min(supports)}
    strong = [norm(s.text()) for s in paragraph.find_all("strong")]
    assert len(strong) == 2 and strong[0] in most and strong[1] in least


def test_provenance_matches_json(report: Report) -> None:
    doc = report.doc
    rows = table_rows(report.tree.by_id("provenance").next_sibling("table"))
    assert all(len(row) == 2 for row in rows)
    values = " | ".join(f"{label}: {value}" for label, value in rows)
    source = doc["input"]
    assert Path(source["path"]).name in values
    assert source["sha256"] in values
    assert doc["tool"]["version"] in values
    assert doc["created_at"] in values
    assert f"n_bins = {doc['options']['n_bins']}" in values
    model = source.get("model")
    if model:
        assert model["producer_name"] in values and str(model["producer_version"]) in values
        assert model["provider"] in values
        for port in model["inputs"] + model["outputs"]:
            assert port["name"] in values and port["type"] in values
        data = source["data"]
        assert Path(data["path"]).name in values
        assert data["files"], "no data file recorded"
        for name, digest in data["files"].items():
            assert name in values and digest in values
    else:
        for column in source["probability_columns"]:
            assert column in values


def test_glossary_defines_the_jargon(report: Report) -> None:
    glossary = report.tree.by_id("glossary").next_sibling("dl")
    terms = [norm(dt.text()) for dt in glossary.find_all("dt")]
    definitions = [norm(dd.text()) for dd in glossary.find_all("dd")]
    assert len(terms) == len(definitions) >= 5
    assert all(len(d.split()) >= 5 for d in definitions)
    joined = " ".join(terms).lower()
    for word in ("calibration", "confidence", "ece", "brier", "nll", "reliability diagram"):
        assert word in joined, word


# --------------------------------------------------------------------------- charts

def _close(a, b) -> bool:
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12) for x, y in zip(a, b))


def check_reliability_chart(spec: dict, table: dict) -> None:
    bins = table["bins"]
    traces = spec["data"]
    centres = [(b["lower"] + b["upper"]) / 2 for b in bins]
    accuracy = [b["accuracy"] for b in bins]
    confidence = [b["mean_confidence"] for b in bins]

    bars = [t for t in traces if t["type"] == "bar" and t.get("yaxis", "y") == "y" and "base" not in t]
    assert len(bars) == 1, "one bar trace of accuracies"
    assert _close(bars[0]["x"], centres) and _close(bars[0]["y"], accuracy)
    for text, b in zip(bars[0]["hovertext"], bins):
        assert f"{b['count']:,}" in text and f"{b['correct']:,}" in text, text

    gaps = [t for t in traces if t["type"] == "bar" and "base" in t]
    assert len(gaps) == 2, "gap shading above and below the diagonal"
    total = [sum(values) for values in zip(*(g["y"] for g in gaps))]
    assert _close(total, [abs(c - a) for c, a in zip(confidence, accuracy)])
    for g in gaps:
        tops = [base + height for base, height in zip(g["base"], g["y"])]
        for base, top, a, c, height in zip(g["base"], tops, accuracy, confidence, g["y"]):
            if height > 0:
                assert math.isclose(min(base, top), min(a, c), abs_tol=1e-12)
                assert math.isclose(max(base, top), max(a, c), abs_tol=1e-12)

    whiskers = [t for t in traces if "error_y" in t]
    assert len(whiskers) == 1
    error = whiskers[0]["error_y"]
    assert _close(whiskers[0]["x"], confidence) and _close(whiskers[0]["y"], accuracy)
    assert _close(error["array"], [b["accuracy_high"] - b["accuracy"] for b in bins])
    assert _close(error["arrayminus"], [b["accuracy"] - b["accuracy_low"] for b in bins])

    diagonal = [t for t in traces if t["type"] == "scatter" and t.get("mode") == "lines" and t["x"] == [0, 1]]
    assert len(diagonal) == 1 and diagonal[0]["y"] == [0, 1]

    counts = [t for t in traces if t.get("yaxis") == "y2"]
    assert len(counts) == 1 and counts[0]["y"] == [b["count"] for b in bins]


def test_chart_blocks_match_json(report: Report) -> None:
    doc = report.doc
    specs = charts(report.text)
    chart_divs = [el.id for el in report.tree.iter() if "data-chart" in el.attrs]
    assert chart_divs == list(specs), "one JSON block per chart element, in order"
    expected_ids = ["chart-reliability", "chart-histogram"] + [
        f"chart-class-{i}" for i in range(len(doc["class_reliability"]))
    ] + ["chart-routing"]  # review routing is always reported (90/95/99% by default)
    assert list(specs) == expected_ids

    check_reliability_chart(specs["chart-reliability"], doc["reliability"])

    bins = doc["reliability"]["bins"]
    histogram = specs["chart-histogram"]
    assert histogram["layout"]["barmode"] == "stack"
    right = [t for t in histogram["data"] if "right" in t["name"].lower()]
    wrong = [t for t in histogram["data"] if "wrong" in t["name"].lower()]
    assert len(right) == len(wrong) == 1
    assert right[0]["y"] == [b["correct"] for b in bins]
    assert wrong[0]["y"] == [b["count"] - b["correct"] for b in bins]
    assert _close(right[0]["x"], [(b["lower"] + b["upper"]) / 2 for b in bins])

    for index, entry in enumerate(doc["class_reliability"]):
        spec = specs[f"chart-class-{index}"]
        assert entry["name"] in html_lib.unescape(spec["layout"]["title"]["text"])
        check_reliability_chart(spec, entry["table"])


def test_charts_are_titled_and_labelled_in_words(report: Report) -> None:
    for chart_id, spec in charts(report.text).items():
        layout = spec["layout"]
        titles = [layout["title"]["text"]] + [
            layout[axis]["title"]["text"] for axis in ("xaxis", "yaxis") if axis in layout
        ]
        assert len(titles) == 3, chart_id
        for title in titles:
            assert len(title.split()) >= 2, (chart_id, title)
            assert "_" not in title and not JARGON.search(title), (chart_id, title)
        assert not spec.get("config", {}).get("staticPlot"), "charts must stay interactive"
        hovered = [t for t in spec["data"] if t.get("hovertext")]
        assert hovered, f"{chart_id}: no hover text"


def _colours(value: Any):
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("color", "fgcolor", "bgcolor") and isinstance(item, str):
                yield item
            else:
                yield from _colours(item)
    elif isinstance(value, list):
        for item in value:
            yield from _colours(item)


def _neutral(colour: str) -> bool:
    match = re.fullmatch(r"#([0-9a-fA-F]{2})([0-9a-fA-F]{2})([0-9a-fA-F]{2})", colour)
    return bool(match) and match[1].lower() == match[2].lower() == match[3].lower()


def test_chart_colours_are_colour_blind_safe(report: Report) -> None:
    for chart_id, spec in charts(report.text).items():
        colours = set(_colours(spec["data"]))
        assert colours, chart_id
        for colour in colours:
            assert colour.upper() in OKABE_ITO or _neutral(colour), (chart_id, colour)
    histogram = charts(report.text)["chart-histogram"]["data"]
    right, wrong = (next(t for t in histogram if w in t["name"].lower()) for w in ("right", "wrong"))
    assert right["marker"]["color"] != wrong["marker"]["color"]
    assert "pattern" in right["marker"] or "pattern" in wrong["marker"], "right/wrong told apart by colour alone"


def _swatch_visible(marker: dict) -> bool:
    """Whether plotly paints a visible legend swatch for a bar with this marker: with a
    pattern in plotly's default fillmode ("replace") the background is transparent and
    only the pattern's foreground colour is drawn."""
    pattern = marker.get("pattern")
    white = {"#fff", "#ffffff", "white"}
    if not pattern:
        return str(marker.get("color", "")).lower() not in white
    if pattern.get("fillmode") == "overlay":
        return str(marker.get("color", "")).lower() not in white or str(pattern.get("fgcolor", "")).lower() not in white
    painted = [pattern.get("fgcolor"), pattern.get("bgcolor")]
    return any(c and str(c).lower() not in white for c in painted)


def test_every_legend_entry_has_a_visible_swatch(report: Report) -> None:
    for chart_id, spec in charts(report.text).items():
        if spec["layout"].get("showlegend") is False:
            continue
        for trace in spec["data"]:
            if trace["type"] != "bar" or trace.get("showlegend") is False:
                continue
            assert _swatch_visible(trace["marker"]), (
                f"{chart_id}: legend entry {trace['name']!r} is drawn white-on-white "
                f"(marker {trace['marker']}): its colour is never painted"
            )


# --------------------------------------------------------------------------- self-contained and safe

def test_plotly_js_is_inlined_once(report: Report) -> None:
    source = plotly.offline.get_plotlyjs()
    banner = re.search(r"plotly\.js v\d+\.\d+\.\d+", source)[0]
    assert report.text.count("plotly.js v") == 1
    assert report.text.count(banner) == 1
    for fraction in (0.25, 0.5, 0.75):
        start = int(len(source) * fraction)
        snippet = source[start:start + 160]
        assert report.text.count(snippet) == 1, f"plotly.js snippet at {fraction:.0%} appears != 1 time"
    scripts = report.tree.find_all("script")
    assert all("src" not in s.attrs for s in scripts)
    inline = [s for s in scripts if "type" not in s.attrs]
    assert len(inline) == 2, "plotly.js and the drawing script, nothing else"
    assert "Plotly.newPlot" in inline[1].text()
    assert len(report.text) < 1.5 * len(source)


def _csp(tree: Element) -> tuple[Element, dict[str, list[str]]]:
    metas = [m for m in tree.find_all("meta") if (m.attrs.get("http-equiv") or "").lower() == "content-security-policy"]
    assert len(metas) == 1
    directives = {}
    for part in (metas[0].attrs.get("content") or "").split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return metas[0], directives


def test_content_security_policy_forbids_the_network(report: Report) -> None:
    meta, directives = _csp(report.tree)
    assert directives.get("default-src") == ["'none'"]
    assert directives.get("connect-src") == ["'none'"]
    for name, sources in directives.items():
        for source in sources:
            assert source.startswith("'") or source in ("data:", "blob:"), f"{name} allows {source}"
    order = list(report.tree.iter())
    first_resource = min(order.index(el) for el in order if el.tag in ("script", "style", "link"))
    assert order.index(meta) < first_resource, "the CSP must come before any script or style"
    assert not [m for m in report.tree.find_all("meta") if (m.attrs.get("http-equiv") or "").lower() == "refresh"]


URL_ATTRIBUTES = {"src", "href", "action", "formaction", "data", "poster", "srcset", "background", "xlink:href",
                  "ping", "cite", "manifest", "codebase"}
REMOTE = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", re.I)


def test_no_remote_urls_outside_plotly(report: Report) -> None:
    for el in report.tree.iter():
        assert el.tag not in ("link", "iframe", "object", "embed", "base", "img", "frame"), el.tag
        for name, value in el.attrs.items():
            if name in URL_ATTRIBUTES and value:
                assert not REMOTE.match(value), (el.tag, name, value)
    rest = without_plotly(report.text)
    assert not re.search(r"""\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", rest, flags=re.I)
    style = " ".join(s.text() for s in report.tree.find_all("style"))
    assert "@import" not in style and not re.search(r"url\(\s*['\"]?(?!data:)", style)


def test_print_css_targets_a4(report: Report) -> None:
    style = " ".join(s.text() for s in report.tree.find_all("style"))
    assert re.search(r"@page\s*\{[^}]*size:\s*A4", style)
    assert "@media print" in style


def test_report_size_of_samples(report: Report) -> None:
    assert report.html_path.stat().st_size < MAX_REPORT_BYTES


# --------------------------------------------------------------------------- the four verdicts

def _top_label_data(n: int, k: int, low: float, high: float, accuracy_shift: float, seed: int):
    """Top probability uniform in [low, high]; the top class is right with probability
    top + accuracy_shift (clipped to [0, 1])."""
    rng = np.random.default_rng(seed)
    top = rng.uniform(low, high, n)
    predicted = rng.integers(0, k, n)
    proba = np.repeat(((1 - top) / (k - 1))[:, None], k, axis=1)
    proba[np.arange(n), predicted] = top
    right = rng.random(n) < np.clip(top + accuracy_shift, 0, 1)
    other = (predicted + rng.integers(1, k, n)) % k
    return np.where(right, predicted, other), proba


VERDICT_CASES = {
    # name: (expected key, (n, k, low, high, shift, seed))
    "overconfident-red": ("overconfident", (2000, 3, 0.85, 0.99, -0.25, 1)),
    "overconfident-amber": ("overconfident", (4000, 3, 0.60, 0.99, -0.06, 2)),
    "underconfident": ("underconfident", (3000, 3, 0.40, 0.70, 0.25, 3)),
    "calibrated": ("calibrated", (20000, 3, 0.40, 1.00, 0.0, 4)),
    "too-few-rows": ("insufficient", (20, 3, 0.40, 1.00, 0.0, 5)),
    "margin-too-wide": ("insufficient", (150, 3, 0.40, 1.00, 0.0, 6)),
}
CLASS_NAMES_3 = ["cat", "dog", "bird"]


@pytest.fixture(scope="module")
def verdict_reports() -> dict[str, tuple[AuditResult, str]]:
    out = {}
    for name, (_, params) in VERDICT_CASES.items():
        y, proba = _top_label_data(*params)
        result = calaudit.audit(y, proba, class_names=CLASS_NAMES_3)
        out[name] = (result, html_reporter.render(result))
    return out


@pytest.mark.parametrize("case", list(VERDICT_CASES))
def test_verdict_kind_shown_in_words_and_colour(case: str, verdict_reports) -> None:
    expected_key = VERDICT_CASES[case][0]
    result, text = verdict_reports[case]
    assert result.verdict.key == expected_key, "the constructed data no longer gives this verdict"
    tree = parse(text).root
    section = tree.by_id("verdict")
    level = result.verdict.level
    assert level in VERDICT_LEVELS[expected_key]
    assert f"verdict-{level}" in section.classes
    assert [c for c in section.classes if c.startswith("verdict-")] == [f"verdict-{level}"]
    assert norm(tree.by_id("verdict-title").text()).lower() == VERDICT_WORDS[expected_key]
    assert norm(section.find_all("p", cls="headline")[0].text()) == norm(result.verdict.headline)
    style = " ".join(s.text() for s in tree.find_all("style"))
    rule = re.search(rf"\.verdict-{level}\s*\{{([^}}]*)\}}", style)
    assert rule and "background" in rule[1] and "border-color" in rule[1], f"no colour for verdict-{level}"
    # The rule sits in the appendix whatever the verdict.
    assert norm(tree.by_id("rule").next_sibling("p").text()) == norm(result.verdict.rule)
    ids = [el.id for el in tree.iter() if el.id in SECTION_IDS]
    assert ids == list(SECTION_IDS)


def test_verdict_colours_differ_by_level() -> None:
    style = (REPO / "templates" / "report.css").read_text(encoding="utf-8")
    colours = {}
    for level in ("green", "amber", "red", "grey"):
        rule = re.search(rf"\.verdict-{level}\s*\{{([^}}]*)\}}", style)
        assert rule, level
        background = re.search(r"background:\s*([^;]+);", rule[1])[1].strip()
        variable = re.fullmatch(r"var\((--[\w-]+)\)", background)
        if variable:
            background = re.search(rf"{variable[1]}:\s*([^;]+);", style)[1].strip()
        colours[level] = background.lower()
    assert len(set(colours.values())) == 4, colours


def _items(text: str, section_id: str) -> list[str]:
    return [norm(li.text()) for li in parse(text).root.by_id(section_id).find_all("li")]


def test_decisions_and_questions_fit_the_verdict(verdict_reports) -> None:
    by_key = {}
    for case, (expected_key, _) in VERDICT_CASES.items():
        _, text = verdict_reports[case]
        by_key.setdefault(expected_key, (_items(text, "decisions"), _items(text, "vendor-questions")))
    assert set(by_key) == set(VERDICT_WORDS)
    keys = sorted(by_key)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            assert by_key[a][0] != by_key[b][0], f"same decisions for {a} and {b}"
            assert by_key[a][1] != by_key[b][1], f"same vendor questions for {a} and {b}"
    # Overconfident: the advice quotes the most confident band's own figures.
    result, _ = verdict_reports["overconfident-red"]
    top = expected_bands(result.to_dict())[0]
    first = by_key["overconfident"][0][0]
    assert band_label(top) in first and pct(top["accuracy"]) in first and pct(top["mean_confidence"]) in first


def test_too_few_rows_quotes_no_band(verdict_reports) -> None:
    result, text = verdict_reports["too-few-rows"]
    tree = parse(text).root
    expected = expected_bands(result.to_dict())
    sentences = tree.by_id("in-numbers").find_all("ul", cls="band-sentences")
    if not expected:
        assert sentences == [] and tree.find_all("div", cls="icon-array") == []
    else:
        assert len(sentences[0].find_all("li")) == len(expected)


# --------------------------------------------------------------------------- vendor strings (XSS)

def _assert_no_raw_payload(text: str, payloads: list[str]) -> None:
    for payload in payloads:
        assert payload not in text, f"raw {payload!r} in the report"
    for block_id, raw in json_blocks(text).items():
        assert "</script" not in raw.lower() and "<" not in raw, block_id
        load_block(block_id, raw)
    tree = parse(text).root
    for el in tree.iter():
        assert el.tag not in ("img", "svg", "iframe", "b"), f"injected <{el.tag}>"
        assert not [a for a in el.attrs if a.lower().startswith("on")], f"event handler on <{el.tag}>"
    scripts = tree.find_all("script")
    assert len([s for s in scripts if "type" not in s.attrs]) == 2
    assert all(s.attrs.get("type") in (None, "application/json") for s in scripts)


def test_class_and_file_names_are_escaped(tmp_path: Path) -> None:
    names = [XSS_CLASS, "cat", QUOTED_CLASS]
    rng = np.random.default_rng(7)
    proba = rng.dirichlet([1.0, 1.0, 1.0], 300)
    labels = [names[rng.choice(3, p=p)] for p in proba]
    frame = pd.DataFrame({"label": labels, **{f"prob_{name}": proba[:, i] for i, name in enumerate(names)}})
    path = tmp_path / f"{XSS_FILE_STEM}.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "report.html"
    result = run_cli("run", path, "--report", out, "--json", tmp_path / "r.json", "-q", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert doc["class_names"] == names, "the CLI did not keep the vendor's class names"
    text = out.read_text(encoding="utf-8")
    _assert_no_raw_payload(text, [XSS_CLASS, XSS_FILE_STEM, QUOTED_CLASS])

    tree = parse(text).root
    # Escaped exactly once: the decoded text is the vendor's string itself.
    assert tree.find_all("title")[0].text() == f"Calibration audit: {XSS_FILE_STEM}.csv"
    assert norm(tree.find_all("span", cls="input-name")[0].text()) == f"{XSS_FILE_STEM}.csv"
    records = table_records(tree.by_id("per-class").next_sibling("table"), PER_CLASS_COLUMNS)
    assert [record["Class"] for record in records] == names
    labels_of_charts = [el.attrs.get("aria-label", "") for el in tree.iter() if el.id and el.id.startswith("chart-class-")]
    assert any(XSS_CLASS in label for label in labels_of_charts)
    specs = charts(text)
    titles = [html_lib.unescape(spec["layout"]["title"]["text"]) for chart_id, spec in specs.items()
              if chart_id.startswith("chart-class-")]
    assert any(XSS_CLASS in t for t in titles) and any(QUOTED_CLASS in t for t in titles)
    provenance = " ".join(v for _, v in table_rows(tree.by_id("provenance").next_sibling("table")))
    assert f"{XSS_FILE_STEM}.csv" in provenance and f"prob_{XSS_CLASS}" in provenance


def test_onnx_vendor_strings_are_escaped(tmp_path: Path) -> None:
    import onnx

    model = onnx.load(SAMPLE_DATA / "breast_cancer_forest.onnx")
    payloads = {
        "producer": '<script>alert("producer")</script>',
        "version": "<img src=x onerror=alert(2)>",
        "key": "<b onmouseover=alert(3)>key",
        "value": "</td></tr></table><script>alert(4)</script>",
        "model": "<svg onload=alert(5)>",
        "data": "<iframe src=javascript:alert(6)>",
    }
    model.producer_name = payloads["producer"]
    model.producer_version = payloads["version"]
    prop = model.metadata_props.add()
    prop.key, prop.value = payloads["key"], payloads["value"]
    model_path = tmp_path / f"{payloads['model']}.onnx"
    onnx.save(model, model_path)
    data_dir = tmp_path / payloads["data"]
    shutil.copytree(SAMPLE_DATA / "breast_cancer_table", data_dir)
    out = tmp_path / "report.html"
    result = run_cli("run", model_path, data_dir, "--report", out, "-q", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    _assert_no_raw_payload(text, list(payloads.values()))
    tree = parse(text).root
    provenance = " ".join(v for _, v in table_rows(tree.by_id("provenance").next_sibling("table")))
    for payload in payloads.values():
        assert payload in provenance, f"{payload!r} missing (or double-escaped) in the provenance"
    assert tree.find_all("title")[0].text().endswith(f"{payloads['model']}.onnx")


# --------------------------------------------------------------------------- many classes

def _dirichlet_file(path: Path, n: int, k: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    names = [f"class {i:03d}" for i in range(k)]
    proba = rng.dirichlet(np.full(k, 0.3), n)
    labels = [names[i] for i in (proba.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1).clip(0, k - 1)]
    frame = pd.DataFrame({"label": labels, **{f"prob_{name}": proba[:, i] for i, name in enumerate(names)}})
    frame.to_parquet(path, index=False)
    return names


def test_hundred_classes_stay_small_and_show_the_worst_ten(tmp_path: Path) -> None:
    names = _dirichlet_file(tmp_path / "k100.parquet", 5000, 100, seed=11)
    out = tmp_path / "k100.html"
    result = run_cli("run", tmp_path / "k100.parquet", "--report", out, "--json", tmp_path / "k100.json", "-q",
                     cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert out.stat().st_size < MAX_REPORT_BYTES, f"{out.stat().st_size:,} bytes"
    doc = json.loads((tmp_path / "k100.json").read_text(encoding="utf-8"))
    assert doc["n_classes"] == 100 and doc["class_names"] == names
    text = out.read_text(encoding="utf-8")
    tree = parse(text).root
    charts_section = tree.by_id("charts")
    class_charts = [el for el in charts_section.iter() if el.id and el.id.startswith("chart-class-")]
    assert len(class_charts) == 10
    worst = sorted(doc["per_class"], key=lambda c: c["ece"], reverse=True)[:10]
    shown = [html_lib.unescape(spec["layout"]["title"]["text"]) for chart_id, spec in charts(text).items()
             if chart_id.startswith("chart-class-")]
    assert len(shown) == 10
    assert sorted(shown) == sorted(f"Class {c['name']}" for c in worst)
    assert "of 100" in norm(charts_section.text())
    assert len(table_rows(tree.by_id("per-class").next_sibling("table"))) == 100
    assert text.count("plotly.js v") == 1


def test_three_classes_show_every_class(verdict_reports) -> None:
    result, text = verdict_reports["overconfident-red"]
    tree = parse(text).root
    class_charts = [el for el in tree.by_id("charts").iter() if el.id and el.id.startswith("chart-class-")]
    assert len(class_charts) == result.n_classes == 3
    titles = [html_lib.unescape(spec["layout"]["title"]["text"]) for chart_id, spec in charts(text).items()
              if chart_id.startswith("chart-class-")]
    assert sorted(titles) == sorted(f"Class {name}" for name in CLASS_NAMES_3)
    assert len(table_rows(tree.by_id("per-class").next_sibling("table"))) == 3


# --------------------------------------------------------------------------- check, out-dir, wheel

def test_check_renders_the_same_report(sample_reports, tmp_path: Path) -> None:
    run = sample_reports["digits_gaussian_nb"]
    first, second = tmp_path / "check1.html", tmp_path / "check2.html"
    for out in (first, second):
        result = run_cli("check", run.json_path, "--report", out, "-q", cwd=tmp_path)
        assert result.exit_code == 0, result.output
    checked = first.read_text(encoding="utf-8")
    assert checked == second.read_text(encoding="utf-8"), "check --report is not deterministic"
    tree = parse(checked).root
    assert structure_fingerprint(tree, run.input_name) == structure_fingerprint(run.tree, run.input_name)
    roots = (REPO, run.workdir, tmp_path)
    assert scrub(checked, roots=roots) == scrub(run.text, roots=roots)


def test_check_report_shows_a_failed_gate(sample_reports, tmp_path: Path) -> None:
    run = sample_reports["digits_gaussian_nb"]
    out = tmp_path / "gated.html"
    limit = run.doc["metrics"]["ece"] / 2
    result = run_cli("check", run.json_path, "--max-ece", limit, "--report", out, cwd=tmp_path)
    assert result.exit_code == 1, result.output
    tree = parse(out.read_text(encoding="utf-8")).root
    ids = [el.id for el in tree.iter() if el.id in SECTION_IDS + ("gate",)]
    assert ids.index("charts") < ids.index("gate") < ids.index("appendix")
    gate = tree.by_id("gate")
    assert "gate-failed" in gate.classes
    assert f"{run.doc['metrics']['ece']:.4f}" in norm(gate.text())


def test_check_report_from_a_result_without_report_fields(sample_reports, tmp_path: Path) -> None:
    """A format-version-1 result written before the verdict, the confidence bands and the
    per-class tables were added (they are optional in AuditResult.from_dict): check
    --report must render it or refuse it as bad input (exit 3), never crash (exit 4)."""
    doc = json.loads(json.dumps(sample_reports["digits_gaussian_nb"].doc))
    for key in ("verdict", "confidence_bands", "class_reliability"):
        del doc[key]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(doc), encoding="utf-8")
    out = tmp_path / "old.html"
    result = run_cli("check", old, "--report", out, "-q", cwd=tmp_path)
    assert result.exit_code in (0, 3), result.output
    if result.exit_code == 0:
        assert "id=\"verdict\"" in out.read_text(encoding="utf-8")


def test_out_dir_writes_the_same_report(tmp_path: Path) -> None:
    sample = SAMPLES["breast_cancer_gaussian_nb"][0]
    result = run_cli("run", sample, "--out-dir", tmp_path / "out", "--report", tmp_path / "r.html", "-q", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "report.html").read_bytes() == (tmp_path / "r.html").read_bytes()
    doc = json.loads((tmp_path / "out" / "audit.json").read_text(encoding="utf-8"))
    rendered = html_reporter.render(AuditResult.from_dict(doc))
    assert rendered == (tmp_path / "r.html").read_text(encoding="utf-8")


def test_installed_wheel_renders_the_report(tmp_path: Path) -> None:
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-w", str(wheels), "-q"],
        cwd=REPO, capture_output=True, text=True, timeout=600, env=clean_env(),
    )
    assert build.returncode == 0, build.stdout + build.stderr
    wheel = list(wheels.glob("calaudit-*.whl"))
    assert len(wheel) == 1, list(wheels.iterdir())
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(site), str(wheel[0]), "-q"],
        capture_output=True, text=True, timeout=600, env=clean_env(),
    )
    assert install.returncode == 0, install.stdout + install.stderr
    assert (site / "calaudit" / "templates" / "report.html.j2").is_file()
    assert (site / "calaudit" / "templates" / "report.css").is_file()

    env = clean_env(PYTHONPATH=str(site))
    probe = subprocess.run(
        [sys.executable, "-c",
         "import calaudit, calaudit.report.templating as t; print(calaudit.__file__); print(t.templates_dir())"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env,
    )
    assert probe.returncode == 0, probe.stderr
    module_file, templates = (Path(line) for line in probe.stdout.split())
    assert module_file.resolve().is_relative_to(site.resolve()), module_file
    assert templates.resolve().is_relative_to(site.resolve()), templates

    out = tmp_path / "r.html"
    sample = SAMPLES["digits_gaussian_nb"][0].resolve()
    run = subprocess.run(
        [sys.executable, "-m", "calaudit", "run", str(sample), "--report", str(out), "-q"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
    )
    assert run.returncode == 0, run.stderr
    tree = parse(out.read_text(encoding="utf-8")).root
    assert tree.by_id("verdict").tag == "section"
    assert structure_fingerprint(tree, sample.name) == STRUCTURE_FINGERPRINT

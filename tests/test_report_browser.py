"""The stakeholder report in a real headless Chromium (tests/browser.py): it draws its
charts with no console error and no request, prints to A4, and a report full of
hostile vendor strings runs no script of theirs.

Every report is rendered by the CLI (``calaudit run ... --report``) into tmp_path.
These tests never skip: without Chromium or Playwright they fail with the install
command (browser.BrowserUnavailable). Screenshots and the PDF land in test-artifacts/.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

import calaudit.cli.group as cli_module
from browser import _load, _open_page, artifact_path, inspect_page, print_to_pdf
from calaudit.cli import cli

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DATA = REPO / "sample_data"
SAMPLES: dict[str, tuple[Path, ...]] = {
    "digits_gaussian_nb": (SAMPLE_DATA / "digits_gaussian_nb.csv",),
    "digits_logistic_regression": (SAMPLE_DATA / "digits_logistic_regression.csv",),
    "breast_cancer_gaussian_nb": (SAMPLE_DATA / "breast_cancer_gaussian_nb.csv",),
    "breast_cancer_logistic_regression": (SAMPLE_DATA / "breast_cancer_logistic_regression.parquet",),
    "digits_mlp": (SAMPLE_DATA / "digits_mlp.onnx", SAMPLE_DATA / "digits_images"),
    "breast_cancer_forest": (SAMPLE_DATA / "breast_cancer_forest.onnx", SAMPLE_DATA / "breast_cancer_table"),
}
FIRST_SCREEN = (1200, 900)

XSS_CLASS = "<script>alert(1)</script>"
QUOTED_CLASS = 'dog & "friends"'
APOSTROPHE_CLASS = "O'Brien <b>bold</b>"
XSS_FILE_STEM = "<img src=x onerror=alert(1)>"


def run_cli(*args: object, cwd: Path) -> None:
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if (name.startswith("CALAUDIT_") and name != "CALAUDIT_CHROMIUM") or name == "GITHUB_STEP_SUMMARY":
                mp.delenv(name)
        mp.chdir(cwd)
        mp.setitem(cli_module._state, "debug", False)
        result = CliRunner().invoke(cli, [str(a) for a in args], prog_name="calaudit")
    assert result.exit_code == 0, result.output


def render(name: str, tmp_path: Path) -> tuple[Path, dict]:
    report, result = tmp_path / f"{name}.html", tmp_path / f"{name}.json"
    run_cli("run", *SAMPLES[name], "--report", report, "--json", result, "-q", cwd=tmp_path)
    return report, json.loads(result.read_text(encoding="utf-8"))


def css_colour(variable: str) -> tuple[int, int, int]:
    css = (REPO / "templates" / "report.css").read_text(encoding="utf-8")
    value = re.search(rf"{re.escape(variable)}:\s*#([0-9a-fA-F]{{6}})\s*;", css)
    assert value, variable
    return tuple(int(value[1][i:i + 2], 16) for i in (0, 2, 4))


def share_of_colour(image: Image.Image, colour: tuple[int, int, int], tolerance: int = 3) -> float:
    pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    close = np.all(np.abs(pixels - np.array(colour, dtype=np.int16)) <= tolerance, axis=-1)
    return float(close.mean())


@pytest.mark.parametrize("name", list(SAMPLES))
def test_sample_report_renders_cleanly(name: str, tmp_path: Path) -> None:
    report_path, doc = render(name, tmp_path)
    expected_charts = 2 + len(doc["class_reliability"])
    page = inspect_page(
        report_path, artifact_path(f"report-{name}.png"), width=FIRST_SCREEN[0], height=FIRST_SCREEN[1],
        first_screen_path=artifact_path(f"report-{name}-first-screen.png"),
    )
    assert page.console_errors == [], page.console_messages
    assert page.requests == [], page.requests
    assert page.failed_requests == []
    assert page.dialogs == []
    assert page.svg_count >= expected_charts, f"{page.svg_count} main-svg for {expected_charts} charts"
    assert SAMPLES[name][0].name in page.title

    full = Image.open(page.screenshot_path)
    full.load()
    assert full.width == FIRST_SCREEN[0] and full.height > FIRST_SCREEN[1]
    first = Image.open(page.first_screen_path)
    first.load()
    assert first.size == FIRST_SCREEN, "the first screen is the viewport, not the full page"
    # The verdict's colour is on the first screen (its box background, from report.css).
    level = doc["verdict"]["level"]
    assert share_of_colour(first, css_colour(f"--{level}-bg")) > 0.02, f"no {level} verdict box on the first screen"


def test_report_prints_to_a4(tmp_path: Path) -> None:
    report_path, _ = render("breast_cancer_gaussian_nb", tmp_path)
    page = print_to_pdf(report_path, artifact_path("report-breast_cancer_gaussian_nb.pdf"))
    assert page.console_errors == [] and page.requests == []
    data = page.pdf_path.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    boxes = re.findall(rb"/MediaBox\s*\[\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*\]", data)
    assert boxes, "no MediaBox in the PDF"
    x0, y0, x1, y1 = (float(v) for v in boxes[0])
    assert abs((x1 - x0) - 595.28) < 2 and abs((y1 - y0) - 841.89) < 2, boxes[0]
    pages = len(re.findall(rb"/Type\s*/Page(?![s\w])", data))
    assert pages >= 2, "the appendix starts on a page of its own"


def _xss_report(tmp_path: Path) -> Path:
    names = [XSS_CLASS, QUOTED_CLASS, APOSTROPHE_CLASS, "cat"]
    rng = np.random.default_rng(3)
    proba = rng.dirichlet(np.ones(len(names)), 400)
    labels = [names[rng.choice(len(names), p=p)] for p in proba]
    frame = pd.DataFrame({"label": labels, **{f"prob_{n}": proba[:, i] for i, n in enumerate(names)}})
    path = tmp_path / f"{XSS_FILE_STEM}.csv"
    frame.to_csv(path, index=False)
    report = tmp_path / "xss.html"
    run_cli("run", path, "--report", report, "-q", cwd=tmp_path)
    return report


def test_dialog_recorder_sees_an_alert(tmp_path: Path) -> None:
    """Control for the test below: an alert() is caught by the harness."""
    page_path = tmp_path / "alert.html"
    page_path.write_text(
        '<!doctype html><html><head><meta charset="utf-8"><title>alert</title></head>'
        "<body><p>x</p><script>alert('boom')</script></body></html>",
        encoding="utf-8",
    )
    page = inspect_page(page_path, None, wait_for_selector=None)
    assert page.dialogs == ["alert: boom"]


def test_hostile_vendor_strings_run_no_script(tmp_path: Path) -> None:
    report = _xss_report(tmp_path)
    page = inspect_page(report, artifact_path("report-xss.png"))
    assert page.dialogs == []
    assert page.console_errors == [], page.console_messages
    assert page.requests == [], page.requests
    assert page.svg_count >= 2 + 4
    assert page.title == f"Calibration audit: {XSS_FILE_STEM}.csv"


def test_class_names_read_verbatim_in_chart_titles(tmp_path: Path) -> None:
    """Escaped for plotly, but shown to the reader exactly as the vendor wrote them."""
    report = _xss_report(tmp_path)
    with _open_page(report, width=1280, height=900, timeout_s=30, ignore_console=(), extra_args=()) as (
        page, recorder, _version,
    ):
        _load(page, recorder, "svg.main-svg", 30)
        titles = page.eval_on_selector_all(".gtitle", "els => els.map(e => e.textContent)")
        axis_titles = page.eval_on_selector_all(".g-xtitle, .g-ytitle", "els => els.map(e => e.textContent)")
        injected = page.evaluate("() => document.querySelectorAll('main script, main img, main b, svg b').length")
    assert recorder.console_errors == []
    assert injected == 0
    for name in (XSS_CLASS, QUOTED_CLASS, APOSTROPHE_CLASS, "cat"):
        assert any(title.endswith(f" {name}") for title in titles), (name, titles)
        assert any(title.endswith(f" {name}") for title in axis_titles), (name, axis_titles)

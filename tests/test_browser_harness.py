"""The headless-browser harness (tests/browser.py) sees what it must see.

These run on pages generated here, not on calaudit's report: they prove that the
harness notices console errors, uncaught exceptions and network requests, that it
sees plotly's SVG, and that screenshots and PDFs come out. They never skip: without
Chromium or Playwright they fail with the install command (BrowserUnavailable).
Screenshots land in test-artifacts/ so CI keeps them.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import plotly.offline
import pytest
from PIL import Image

from browser import (
    BrowserUnavailable,
    PageDidNotRender,
    PageReport,
    artifact_path,
    find_chromium,
    inspect_page,
    print_to_pdf,
)

REPORT_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; font-src data:"
)
PLOTLY_BLUE = (31, 119, 180)  # #1f77b4, plotly's first trace colour


@pytest.fixture(scope="module")
def plotly_js() -> str:
    return plotly.offline.get_plotlyjs()


def _page(title: str, body: str, *, csp: str | None = None, head: str = "") -> str:
    meta = f'<meta http-equiv="Content-Security-Policy" content="{csp}">' if csp else ""
    return (
        f'<!doctype html><html><head><meta charset="utf-8">{meta}<title>{title}</title>{head}'
        f"</head><body>{body}</body></html>"
    )


def _plotly_page(plotly_js: str, *, csp: str | None = REPORT_CSP) -> str:
    body = (
        "<h1>Reliability</h1>"
        '<div id="reliability" style="width:800px;height:500px"></div>'
        f"<script>{plotly_js}</script>"
        "<script>Plotly.newPlot('reliability', "
        "[{x: [0.05, 0.35, 0.65, 0.95], y: [0.02, 0.30, 0.70, 0.97], type: 'scatter',"
        " mode: 'lines+markers', name: 'model'},"
        " {x: [0, 1], y: [0, 1], type: 'scatter', mode: 'lines', name: 'perfect',"
        "  line: {dash: 'dash', color: 'grey'}}],"
        " {title: {text: 'Reliability diagram'}, xaxis: {title: {text: 'confidence'}},"
        "  yaxis: {title: {text: 'accuracy'}}});</script>"
    )
    return _page("calaudit harness: plotly", body, csp=csp)


def _write(tmp_path: Path, name: str, html: str) -> Path:
    path = tmp_path / name
    path.write_text(html, encoding="utf-8")
    return path


def _assert_png(path: Path, *, width: int, min_height: int) -> Image.Image:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    w, h = struct.unpack(">II", data[16:24])
    assert w == width and h >= min_height, (w, h)
    image = Image.open(path)
    image.load()  # decodes the whole file: a truncated PNG fails here
    return image.convert("RGB")


def _count_near(image: Image.Image, rgb: tuple[int, int, int], tol: int = 40) -> int:
    pixels = np.asarray(image, dtype=np.int16)
    return int((np.abs(pixels - np.array(rgb, dtype=np.int16)) <= tol).all(axis=-1).sum())


def test_chromium_is_installed() -> None:
    # Fails (never skips) on a machine without the browser, naming the install step.
    assert Path(find_chromium()).is_file()


def test_missing_browser_raises_with_install_hint(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("CALAUDIT_CHROMIUM", str(tmp_path / "no-such-chromium"))
    page = _write(tmp_path, "p.html", _page("x", "<p>x</p>"))
    with pytest.raises(BrowserUnavailable, match=r"browser-deps\.sh.*apt-get install"):
        inspect_page(page, None, wait_for_selector=None)


def test_plotly_page_with_csp_is_clean(tmp_path, plotly_js) -> None:
    html = _write(tmp_path, "plotly.html", _plotly_page(plotly_js))
    shot = artifact_path("harness-plotly.png")
    shot.unlink(missing_ok=True)

    report = inspect_page(html, shot)

    assert isinstance(report, PageReport)
    assert report.console_errors == [], report.console_messages
    assert report.requests == [], report.requests
    assert report.svg_count >= 1
    assert report.title == "calaudit harness: plotly"
    image = _assert_png(shot, width=1280, min_height=900)
    # The chart is really painted, not only present in the DOM.
    assert _count_near(image, PLOTLY_BLUE) > 200


def test_requests_are_seen_and_blocked(tmp_path) -> None:
    (tmp_path / "sibling.css").write_text("p { color: red }", encoding="utf-8")
    html = _write(
        tmp_path,
        "net.html",
        _page(
            "network",
            '<p>network</p><img src="http://example.com/y.png">'
            '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'
            '<script>fetch("http://example.com/x").catch(() => {});</script>',
            head='<link rel="stylesheet" href="sibling.css">',
        ),
    )
    report = inspect_page(html, artifact_path("harness-network.png"), wait_for_selector=None)

    assert "http://example.com/x" in report.requests
    assert "http://example.com/y.png" in report.requests
    # A file:// URL other than the page's own counts: a report must load nothing.
    assert (tmp_path / "sibling.css").as_uri() in report.requests
    # The page itself and data: URLs do not.
    assert html.as_uri() not in report.requests
    assert not [u for u in report.requests if u.startswith("data:")]
    # The harness answered them with an error: nothing left the machine.
    assert any("example.com/x" in f for f in report.failed_requests)


def test_csp_blocks_before_any_request(tmp_path) -> None:
    # With the report's CSP, a stray external resource is refused by the browser and
    # the refusal is a console error. Chromium still announces a CSP-blocked <img>
    # or <link> as a request (failed with "csp"; it never reaches the network), and
    # the harness keeps it in `requests`: the page did ask for it. fetch() is
    # refused before any request exists.
    html = _write(
        tmp_path,
        "csp.html",
        _page(
            "csp",
            '<img src="http://example.com/y.png">'
            '<script>fetch("http://example.com/x").catch(() => {});</script>',
            csp=REPORT_CSP,
        ),
    )
    report = inspect_page(html, None, wait_for_selector=None)

    assert report.requests == ["http://example.com/y.png"]
    assert report.failed_requests == ["http://example.com/y.png (csp)"]
    assert any("Content Security Policy" in e and "example.com/x" in e for e in report.console_errors)
    assert any("Content Security Policy" in e for e in report.console_errors), report.console_errors


def test_console_error_is_reported(tmp_path) -> None:
    html = _write(
        tmp_path, "console.html",
        _page("console", '<p>x</p><script>console.error("boom"); console.warn("only a warning");</script>'),
    )
    report = inspect_page(html, artifact_path("harness-console-error.png"), wait_for_selector=None)

    assert len(report.console_errors) == 1, report.console_errors
    assert report.console_errors[0].startswith("boom")


def test_uncaught_exceptions_are_reported(tmp_path) -> None:
    html = _write(
        tmp_path, "throws.html",
        _page(
            "throws",
            "<p>x</p>"
            '<script>throw new TypeError("kaboom");</script>'
            '<script>Promise.reject(new Error("rejected-promise"));</script>',
        ),
    )
    report = inspect_page(html, None, wait_for_selector=None)

    assert any("TypeError" in e and "kaboom" in e for e in report.console_errors), report.console_errors
    assert any("rejected-promise" in e for e in report.console_errors), report.console_errors


def test_print_to_pdf(tmp_path, plotly_js) -> None:
    html = _write(tmp_path, "print.html", _plotly_page(plotly_js))
    pdf = artifact_path("harness-plotly.pdf")
    pdf.unlink(missing_ok=True)

    report = print_to_pdf(html, pdf)

    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    assert data.rstrip().endswith(b"%%EOF")
    assert len(data) > 5_000
    assert report.console_errors == [] and report.requests == []


def test_chart_that_never_draws_fails_with_diagnostics(tmp_path) -> None:
    # plotly.js missing: the awaited SVG never comes, and the error says why.
    html = _write(
        tmp_path, "nochart.html",
        _page("no chart", '<div id="p"></div><script>Plotly.newPlot("p", []);</script>'),
    )
    shot = tmp_path / "nochart.png"
    with pytest.raises(PageDidNotRender, match="Plotly is not defined"):
        inspect_page(html, shot, timeout_s=2)
    assert shot.read_bytes()[:4] == b"\x89PNG"  # the screenshot is still taken

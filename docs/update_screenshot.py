"""Regenerate docs/report-first-screen.png: what a reader sees on opening the report.

Run from anywhere: ``python docs/update_screenshot.py``. It renders the report of
sample_data/digits_gaussian_nb.csv (an overconfident model) with the CLI into a
temporary directory, opens it in the headless Chromium of the test harness
(tests/browser.py), takes a viewport-only screenshot of the first screen (1200 x 900),
and writes it quantized to a small palette so the PNG stays around 150 KB or less.
It fails, writing nothing, if the page logs a console error or makes a request.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data" / "digits_gaussian_nb.csv"
OUTPUT = REPO / "docs" / "report-first-screen.png"
WIDTH, HEIGHT = 1200, 900
MAX_BYTES = 150_000

sys.path.insert(0, str(REPO / "tests"))
from browser import inspect_page  # noqa: E402  (the test harness: system Chromium via Playwright)


def render_report(directory: Path) -> Path:
    report = directory / "report.html"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALAUDIT_") or k == "CALAUDIT_CHROMIUM"}
    env.pop("GITHUB_STEP_SUMMARY", None)
    # The sample is given relative to the repository so no absolute path of this
    # machine appears in the report (the first screen does not show it anyway).
    subprocess.run(
        [sys.executable, "-m", "calaudit", "run", str(SAMPLE.relative_to(REPO)), "--report", str(report), "-q"],
        cwd=REPO, env=env, check=True,
    )
    return report


def quantize(source: Path, target: Path) -> int:
    from PIL import Image

    image = Image.open(source).convert("RGB")
    assert image.size == (WIDTH, HEIGHT), image.size
    for colours in (64, 48, 32):
        small = image.convert("P", palette=Image.Palette.ADAPTIVE, colors=colours)
        tmp = target.with_suffix(".tmp.png")
        small.save(tmp, optimize=True)
        size = tmp.stat().st_size
        if size <= MAX_BYTES or colours == 32:
            os.replace(tmp, target)
            return size
        tmp.unlink()
    raise AssertionError("unreachable")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="calaudit-screenshot-") as tmp:
        tmp_dir = Path(tmp)
        report = render_report(tmp_dir)
        shot = tmp_dir / "first-screen.png"
        page = inspect_page(report, None, width=WIDTH, height=HEIGHT, first_screen_path=shot)
        problems = page.console_errors + page.requests + page.dialogs
        if problems:
            print(f"update_screenshot: the report misbehaved, nothing written: {problems}", file=sys.stderr)
            return 1
        size = quantize(shot, OUTPUT)
    print(f"{OUTPUT.relative_to(REPO)}: {WIDTH}x{HEIGHT}, {size:,} bytes (Chromium {page.browser_version})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

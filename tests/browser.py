"""A real headless browser for the tests: open a local HTML file, report what it did.

Not a test module: test files import it (``from browser import inspect_page``; pytest
puts ``tests/`` on ``sys.path``). It drives the system's Chromium or Chrome (on
Debian the package ``chromium``; see :func:`find_chromium` for where it looks, in the
same order as ``.ci/browser-deps.sh``) through Playwright's Python API, which speaks
the Chrome DevTools Protocol over a pipe: no port, no chromedriver. Playwright is
given the executable, so ``playwright install`` (a browser download) is needed only
on a machine with no browser of its own; the harness then finds that download too.

What it guarantees:

* Every request the page makes is recorded, whatever its scheme, and none leaves the
  machine: any URL that is not ``file:``, ``data:``, ``blob:`` or ``about:`` is
  answered with a network error by the harness itself, and Chromium's host resolver
  is told that no host name exists, so browser-internal traffic cannot go out either.
  The page's own ``file://`` URL and ``data:``/``blob:``/``about:`` URLs are left out
  of :attr:`PageReport.requests`; everything else (other ``file://`` URLs included)
  is in it.
* Console messages of level ``error`` and uncaught exceptions (``pageerror``),
  including unhandled promise rejections and crashes, land in
  :attr:`PageReport.console_errors`. Nothing is filtered out by default: with the
  flags below, Chromium itself writes nothing to a page's console (checked on
  Chromium 156), so any error there comes from the page.
* Every JavaScript dialog the page opens (``alert``, ``confirm``, ``prompt``,
  ``beforeunload``) is recorded in :attr:`PageReport.dialogs` and dismissed, so an
  injected ``alert(1)`` shows up there instead of blocking the page.
* A missing browser or a missing Playwright raises :class:`BrowserUnavailable`
  with the command that installs it: the browser tests fail, they never skip.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Screenshots and PDFs the tests save; git-ignored, kept by CI as artifacts.
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"

# Keep in step with .ci/browser-deps.sh, which says the same when it finds nothing.
BROWSER_INSTALL_HINT = (
    "run `bash .ci/browser-deps.sh` (Debian/Ubuntu: it runs apt-get install chromium "
    "fonts-dejavu-core, through sudo when not root), or point CALAUDIT_CHROMIUM at a "
    "Chrome/Chromium executable, or run `.venv/bin/python -m playwright install "
    "chromium` (Playwright's own download, found in its cache)"
)
PLAYWRIGHT_INSTALL_HINT = (
    "install the test extra: pip install -e '.[test]' (it holds playwright; the "
    "harness uses the system's Chromium or Chrome, so `playwright install` is needed "
    "only where there is none)"
)

#: Tried in order when CALAUDIT_CHROMIUM is not set; CALAUDIT_BROWSER_CANDIDATES
#: (colon-separated paths or names) replaces this list, for tests. The same list is in
#: .ci/browser-deps.sh. Debian's /usr/bin/chromium is a shell wrapper that adds flags
#: of its own (--enable-remote-extensions, --enable-gpu-rasterization, Google API
#: keys) and, on machines with a large /dev/shm, prints a shell error; the real
#: binary behind it comes first.
CHROMIUM_CANDIDATES = (
    "/usr/lib/chromium/chromium",
    "/usr/bin/chromium",
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
)
#: Playwright's own downloads (``python -m playwright install chromium``) inside its
#: browsers folder (:func:`playwright_browsers_dir`): old and current layouts, Linux
#: and macOS.
PLAYWRIGHT_CHROMIUM_GLOBS = (
    "chromium-*/chrome-linux*/chrome",
    "chromium-*/chrome-mac*/Chromium.app/Contents/MacOS/Chromium",
    "chromium-*/chrome-mac*/Google Chrome for Testing.app/Contents/MacOS/Google Chrome for Testing",
)

#: Flags for a hermetic, quiet, GPU-less headless Chromium running as root.
CHROMIUM_ARGS = (
    "--no-sandbox",  # root in CI and containers
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-breakpad",
    "--disable-domain-reliability",
    "--metrics-recording-only",
    "--disable-dev-shm-usage",  # small /dev/shm in containers crashes renderers
    "--hide-scrollbars",  # screenshots independent of scrollbar rendering
    "--force-color-profile=srgb",
    "--font-render-hinting=none",
    # Belt and braces behind the request interception: no host name resolves, so
    # nothing (page, prefetch, browser service) can open a connection anywhere.
    "--host-resolver-rules=MAP * ~NOTFOUND",
)

#: URL schemes that never touch the network; everything else is blocked.
_LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")
#: Not reported in PageReport.requests (the page's own URL is left out separately).
_UNREPORTED_SCHEMES = ("data:", "blob:", "about:")

_JS_SETTLE = """async () => {
    if (document.fonts && document.fonts.ready) { await document.fonts.ready; }
    await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
}"""


class BrowserUnavailable(RuntimeError):
    """Chromium or Playwright is missing: the message says how to install it."""


class PageDidNotRender(AssertionError):
    """The awaited selector never appeared; the message carries the page's errors."""


@dataclass
class PageReport:
    """What a page did while it loaded and rendered."""

    url: str
    title: str
    #: Console messages of level "error" and uncaught page errors, in order.
    console_errors: list[str]
    #: Every request URL except the page's own and data:/blob:/about: ones. A
    #: subresource (<img>, <link>, <script src>) refused by the page's CSP is in it
    #: too (Chromium announces it, then fails it with "csp"; see failed_requests):
    #: the page asked for it. A fetch()/XHR refused by CSP never becomes a request
    #: and shows only as a console error.
    requests: list[str]
    #: ``svg.main-svg`` elements; plotly.js 3 draws several per chart (3 for a
    #: plain scatter), so compare with >= 1 per expected chart, not ==.
    svg_count: int
    screenshot_path: Path | None
    pdf_path: Path | None = None
    #: Every console message as "type: text", for diagnostics.
    console_messages: list[str] = field(default_factory=list)
    #: Requests that failed, as "url (error text)"; blocked ones included.
    failed_requests: list[str] = field(default_factory=list)
    browser_version: str = ""
    elapsed_s: float = 0.0
    #: JavaScript dialogs the page opened, as "type: message" (each was dismissed).
    dialogs: list[str] = field(default_factory=list)
    #: Viewport-only PNG (what a reader sees before scrolling), if one was asked for.
    first_screen_path: Path | None = None


def artifact_path(name: str) -> Path:
    """A path in test-artifacts/ (created) for a screenshot or PDF named ``name``."""
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS_DIR / name


def playwright_browsers_dir() -> Path | None:
    """Where Playwright keeps the browsers it downloads (None: inside its package)."""
    configured = os.environ.get("PLAYWRIGHT_BROWSERS_PATH")
    if configured == "0":  # the package's own folder: not searched
        return None
    if configured:
        return Path(configured)
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "ms-playwright"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ms-playwright"


def playwright_chromiums() -> list[str]:
    """Playwright's downloaded Chromium executables, newest first.

    Revisions have the same number of digits, so reverse name order is newest first
    (.ci/browser-deps.sh orders them the same way).
    """
    root = playwright_browsers_dir()
    if root is None or not root.is_dir():
        return []
    found = [str(path) for pattern in PLAYWRIGHT_CHROMIUM_GLOBS for path in sorted(root.glob(pattern))]
    return found[::-1]


@functools.lru_cache(maxsize=None)
def _answers_version(executable: str) -> bool:
    """Whether ``executable --version`` runs and exits 0 (a browser that can start)."""
    try:
        done = subprocess.run(
            [executable, "--version"], stdin=subprocess.DEVNULL, capture_output=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _usable(candidate: str) -> str | None:
    path = shutil.which(candidate)
    return path if path is not None and _answers_version(path) else None


def find_chromium() -> str:
    """The browser to use, or :class:`BrowserUnavailable`.

    ``CALAUDIT_CHROMIUM`` alone when it is set; else the first of
    :data:`CHROMIUM_CANDIDATES` (or ``CALAUDIT_BROWSER_CANDIDATES``), then of
    :func:`playwright_chromiums`, that is an executable answering ``--version``.
    ``.ci/browser-deps.sh`` looks in the same order.
    """
    override = os.environ.get("CALAUDIT_CHROMIUM")
    if override:
        path = _usable(override)
        if path is None:
            raise BrowserUnavailable(
                f"CALAUDIT_CHROMIUM={override!r} is not an executable that answers "
                f"--version; {BROWSER_INSTALL_HINT}"
            )
        return path
    configured = os.environ.get("CALAUDIT_BROWSER_CANDIDATES")
    candidates = [c for c in configured.split(":") if c] if configured else list(CHROMIUM_CANDIDATES)
    candidates += playwright_chromiums()
    for candidate in candidates:
        path = _usable(candidate)
        if path is not None:
            return path
    raise BrowserUnavailable(
        "no Chromium or Chrome found (looked for " + ", ".join(candidates)
        + " and in Playwright's cache); " + BROWSER_INSTALL_HINT
    )


def _import_playwright():
    try:
        from playwright.sync_api import Error, TimeoutError, sync_playwright
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise BrowserUnavailable(f"Playwright is not importable ({exc}); {PLAYWRIGHT_INSTALL_HINT}") from exc
    return sync_playwright, Error, TimeoutError


def _is_local(url: str) -> bool:
    return url.startswith(_LOCAL_SCHEMES)


def _format_console(msg) -> str:
    text = msg.text
    loc = msg.location or {}
    if loc.get("url"):
        text += f" [at {loc['url'][:200]}:{loc.get('lineNumber', '?')}]"
    return text


def _format_page_error(err) -> str:
    name = getattr(err, "name", None) or "Error"
    message = getattr(err, "message", None) or str(err)
    return f"uncaught {name}: {message}"


@dataclass
class _Recorder:
    own_url: str
    ignore: tuple[re.Pattern[str], ...]
    console_errors: list[str] = field(default_factory=list)
    console_messages: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    _attached: set[int] = field(default_factory=set)

    def _keep(self, text: str) -> bool:
        return not any(p.search(text) for p in self.ignore)

    def on_console(self, msg) -> None:
        text = _format_console(msg)
        self.console_messages.append(f"{msg.type}: {text}")
        if msg.type == "error" and self._keep(text):
            self.console_errors.append(text)

    def on_page_error(self, err) -> None:
        text = _format_page_error(err)
        self.console_messages.append(f"pageerror: {text}")
        if self._keep(text):
            self.console_errors.append(text)

    def on_crash(self, _page) -> None:
        self.console_errors.append("page crashed (renderer process died)")

    def on_request(self, request) -> None:
        url = request.url
        if url.startswith(_UNREPORTED_SCHEMES) or url.split("#", 1)[0] == self.own_url:
            return
        self.requests.append(url)

    def on_request_failed(self, request) -> None:
        self.failed_requests.append(f"{request.url} ({request.failure})")

    def on_websocket(self, ws) -> None:
        self.requests.append(ws.url)

    def on_dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        try:
            dialog.dismiss()  # a listener must settle the dialog, or the page blocks
        except Exception:  # pragma: no cover - the page may be closing
            pass

    def attach(self, page) -> None:
        if id(page) in self._attached:
            return
        self._attached.add(id(page))
        page.on("console", self.on_console)
        page.on("pageerror", self.on_page_error)
        page.on("crash", self.on_crash)
        page.on("websocket", self.on_websocket)
        page.on("dialog", self.on_dialog)


@contextmanager
def _open_page(
    html_path: Path,
    *,
    width: int,
    height: int,
    timeout_s: float,
    ignore_console: Iterable[str | re.Pattern[str]],
    extra_args: Iterable[str],
) -> Iterator[tuple[object, _Recorder, str]]:
    """Launch a fresh Chromium (own empty profile), open ``html_path`` in it."""
    html_path = Path(html_path).resolve()
    if not html_path.is_file():
        raise FileNotFoundError(html_path)
    executable = find_chromium()
    sync_playwright, PlaywrightError, _ = _import_playwright()
    own_url = html_path.as_uri()
    recorder = _Recorder(own_url=own_url, ignore=tuple(re.compile(p) for p in ignore_console))
    timeout_ms = timeout_s * 1000
    # Starting Chromium on a loaded 2-core CI machine can take many seconds: give the
    # launch its own, generous timeout and one retry.
    launch_timeout_ms = max(60_000.0, 2 * timeout_ms)

    with sync_playwright() as pw, tempfile.TemporaryDirectory(prefix="calaudit-chromium-") as tmp:
        context = None
        for attempt in (1, 2):
            profile = Path(tmp) / f"profile-{attempt}"  # fresh and empty every time
            profile.mkdir()
            try:
                context = pw.chromium.launch_persistent_context(
                    str(profile),
                    executable_path=executable,
                    headless=True,
                    args=[*CHROMIUM_ARGS, *extra_args],
                    viewport={"width": width, "height": height},
                    device_scale_factor=1,
                    service_workers="block",
                    timeout=launch_timeout_ms,
                    # Playwright's own defaults are kept: they add quieting flags.
                )
                break
            except PlaywrightError as exc:
                if attempt == 2:
                    raise BrowserUnavailable(
                        f"Chromium at {executable} did not start: {exc}\n{BROWSER_INSTALL_HINT}"
                    ) from exc
                time.sleep(1.0)
        assert context is not None
        try:
            context.set_default_timeout(timeout_ms)
            context.set_default_navigation_timeout(timeout_ms)
            # Record at the context, so popups, iframes and workers are covered too.
            context.on("request", recorder.on_request)
            context.on("requestfailed", recorder.on_request_failed)
            context.on("page", recorder.attach)
            # Nothing leaves the machine: non-local URLs fail as if offline.
            context.route(lambda url: not _is_local(url), lambda route: route.abort("internetdisconnected"))
            # A persistent context opens with one blank page, made before our "page"
            # listener existed; attach() ignores a page it has already seen.
            page = context.pages[0] if context.pages else context.new_page()
            recorder.attach(page)
            version = context.browser.version if context.browser else ""
            yield page, recorder, version
        finally:
            context.close()


def _load(page, recorder: _Recorder, wait_for_selector: str | None, timeout_s: float) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(recorder.own_url, wait_until="load")
    if wait_for_selector:
        try:
            page.wait_for_selector(wait_for_selector, state="attached")
        except PlaywrightTimeout as exc:
            raise PageDidNotRender(
                f"{wait_for_selector!r} did not appear in {recorder.own_url} within {timeout_s}s; "
                f"console errors: {recorder.console_errors}; requests: {recorder.requests}"
            ) from exc
    try:
        # Late requests (timers, fetch after load) show up before we read the lists.
        page.wait_for_load_state("networkidle", timeout=min(10_000, timeout_s * 1000))
    except PlaywrightTimeout:
        pass  # a page that keeps polling still gets reported, with what it asked for
    page.evaluate(_JS_SETTLE)


def inspect_page(
    html_path: Path,
    screenshot_path: Path | None,
    *,
    width: int = 1280,
    height: int = 900,
    wait_for_selector: str | None = "svg.main-svg",
    timeout_s: float = 30,
    pdf_path: Path | None = None,
    ignore_console: Iterable[str | re.Pattern[str]] = (),
    extra_args: Iterable[str] = (),
    first_screen_path: Path | None = None,
) -> PageReport:
    """Open ``html_path`` in headless Chromium and report what it did.

    Waits for the ``load`` event, then for ``wait_for_selector`` (None: don't wait;
    :class:`PageDidNotRender` if it never appears), then for the network to go idle
    and two animation frames. Saves a full-page PNG to ``screenshot_path`` (None: no
    screenshot) and, if ``pdf_path`` is given, prints the page to an A4 PDF.
    ``ignore_console`` holds regular expressions of console errors to leave out; use
    it only for a known, named message, never a broad pattern. ``first_screen_path``
    (None: none) receives a PNG of the viewport only (``width`` x ``height``, the page
    scrolled to the top): what a reader sees before scrolling.
    """
    start = time.monotonic()
    with _open_page(
        html_path, width=width, height=height, timeout_s=timeout_s,
        ignore_console=ignore_console, extra_args=extra_args,
    ) as (page, recorder, version):
        try:
            _load(page, recorder, wait_for_selector, timeout_s)
        finally:
            # A screenshot of a page that failed to render is the most useful artifact.
            if screenshot_path is not None:
                screenshot_path = Path(screenshot_path)
                screenshot_path.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot_path), full_page=True, animations="disabled")
            if first_screen_path is not None:
                first_screen_path = Path(first_screen_path)
                first_screen_path.parent.mkdir(parents=True, exist_ok=True)
                page.evaluate("() => window.scrollTo(0, 0)")
                page.screenshot(path=str(first_screen_path), full_page=False, animations="disabled")
        svg_count = page.locator("svg.main-svg").count()
        title = page.title()
        if pdf_path is not None:
            _print(page, Path(pdf_path))
        return PageReport(
            url=recorder.own_url,
            title=title,
            console_errors=list(recorder.console_errors),
            requests=list(recorder.requests),
            svg_count=svg_count,
            screenshot_path=screenshot_path,
            pdf_path=pdf_path,
            console_messages=list(recorder.console_messages),
            failed_requests=list(recorder.failed_requests),
            browser_version=version,
            elapsed_s=time.monotonic() - start,
            dialogs=list(recorder.dialogs),
            first_screen_path=first_screen_path,
        )


def _print(page, pdf_path: Path, margin: str = "10mm") -> None:
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    page.emulate_media(media="print")
    page.evaluate(_JS_SETTLE)
    page.pdf(
        path=str(pdf_path),
        format="A4",
        print_background=True,
        margin={"top": margin, "bottom": margin, "left": margin, "right": margin},
    )


def print_to_pdf(
    html_path: Path,
    pdf_path: Path,
    *,
    wait_for_selector: str | None = "svg.main-svg",
    timeout_s: float = 30,
    screenshot_path: Path | None = None,
) -> PageReport:
    """Print ``html_path`` to an A4 PDF with the browser's print (print media CSS)."""
    return inspect_page(
        html_path, screenshot_path, wait_for_selector=wait_for_selector,
        timeout_s=timeout_s, pdf_path=pdf_path,
    )

""".ci/browser-deps.sh (the README's second command) works for an ordinary user.

The script runs for real (a copy, in a fake repository in tmp_path), but with a PATH
made only of stub executables: ``chromium`` prints a version, ``id`` reports a uid,
``sudo``, ``apt-get``, ``dpkg-query`` and ``python`` record their arguments in a file
(``apt-get install`` "installs" Chromium by making the stub answer; ``python -m
playwright install chromium`` "downloads" one into Playwright's cache, or fails as
without network). No real apt, sudo, download or browser is touched. The last tests
check that tests/browser.py looks for the browser in the same order.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from browser import BrowserUnavailable, find_chromium, playwright_browsers_dir

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / ".ci" / "browser-deps.sh"
BASH = shutil.which("bash")
#: Real tools the script (and the sudo stub) need besides the stubs.
REAL_TOOLS = ("mktemp", "rm", "cat", "sleep", "env")
PACKAGES = ("chromium", "fonts-dejavu-core")
VERSION = "Chromium 123.0.6312.58"
#: What the stub Playwright's download answers to --version.
DOWNLOADED_VERSION = "Google Chrome for Testing 159.0.8154.6"
#: Where Playwright's own download lands, inside its browsers folder.
DOWNLOADED = Path("chromium-1255") / "chrome-linux64" / "chrome"
#: What Playwright prints when its CDN cannot be reached (as on a machine that
#: reaches only package registries).
CDN_ERROR = "Error: getaddrinfo ENOTFOUND cdn.playwright.dev"
#: What a downloaded Chrome missing the system's libraries says.
LIBRARY_ERROR = "chrome: error while loading shared libraries: libnss3.so"
#: The stub Python's calls when the download is tried.
DOWNLOAD_CALLS = ["python -c import playwright", "python -m playwright install chromium"]
APT_COMMAND = "apt-get install -y --no-install-recommends " + " ".join(PACKAGES)


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    calls: list[str]


class FakeMachine:
    """A PATH of stubs in ``tmp_path``: what the script sees instead of the machine."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path
        #: A copy of the script in a repository of its own: the real one's .venv is
        #: never seen, and the script's .venv/bin/python is this repo's.
        self.repo = tmp_path / "repo"
        (self.repo / ".ci").mkdir(parents=True)
        self.script = self.repo / ".ci" / SCRIPT.name
        shutil.copy2(SCRIPT, self.script)
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.calls = tmp_path / "calls.txt"
        self.calls.touch()
        #: Empty Playwright cache, so the user's real one is never seen.
        self.playwright = tmp_path / "ms-playwright"
        self.playwright.mkdir()
        self.env = {
            "PATH": str(self.bin),
            "HOME": str(tmp_path / "home"),
            "PLAYWRIGHT_BROWSERS_PATH": str(self.playwright),
            # Only names, so only this PATH counts (the real machine has Chromium).
            "CALAUDIT_BROWSER_CANDIDATES": "chromium:chromium-browser:google-chrome",
        }
        for tool in REAL_TOOLS:
            (self.bin / tool).symlink_to(shutil.which(tool))
        self.uid(1000)
        self.dpkg(installed=())

    def stub(self, name: str, body: str, where: Path | None = None) -> Path:
        path = (where or self.bin) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'#!/bin/sh\necho "{name} $*" >> "{self.calls}"\n{body}\n', encoding="utf-8")
        path.chmod(0o755)
        return path

    def browser(self, name: str = "chromium", where: Path | None = None, *, works: bool = True) -> Path:
        # Quiet: a browser's --version is not a call worth recording.
        path = (where or self.bin) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"#!/bin/sh\necho '{VERSION} '\n" if works else "#!/bin/sh\nexit 1\n")
        path.chmod(0o755)
        return path

    def uid(self, uid: int) -> None:
        self.stub("id", f"echo {uid}")

    def dpkg(self, installed: tuple[str, ...]) -> None:
        # The package is the last argument: dpkg-query -W -f='${Status}' PKG.
        self.stub(
            "dpkg-query",
            'for pkg; do :; done\n'
            f'case " {" ".join(installed)} " in *" $pkg "*) printf "install ok installed";; '
            '*) echo "dpkg-query: no packages found matching $pkg" >&2; exit 1;; esac',
        )

    def apt(self) -> None:
        # `apt-get install ... chromium ...` makes a working chromium appear on PATH.
        chromium = self.bin / "chromium"
        self.stub(
            "apt-get",
            'if [ "$1" = install ]; then\n'
            f"  printf '#!/bin/sh\\necho \"{VERSION}\"\\n' > \"{chromium}\"\n"
            "fi",
        )
        if not chromium.exists():
            # Not installed yet: there, but does not run (the stub's redirect above
            # keeps the mode, as chmod is not on this PATH).
            self.browser(works=False)

    def sudo(self, *, password: bool) -> None:
        # With a password, `sudo -n` refuses and `sudo -v` stands for the user typing it.
        refuse = (
            'if [ "$1" = -n ]; then echo "sudo: a password is required" >&2; exit 1; fi\n'
            '[ "$1" = -v ] && exit 0\n'
            if password
            else ""
        )
        self.stub("sudo", refuse + '[ "$1" = -n ] && shift\n"$@"\nexit $?')

    def python(self, where: Path | None = None, *, name: str = "python3", playwright: bool = True,
               download: str = "works") -> Path:
        """A Python that imports playwright (or not) and whose ``-m playwright install
        chromium`` puts a browser into Playwright's cache ("works"), fails as without
        network ("fails"), or puts one there that does not start ("broken")."""
        if download == "fails":
            install = f"echo 'Downloading Chrome for Testing 159.0.8154.6'\necho '{CDN_ERROR}'\nexit 1"
        else:
            # What the download leaves behind, copied into place with its mode.
            template = self.root / "templates" / download
            template.parent.mkdir(exist_ok=True)
            template.write_text(
                f"#!/bin/sh\necho '{DOWNLOADED_VERSION} '\n"
                if download == "works"
                else f"#!/bin/sh\necho '{LIBRARY_ERROR}' >&2\nexit 127\n"
            )
            template.chmod(0o755)
            folder = f'"${{PLAYWRIGHT_BROWSERS_PATH:-{self.default_playwright_cache()}}}/{DOWNLOADED.parent}"'
            install = (
                f"{shutil.which('mkdir')} -p {folder} && "
                f"{shutil.which('cp')} -p {template} {folder}/{DOWNLOADED.name}"
            )
        body = (
            f'if [ "$1" = -c ] && [ "$2" = "import playwright" ]; then exit {0 if playwright else 1}; fi\n'
            'if [ "$*" = "-m playwright install chromium" ]; then\n'
            f"{install}\nexit $?\nfi\nexit 2"
        )
        return self.stub(name, body, where)

    def venv_python(self, **kwargs) -> Path:
        """The repository's .venv/bin/python (the README's command 1 makes it)."""
        return self.python(self.repo / ".venv" / "bin", name="python", **kwargs)

    def default_playwright_cache(self) -> Path:
        """Where Playwright downloads to with PLAYWRIGHT_BROWSERS_PATH unset, as the
        harness (tests/browser.py) works it out for this machine's HOME."""
        saved = {k: os.environ.get(k) for k in ("HOME", "PLAYWRIGHT_BROWSERS_PATH", "XDG_CACHE_HOME")}
        try:
            os.environ["HOME"] = self.env["HOME"]
            os.environ.pop("PLAYWRIGHT_BROWSERS_PATH", None)
            os.environ.pop("XDG_CACHE_HOME", None)
            return playwright_browsers_dir()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def run(self, *, stdin: int = subprocess.DEVNULL, **env: str) -> Run:
        merged = {**self.env, **env}
        done = subprocess.run(
            [BASH, str(self.script)],
            env={k: v for k, v in merged.items() if v is not None},
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=30,
            cwd=self.repo,
        )
        calls = self.calls.read_text(encoding="utf-8").splitlines()
        return Run(done.returncode, done.stdout, done.stderr, calls)


@pytest.fixture
def machine(tmp_path) -> FakeMachine:
    return FakeMachine(tmp_path)


def _calls_of(run: Run, tool: str) -> list[str]:
    return [c for c in run.calls if c.split(" ", 1)[0] == tool]


def test_user_with_browser_needs_no_privileges(machine) -> None:
    chromium = machine.browser()
    machine.dpkg(installed=PACKAGES)
    machine.sudo(password=False)
    machine.apt()  # would replace the stub browser: must not be called

    run = machine.run()

    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [f"browser-deps: using {chromium} ({VERSION})"]
    assert run.stderr == ""
    assert _calls_of(run, "sudo") == [] and _calls_of(run, "apt-get") == []


def test_missing_font_without_passwordless_sudo_is_only_a_note(machine) -> None:
    machine.browser()
    machine.dpkg(installed=("chromium",))
    machine.sudo(password=True)
    machine.apt()

    run = machine.run()

    assert run.returncode == 0, run.stderr
    assert len(run.stdout.splitlines()) == 1 and "using" in run.stdout
    note = run.stderr.splitlines()
    assert len(note) == 1 and "fonts-dejavu-core" in note[0] and "note" in note[0]
    assert _calls_of(run, "apt-get") == []
    # Only the non-interactive probe: never a sudo that could prompt.
    assert all(c.startswith("sudo -n ") for c in _calls_of(run, "sudo")), run.calls


def test_missing_font_with_passwordless_sudo_is_installed(machine) -> None:
    machine.browser()
    machine.dpkg(installed=("chromium",))
    machine.sudo(password=False)
    machine.apt()

    run = machine.run()

    assert run.returncode == 0, run.stderr
    assert "installed fonts-dejavu-core" in run.stdout
    install = "apt-get install -y -qq --no-install-recommends fonts-dejavu-core"
    sudo = _calls_of(run, "sudo")
    assert any(c.startswith("sudo -n ") and c.endswith(install) for c in sudo), run.calls


def test_user_without_browser_installs_through_sudo_n(machine) -> None:
    machine.apt()
    machine.sudo(password=False)
    machine.venv_python()  # there, but apt comes first

    run = machine.run()

    assert run.returncode == 0, run.stderr
    assert _calls_of(run, "python") == []
    sudo = _calls_of(run, "sudo")
    assert any(c.startswith("sudo -n ") and c.endswith("apt-get update -qq") for c in sudo), sudo
    install = "apt-get install -y -qq --no-install-recommends " + " ".join(PACKAGES)
    assert any(c.startswith("sudo -n ") and c.endswith(install) for c in sudo), sudo
    assert f"apt-get {install[len('apt-get '):]}" in _calls_of(run, "apt-get")
    assert run.stdout.splitlines() == [
        f"browser-deps: installed {' '.join(PACKAGES)}; using {machine.bin / 'chromium'} ({VERSION})"
    ]

    # Idempotent: the second run finds the browser and calls nothing.
    machine.dpkg(installed=PACKAGES)
    machine.calls.write_text("")
    again = machine.run()
    assert again.returncode == 0, again.stderr
    assert _calls_of(again, "sudo") == [] and _calls_of(again, "apt-get") == []


def test_password_needed_without_terminal_tries_the_download_then_prints_the_command(machine) -> None:
    machine.apt()
    machine.sudo(password=True)
    machine.venv_python(download="fails")

    run = machine.run()

    assert run.returncode == 1
    assert run.stdout == ""
    notice, message = run.stderr.splitlines()  # "downloading ...", then the three ways
    assert "sudo wants a password and stdin is not a terminal" in notice
    assert "downloading Playwright's Chromium" in notice
    assert (
        "(1) with sudo: sudo apt-get update && sudo apt-get install -y --no-install-recommends "
        + " ".join(PACKAGES)
    ) in message
    assert "(2) point CALAUDIT_CHROMIUM at a Chrome/Chromium executable" in message
    assert (
        "(3) Playwright's download for this user, no root: `.venv/bin/python -m playwright install"
        f" chromium` (tried here, it failed: {CDN_ERROR})"
    ) in message
    assert _calls_of(run, "python") == DOWNLOAD_CALLS
    assert _calls_of(run, "apt-get") == []
    assert all(c.startswith("sudo -n ") for c in _calls_of(run, "sudo")), run.calls


def test_password_needed_without_terminal_downloads_playwrights_chromium(machine) -> None:
    machine.apt()
    machine.sudo(password=True)
    machine.venv_python()

    run = machine.run()

    assert run.returncode == 0, run.stderr
    downloaded = machine.playwright / DOWNLOADED
    assert run.stdout.splitlines() == [
        f"browser-deps: downloaded Playwright's Chromium; using {downloaded} ({DOWNLOADED_VERSION})"
    ]
    assert _calls_of(run, "apt-get") == []
    assert all(c.startswith("sudo -n ") for c in _calls_of(run, "sudo")), run.calls


def test_password_needed_at_a_terminal_runs_plain_sudo(machine) -> None:
    machine.apt()
    machine.sudo(password=True)
    machine.venv_python()  # not needed: sudo asks for the password
    controller, terminal = os.openpty()
    try:
        run = machine.run(stdin=terminal)
    finally:
        os.close(terminal)
        os.close(controller)

    assert run.returncode == 0, run.stderr
    assert _calls_of(run, "python") == []
    sudo = _calls_of(run, "sudo")
    assert "sudo -v" in sudo  # asks for the password once, on the terminal
    install = "apt-get install -y -qq --no-install-recommends " + " ".join(PACKAGES)
    assert any(c.startswith("sudo env ") and c.endswith(install) for c in sudo), sudo
    assert "installed chromium" in run.stdout


def test_root_without_browser_installs_with_apt_directly(machine) -> None:
    machine.uid(0)
    machine.apt()
    machine.sudo(password=False)
    machine.venv_python()

    run = machine.run()

    assert run.returncode == 0, run.stderr
    assert _calls_of(run, "sudo") == [] and _calls_of(run, "python") == []
    assert run.stdout.startswith("browser-deps: installed chromium")
    assert "apt-get install -y -qq --no-install-recommends " + " ".join(PACKAGES) in run.calls


def _no_apt(machine: FakeMachine) -> None:
    """macOS-like: no apt-get, no dpkg-query."""
    (machine.bin / "dpkg-query").unlink()


def _three_ways(message: str) -> None:
    assert message.startswith("browser-deps: no Chromium or Chrome found and ")
    assert "three ways to get one: (1) " in message
    assert "; (2) point CALAUDIT_CHROMIUM at a Chrome/Chromium executable; " in message
    assert "; (3) Playwright's download for this user, no root: `" in message
    assert "-m playwright install chromium`" in message
    assert message.endswith("; then run this again")


def test_user_without_sudo_downloads_playwrights_chromium(machine, monkeypatch) -> None:
    machine.apt()  # apt is there, but no root and no sudo to use it
    machine.venv_python()

    run = machine.run()

    assert run.returncode == 0, run.stderr
    downloaded = machine.playwright / DOWNLOADED
    assert run.stdout.splitlines() == [
        f"browser-deps: downloaded Playwright's Chromium; using {downloaded} ({DOWNLOADED_VERSION})"
    ]
    notice, font_note = run.stderr.splitlines()
    assert notice == (
        "browser-deps: no Chromium or Chrome found and no root for apt-get (there is no sudo);"
        " downloading Playwright's Chromium for this user (no root needed):"
        " .venv/bin/python -m playwright install chromium"
    )
    assert "note: fonts-dejavu-core is not installed" in font_note
    assert _calls_of(run, "python") == DOWNLOAD_CALLS
    assert _calls_of(run, "apt-get") == []

    # Idempotent: the next run finds the download, downloads nothing.
    machine.calls.write_text("")
    again = machine.run()
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [f"browser-deps: using {downloaded} ({DOWNLOADED_VERSION})"]
    assert _calls_of(again, "python") == []
    # And the harness uses the same browser.
    monkeypatch.delenv("CALAUDIT_CHROMIUM", raising=False)
    monkeypatch.setenv("CALAUDIT_BROWSER_CANDIDATES", "calaudit-no-such-browser")
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(machine.playwright))
    assert find_chromium() == str(downloaded)


def test_user_without_sudo_or_network_names_the_three_ways(machine) -> None:
    machine.apt()
    machine.venv_python(download="fails")

    run = machine.run()

    assert run.returncode == 1
    assert run.stdout == ""
    notice, message = run.stderr.splitlines()
    assert "downloading Playwright's Chromium" in notice
    _three_ways(message)
    assert f"(1) as root: apt-get update && {APT_COMMAND};" in message
    download = "`.venv/bin/python -m playwright install chromium`"
    assert f"{download} (tried here, it failed: {CDN_ERROR})" in message
    assert _calls_of(run, "python") == DOWNLOAD_CALLS
    assert not list(machine.playwright.iterdir())


def test_no_apt_downloads_into_playwrights_default_cache(machine, monkeypatch) -> None:
    _no_apt(machine)
    machine.venv_python()

    # Playwright's own default folder (PLAYWRIGHT_BROWSERS_PATH unset), as the harness sees it.
    run = machine.run(PLAYWRIGHT_BROWSERS_PATH=None)

    assert run.returncode == 0, run.stderr
    downloaded = machine.default_playwright_cache() / DOWNLOADED
    assert downloaded.is_file()
    assert run.stdout.splitlines() == [
        f"browser-deps: downloaded Playwright's Chromium; using {downloaded} ({DOWNLOADED_VERSION})"
    ]
    assert run.stderr.splitlines() == [
        "browser-deps: no Chromium or Chrome found and no apt-get here; downloading Playwright's"
        " Chromium for this user (no root needed): .venv/bin/python -m playwright install chromium"
    ]
    monkeypatch.delenv("CALAUDIT_CHROMIUM", raising=False)
    monkeypatch.delenv("PLAYWRIGHT_BROWSERS_PATH", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", machine.env["HOME"])
    monkeypatch.setenv("CALAUDIT_BROWSER_CANDIDATES", "calaudit-no-such-browser")
    assert find_chromium() == str(downloaded)


def test_no_apt_and_no_download_names_the_three_ways(machine) -> None:
    machine.sudo(password=False)
    _no_apt(machine)
    machine.venv_python(download="fails")

    run = machine.run()

    assert run.returncode == 1
    message = run.stderr.splitlines()[-1]
    _three_ways(message)
    assert "no Chromium or Chrome found and no apt-get here;" in message
    assert "(1) install Google Chrome or Chromium the way this system does;" in message
    assert CDN_ERROR in message
    assert _calls_of(run, "sudo") == []


@pytest.mark.parametrize("which", ["CALAUDIT_PYTHON", ".venv", "python3"])
def test_which_python_downloads(machine, which) -> None:
    """$CALAUDIT_PYTHON, else the repository's .venv/bin/python, else python3."""
    _no_apt(machine)
    env = {}
    if which == "CALAUDIT_PYTHON":
        chosen = machine.python(machine.root / "elsewhere", name="mypython")
        machine.venv_python(playwright=False)
        env["CALAUDIT_PYTHON"] = str(chosen)
        shown = str(chosen)
    elif which == ".venv":
        machine.venv_python()
        machine.python(playwright=False)
        shown = ".venv/bin/python"
    else:
        machine.python()
        shown = "python3"

    run = machine.run(**env)

    assert run.returncode == 0, run.stderr
    assert run.stderr.endswith(f": {shown} -m playwright install chromium\n")
    installs = [c for c in run.calls if c.endswith(" -m playwright install chromium")]
    assert installs == [f"{Path(shown).name} -m playwright install chromium"]


def test_no_python_with_playwright_says_so_without_trying(machine) -> None:
    machine.apt()
    machine.venv_python(playwright=False)

    run = machine.run()

    assert run.returncode == 1
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    _three_ways(lines[0])
    assert (
        "`.venv/bin/python -m playwright install chromium` (not tried: .venv/bin/python does not"
        " import playwright; install the test extra first: pip install -e '.[test]')"
    ) in lines[0]
    assert _calls_of(run, "python") == ["python -c import playwright"]


def test_download_that_does_not_start_names_the_missing_libraries(machine) -> None:
    machine.apt()
    machine.venv_python(download="broken")

    run = machine.run()

    assert run.returncode == 1
    message = run.stderr.splitlines()[-1]
    _three_ways(message)
    assert f"{machine.playwright / DOWNLOADED} does not start ({LIBRARY_ERROR})" in message
    assert "sudo .venv/bin/python -m playwright install-deps chromium" in message


def test_playwright_browsers_path_0_is_not_downloaded_into(machine) -> None:
    machine.apt()
    machine.venv_python()

    run = machine.run(PLAYWRIGHT_BROWSERS_PATH="0")

    assert run.returncode == 1
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    _three_ways(lines[0])
    assert "not tried: PLAYWRIGHT_BROWSERS_PATH=0" in lines[0]
    assert "python -m playwright install chromium" not in _calls_of(run, "python")


def test_calaudit_chromium_is_used_first(machine, tmp_path) -> None:
    machine.browser()  # on PATH, but the override wins
    chosen = machine.browser("my-chrome", tmp_path / "elsewhere")
    machine.dpkg(installed=PACKAGES)

    run = machine.run(CALAUDIT_CHROMIUM=str(chosen))

    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [f"browser-deps: using {chosen} ({VERSION})"]


def test_calaudit_chromium_that_does_not_run_fails_in_one_line(machine, tmp_path) -> None:
    machine.browser()
    broken = machine.browser("broken", tmp_path / "elsewhere", works=False)
    machine.apt()
    machine.sudo(password=False)

    run = machine.run(CALAUDIT_CHROMIUM=str(broken))

    assert run.returncode == 1
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and str(broken) in lines[0]
    assert _calls_of(run, "apt-get") == [] and _calls_of(run, "sudo") == []


def _playwright_download(machine: FakeMachine, revision: int) -> Path:
    return machine.browser("chrome", machine.playwright / f"chromium-{revision}" / "chrome-linux64")


def test_script_and_harness_find_playwrights_newest_download(machine, monkeypatch) -> None:
    _playwright_download(machine, 1100)
    newest = _playwright_download(machine, 1200)
    machine.dpkg(installed=PACKAGES)

    run = machine.run()

    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [f"browser-deps: using {newest} ({VERSION})"]
    monkeypatch.delenv("CALAUDIT_CHROMIUM", raising=False)
    monkeypatch.setenv("CALAUDIT_BROWSER_CANDIDATES", "calaudit-no-such-browser")
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(machine.playwright))
    assert find_chromium() == str(newest)


def test_script_and_harness_skip_a_browser_that_does_not_run(machine, monkeypatch) -> None:
    broken = machine.browser("broken", machine.root / "first", works=False)
    working = machine.browser("working", machine.root / "second")
    machine.dpkg(installed=PACKAGES)
    candidates = f"{broken}:{working}"

    run = machine.run(CALAUDIT_BROWSER_CANDIDATES=candidates)

    assert run.returncode == 0, run.stderr
    assert f"using {working} " in run.stdout
    monkeypatch.delenv("CALAUDIT_CHROMIUM", raising=False)
    monkeypatch.setenv("CALAUDIT_BROWSER_CANDIDATES", candidates)
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(machine.playwright))
    assert find_chromium() == str(working)


def test_harness_without_browser_names_every_way_to_get_one(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("CALAUDIT_CHROMIUM", raising=False)
    monkeypatch.setenv("CALAUDIT_BROWSER_CANDIDATES", "calaudit-no-such-browser")
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(tmp_path))
    with pytest.raises(BrowserUnavailable) as caught:
        find_chromium()
    message = str(caught.value)
    assert "bash .ci/browser-deps.sh" in message
    assert "CALAUDIT_CHROMIUM" in message
    assert "python -m playwright install chromium" in message


""".ci/browser-deps.sh (the README's second command) works for an ordinary user.

The script runs for real, but with a PATH made only of stub executables in tmp_path:
``chromium`` prints a version, ``id`` reports a uid, ``sudo``, ``apt-get`` and
``dpkg-query`` record their arguments in a file (``apt-get install`` "installs"
Chromium by making the stub answer). No real apt, sudo or browser is touched. The
last tests check that tests/browser.py looks for the browser in the same order.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from browser import BrowserUnavailable, find_chromium

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / ".ci" / "browser-deps.sh"
BASH = shutil.which("bash")
#: Real tools the script (and the sudo stub) need besides the stubs.
REAL_TOOLS = ("mktemp", "rm", "cat", "sleep", "env")
PACKAGES = ("chromium", "fonts-dejavu-core")
VERSION = "Chromium 123.0.6312.58"


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

    def run(self, *, stdin: int = subprocess.DEVNULL, **env: str) -> Run:
        done = subprocess.run(
            [BASH, str(SCRIPT)],
            env={**self.env, **env},
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=30,
            cwd=self.root,
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

    run = machine.run()

    assert run.returncode == 0, run.stderr
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


def test_password_needed_without_terminal_prints_the_command(machine) -> None:
    machine.apt()
    machine.sudo(password=True)

    run = machine.run()

    assert run.returncode == 1
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert (
        "sudo apt-get update && sudo apt-get install -y --no-install-recommends "
        + " ".join(PACKAGES)
    ) in lines[0]
    assert _calls_of(run, "apt-get") == []
    assert all(c.startswith("sudo -n ") for c in _calls_of(run, "sudo")), run.calls


def test_password_needed_at_a_terminal_runs_plain_sudo(machine) -> None:
    machine.apt()
    machine.sudo(password=True)
    controller, terminal = os.openpty()
    try:
        run = machine.run(stdin=terminal)
    finally:
        os.close(terminal)
        os.close(controller)

    assert run.returncode == 0, run.stderr
    sudo = _calls_of(run, "sudo")
    assert "sudo -v" in sudo  # asks for the password once, on the terminal
    install = "apt-get install -y -qq --no-install-recommends " + " ".join(PACKAGES)
    assert any(c.startswith("sudo env ") and c.endswith(install) for c in sudo), sudo
    assert "installed chromium" in run.stdout


def test_root_without_browser_installs_with_apt_directly(machine) -> None:
    machine.uid(0)
    machine.apt()
    machine.sudo(password=False)

    run = machine.run()

    assert run.returncode == 0, run.stderr
    assert _calls_of(run, "sudo") == []
    assert "apt-get install -y -qq --no-install-recommends " + " ".join(PACKAGES) in run.calls


def test_no_apt_and_no_browser_says_how_in_one_line(machine) -> None:
    machine.sudo(password=False)
    # macOS-like: no apt-get, no dpkg-query.
    (machine.bin / "dpkg-query").unlink()

    run = machine.run()

    assert run.returncode == 1
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert "CALAUDIT_CHROMIUM" in lines[0]
    assert "python -m playwright install chromium" in lines[0]
    assert _calls_of(run, "sudo") == []


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


"""The README and the documentation site (docs/, mkdocs.yml) keep their promises.

The README is the page a new user reads first: at most 300 lines, its quick start is
what .ci/run runs, its links and anchors resolve, its exit codes are the real ones, and
the outputs it quotes are what the commands print today. The site's pages are all in
the nav, and its CLI reference is generated from the click commands, not copied.
``mkdocs build --strict`` (in .ci/run) checks the site's own links; these tests need
no MkDocs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from calaudit.errors import ExitCode

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
MKDOCS_YML = REPO / "mkdocs.yml"

#: ``[text](target)`` links, images included; the target stops at a space or ")".
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(\s*)(```|~~~)")


def readme() -> str:
    return README.read_text(encoding="utf-8")


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def without_code(text: str) -> str:
    """The text outside fenced code blocks and inline code spans."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(lines)


def slug(heading: str) -> str:
    """GitHub's (and Python-Markdown's) anchor for a heading's text."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = unicodedata.normalize("NFKD", text).lower()
    text = re.sub(r"[^\w\s-]", "", text).strip()
    return re.sub(r"\s+", "-", text)


def anchors(path: Path) -> set[str]:
    """The anchors of a Markdown file's headings (a repeated heading gets ``_1``, ...
    on the site and ``-1`` on GitHub; only first occurrences are linked to here)."""
    found = set()
    for line in without_code_keep_headings(path.read_text(encoding="utf-8")):
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            found.add(slug(match.group(1)))
    if "::: mkdocs-click" in path.read_text(encoding="utf-8"):
        # The generated reference: one heading per command, "calaudit run", ...
        from calaudit.cli import cli

        found |= {"calaudit", *(f"calaudit-{name}" for name in cli.commands)}
    return found


def without_code_keep_headings(text: str) -> list[str]:
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def fenced_blocks(text: str) -> list[tuple[str, list[str]]]:
    """``(info string, lines)`` of every top-level fenced block, in order."""
    blocks, current, info = [], None, ""
    for line in text.splitlines():
        match = re.match(r"^```(\S*)\s*$", line)
        if match and current is None:
            current, info = [], match.group(1)
        elif line.startswith("```") and current is not None:
            blocks.append((info, current))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def section(text: str, heading: str) -> str:
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_readme_is_at_most_300_lines():
    assert len(readme().splitlines()) <= 300


def test_quick_start_is_what_ci_runs_word_for_word():
    quick = section(readme(), "## Quick start")
    commands = next(lines for info, lines in fenced_blocks(quick) if info == "sh")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    ci_commands = [ci[i + 1] for i, line in enumerate(ci) if line.startswith("# README quick start, command")]
    assert len(ci_commands) == 2
    assert commands == ci_commands


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_and_anchors_resolve(path):
    text = without_code(path.read_text(encoding="utf-8"))
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, broken


def test_every_docs_page_is_in_the_nav_and_every_nav_page_exists():
    config = MKDOCS_YML.read_text(encoding="utf-8")
    nav = config[config.index("\nnav:") :]
    listed = re.findall(r":\s*([\w./-]+\.md)\s*$", nav, flags=re.M)
    assert len(listed) == len(set(listed)), listed
    assert sorted(listed) == sorted(p.name for p in DOCS.glob("*.md"))


def test_cli_reference_is_generated_from_the_click_commands():
    """docs/cli.md renders the click group itself (mkdocs-click), so the reference
    cannot drift from ``calaudit --help``; the module and name it gives must import."""
    import importlib

    import click

    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    directive = re.search(r"^::: mkdocs-click\n((?:    :.*\n)+)", page, flags=re.M)
    assert directive, "docs/cli.md has no mkdocs-click directive"
    options = dict(re.findall(r"^    :(\w+):\s*(.*?)\s*$", directive.group(1), flags=re.M))
    command = getattr(importlib.import_module(options["module"]), options["command"])
    assert isinstance(command, click.Group)
    assert {"run", "compare", "check", "fix"} <= set(command.commands)
    assert "--bins" not in without_code(page), "options are documented by hand in docs/cli.md"


def test_readme_exit_codes_are_the_real_ones():
    table = section(readme(), "## Exit codes")
    codes = [int(code) for code in re.findall(r"^\| (\d+) \|", table, flags=re.M)]
    assert codes == [int(code) for code in ExitCode]


def test_no_page_tells_users_to_pip_install_calaudit_from_pypi():
    """calaudit is not on PyPI: ``pip install calaudit`` (or ``calaudit[extra]``) is a
    404, so every install command in a code block names the repository or a file."""
    bare = re.compile(r"pip install\s+[\"']?calaudit(\[[\w,]*\])?(==\S+)?[\"']?(?=\s|$)(?!\s*@)")
    for path in markdown_files():
        for _, lines in fenced_blocks(path.read_text(encoding="utf-8")):
            for line in lines:
                assert not bare.search(line), f"{path.relative_to(REPO)}: {line.strip()}"


def test_licence_file_is_the_mit_licence_pyproject_declares():
    assert re.search(r'^license = "MIT"$', (REPO / "pyproject.toml").read_text(encoding="utf-8"), flags=re.M)
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    assert "Permission is hereby granted, free of charge" in text


def calaudit_command(line: str) -> list[str]:
    """``calaudit ARGS`` as written in the README, run with this interpreter."""
    import shlex

    args = shlex.split(line)
    assert args[0] == "calaudit", line
    return [sys.executable, "-m", "calaudit", *args[1:]]


def test_readme_run_check_and_gate_outputs_are_what_the_commands_print(tmp_path):
    """Every line the README quotes under ``calaudit run``, ``calaudit check`` and the
    gate is a line those commands print today (the excerpts' ``...`` aside), and each
    exits as the README says. (``compare`` and ``fix`` cost too long to run here.)"""
    (tmp_path / "sample_data").symlink_to(REPO / "sample_data")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALAUDIT_")}
    env.pop("GITHUB_STEP_SUMMARY", None)

    def run(command: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)

    # The previous release of the check example, as the README's prose says.
    lr = run(calaudit_command("calaudit run sample_data/digits_logistic_regression.csv --json lr.json -q"))
    assert lr.returncode == 0, lr.stderr

    text = readme()
    examples = section(text, "## One example per command")
    blocks = fenced_blocks(examples)
    checked = []
    for (info, command), (next_info, quoted) in zip(blocks, blocks[1:]):
        if info != "sh" or next_info != "text":
            continue
        if not command[0].startswith(("calaudit run", "calaudit check")):
            continue
        assert len(command) == 1, command
        result = run(calaudit_command(command[0]))
        printed = {line.rstrip() for line in (result.stdout + result.stderr).splitlines()}
        missing = [line for line in quoted if line.strip() and line.strip() != "..." and line.rstrip() not in printed]
        assert not missing, (command[0], missing)
        expected = 1 if ("--max-" in command[0]) else 0
        assert result.returncode == expected, (command[0], result.returncode, result.stderr)
        checked.append(command[0].split()[1])
    assert checked.count("run") == 2 and checked.count("check") == 1, checked

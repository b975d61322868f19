"""A newline or control character in a vendor string (class, column or file name) is
shown as an escape in messages, the terminal summary, Markdown and the report: it can
neither split a one-line message nor act on a terminal or a page (issue 10, part 5)."""

from __future__ import annotations

import json

import pytest

from calaudit.errors import one_line, printable
from clitools import invoke

ODD = "ca\nt\x1b[31m\u2028"  # a line break, an ANSI colour code and a Unicode line separator


@pytest.fixture()
def odd_file(tmp_path):
    """Two classes, one of them named with control characters (a quoted CSV header)."""
    path = tmp_path / "preds.csv"
    quoted = '"prob_' + ODD.replace('"', '""') + '"'
    rows = [f"label,prob_dog,{quoted}"] + [f'"{ODD}",0.2,0.8', "dog,0.7,0.3"] * 20
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_one_line_escapes_every_control_character():
    assert one_line(ODD) == "ca\\nt\\x1b[31m\\u2028"
    assert one_line("plain text, 95%") == "plain text, 95%"
    assert printable("a\nb\x1b") == "a\nb\\x1b"  # keeps line breaks of multi-line text


def test_error_message_stays_one_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text('label,prob_a,prob_b\n"zeb\nra\x1b",0.5,0.5\n', encoding="utf-8")
    result = invoke("run", path, "--bootstrap", "0")
    assert result.exit_code == 3
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "zeb\\nra\\x1b" in lines[0] and "\x1b" not in result.stderr


def test_terminal_summary_escapes_class_names(odd_file):
    result = invoke("run", odd_file, "--bootstrap", "0")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "\u2028" not in result.stdout
    classes_line = next(line for line in result.stdout.splitlines() if "classes (" in line)
    assert "ca\\nt\\x1b[31m\\u2028" in classes_line


def test_markdown_and_report_escape_class_names(tmp_path, odd_file):
    out = tmp_path / "out"
    result = invoke("run", odd_file, "--bootstrap", "0", "--out-dir", out, "-q")
    assert result.exit_code == 0, result.output
    document = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    assert ODD in document["class_names"]  # the JSON keeps the name exactly (escaped by JSON itself)
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "\x1b" not in report and "\u2028" not in report.split("<script", 1)[0]
    assert "ca\\nt\\x1b[31m\\u2028" in report
    markdown = (out / "summary.md").read_text(encoding="utf-8")
    assert "\x1b" not in markdown


def test_gate_failure_line_is_one_line(odd_file):
    result = invoke("run", odd_file, "--bootstrap", "0", "--max-ece", "0", "-q")
    assert result.exit_code == 1
    failed = [line for line in result.stderr.splitlines() if line.startswith("calaudit: gate failed:")]
    assert len(failed) == 1

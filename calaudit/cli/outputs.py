"""Where a command's outputs go: checked before any work, written atomically, and the
terminal summary on standard output."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from ..errors import one_line

#: What ``--out-dir`` holds (``junit.xml`` only when a gate is set).
OUT_DIR_FILES = ("audit.json", "summary.txt", "summary.md", "report.html", "junit.xml")


#: What ``compare --out-dir`` holds.
COMPARE_OUT_DIR_FILES = ("compare.json", "summary.txt", "report.html")


def data_input(data_path: Path | None) -> tuple[str, Path | None]:
    return ("the data directory" if data_path is not None and data_path.is_dir() else "the data file", data_path)


def check_outputs(ctx: click.Context, options: dict[str, Any], inputs: list[tuple[str, Any]]) -> None:
    """Refuse, before any work, an output that would replace an input or another output."""
    from ..files.output_paths import check_output_paths, out_dir_files

    inputs = [*inputs, ("the settings file", ctx.meta.get("calaudit.config")),
              ("the baseline result", options.get("baseline_result"))]
    out_files = COMPARE_OUT_DIR_FILES if ctx.command.name == "compare" else OUT_DIR_FILES
    outputs = [("--json", options.get("json_path")), *out_dir_files(options.get("out_dir"), out_files),
               ("--junit", options.get("junit_path")), ("--markdown", options.get("markdown_path")),
               ("--report", options.get("report_path")), ("--save-predictions", options.get("save_predictions")),
               ("-o", options.get("output_model"))]
    check_output_paths(outputs, inputs)


def write_outputs(result: Any, options: dict[str, Any]) -> None:
    """Render every requested output; files are written atomically."""
    from ..files.atomic import write_atomic
    from ..reporters import html, json_report, junit, markdown, terminal

    json_path, out_dir = options["json_path"], options["out_dir"]
    summary = terminal.render(result)
    document = json_report.render(result)
    gated = result.gate is not None
    markdown_text = markdown.render(result)
    report = html.render(result) if (out_dir is not None or options["report_path"] is not None) else None
    if out_dir is not None:
        write_atomic(out_dir / "audit.json", document)
        write_atomic(out_dir / "summary.txt", summary)
        write_atomic(out_dir / "summary.md", markdown_text)
        write_atomic(out_dir / "report.html", report)
        if gated:
            write_atomic(out_dir / "junit.xml", junit.render(result))
    if options["junit_path"] is not None:
        write_atomic(options["junit_path"], junit.render(result))
    if options["markdown_path"] is not None:
        write_atomic(options["markdown_path"], markdown_text)
    if options["report_path"] is not None:
        write_atomic(options["report_path"], report)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        try:
            with open(step_summary, "ab+") as handle:  # GitHub's file: append, never replace
                handle.seek(0, os.SEEK_END)
                ends_mid_line = False
                if handle.tell() > 0:
                    handle.seek(-1, os.SEEK_END)
                    ends_mid_line = handle.read(1) != b"\n"
                # Our heading must start a line of its own to render.
                handle.write((("\n" if ends_mid_line else "") + markdown_text).encode("utf-8"))
        except OSError as exc:
            click.echo(f"calaudit: warning: cannot append to $GITHUB_STEP_SUMMARY ({one_line(str(exc.strerror or exc))})", err=True)
    if json_path is not None and str(json_path) == "-":
        echo_stdout(document)
        return
    if json_path is not None:
        write_atomic(json_path, document)
    quiet = options["quiet"] and (not gated or result.gate.passed)
    if not quiet:
        echo_stdout(summary)


def echo_stdout(text: str) -> None:
    """Print to standard output; a full disk or a closed pipe there is one line, exit 3."""
    from ..errors import OutputWriteError

    try:
        click.echo(text, nl=False)
        sys.stdout.flush()
    except OSError as exc:
        try:  # leave nothing buffered for the interpreter to fail on at exit
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        except OSError:
            pass
        raise OutputWriteError(f"standard output: cannot write the output ({exc.strerror or exc})") from None

"""The option bundles the commands share (click docs: a decorator per bundle).

Each bundle applies its options in the order listed, as stacked decorators would;
``threshold_options`` also reads the settings file (:mod:`calaudit.config`) into the
command's defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from . import types as cli_types


def split_list(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[str] | None:
    items = [item.strip() for value in values for item in value.split(",") if item.strip()]
    return items or None


def _with_options(command: Any, options: list[Any]) -> Any:
    """Apply a bundle of click options, in the order listed (as decorators would)."""
    for option in reversed(options):
        command = option(command)
    return command


def model_input_options(command: Any) -> Any:
    """Options of commands that run an ONNX model over a data directory (run, fix)."""

    options = [
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
                     help="ONNX models: execution provider (auto = CUDA when usable, else CPU)."),
        click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True,
                     help="ONNX models: rows per inference call (a model with a fixed batch size uses its own)."),
        click.option("--output", "output_name", type=cli_types.NAME, metavar="NAME", help="ONNX models: the output holding the class scores."),
        click.option("--data-format", type=click.Choice(["auto", "arrays", "table", "images"]), default="auto",
                     show_default=True, help="ONNX models: layout of DATA."),
        click.option("--feature-cols", multiple=True, type=cli_types.NAMES, callback=split_list, metavar="COLS",
                     help="ONNX models on a table: feature columns (names or globs; default: all but the label)."),
        click.option("--image-size", type=cli_types.ImageSetting("size"), metavar="HxW",
                     help="Images: size the model takes (default: from the model input)."),
        click.option("--resize", type=cli_types.ImageSetting("resize"), metavar="N",
                     help="Images: resize the shorter side to this first."),
        click.option("--resize-rounding", type=click.Choice(["torchvision", "pil"], case_sensitive=False),
                     help="Images: how the resize rounds the longer side and the crop its offsets: as "
                          "torchvision's Resize and CenterCrop (default), or to the nearest pixel (pil)."),
        click.option("--crop", type=cli_types.ImageSetting("crop"), metavar="HxW", help="Images: centre crop after --resize."),
        click.option("--scale", type=cli_types.ImageSetting("scale"), metavar="F",
                     help="Images: multiply pixels by this, a number or a fraction such as 1/255 "
                          "(default 1/255 for float inputs)."),
        click.option("--mean", type=cli_types.ImageSetting("mean"), metavar="M[,M,M]",
                     help="Images: per-channel mean to subtract after scaling."),
        click.option("--std", type=cli_types.ImageSetting("std"), metavar="S[,S,S]",
                     help="Images: per-channel standard deviation to divide by."),
        click.option("--layout", type=click.Choice(["NCHW", "NHWC"], case_sensitive=False), help="Images: channel layout."),
        click.option("--color", type=click.Choice(["rgb", "bgr", "grayscale"], case_sensitive=False), help="Images: colour mode."),
        click.option("--skip-bad-images", is_flag=True, help="Images: skip undecodable files (counted) instead of failing."),
        click.option("--allow-large-images", is_flag=True,
                     help="Images: decode images above Pillow's decompression-bomb limit (this run only)."),
    ]
    return _with_options(command, options)


def _load_config(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    from ..config import load_config_callback

    return load_config_callback(ctx, param, value)


def threshold_options(command: Any) -> Any:
    """Thresholds shared by ``run``, ``check`` and ``compare``.

    Each threshold can also come from an environment variable (shown in ``--help``)
    or from ``calaudit.toml`` / ``[tool.calaudit]`` (command line > environment >
    config file > default).
    """
    options = [
        click.option("--config", type=cli_types.NonEmptyPath(path_type=Path, dir_okay=False), is_eager=True,
                     expose_value=False, callback=_load_config,
                     help="Settings file (default: the nearest calaudit.toml or pyproject.toml [tool.calaudit])."),
        click.option("--max-ece", type=cli_types.FiniteFloat(), envvar="CALAUDIT_MAX_ECE", show_envvar=True,
                     help="Fail (exit 1) when ECE exceeds this."),
        click.option("--max-mce", type=cli_types.FiniteFloat(), envvar="CALAUDIT_MAX_MCE", show_envvar=True,
                     help="Fail when MCE exceeds this."),
        click.option("--max-brier", type=cli_types.FiniteFloat(), envvar="CALAUDIT_MAX_BRIER", show_envvar=True,
                     help="Fail when the Brier score exceeds this."),
        click.option("--max-nll", type=cli_types.FiniteFloat(), envvar="CALAUDIT_MAX_NLL", show_envvar=True,
                     help="Fail when the negative log-likelihood exceeds this."),
        click.option("--min-accuracy", type=cli_types.FiniteFloat(), envvar="CALAUDIT_MIN_ACCURACY", show_envvar=True,
                     help="Fail when accuracy is below this."),
        click.option("--fail-if", multiple=True, metavar="'METRIC>VALUE'", envvar="CALAUDIT_FAIL_IF",
                     type=cli_types.CONDITION, show_envvar=True,
                     help="Fail when the condition holds (>, >=, <, <=), e.g. 'ece>0.05'; 'human_tvd - "
                          "noise_floor > 0.1' reads the figure against what chance alone gives. Repeatable; "
                          "separate several in the environment variable with ';'."),
        click.option("--gate-on", type=click.Choice(["point", "lower", "upper"]), default="point",
                     show_default=True, envvar="CALAUDIT_GATE_ON", show_envvar=True,
                     help="Judge thresholds on the measured value, or on the bootstrap interval: 'lower' fails "
                          "only when the whole interval breaches (the breach is real), 'upper' passes only when "
                          "the whole interval is within."),
    ]
    return _with_options(command, options)


def gate_options(command: Any) -> Any:
    """Options shared by ``run`` and ``check``: thresholds, regression gate, CI outputs."""
    options = [
        click.option("--baseline-result", type=cli_types.NonEmptyPath(path_type=Path, dir_okay=False),
                     envvar="CALAUDIT_BASELINE_RESULT", show_envvar=True,
                     help="JSON result of the previous release, for --max-increase / --max-decrease."),
        click.option("--max-increase", multiple=True, metavar="METRIC=ALLOWANCE", type=cli_types.MAX_INCREASE,
                     help="Fail when a lower-is-better metric rose by more than ALLOWANCE against the baseline."),
        click.option("--max-decrease", multiple=True, metavar="METRIC=ALLOWANCE", type=cli_types.MAX_DECREASE,
                     help="Fail when accuracy fell by more than ALLOWANCE against the baseline."),
        click.option("--junit", "junit_path", type=cli_types.NonEmptyPath(path_type=Path, dir_okay=False),
                     help="Write the checks as JUnit XML (one test case per check)."),
        click.option("--markdown", "markdown_path", type=cli_types.NonEmptyPath(path_type=Path, dir_okay=False),
                     help="Write a Markdown summary (also appended to $GITHUB_STEP_SUMMARY when set)."),
        click.option("--report", "report_path", type=cli_types.NonEmptyPath(path_type=Path, dir_okay=False),
                     help="Write the stakeholder report: one self-contained HTML file (report.html in --out-dir)."),
    ]
    return threshold_options(_with_options(command, options))


def prediction_file_options(command: Any) -> Any:
    """How a prediction file is read (run, compare)."""
    options = [
        click.option("--label-col", type=cli_types.NAME, default="label", show_default=True,
                     help="Column holding the true class."),
        click.option(
            "--prob-cols", multiple=True, type=cli_types.NAMES, callback=split_list, metavar="COLS",
            help="Probability columns: comma-separated names or globs (default: prob_*). Repeatable.",
        ),
        click.option("--score-col", type=cli_types.NAME, metavar="COL",
                     help="Binary model: one column with the positive-class score."),
        click.option(
            "--classes", multiple=True, type=cli_types.NAMES, callback=split_list, metavar="NAMES",
            help="Class names in column / model-output order, comma-separated (NEG,POS for one score).",
        ),
        click.option("--logits", is_flag=True, help="The scores are logits: apply softmax (sigmoid for one column). "
                                                     "compare: of every input (one input: --logits-for)."),
        click.option("--row-sum-tol", type=cli_types.FiniteFloat(min=0.0), default=1e-2, show_default=True,
                     help="Largest accepted |row sum - 1| before rows are renormalised."),
    ]
    return _with_options(command, options)


def human_options(command: Any) -> Any:
    """Human labels: annotator votes or soft labels, and the hard/easy split (run, compare)."""
    options = [
        click.option("--votes-cols", multiple=True, type=cli_types.NAMES, callback=split_list, metavar="COLS",
                     help="Annotator vote counts, one column per class: names or globs (default: votes_* when "
                          "present). Repeatable."),
        click.option("--soft-cols", multiple=True, type=cli_types.NAMES, callback=split_list, metavar="COLS",
                     help="Human soft labels (shares summing to 1), one column per class (default: soft_* when "
                          "present). Repeatable."),
        click.option("--hard-split", default="70/30", show_default=True, metavar="SPLIT",
                     callback=_check_hard_split,
                     help="Cases people disagree on: at least as split as A/B (e.g. 70/30), an entropy in nats, "
                          "or 'median'."),
    ]
    return _with_options(command, options)


def _check_hard_split(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from ..human.split import parse_hard_split

    try:
        parse_hard_split(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def audit_options(command: Any) -> Any:
    """Bins, resamples and seed of the audit (run, compare)."""
    options = [
        click.option("--bins", "n_bins", type=cli_types.BINS, default=15, show_default=True,
                     help="Number of bins of the binned metrics."),
        click.option("--bootstrap", "resamples", type=cli_types.RESAMPLES, default=None, envvar="CALAUDIT_BOOTSTRAP",
                     show_envvar=True, help="Bootstrap resamples for the 95% intervals (default 1000; 0: none)."),
        click.option("--seed", type=cli_types.SEED, default=0, show_default=True,
                     help="Seed of the bootstrap and of the calibration test's simulations."),
    ]
    return _with_options(command, options)


def baseline_options(command: Any) -> Any:
    """The cross-fitted baselines (run, compare)."""
    options = [
        click.option("--baseline", "baselines", multiple=True,
                     type=click.Choice(["label-smoothing", "temperature", "vector", "isotonic", "histogram",
                                        "soft-labels", "all"]),
                     help="Compare with a baseline, cross-fitted on the same rows (repeatable; 'all' for every one)."),
        click.option("--smoothing", multiple=True, type=cli_types.FiniteFloat(0.0, 1.0, min_open=True, max_open=True),
                     help="Label-smoothing epsilon of the retraining baseline (repeatable; default: a sweep of "
                          "0, 0.02, 0.05, 0.1 and 0.2 that names the best)."),
        click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True,
                     help="Stratified folds of the cross-fitted baselines."),
        click.option("--baseline-model", type=click.Choice(["logistic", "mlp"]), default="logistic", show_default=True,
                     help="Reference model of the retraining baseline."),
    ]
    return _with_options(command, options)


def decision_options(command: Any) -> Any:
    """Segments and review routing (run, compare)."""
    options = [
        click.option("--group-by", multiple=True, type=cli_types.NAME, metavar="COL",
                     help="Calibration per segment of COL: a column of the prediction file, of groups.csv beside "
                          "the data, or of the data table (repeatable)."),
        click.option("--min-group-size", type=click.IntRange(min=1), default=50, show_default=True,
                     help="Segments with fewer cases are listed as too small to judge (a segment of exactly this "
                          "many is judged)."),
        click.option("--max-levels", type=click.IntRange(min=1), default=1000, show_default=True,
                     help="Most distinct values a --group-by column may have; one with more (an id, an unbinned "
                          "number) is refused."),
        click.option("--find-segments", is_flag=True,
                     help="Search every segment column (and pairs of them) for where calibration is worst; found "
                          "on half the rows, measured on the other half."),
        click.option("--target-accuracy", multiple=True, metavar="A",
                     type=cli_types.FiniteFloat(0.0, 1.0, min_open=True, max_open=True),
                     help="Review routing: the lowest confidence threshold whose fast-tracked cases are right at "
                          "least A of the time, with 95% confidence (repeatable; default 0.9, 0.95, 0.99)."),
    ]
    return _with_options(command, options)

"""``calaudit fix``: fit temperature scaling on labelled data and write a calibrated model
(the work is :func:`calaudit.fixing.fix_model`; this module reads the options and
words the summary)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from . import types as cli_types
from .group import debug_option
from .model import model_load_options
from .options import model_input_options, split_list
from .outputs import check_outputs, data_input, echo_stdout


@click.command()
@click.argument("model_path", metavar="MODEL.onnx", type=click.Path(path_type=Path, readable=False))
@click.argument("data_path", metavar="DATA", type=click.Path(path_type=Path, readable=False))
@click.option("-o", "--output-model", "output_model", required=True,
              type=cli_types.NonEmptyPath(path_type=Path, dir_okay=False),
              help="Where to write the calibrated model (a new file; an existing one only with --force).")
@click.option("--force", is_flag=True, help="Let -o replace an existing file (never the model or the data).")
@click.option("--label-col", type=cli_types.NAME, default="label", show_default=True,
              help="Table data: column holding the true class.")
@click.option("--classes", multiple=True, type=cli_types.NAMES, callback=split_list, metavar="NAMES",
              help="Class names in model-output order, comma-separated.")
@click.option("--logits", is_flag=True, help="The model's scores are logits.")
@click.option("--bins", "n_bins", type=cli_types.BINS, default=15, show_default=True,
              help="Number of bins of the binned metrics.")
@click.option("--row-sum-tol", type=cli_types.FiniteFloat(min=0.0), default=1e-2, show_default=True,
              help="Largest accepted |row sum - 1| before rows are renormalised.")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True,
              help="Folds of the cross-fitted estimate.")
@click.option("--seed", type=cli_types.SEED, default=0, show_default=True, help="Seed of the folds and the bootstrap.")
@click.option("--json", "json_path", type=cli_types.NonEmptyPath(path_type=Path, dir_okay=False),
              help="Write the audit of the calibrated model, with the fit, as JSON.")
@click.option("--report", "report_path", type=cli_types.NonEmptyPath(path_type=Path, dir_okay=False),
              help="Write the report of the calibrated model.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
@model_input_options
@debug_option
def fix(model_path: Path, data_path: Path, output_model: Path, **options: Any) -> None:
    """Fit temperature scaling on DATA and write a calibrated copy of MODEL.onnx.

    \b
    calaudit fix model.onnx data/ -o calibrated.onnx

    The new model's probability output is temperature-scaled (the temperature is
    stored in its metadata); calaudit then audits it on DATA and checks its ECE
    against the cross-fitted estimate of how the fix does on unseen rows.
    """
    import dataclasses

    from ..errors import UsageError
    from ..files.atomic import output_destination, write_atomic
    from ..fixing import fix_model
    from ..reporters import html, json_report

    check_outputs(click.get_current_context(), {**options, "output_model": output_model},
                   [("the model", model_path), data_input(data_path)])
    destination, how = output_destination(output_model)
    if how == "replace" and destination.exists() and not options["force"]:
        raise UsageError(f"-o {output_model}: the file exists; calaudit fix writes a new file (--force replaces it)")
    summary, after = fix_model(model_path, data_path, output_model, load_options=model_load_options(options),
                               n_bins=options["n_bins"], folds=options["folds"], seed=options["seed"])
    after = dataclasses.replace(after, extras={**after.extras, "fix": summary.to_dict()})
    if options["json_path"] is not None:
        write_atomic(options["json_path"], json_report.render(after))
    if options["report_path"] is not None:
        write_atomic(options["report_path"], html.render(after))
    if not options["quiet"]:
        echo_stdout(render_summary(summary))


def render_summary(summary: Any) -> str:
    """The terminal summary of a :class:`calaudit.fixing.FixSummary`."""
    agree = "agrees with" if summary.agrees else "DOES NOT agree with"
    return "\n".join([
        f"calaudit fix: wrote {summary.written}",
        f"Temperature {summary.temperature:.4f} fitted on the {summary.scores} of {summary.model} "
        f"({'above 1: the model was overconfident' if summary.temperature > 1 else 'below 1: the model was underconfident'}).",
        f"ECE before: {summary.ece_before:.4f}; expected on new data (cross-fitted): {summary.ece_cross_fitted:.4f}; "
        f"the written model on this data: {summary.ece_after:.4f} ({agree} the estimate within {summary.agreement_tolerance:.4f}).",
        f"NLL {summary.nll_before:.4f} -> {summary.nll_after:.4f}; accuracy {summary.accuracy_before:.4f} -> "
        f"{summary.accuracy_after:.4f} (temperature scaling never changes which class is predicted).",
    ]) + "\n"

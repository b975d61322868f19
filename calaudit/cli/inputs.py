"""Reading a command's input: a prediction file, or an ONNX model run over its data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import InvalidInputError
from .model import model_load_options


def baseline_keys(chosen: tuple[str, ...], *, human: bool = False) -> list[str]:
    """The baselines asked for; ``all`` takes ``soft-labels`` only when there are human labels."""
    from ..baselines.comparison import baseline_keys

    return baseline_keys(chosen, human=human)


def load_file(input_path: Path, options: dict[str, Any]) -> Any:
    from ..loaders.table import load_prediction_file

    predictions = load_prediction_file(
        input_path,
        label_col=options["label_col"],
        prob_cols=options["prob_cols"],
        score_col=options["score_col"],
        class_names=options["classes"],
        logits=options["logits"],
        row_sum_tolerance=options["row_sum_tol"],
        votes_cols=options.get("votes_cols"),
        soft_cols=options.get("soft_cols"),
        seed=options["seed"],
        id_col=options.get("id_col"),  # compare: ids are text, as written
        votes_later=bool(options.get("votes_later")),  # compare --votes: labels may come with the votes
    )
    _refuse_missing_label_column(input_path, predictions, options["label_col"])
    return predictions


def _refuse_missing_label_column(input_path: Path, predictions: Any, label_col: str) -> None:
    """A label column named on purpose (not the default) must exist, votes or not: the
    plurality vote stands in only for the default ``label`` column."""
    human = getattr(predictions, "human", None)
    if human is None or human.label_from != "plurality":
        return
    source = click.get_current_context().get_parameter_source("label_col")
    if source is not None and source != click.core.ParameterSource.DEFAULT:
        raise InvalidInputError(
            f"{input_path}: no label column {label_col!r} (given with --label-col); drop the option to take the "
            "labels from the plurality of the votes"
        )


def run_model(model_path: Path, data_path: Path, options: dict[str, Any], label: str = "Running the model") -> Any:
    """The predictions of an ONNX model run over ``data_path``, with a progress bar
    named ``label`` on a terminal's stderr."""
    from ..loaders.model_run import load_model_predictions
    from .progress import step_progress

    with step_progress(options) as steps:
        scored = [0]

        def progress(rows: int, total: int) -> None:  # told the rows of each batch
            scored[0] += rows
            steps(label, scored[0], total)

        return load_model_predictions(
            model_path, data_path, **model_load_options(options), progress=progress,
            save_predictions=options["save_predictions"],
            want_features=bool({"label-smoothing", "soft-labels"}
                               & set(baseline_keys(options["baselines"], human=True))),
            embedding_output=options["embedding_output"],
        )

"""What an ONNX model run takes from the command's options (``run``, ``fix`` and the
streamed run of :mod:`calaudit.cli.stream`), in one place."""

from __future__ import annotations

from typing import Any

import click

from ..errors import one_line

#: Image preprocessing: keyword of the loaders -> the command's option.
_PREPROCESS = (("size", "image_size"), ("resize", "resize"), ("crop", "crop"), ("scale", "scale"),
               ("mean", "mean"), ("std", "std"), ("layout", "layout"), ("color", "color"),
               ("resize_rounding", "resize_rounding"))


def model_load_options(options: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of :func:`calaudit.loaders.model_run.load_model_predictions`
    from the command's options, with a ``warn`` that prints each warning once per run
    (even when ``fix`` reads the data twice)."""
    preprocess = {key: options[option] for key, option in _PREPROCESS if options[option] is not None}
    warned: list[str] = []

    def warn(message: str) -> None:
        if message not in warned:
            warned.append(message)
            click.echo(f"calaudit: warning: {one_line(message)}", err=True)

    return dict(
        device=options["device"], batch_size=options["batch_size"], output=options["output_name"],
        logits=options["logits"], class_names=options["classes"], data_format=options["data_format"],
        label_col=options["label_col"], feature_cols=options["feature_cols"], preprocess=preprocess,
        skip_bad_images=options["skip_bad_images"], row_sum_tolerance=options["row_sum_tol"],
        allow_large_images=options["allow_large_images"], warn=warn,
        votes_cols=options.get("votes_cols"), soft_cols=options.get("soft_cols"), seed=options.get("seed", 0),
    )

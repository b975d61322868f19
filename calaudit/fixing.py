"""``calaudit fix``: fit temperature scaling on labelled data and write a calibrated model.

The temperature is fitted on every row; the cross-fitted estimate (each fold's
temperature applied to the rows it did not see) predicts how the written model will
do on new data, and the written model is audited on the same data to prove the edit:
its ECE must agree with the cross-fitted estimate within the noise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .files.output_paths import check_output_paths


@dataclass(frozen=True)
class FixSummary:
    """What ``calaudit fix`` did and how it checked it."""

    model: str
    written: str
    temperature: float
    scores: str  # "logits" or "probabilities"
    ece_before: float
    ece_cross_fitted: float
    ece_after: float
    nll_before: float
    nll_after: float
    accuracy_before: float
    accuracy_after: float
    agreement_tolerance: float
    agrees: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fix_model(model_path: Path, data_path: Path, output_path: Path, *, load_options: dict[str, Any],
              n_bins: int = 15, folds: int = 5, seed: int = 0) -> tuple[FixSummary, Any]:
    """Fit, write and verify; returns the summary and the audit of the written model."""
    from .auditing import audit_predictions
    from .baselines.comparison import run_baselines
    from .baselines.recalibration import fit_temperature, log_scores
    from .loaders.model_run import load_model_predictions
    from .onnx.model import load_model
    from .onnx.temperature import temperature_scaled_model, write_model

    check_output_paths([("-o", output_path)], [("the model", model_path), ("the data", data_path)])
    model = load_model(model_path, device=load_options.get("device", "auto"))
    before = load_model_predictions(model_path, data_path, model=model, **load_options)
    score_output = model.choose_score_output(load_options.get("output"))
    scores_are_logits = before.transform != "none"
    z = log_scores(before.y_proba, before.logits)
    temperature = fit_temperature(z, before.y_true)
    comparison = run_baselines(before, ["temperature"], n_bins=n_bins, folds=folds, seed=seed)
    vendor = next(r for r in comparison.results if r.key == "vendor")
    cross_fitted = next(r for r in comparison.results if r.key == "temperature")
    proto = temperature_scaled_model(
        model, score_output, temperature, scores_are_logits=scores_are_logits,
        metadata={"calaudit_fitted_on": str(data_path), "calaudit_fitted_rows": str(before.n_samples)},
        n_columns=before.source.details["scores"]["columns"],
    )
    write_model(proto, output_path)
    after_predictions = load_model_predictions(output_path, data_path, **{**load_options, "output": None,
                                                                         "logits": False})
    after = audit_predictions(after_predictions, n_bins=n_bins, seed=seed)
    ece_after = after.metrics["ece"]
    # "Within the noise": the cross-fitted estimate and the in-sample audit of the
    # written model differ by less than the ECE a calibrated model shows by chance here
    # (its 95th percentile), or the half-width of the ECE interval, whichever is larger.
    interval = after.interval("ece")
    half_width = (interval[1] - interval[0]) / 2 if interval else 0.0
    tolerance = max(after.noise.ece_noise_95 if after.noise else 0.0, half_width)
    summary = FixSummary(
        model=str(model_path), written=str(output_path), temperature=temperature,
        scores="logits" if scores_are_logits else "probabilities",
        ece_before=vendor.metrics["ece"], ece_cross_fitted=cross_fitted.metrics["ece"], ece_after=ece_after,
        nll_before=vendor.metrics["nll"], nll_after=after.metrics["nll"],
        accuracy_before=vendor.metrics["accuracy"], accuracy_after=after.metrics["accuracy"],
        agreement_tolerance=tolerance, agrees=bool(abs(ece_after - cross_fitted.metrics["ece"]) <= tolerance),
    )
    return summary, after

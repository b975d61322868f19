"""The stakeholder report: one self-contained HTML file (templates/report.html.j2).

plotly.js is inlined once, chart data travels as JSON in ``<script
type="application/json">`` blocks (escaped by jinja's ``tojson``), a
Content-Security-Policy forbids every network request, and autoescaping covers every
vendor string. The first screen speaks to readers who do not read formulas
(docs: the report guide); the appendix carries every number for the analyst.
"""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from pathlib import PurePath
from typing import Any

from ..report import decision_narrative, narrative
from ..report.charts import report_charts
from ..report.decision_charts import decision_charts
from ..report.human_charts import human_charts
from ..report.human_floor import floor_text
from ..report.human_narrative import human_report
from ..report.templating import environment
from ..report.window_charts import window_charts, window_section
from ..result import AuditResult
from ..stats.metric_info import BETTER_WORDS, METRICS
from ..stats.verdict import COLOUR_KEY

#: Options that only mean something for an ONNX run (left out of a prediction file's provenance).
MODEL_ONLY_OPTIONS = {
    "device", "batch_size", "output_name", "data_format", "feature_cols", "image_size", "resize", "crop", "scale",
    "mean", "std", "layout", "color", "skip_bad_images", "save_predictions",
}
VERDICT_ICONS = {"green": "\u2714", "amber": "!", "red": "\u2716", "grey": "?"}
GLOSSARY = (
    ("Calibration", "Whether a model's confidence matches how often it is right: of the calls it is 80% sure "
     "about, about 80% should be right."),
    ("Confidence", "The probability the model gives to the class it picks (its top probability)."),
    ("ECE (expected calibration error)", "The average gap between how sure the model says it is and how often it "
     "is right, weighting each confidence band by how many predictions fall in it. 0 is perfect; 0.05 means "
     "5 percentage points on average."),
    ("MCE (maximum calibration error)", "The largest such gap in any single confidence band."),
    ("Classwise ECE", "The same average gap, measured for every class's probability rather than only the top one."),
    ("Brier score", "The average squared distance between the probabilities and what actually happened (0 is "
     "perfect). It rewards being both right and honest about uncertainty."),
    ("NLL (negative log-likelihood)", "How surprised the model was by the true answers, on average. Confident "
     "mistakes are punished hard."),
    ("Reliability diagram", "The chart of how often the model was right against how sure it said it was; a "
     "calibrated model follows the diagonal."),
    ("95% interval", "The range that chance alone could produce for a figure measured on this many examples."),
    ("Temperature scaling", "A standard correction that rescales a model's scores so that its confidence matches "
     "how often it is right; it never changes which answer the model picks."),
    ("Label smoothing", "A training technique that stops a model from learning to be 100% sure; it usually "
     "reduces overconfidence."),
    ("Smooth ECE", "The average gap measured without confidence bands, by smoothing (Blasiok and Nakkiran, 2023)."),
    ("Votes and soft labels", "What the people who labelled each item said: how many chose each answer (votes), "
     "or the share of people behind each answer (soft labels). The split of the votes is the human distribution."),
    ("Where people disagree (hard items)", "Items whose votes are at least as split as 70/30 between two answers; "
     "a model should be less sure there."),
    ("Probability out of place", "How far the model's probabilities are from the people's split: the share of "
     "probability that would have to move to match it (0 is a perfect match; Baan et al., 2022)."),
)


def plotly_source() -> str:
    """The plotly.js bundle shipped with the plotly package (no download, no CDN)."""
    source = resources.files("plotly").joinpath("package_data", "plotly.min.js").read_text(encoding="utf-8")
    return source.replace("</script", "<\\/script")  # cannot end the inline <script> early


def _input_name(result: AuditResult) -> str:
    path = result.source.get("path")
    return PurePath(path).name if path else "in-memory predictions"


def _provenance(result: AuditResult) -> list[tuple[str, str]]:
    source = result.source
    rows = [("Input", str(source.get("path") or "arrays passed to calaudit.audit")),
            ("Input kind", str(source.get("kind")))]
    if source.get("sha256"):
        rows.append(("Input SHA-256", source["sha256"]))
    model = source.get("model")
    if model:
        producer = " ".join(str(v) for v in (model.get("producer_name"), model.get("producer_version")) if v)
        opsets = ", ".join(f"{domain} {version}" for domain, version in (model.get("opsets") or {}).items())
        rows += [
            ("Model producer", producer or "not recorded"),
            ("ONNX IR version / opsets", f"{model.get('ir_version')} / {opsets}"),
            ("Model inputs", "; ".join(f"{i['name']} {i['type']} {i['shape']}" for i in model.get("inputs", []))),
            ("Model outputs", "; ".join(f"{o['name']} {o['type']} {o['shape']}" for o in model.get("outputs", []))),
            ("Execution provider", f"{model.get('provider')} ({model.get('provider_note')})"),
        ]
        if model.get("metadata"):
            rows.append(("Model metadata", "; ".join(f"{k} = {v}" for k, v in model["metadata"].items())))
        scores = source.get("scores") or {}
        rows.append(("Scores", f"output {scores.get('output')} read as {scores.get('treated_as')}: {scores.get('reason')}"))
        rows.append(("Class names from", str(source.get("class_names_source"))))
        data = source.get("data") or {}
        rows.append(("Data", f"{data.get('path')} ({data.get('format')}, {data.get('rows')} rows)"))
        for name, digest in (data.get("files") or {}).items():
            rows.append((f"Data file {name}", digest))
        if data.get("preprocess"):
            rows.append(("Image preprocessing", ", ".join(f"{k} = {v}" for k, v in data["preprocess"].items())))
        if data.get("images_skipped"):
            rows.append(("Images skipped", str(data["images_skipped"])))
    elif source.get("probability_columns"):
        labels = (f"label column {source.get('label_column')}" if source.get("label_column")
                  else "labels from the plurality of the human votes")
        columns = f"{labels}; probability columns {', '.join(source['probability_columns'])}"
        if source.get("human_columns"):
            columns += f"; human {source.get('human_kind')} columns {', '.join(source['human_columns'])}"
        rows.append(("Columns", columns))
    skip = set() if model else MODEL_ONLY_OPTIONS
    options = ", ".join(
        f"{k} = {v}" for k, v in sorted(result.options.items()) if v not in (None, [], (), False) and k not in skip
    )
    rows += [("calaudit version", result.tool_version), ("Audited at (UTC)", result.created_at), ("Options", options)]
    return rows


def _transform_text(result: AuditResult) -> str:
    transform = result.diagnostics.get("transform", "none")
    if transform == "none":
        return "used as probabilities as given"
    return f"turned into probabilities by {transform} (the model gave logits)"


def _points(share: float) -> str:
    """A margin in percentage points: whole points from 1 up, else one significant
    digit ("0.3", "0.04"), so a large sample never reads "about 0 percentage points"."""
    points = share * 100
    if points >= 0.95:
        whole = round(points)
        return f"{whole} percentage point{'' if whole == 1 else 's'}"
    return f"{points:.1g} percentage points"


def created_display(stamp: str) -> str:
    """A result's ISO creation time as the report prints it (``07 December 2026, 09:21 UTC``)."""
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).strftime("%d %B %Y, %H:%M UTC")
    except ValueError:
        return stamp


def render(result: AuditResult) -> str:
    """The report as one HTML string."""
    bands = narrative.quoted_bands(result)
    best, worst = narrative.best_and_worst(bands)
    per_class = sorted(result.per_class, key=lambda c: c.support)
    metric_rows = [
        {
            "name": name,
            "value": value,
            "params": ", ".join(f"{k} = {v}" for k, v in METRICS[name].params(result.n_bins).items()),
            "better": BETTER_WORDS[METRICS[name].better],
            "meaning": METRICS[name].meaning,
            "definition": METRICS[name].definition,
            "interval": result.interval(name),
        }
        for name, value in result.metrics.items()
    ]
    verdict = result.verdict
    context: dict[str, Any] = {
        "result": result,
        "verdict": verdict,
        "verdict_icon": VERDICT_ICONS.get(verdict.level, "?") if verdict else "?",
        "colour_key": COLOUR_KEY,
        "input_name": _input_name(result),
        "model_phrase": "the model" if result.source.get("kind") == "onnx" else "the model behind",
        "interval_title": f"{result.intervals.level * 100:.0f}% interval" if result.intervals else "Interval",
        "created_display": created_display(result.created_at),
        "bands": bands,
        "best": best,
        "worst": worst,
        "icon": narrative.icon_array(bands),
        "top_share": narrative.top_band_share(result, bands),
        "single_band": narrative.single_band_note(bands),
        "noise_sentence": narrative.noise_sentence(result),
        "baseline_sentences": narrative.baseline_sentences(result),
        "margin_points": _points(verdict.margin) if verdict else "",
        "decisions": narrative.decisions(result, bands),
        "questions": narrative.vendor_questions(result),
        "charts": {**report_charts(result), **decision_charts(result), **human_charts(result),
                   **window_charts(result)},
        "human_report": human_report(result),
        "human_floor": floor_text(result),
        "windows_section": window_section(result),
        "segment_sections": decision_narrative.segment_sections(result.groups),
        "routing_text": decision_narrative.routing_text(result.routing) if result.routing is not None else None,
        "plotly_js": plotly_source(),
        "metric_rows": metric_rows,
        "mean_confidence": result.metrics["accuracy"] + result.metrics["confidence_gap"],
        "majority": per_class[-1],
        "minority": per_class[0],
        "transform_text": _transform_text(result),
        "provenance": _provenance(result),
        "glossary": GLOSSARY,
    }
    return environment().get_template("report.html.j2").render(**context)

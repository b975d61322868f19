"""Recalibration baselines of a streamed audit: fitted on a sample, measured on every row.

A dataset bigger than memory cannot be cross-fitted row by row. The streamed run
(``calaudit run DIR --baseline ...``) makes two passes:

1. **The sample.** The first pass (the audit's own) also keeps a bounded, seeded
   sample of the rows stratified by true class (:class:`calaudit.engine.row_sample.RowSample`:
   at most ``--baseline-sample`` rows, 200,000 by default; rare classes whole). Each
   sampled row is weighted by its class's rows over its class's sampled rows, so the
   weighted fit estimates the fit on every row whatever the stratification.
2. **The fits.** Each recalibration (temperature, vector scaling, isotonic regression,
   histogram binning: :mod:`.recalibration`, the in-memory fits with weights) is
   fitted once on the whole sample (the map a team would deploy), and once per fold
   on the sample rows outside that fold. A row's fold is a hash of its identity
   (:func:`fold_of`), the same in every partitioning.
3. **The evaluation.** The second pass applies the maps batch by batch and sums each
   baseline's :class:`~calaudit.engine.statistics.StreamStatistics`
   (:class:`BaselineEvaluation`, an observer that pickles and merges for Dask). A
   sampled row is scored by its fold's map (fitted without it), every other row by
   the whole-sample map (which never saw it): no row is scored by a map fitted on it,
   and the figures are exact on the stream given the fitted maps. With a sample that
   holds every row, this is the in-memory cross-fitting (with hash folds, not
   scikit-learn's stratified shuffle, so the figures differ a little from an
   in-memory run's).

The maps act on the log-probabilities (a stream's batches hold probabilities; with
``--logits`` they are the softmax of the logits, and temperature scaling of the
log-probabilities equals that of the logits, the log-sum-exp being one shift per row).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from ..baselines import recalibration
from ..baselines.comparison import COMPARED, BaselineResult, Comparison
from ..errors import UsageError
from .row_hash import uniform

#: The baselines a streamed audit fits on its sample, in the report's order.
STREAMED = ("temperature", "vector", "isotonic", "histogram")
#: What the folds' numbers are mixed with besides the seed.
FOLD_SALT = 0x2C1B_3C6D
#: Scores of the streamed temperature-scaled routing (``routing.recalibrated.scores``).
SAMPLE_SCORES = "temperature-scaled (fitted on a sample, cross-fitted)"


def fold_of(keys: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Each row's fold, ``0..folds-1``, from its key (:func:`calaudit.engine.row_sample.row_keys`)."""
    return np.minimum((uniform(keys, seed * 2 + FOLD_SALT) * folds).astype(np.intp), folds - 1)


def _fit(key: str, proba: np.ndarray, y: np.ndarray, weights: np.ndarray) -> Any:
    z = np.log(np.maximum(proba, recalibration.EPS))
    if key == "temperature":
        return recalibration.fit_temperature(z, y, weights)
    if key == "vector":
        return recalibration.fit_vector_scaling(z, y, weights=weights)
    if key == "isotonic":
        return recalibration.fit_isotonic(proba, y, weights)
    if key == "histogram":
        return recalibration.fit_histogram(proba, y, weights=weights)
    raise ValueError(f"no streamed fit for baseline {key!r}")


def apply_map(key: str, fitted: Any, proba: np.ndarray) -> np.ndarray:
    """A fitted map (:func:`_fit`, or a retrained head of :mod:`.retrain_maps`) applied
    to probabilities."""
    if hasattr(fitted, "apply"):
        return fitted.apply(proba)
    if key in ("temperature", "vector"):
        z = np.log(np.maximum(proba, recalibration.EPS))
        return recalibration.softmax(z / fitted if key == "temperature" else z * fitted[0] + fitted[1])
    if key == "isotonic":
        return recalibration.apply_isotonic(fitted, proba)
    return recalibration.apply_histogram(fitted, proba)


class BaselineMaps:
    """Every baseline's fitted maps (whole sample and per fold) and what tells a batch's
    sampled rows and folds apart; small and picklable (shipped to Dask workers)."""

    def __init__(self, maps: dict[str, tuple[Any, list[Any]]], membership: Any, folds: int, seed: int) -> None:
        self.maps, self.membership, self.folds, self.seed = maps, membership, folds, seed

    def scored(self, batch: Any, keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Each baseline's (or those of ``keys``) probabilities for the batch's rows
        (sampled rows by their fold's map, the others by the whole-sample map)."""
        inside, row_keys = self.membership.of_batch(batch)
        fold = fold_of(row_keys, self.folds, self.seed)
        proba = np.asarray(batch.proba)
        out: dict[str, np.ndarray] = {}
        z = None  # the log-probabilities every retrained head reads, computed once
        for key, (whole, per_fold) in self.maps.items():
            if keys is not None and key not in keys:
                continue
            # Most rows are outside the sample: score all by the whole-sample map, then
            # the sampled rows again by their folds' maps.
            if getattr(whole, "weights", None) is not None:
                if z is None:
                    from .retrain_maps import log_probabilities

                    z = log_probabilities(proba)
                scored = whole.apply(proba, z)
            else:
                scored = apply_map(key, whole, proba)
            for k, fitted in enumerate(per_fold):
                rows = inside & (fold == k)
                if rows.any():
                    scored[rows] = apply_map(key, fitted, proba[rows])
            out[key] = scored
        return out


def fit_baselines(sample: Any, methods: Sequence[str], *, folds: int, seed: int,
                  amounts: Sequence[float] | None = None, on_fit: Any = None,
                  targets: np.ndarray | None = None) -> BaselineMaps:
    """Fit ``methods`` on the weighted ``sample`` (:class:`~calaudit.engine.row_sample.RowSample`),
    on all of it and per fold (module docstring); ``label-smoothing`` retrains a head per
    smoothing amount of ``amounts`` (:mod:`.retrain_maps`, ``on_fit`` told of each fit);
    ``soft-labels`` also a head and a temperature fitted on ``targets``, the sampled
    rows' human distributions (:mod:`.soft_stream`). A usage error when the sample is too small to cross-fit."""
    y, proba, weights = sample.y, sample.proba, sample.weights()
    classes = int(np.count_nonzero(sample.counts))
    if sample.cap < classes:
        raise UsageError(f"--baseline-sample {sample.cap:,} cannot hold a row of each of the {classes:,} classes; "
                         f"give --baseline-sample {max(classes * 100, 2 * folds):,} or more")
    if y.shape[0] < 2 * folds:
        raise UsageError(f"the baseline sample holds {y.shape[0]:,} rows, too few for {folds}-fold cross-fitting; "
                         "give a larger --baseline-sample or fewer --folds")
    fold = fold_of(sample.keys, folds, seed)
    for k in range(folds):
        if not (fold != k).any():
            raise UsageError(f"every row of the baseline sample fell in fold {k + 1} of {folds}; give a larger "
                             "--baseline-sample or fewer --folds")
    maps: dict[str, tuple[Any, list[Any]]] = {}
    for key in methods:
        if key in ("label-smoothing", "soft-labels"):
            continue
        whole = _fit(key, proba, y, weights)
        per_fold = [_fit(key, proba[fold != k], y[fold != k], weights[fold != k]) for k in range(folds)]
        maps[key] = (whole, per_fold)
    soft = "soft-labels" in methods
    if soft:
        from .soft_stream import TemperatureMap, fit_soft_temperature

        z = np.log(np.maximum(proba, recalibration.EPS))
        maps[recalibration.TEMPERATURE_SOFT[0]] = (
            TemperatureMap(fit_soft_temperature(z, targets, weights)),
            [TemperatureMap(fit_soft_temperature(z[fold != k], targets[fold != k], weights[fold != k]))
             for k in range(folds)])
    if soft or "label-smoothing" in methods:
        from .retrain_maps import fit_retraining, sweep_amounts

        maps.update(fit_retraining(sample, amounts if amounts is not None else sweep_amounts(None), fold=fold,
                                   folds=folds, targets=targets if soft else None, on_fit=on_fit))
    return BaselineMaps(maps, sample.membership(), folds, seed)


class BaselineEvaluation:
    """The second pass: each baseline's statistics on every row (and, with ``routing``,
    the temperature-scaled confidences' counts per fine bin for review routing).
    Pickles and merges once :meth:`observe` has run."""

    def __init__(self, maps: BaselineMaps, *, n_bins: int, fine_bins: int | None = None, routing: bool = False,
                 expected_rows: int | None = None, human: Any = None) -> None:
        from .statistics import FINE_BINS

        self.maps, self.n_bins, self.human_settings = maps, n_bins, human
        #: With ``human`` (:class:`.soft_stream.HumanPartSettings`): every baseline's human figures.
        self.human: Any = None
        self.fine_bins = FINE_BINS if fine_bins is None else fine_bins
        self.expected_rows, self.want_routing = expected_rows, routing
        self.statistics: dict[str, Any] = {}
        self.routing: Any = None
        self.rows = 0

    def observe(self, batches: Iterable[Any]) -> Iterator[Any]:
        """Yield ``batches`` unchanged, scoring each by every baseline on the way."""
        from .kernel import Accumulator
        from .routing_bins import RoutingHistogram

        accumulators = {key: Accumulator(n_bins=self.n_bins, fine_bins=self.fine_bins, rows=self.expected_rows)
                        for key in self.maps.maps}
        routing = RoutingHistogram(self.expected_rows) if self.want_routing else None
        if self.human_settings is not None:
            from .soft_stream import HumanParts

            self.human = HumanParts(self.human_settings)
        try:
            for batch in batches:
                if batch.n_rows:
                    found = self.maps.scored(batch)
                    if self.human is not None:
                        self.human.add(batch, {"vendor": np.asarray(batch.proba), **found})
                    for key, scored in found.items():
                        accumulators[key].add(batch.y, scored)
                        if routing is not None and key == "temperature":
                            routing.add(batch.y, scored)
                    self.rows += batch.n_rows
                yield batch
        finally:
            for accumulator in accumulators.values():
                accumulator.close()
        for key, accumulator in accumulators.items():
            found = accumulator.result()
            if found is not None and found.n_rows:
                self.statistics[key] = found
        self.routing = routing

    def merge(self, other: BaselineEvaluation) -> BaselineEvaluation:
        merged = BaselineEvaluation(self.maps, n_bins=self.n_bins, fine_bins=self.fine_bins,
                                    routing=self.want_routing, expected_rows=self.expected_rows,
                                    human=self.human_settings)
        merged.rows = self.rows + other.rows
        humans = [part.human for part in (self, other) if part.human is not None]
        merged.human = humans[0] if len(humans) == 1 else (humans[0].merge(humans[1]) if humans else None)
        for key in dict.fromkeys([*self.statistics, *other.statistics]):
            parts = [part.statistics[key] for part in (self, other) if key in part.statistics]
            merged.statistics[key] = parts[0] if len(parts) == 1 else parts[0].merge(parts[1])
        routings = [part.routing for part in (self, other) if part.routing is not None]
        merged.routing = routings[0] if len(routings) == 1 else (routings[0].merge(routings[1]) if routings else None)
        return merged


def measured(statistics: Any) -> tuple[dict[str, float], Any]:
    """The compared metrics and the reliability table of a baseline's statistics
    (``ece_equal_mass`` from the fine histogram, within the bound the audit states)."""
    from ..stats.reliability import reliability_table
    from .sketch import sketch_figures

    exact = statistics.metrics()
    sketch = sketch_figures(statistics.fine_outcome_count, statistics.fine_moments, statistics.n_bins,
                            n_rows=statistics.n_rows)
    values = {**exact, **sketch.values}
    metrics = {name: float(values[name]) for name in COMPARED if name in values}
    return metrics, reliability_table(statistics.reliability_bins().top_label, value="confidence")


def sample_statement(sample: Any, rows: int) -> dict[str, Any]:
    """What the result says of the sample (``baselines.sample``, ``execution.baselines``)."""
    from .row_sample import water_level

    sampled = sample.sampled_counts()
    whole = int(np.count_nonzero((sampled == sample.counts) & (sample.counts > 0)))
    level = water_level(sample.counts, sample.cap)
    return {
        "rows": int(sample.n_rows), "of_rows": int(rows), "cap": int(sample.cap), "seed": int(sample.seed),
        "statement": f"fitted on {sample.n_rows:,} of {rows:,} rows",
        "classes_whole": whole, "rows_per_larger_class": None if whole == int(np.count_nonzero(sample.counts))
        else int(level),
        "key": f"id column {sample.id_col}" if sample.id_col else "file and position of each row",
        "rule": "per true class, the rows with the smallest seeded hash of their key; classes under the level kept "
                "whole, the others cut to the level; weighted by class rows over sampled rows",
    }


def streamed_comparison(vendor: Any, evaluation: BaselineEvaluation, sample: Any, methods: Sequence[str], *,
                        folds: int, seed: int) -> Comparison:
    """The :class:`Comparison` of a streamed run: the vendor's statistics (the audit's
    own) and each baseline's, with what each was fitted on."""
    statement = sample_statement(sample, vendor.n_rows)
    metrics, curve = measured(vendor)
    results = [BaselineResult("vendor", "The vendor's model", "vendor", metrics, curve, {})]
    for key in methods:
        if key not in recalibration.METHODS:  # the retraining baselines: .retrain_maps
            continue
        name, _ = recalibration.METHODS[key]
        metrics, curve = measured(evaluation.statistics[key])
        whole, per_fold = evaluation.maps.maps[key]
        details: dict[str, Any] = {"on": "log-probabilities", "fitted_on": statement["statement"],
                                   "sample_rows": statement["rows"], "rows": statement["of_rows"]}
        if key == "temperature":
            details.update(temperature=float(whole), temperatures=[float(t) for t in per_fold])
        results.append(BaselineResult(key, name, "recalibration", metrics, curve, details))
    return Comparison(folds, seed, "", tuple(results), sample=statement)

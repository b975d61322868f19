"""The human analysis of a streamed or distributed audit, from the merged sums of
:class:`calaudit.engine.human_stream.HumanObserver`: the same
:class:`~calaudit.human.results.HumanAnalysis` the in-memory audit gives, so every
reporter renders it unchanged.

Point figures are exact (sums of per-row terms). Intervals come from the **grouped
bootstrap on hashed groups**: every row belongs to one of
:data:`~calaudit.engine.human_stream.GROUPS` groups by a hash of its file and position,
and a resample draws the non-empty groups with replacement (as many as there are),
adding the drawn groups' term sums; each mean metric is the resample's sum over its
rows, agreement the ratio of its two sums. With fewer rows than groups nearly every
group is one row and this is the row bootstrap; with more, a group sum is a sum of
randomly chosen rows, whose variance is that many rows' variance, so the resampled
sums have the row bootstrap's variance (estimated from 4,096 groups: about 2% error in
the width), and their distribution is close to normal by the central limit theorem, as
the in-memory ``normal`` method assumes above 50,000 rows.

The interval **with annotator noise** adds, to each resample's sums of the drawn groups'
redraw means, normal noise whose variance is the drawn groups' summed redraw variances:
the in-memory ``grouped`` nested method (:mod:`calaudit.human.intervals`) with groups for
rows, and with :data:`~calaudit.engine.human_stream.REDRAWS` redraws per row instead of
32 (the means' leftover vote noise, ``1 / REDRAWS`` of the variance, is taken out of the
added noise, so the total is unbiased). The shift (nested minus plain resample means) is reported and removed before the
interval is read off, as in memory.
"""

from __future__ import annotations

import zlib
from dataclasses import replace
from typing import Any

import numpy as np

from ..human.analysis import PART_METRICS
from ..human.intervals import HumanIntervals, add_redraw_noise, intervals_from_sums, metrics_from_sums
from ..human.metrics import HUMAN_METRICS
from ..human.results import HumanAnalysis, HumanPart, HumanSplit
from ..predictions.human_labels import TIE_RULE
from ..stats.bootstrap import INTERVAL_METHOD, BootstrapResult
from .human_stream import N_TERMS, REDRAWS, HumanObserver, PartSums

#: The interval method's name in the result (``BootstrapResult.method``).
METHOD = "grouped"
#: Cells (resamples x groups) drawn at once.
_BLOCK_CELLS = 1 << 22


def human_metrics_of(part: PartSums) -> dict[str, float]:
    """Every defined human metric of a part, from its sums (agreement is undefined when
    every row is tied)."""
    if part.rows == 0:
        return {}
    values = metrics_from_sums(part.sums[None, :], part.rows)
    return {name: float(value[0]) for name, value in values.items() if np.isfinite(value[0])}


def grouped_human_intervals(part: PartSums, estimates: dict[str, float], *, resamples: int, level: float,
                            seed: int, annotator_noise: bool, redraws: int = REDRAWS) -> HumanIntervals:
    """Plain and (with ``annotator_noise`` and redraw moments in ``part``, from
    ``redraws`` redraws per row) nested intervals of the human metrics from the part's
    group sums (module docstring)."""
    wanted = {name: float(estimates[name]) for name in HUMAN_METRICS
              if name in estimates and np.isfinite(estimates[name])}
    keep = part.groups[:, 0] > 0
    groups = part.groups[keep]
    n_groups, n_rows = int(keep.sum()), part.rows
    noisy = annotator_noise and groups.shape[1] > 1 + N_TERMS
    if n_groups == 0:
        empty = BootstrapResult({}, METHOD, resamples, level, seed, INTERVAL_METHOD, ())
        return HumanIntervals(empty, empty if noisy else None, {} if noisy else None)
    counts, plain_terms = groups[:, 0], groups[:, 1 : 1 + N_TERMS]
    rng = np.random.default_rng([seed, zlib.crc32(b"human-groups")])
    uniform = np.full(n_groups, 1.0 / n_groups)
    block = max(1, _BLOCK_CELLS // n_groups)
    plain, nested = [], []
    for start in range(0, resamples, block):
        drawn = rng.multinomial(n_groups, uniform, size=min(block, resamples - start)).astype(np.float64)
        scale = n_rows / (drawn @ counts)  # each resample's sums as if over n_rows rows
        plain.append((drawn @ plain_terms) * scale[:, None])
        if noisy:
            moments = drawn @ groups[:, 1 + N_TERMS :]
            nested.append(_with_noise(rng, moments, redraws) * scale[:, None])
    plain_sums = np.concatenate(plain)
    plain_result = intervals_from_sums(plain_sums, n_rows, wanted, METHOD, resamples, level, seed)
    if not noisy:
        return HumanIntervals(plain_result, None, None)
    nested_sums = np.concatenate(nested)
    before, after = metrics_from_sums(plain_sums, n_rows), metrics_from_sums(nested_sums, n_rows)
    shift = {}
    for name in wanted:
        a, b = before[name][np.isfinite(before[name])], after[name][np.isfinite(after[name])]
        if a.size and b.size:
            shift[name] = float(b.mean() - a.mean())
    nested_result = intervals_from_sums(nested_sums, n_rows, wanted, METHOD, resamples, level, seed, offsets=shift)
    return HumanIntervals(plain_result, nested_result, shift)


def _with_noise(rng: np.random.Generator, moments: np.ndarray, redraws: int) -> np.ndarray:
    """The resampled redraw-mean sums plus normal noise of the drawn rows' summed redraw
    variance (and the (agree, counted) covariance), as
    :mod:`calaudit.human.intervals` adds it in its ``grouped`` nested method. A mean of
    ``redraws`` redraws already carries ``1 / redraws`` of that variance, so the noise
    adds the rest: ``(1 - 1 / redraws)`` of it."""
    return add_redraw_noise(rng, moments[:, :N_TERMS].copy(), moments[:, N_TERMS:] * (1.0 - 1.0 / redraws))


def _part(name: str, part: PartSums | None, total: int, *, resamples: int, level: float, seed: int) -> HumanPart:
    """One side of the split, as :func:`calaudit.human.analysis.analyse_human` reports it."""
    if part is None or part.rows == 0 or part.statistics is None:
        return HumanPart(name, 0, 0.0, {}, None, None, None, None)
    values = part.statistics.metrics()
    majority = {key: float(values[key]) for key in PART_METRICS}
    humans = human_metrics_of(part)
    intervals = None
    if resamples and part.rows >= 2:
        from .resample import stream_intervals

        boot = stream_intervals(part.statistics, reference=majority, resamples=resamples, level=level, seed=seed,
                                metrics=PART_METRICS)
        kept = dict(boot.intervals)
        human = grouped_human_intervals(part, humans, resamples=resamples, level=level, seed=seed,
                                        annotator_noise=False).plain
        kept.update(human.intervals)
        intervals = BootstrapResult(kept, boot.method, resamples, level, seed, boot.interval,
                                    (*boot.widened, *human.widened))
    confidence, human_share, model_share = (part.shares / part.rows).tolist()
    return HumanPart(name, part.rows, part.rows / total, {**majority, **humans}, intervals,
                     confidence=confidence, human_share=human_share, model_share=model_share)


def streamed_human_analysis(observed: HumanObserver, parts: HumanObserver | None = None, *, rule: str,
                            threshold: float, columns: tuple[str, ...], label_from: str, resamples: int,
                            level: float, seed: int) -> HumanAnalysis:
    """The :class:`HumanAnalysis` of merged observers: ``observed`` from the pass over
    every row, ``parts`` the hard/easy parts of a second pass (``--hard-split median``;
    ``None``: ``observed`` holds them)."""
    kind = observed.settings.reading.kind
    whole = observed.all
    values = human_metrics_of(whole)
    plain = noisy = shift = None
    if resamples:
        found = grouped_human_intervals(whole, values, resamples=resamples, level=level, seed=seed,
                                        annotator_noise=True, redraws=observed.settings.redraws)
        plain, noisy, shift = found.plain, found.with_annotator_noise, found.annotator_noise_shift
    split_from = parts if parts is not None else observed
    floors = {}
    if observed.floor is not None:  # vote counts: the noise floor of every row, then of the parts
        floors = observed.floor.floors()
        if parts is not None and parts.floor is not None:
            floors.update(parts.floor.floors())
    hard, easy = (replace(_part(name, part, whole.rows, resamples=resamples, level=level, seed=seed),
                          noise_floor=floors.get(name))
                  for name, part in (("hard", split_from.hard), ("easy", split_from.easy)))
    n_annotators = None
    if kind == "votes":
        totals = observed.vote_totals
        n_annotators = {"min": float(totals.low), "median": totals.median(), "max": float(totals.high)}
    notes = []
    if kind == "soft":
        notes.append("soft labels carry no vote counts, so no interval with annotator noise can be drawn and no "
                     "noise floor simulated")
    if "human_plurality_agreement" not in values:
        notes.append("every row's plurality vote is tied, so plurality agreement is undefined")
    return HumanAnalysis(
        kind=kind, columns=columns, n_annotators=n_annotators, metrics=values, intervals=plain,
        intervals_with_annotator_noise=noisy, annotator_noise_shift=shift, split=HumanSplit(str(rule), threshold),
        hard=hard, easy=easy, tied_rows=observed.tied_rows, label_from=label_from, tie_rule=TIE_RULE,
        notes=tuple(notes), noise_floor=floors.get("all"),
    )


def human_execution(observed: HumanObserver, *, passes: int, median_exact: bool | None) -> dict[str, Any]:
    """What ``execution.human`` says of the streamed human analysis."""
    exact = ["human metrics (all, hard and easy rows)", "hard/easy accuracy, ECE and NLL", "tied rows",
             "plurality labels"]
    bounded = [f"intervals: bootstrap of {observed.settings.groups:,} groups of rows hashed by file and position"]
    if observed.settings.reading.kind == "votes":
        exact.append("votes per item (min, median, max)" if observed.vote_totals.exact
                     else "votes per item (min, max)")
        if not observed.vote_totals.exact:
            bounded.append(f"median votes per item: values rounded to {observed.vote_totals.digits} significant "
                           "digits (too many distinct counts to keep)")
        if observed.floor is not None:
            exact.append(f"noise floor ({observed.floor.runs} simulations, the in-memory rule; each row's votes "
                         "redrawn from a hash of --seed and its position (and file, in a dataset of several "
                         "files): one file's floor equals the in-memory floor of its rows)")
        if observed.settings.noise:
            bounded.append(f"interval with annotator noise: {observed.settings.redraws} vote redraws per row, "
                           "each row's from a hash of --seed and its file and position (the in-memory grouped method)")
    info: dict[str, Any] = {"exact": exact, "bounded": bounded, "groups": observed.settings.groups,
                            "passes": passes}
    if median_exact is not None:
        info["median_entropy"] = "exact" if median_exact else (
            f"values rounded to {observed.entropies.digits} significant digits")
    return info

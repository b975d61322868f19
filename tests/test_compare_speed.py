"""The in-memory ``calaudit compare`` resamples the rows once (docs/speed.md, "Comparing models"):

* each model's own intervals are read off the paired draws, which are the very
  resamples its audit's exact bootstrap draws: the same intervals as ``calaudit run``
  gives that file, with half the resampling;
* the exact bootstrap asked for a few metrics computes only their families: a human
  part's accuracy, ECE and NLL fit no logistic slope per resample, and come out the
  same as from the full computation.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import calaudit.stats.bootstrap as bootstrap_module
from calaudit.stats import estimators
from calaudit.stats.metrics import compute_metrics
from clitools import invoke


def _files(tmp_path, n=180):
    rng = np.random.default_rng(11)
    z = rng.normal(0.0, 1.5, (n, 3))
    y = rng.integers(0, 3, n)
    paths = []
    for m, sharpen in enumerate((1.0, 1.8)):
        p = np.exp(sharpen * z)
        p /= p.sum(axis=1, keepdims=True)
        frame = pd.DataFrame({"id": [f"r{i}" for i in range(n)], "label": y,
                              **{f"prob_{k}": p[:, k] for k in range(3)}})
        paths.append(tmp_path / f"m{m}.csv")
        frame.to_csv(paths[-1], index=False)  # the same order: aligned rows are each file's rows
    return paths


def test_compare_reads_each_models_intervals_off_the_paired_draws(tmp_path, monkeypatch):
    paths = _files(tmp_path)
    runs = [json.loads(invoke("run", path, "--bootstrap", 200, "--json", "-").stdout) for path in paths]
    blocks = []
    original = bootstrap_module._exact_block

    def recording(rows, *args):
        blocks.append(rows.shape[0])
        return original(rows, *args)

    monkeypatch.setattr(bootstrap_module, "_exact_block", recording)
    result = invoke("compare", *paths, "--id-col", "id", "--bootstrap", 200, "--json", "-", "--no-ensemble")
    assert result.exit_code == 0, result.output
    # The rows were resampled once: 200 resamples measured for each of the two models.
    assert sum(blocks) == 2 * 200
    compared = json.loads(result.stdout)
    for model, run in zip(compared["models"], runs):
        assert model["intervals"] == run["intervals"]["metrics"]  # to the last bit
        assert model["metrics"] == run["metrics"]
    # The ensemble (the mean of the models) is measured on the same resamples: once more, not twice.
    blocks.clear()
    result = invoke("compare", *paths, "--id-col", "id", "--bootstrap", 200, "--json", "-")
    assert result.exit_code == 0, result.output
    assert sum(blocks) == 3 * 200
    compared = json.loads(result.stdout)
    ensemble = compared["ensemble"]
    mean = pd.read_csv(paths[0]).merge(pd.read_csv(paths[1]), on=["id", "label"])
    proba = np.column_stack([(mean[f"prob_{k}_x"] + mean[f"prob_{k}_y"]) / 2 for k in range(3)])
    alone = compute_metrics(mean["label"].to_numpy(), proba, n_bins=15).values
    assert ensemble["metrics"]["ece"] == pytest.approx(alone["ece"], abs=1e-12)
    low, high = ensemble["intervals"]["ece"]["low"], ensemble["intervals"]["ece"]["high"]
    assert low <= ensemble["metrics"]["ece"] <= high


def test_exact_bootstrap_of_a_few_metrics_skips_the_other_families(monkeypatch):
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 250)
    proba = rng.dirichlet(np.ones(3), 250)
    suite = compute_metrics(y, proba, n_bins=10)
    wanted = frozenset({"accuracy", "ece", "nll"})
    full = bootstrap_module.bootstrap(y, proba, suite, n_bins=10, smooth_bandwidth=0.1, reference=suite.values,
                                      resamples=200, seed=4, method="exact")

    def no_fit(*args, **kwargs):
        raise AssertionError("a logistic fit for metrics nobody asked for")

    monkeypatch.setattr(estimators, "logistic_fit", no_fit)
    monkeypatch.setattr(bootstrap_module, "_smooth_batch", no_fit)
    few = bootstrap_module.bootstrap(y, proba, suite, n_bins=10, smooth_bandwidth=0.1, reference=suite.values,
                                     resamples=200, seed=4, method="exact", names=wanted)
    assert set(few.intervals) == wanted
    for name in wanted:
        assert few.intervals[name] == full.intervals[name]
    with pytest.raises(AssertionError, match="nobody asked"):
        bootstrap_module.bootstrap(y, proba, suite, n_bins=10, smooth_bandwidth=0.1, reference=suite.values,
                                   resamples=200, seed=4, method="exact", names=frozenset({"calibration_slope"}))

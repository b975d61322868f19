"""Cost of the label-smoothing baseline against the plain audit of the same data.

    python benchmarks/bench_baselines.py                 # both sample models, best of 3
    python benchmarks/bench_baselines.py --before        # also the old scikit-learn fit (minutes)
    python benchmarks/bench_baselines.py --cold          # also each as a fresh `python -m calaudit run`

Runs ``calaudit run`` in this process (click's runner: loading, the audit with 1,000
bootstrap resamples, the terminal summary) on each input three ways: plain,
``--baseline label-smoothing --smoothing 0.1`` (hard labels and one amount) and
``--baseline label-smoothing`` (the sweep of 0, 0.02, 0.05, 0.1, 0.2 with its
intervals); each after one untimed warm-up, so the one-off imports (scikit-learn,
onnxruntime) are paid before timing by every variant alike. Prints the best time of
each and its ratio to the plain run; target: at most 3x. ``--before`` times the sweep
again with the retraining done the old way (each row expanded into K weighted rows,
scikit-learn's ``LogisticRegression`` per amount and fold), the same optimum.
``--cold`` also times each variant as a fresh ``python -m calaudit run`` process, so
the imports count as a user sees them (the baseline alone imports scikit-learn).

The inputs are ``sample_data/digits_gaussian_nb.csv`` (a prediction file: the
reference model learns from the vendor's log-probabilities) and
``sample_data/digits_mlp.onnx`` over ``sample_data/digits_images`` (it learns from
the network's 64-wide penultimate layer); both 899 rows, 10 classes, 5 folds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"
INPUTS = {
    "digits_gaussian_nb.csv": [str(SAMPLE / "digits_gaussian_nb.csv")],
    "digits_mlp.onnx + digits_images/": [str(SAMPLE / "digits_mlp.onnx"), str(SAMPLE / "digits_images")],
}
VARIANTS = {
    "plain": [],
    "--baseline label-smoothing --smoothing 0.1": ["--baseline", "label-smoothing", "--smoothing", "0.1"],
    "--baseline label-smoothing (sweep)": ["--baseline", "label-smoothing"],
}
TARGET = 3.0


def run_cli(args: list[str]) -> None:
    from click.testing import CliRunner

    from calaudit.cli import cli

    result = CliRunner().invoke(cli, ["run", *args, "-q"], prog_name="calaudit")
    if result.exit_code not in (0, 1):  # 1: a gate failed, still a full run
        raise RuntimeError(f"calaudit run {' '.join(args)} exited {result.exit_code}: {result.output}"
                           f"{result.exception!r}")


def run_process(args: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "calaudit", "run", *args, "-q"], capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"calaudit run {' '.join(args)} exited {done.returncode}: {done.stderr}")


def best_time(function, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def before_path(train_x, train_y, test_x, n_classes, amounts, *, kind="logistic", seed=0, targets=None,
                on_fit=None):
    """The retraining as it was: per amount, every row expanded into K rows weighted by
    its smoothed target and a standardised scikit-learn LogisticRegression fitted on
    them (calaudit.baselines.label_smoothing.make_model("logistic"))."""
    import warnings

    import numpy as np
    from sklearn.exceptions import ConvergenceWarning

    from calaudit.baselines import label_smoothing

    out = []
    for eps in amounts:
        x, labels, weights = label_smoothing.expand(train_x, train_y, n_classes, eps)
        model = label_smoothing.make_model("logistic", seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x, labels, logisticregression__sample_weight=weights)
        proba = np.zeros((test_x.shape[0], n_classes))
        proba[:, model.classes_] = model.predict_proba(test_x)
        out.append(proba / proba.sum(axis=1, keepdims=True))
        if on_fit is not None:
            on_fit()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", action="store_true", help="also time the old retraining (slow: minutes)")
    parser.add_argument("--cold", action="store_true", help="also time each variant in a fresh process")
    args = parser.parse_args()
    from calaudit.baselines import label_smoothing

    print(f"best of {args.repeat}, after one untimed warm-up; ratios to the plain run (target <= {TARGET:g}x)")
    for name, inputs in INPUTS.items():
        times = {}
        for variant, extra in VARIANTS.items():
            run_cli(inputs + extra)  # warm-up: imports, page cache
            times[variant] = best_time(lambda: run_cli(inputs + extra), args.repeat)
        print(f"\n{name}")
        for variant, seconds in times.items():
            ratio = seconds / times["plain"]
            verdict = "" if variant == "plain" else (" met" if ratio <= TARGET else " missed")
            print(f"  {variant:<58} {seconds:7.2f} s  {ratio:5.2f}x{verdict}")
        if args.cold:
            cold = {variant: best_time(lambda: run_process(inputs + extra), args.repeat)
                    for variant, extra in VARIANTS.items()}
            for variant, seconds in cold.items():
                print(f"  {variant + ', fresh process':<58} {seconds:7.2f} s  {seconds / cold['plain']:5.2f}x")
        if args.before:
            sweep = VARIANTS["--baseline label-smoothing (sweep)"]
            original = label_smoothing.fit_predict_path
            label_smoothing.fit_predict_path = before_path
            try:
                seconds = best_time(lambda: run_cli(inputs + sweep), 1)
            finally:
                label_smoothing.fit_predict_path = original
            print(f"  {'the sweep, retrained the old way':<58} {seconds:7.2f} s  {seconds / times['plain']:5.2f}x")


if __name__ == "__main__":
    main()

"""Generate calaudit's sample prediction files from scikit-learn's bundled datasets.

Fits a few classifiers on ``load_digits`` and ``load_breast_cancer`` (both ship
with scikit-learn, nothing is downloaded), and writes their held-out (test-split)
``predict_proba`` output in calaudit's input format:

* ``id``: row index of the sample in the original sklearn dataset (int);
* ``label``: the true class name (string);
* ``prob_<class name>``: one float64 column per class, in class order.

Splits are stratified and seeded, so the output is byte-for-byte reproducible
for a given set of library versions.

Run from the repository root::

    python sample_data/make_sample_data.py [--out-dir DIR]

By default the files are written next to this script.
"""

import argparse
import os
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

SEED = 0
TEST_SIZE = 0.5


class Dataset(NamedTuple):
    """Features, integer targets and the name of each class (in target order)."""

    X: np.ndarray
    y: np.ndarray
    class_names: list[str]


class Job(NamedTuple):
    """One output file: which dataset, which model, and where to write it."""

    filename: str
    load: Callable[[], Dataset]
    make_model: Callable[[], ClassifierMixin]


def load_digits_dataset() -> Dataset:
    """Return the 10-class digits data; class names are the strings "0".."9"."""
    data = load_digits()
    return Dataset(data.data, data.target, [str(t) for t in range(10)])


def load_breast_cancer_dataset() -> Dataset:
    """Return the binary breast cancer data; class names are "malignant", "benign"."""
    data = load_breast_cancer()
    return Dataset(data.data, data.target, [str(n) for n in data.target_names])


def gaussian_nb() -> ClassifierMixin:
    """GaussianNB: its independence assumption makes it badly overconfident."""
    return GaussianNB()


def scaled_logistic_regression() -> ClassifierMixin:
    """Standardised logistic regression: usually reasonably well calibrated."""
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))


JOBS = [
    Job("digits_gaussian_nb.csv", load_digits_dataset, gaussian_nb),
    Job("digits_logistic_regression.csv", load_digits_dataset, scaled_logistic_regression),
    Job("breast_cancer_gaussian_nb.csv", load_breast_cancer_dataset, gaussian_nb),
    Job(
        "breast_cancer_logistic_regression.parquet",
        load_breast_cancer_dataset,
        scaled_logistic_regression,
    ),
]


def held_out_predictions(dataset: Dataset, model: ClassifierMixin) -> pd.DataFrame:
    """Fit ``model`` on a stratified train split; return test-split predictions.

    Rows are sorted by ``id`` (the sample's row index in the original dataset).
    """
    ids = np.arange(len(dataset.y))
    train_ids, test_ids = train_test_split(
        ids, test_size=TEST_SIZE, stratify=dataset.y, random_state=SEED
    )
    test_ids = np.sort(test_ids)
    model.fit(dataset.X[train_ids], dataset.y[train_ids])
    probs = model.predict_proba(dataset.X[test_ids]).astype(np.float64)
    names = dataset.class_names
    if list(model.classes_) != list(range(len(names))):
        raise ValueError(f"unexpected class order: {model.classes_}")

    df = pd.DataFrame({
        "id": test_ids.astype(np.int64),
        "label": [names[t] for t in dataset.y[test_ids]],
    })
    for k, name in enumerate(names):
        df[f"prob_{name}"] = probs[:, k]
    return df


def accuracy_and_confidence(df: pd.DataFrame) -> tuple[float, float]:
    """Return (accuracy of the argmax prediction, mean top-class probability)."""
    prob_cols = [c for c in df.columns if c.startswith("prob_")]
    probs = df[prob_cols].to_numpy()
    predicted = np.array([c.removeprefix("prob_") for c in prob_cols])[probs.argmax(axis=1)]
    return float(np.mean(predicted == df["label"].to_numpy())), float(probs.max(axis=1).mean())


def write_atomically(df: pd.DataFrame, path: Path) -> None:
    """Write ``df`` as CSV or Parquet (by suffix) via a temp file and ``os.replace``."""
    tmp_name = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if path.suffix == ".parquet":
            df.to_parquet(tmp_name, index=False, engine="pyarrow")
        else:
            df.to_csv(tmp_name, index=False, lineterminator="\n")
        os.replace(tmp_name, path)
    except BaseException:
        tmp_name.unlink(missing_ok=True)
        raise


def parse_args() -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="directory to write the files into (default: this script's directory)",
    )
    return parser.parse_args()


def main() -> None:
    """Write every sample file and print a one-line summary of each."""
    out_dir = parse_args().out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    for job in JOBS:
        df = held_out_predictions(job.load(), job.make_model())
        write_atomically(df, out_dir / job.filename)
        accuracy, confidence = accuracy_and_confidence(df)
        print(
            f"{job.filename}: rows={len(df)} accuracy={accuracy:.4f} "
            f"mean_confidence={confidence:.4f}"
        )


if __name__ == "__main__":
    main()

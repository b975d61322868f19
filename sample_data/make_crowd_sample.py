"""Generate ``sample_data/crowd/``: three vendor models' predictions with crowd votes.

SIMULATED DATA. An agency asks a crowd to read 3,000 comments left under its ads and
say whether each is ``negative``, ``neutral`` or ``positive``; 3 to 7 people read each
comment. A vendor's sentiment model scored the same comments. Everything is drawn
from known laws, so what calaudit should find is known:

* each comment has a true crowd distribution ``H_true`` (Dirichlet): most comments
  are clear-cut, about a third are genuinely ambiguous;
* the votes are ``Multinomial(n_i, H_true)`` with ``n_i`` from 3 to 7;
* the vendor's probabilities are ``softmax(3.5 * log max(H_true, 0.02) + noise)``: the model
  knows which answer people lean to, but it is far surer than people are, worst on
  the ambiguous comments (where people split about 57/43, it still says ~80%);
* there is no ``label`` column: calaudit takes the plurality vote (ties broken at
  random with ``--seed``, and counted).

Two more vendors scored the same comments (``calaudit compare``), drawn after
everything above from a generator of their own, so ``predictions.csv`` is the same
file it always was:

* ``model_b.csv``, a model that follows how people split:
  ``softmax(log max(H_true, 0.01) + N(0, 0.5^2))``; against the plurality vote it
  looks underconfident (it gives the favourite answer about the share people gave
  it, and the plurality of a few votes agrees with the favourite more often than
  that). Its rows are shuffled and it carries the same ``votes_<class>`` columns;
* ``model_c.csv``, a model that says the same confidence, 0.83, on every comment (its
  top answer is the crowd's leaning read with noise; the rest split evenly): about
  as often right as it says, so well calibrated against the plurality vote, but as
  sure where people split as where they agree. It has no votes and no labels: audit
  it with ``--votes votes.csv --id-col comment_id``;
* ``votes.csv``: ``comment_id`` and the ``votes_<class>`` columns alone (the votes of
  ``predictions.csv``), rows in another order.

So the two orders differ: model C is the best calibrated against the plurality vote,
model B the closest to how people disagree.

Run from the repository root (numpy and pandas only; seeded, so reproducible)::

    python sample_data/make_crowd_sample.py [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20261127
N_ITEMS = 3000
CLASSES = ("negative", "neutral", "positive")
SHARPENING = 3.5
#: The second vendor follows the crowd's split; the third says the same confidence everywhere.
MODEL_B_NOISE, MODEL_C_NOISE, MODEL_C_CONFIDENCE = 0.5, 0.6, 0.83


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def make(out_dir: Path) -> Path:
    rng = np.random.default_rng(SEED)
    k = len(CLASSES)
    leaning = rng.choice(k, size=N_ITEMS, p=[0.3, 0.25, 0.45])
    ambiguous = rng.random(N_ITEMS) < 0.35
    # Clear-cut comments: a Dirichlet concentrated on one answer; ambiguous ones: spread.
    alpha = np.where(ambiguous[:, None], 2.0, 0.25)
    alpha = np.broadcast_to(alpha, (N_ITEMS, k)).copy()
    alpha[np.arange(N_ITEMS), leaning] += np.where(ambiguous, 1.5, 8.0)
    truth = np.array([rng.dirichlet(row) for row in alpha])  # one draw per item (generator, not the tool)
    annotators = rng.integers(3, 8, size=N_ITEMS)
    votes = rng.multinomial(annotators, truth)
    logits = SHARPENING * np.log(np.maximum(truth, 0.02)) + rng.normal(0.0, 0.8, size=(N_ITEMS, k))
    proba = softmax(logits)
    frame = pd.DataFrame({"comment_id": [f"c{i:05d}" for i in range(N_ITEMS)]})
    for j, name in enumerate(CLASSES):
        frame[f"prob_{name}"] = proba[:, j]
    for j, name in enumerate(CLASSES):
        frame[f"votes_{name}"] = votes[:, j]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "predictions.csv"
    _write(frame, path)
    # The other vendors: their own generator, so the draws above (and predictions.csv) never change.
    other = np.random.default_rng([SEED, 2])
    proba_b = softmax(np.log(np.maximum(truth, 0.01)) + other.normal(0.0, MODEL_B_NOISE, size=(N_ITEMS, k)))
    top = np.argmax(np.log(np.maximum(truth, 0.02)) + other.normal(0.0, MODEL_C_NOISE, size=(N_ITEMS, k)), axis=1)
    proba_c = np.full((N_ITEMS, k), (1.0 - MODEL_C_CONFIDENCE) / (k - 1))
    proba_c[np.arange(N_ITEMS), top] = MODEL_C_CONFIDENCE
    ids = frame[["comment_id"]]
    votes_frame = frame[[f"votes_{name}" for name in CLASSES]]
    model_b = pd.concat([ids, _probabilities(proba_b), votes_frame], axis=1)
    _write(model_b.iloc[other.permutation(N_ITEMS)], out_dir / "model_b.csv")
    _write(pd.concat([ids, _probabilities(proba_c)], axis=1).iloc[other.permutation(N_ITEMS)], out_dir / "model_c.csv")
    _write(pd.concat([ids, votes_frame], axis=1).iloc[other.permutation(N_ITEMS)], out_dir / "votes.csv")
    return path


def _probabilities(proba: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({f"prob_{name}": proba[:, j] for j, name in enumerate(CLASSES)})


def _write(frame: pd.DataFrame, path: Path) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    frame.to_csv(temporary, index=False, lineterminator="\n")
    os.replace(temporary, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent / "crowd")
    path = make(parser.parse_args().out_dir)
    print(f"{path.parent}: predictions.csv, model_b.csv, model_c.csv and votes.csv; {N_ITEMS} comments, classes "
          f"{', '.join(CLASSES)}")


if __name__ == "__main__":
    main()

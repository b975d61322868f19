"""Generate ``sample_data/crowd/``: a vendor model's predictions with crowd votes.

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
    handle, temporary = tempfile.mkstemp(dir=out_dir, suffix=".tmp")
    os.close(handle)
    frame.to_csv(temporary, index=False, lineterminator="\n")
    os.replace(temporary, path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent / "crowd")
    path = make(parser.parse_args().out_dir)
    print(f"{path}: {N_ITEMS} comments, classes {', '.join(CLASSES)}")


if __name__ == "__main__":
    main()

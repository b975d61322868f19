"""Generate ``sample_data/ad_review/``: two simulated vendors scoring the same ads.

SIMULATED DATA. An agency sends 4,000 ads through two vendors' content classifiers
(classes ``safe``, ``borderline``, ``unsafe``). Each ad has a channel, a language and
a campaign budget. The true class and both vendors' probabilities are drawn from
known laws, so what calaudit should find is known:

* ``vendor_a.csv`` is the sharper model (more often right) but overconfident, and
  badly so on mobile ads in French (``channel = mobile & language = fr``), where it
  claims ~95% and is right far less often;
* ``vendor_b.csv`` is less accurate but close to calibrated everywhere. Its rows are
  shuffled, so the files line up only by ``item_id`` (``--id-col item_id``).

Run from the repository root (numpy and pandas only; seeded, so reproducible)::

    python sample_data/make_vendor_sample.py [--out-dir DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20261126
N_ITEMS = 4000
CLASSES = ("safe", "borderline", "unsafe")
CHANNELS = ("search", "social", "mobile", "video")
LANGUAGES = ("en", "de", "fr", "es")


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def make(out_dir: Path) -> None:
    rng = np.random.default_rng(SEED)
    n, k = N_ITEMS, len(CLASSES)
    channel = rng.choice(CHANNELS, n, p=[0.35, 0.3, 0.25, 0.1])
    language = rng.choice(LANGUAGES, n, p=[0.45, 0.2, 0.2, 0.15])
    budget = np.round(rng.lognormal(8.0, 1.0, n), 2)
    # The truth: a latent score per class; the true class is drawn from its softmax,
    # so the "ideal" probabilities are known and calibrated by construction.
    latent = rng.normal(0.0, 1.6, (n, k)) + np.array([1.0, 0.0, -0.4])
    ideal = softmax(latent)
    label = (rng.random(n)[:, None] > np.cumsum(ideal, axis=1)).sum(axis=1)
    # Vendor A sees the latent scores with little noise, then sharpens them (x1.8):
    # overconfident everywhere, and x3.5 on mobile French ads, where its confidence
    # means least.
    hard = (channel == "mobile") & (language == "fr")
    sharpen = np.where(hard, 3.5, 1.8)[:, None]
    seen_a = latent + rng.normal(0.0, np.where(hard, 1.5, 0.4)[:, None], (n, k))
    proba_a = softmax(seen_a * sharpen)
    # Vendor B sees noisier scores, softened by a temperature that about matches its
    # noise: close to calibrated.
    noise_b = 1.0
    seen_b = latent + rng.normal(0.0, noise_b, (n, k))
    proba_b = softmax(seen_b / 1.65)
    ids = np.array([f"ad-{i:05d}" for i in range(n)])
    for name, proba, order in (("vendor_a.csv", proba_a, np.arange(n)), ("vendor_b.csv", proba_b, rng.permutation(n))):
        frame = pd.DataFrame({
            "item_id": ids[order],
            "channel": channel[order],
            "language": language[order],
            "budget": budget[order],
            "label": np.array(CLASSES)[label[order]],
        })
        for j, cls in enumerate(CLASSES):
            frame[f"prob_{cls}"] = np.round(proba[order, j], 6)
        # Rounding to 6 decimals leaves rows within 1e-5 of summing to 1.
        frame.to_csv(out_dir / name, index=False)
        predicted = proba.argmax(axis=1)
        print(f"{name}: accuracy {np.mean(predicted == label):.3f}, mean confidence {proba.max(axis=1).mean():.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent / "ad_review")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    make(args.out_dir)


if __name__ == "__main__":
    main()

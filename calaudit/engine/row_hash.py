"""Stable pseudo-random numbers per row (:mod:`calaudit.stats.row_hash`, where they live
so that the in-memory segment search splits its rows as a stream does); re-exported
here for the engine's readers and observers."""

from __future__ import annotations

from ..stats.row_hash import file_label, mix, position_keys, text_keys, uniform

__all__ = ["file_label", "mix", "position_keys", "text_keys", "uniform"]

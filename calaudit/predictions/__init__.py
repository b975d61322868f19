"""The input side: one validated value, :class:`Predictions`, and what makes one valid.

``value`` holds :class:`Predictions` (labels, probabilities, class names and where they
came from) and :class:`Source`; ``labels`` turns labels into class indices;
``validation`` checks probabilities; ``transforms`` turns logits into probabilities;
``human_labels`` validates annotator votes and soft labels. Every loader ends in a
:class:`Predictions`; nothing after it knows which file or model it came from.

``from calaudit.predictions import Predictions`` loads :mod:`.value` on first use, so
importing a sibling module stays as light as it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["Predictions", "Source"]

if TYPE_CHECKING:
    from .value import Predictions, Source


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'calaudit.predictions' has no attribute {name!r}")
    from . import value

    return getattr(value, name)

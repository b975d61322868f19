"""calaudit: audit how far a classifier's confidence can be trusted.

The public API is loaded lazily so that ``calaudit --help`` starts instantly::

    import calaudit
    result = calaudit.audit(y_true, y_proba, class_names=["cat", "dog"])
    result.metrics["ece"], result.to_frame()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

__all__ = [
    "AuditResult",
    "CalauditError",
    "InvalidInputError",
    "METRICS",
    "Predictions",
    "__version__",
    "audit",
    "audit_predictions",
    "load_prediction_file",
]

_LAZY = {
    "audit": "calaudit.auditing",
    "audit_predictions": "calaudit.auditing",
    "AuditResult": "calaudit.result",
    "Predictions": "calaudit.predictions",
    "METRICS": "calaudit.metrics",
    "CalauditError": "calaudit.errors",
    "InvalidInputError": "calaudit.errors",
    "load_prediction_file": "calaudit.loaders.table",
}

if TYPE_CHECKING:
    from .auditing import audit, audit_predictions
    from .errors import CalauditError, InvalidInputError
    from .loaders.table import load_prediction_file
    from .metrics import METRICS
    from .predictions.value import Predictions
    from .result import AuditResult


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'calaudit' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

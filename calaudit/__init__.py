"""calaudit: audit how far a classifier's confidence can be trusted.

The public API is loaded lazily so that ``calaudit --help`` starts instantly::

    import calaudit
    result = calaudit.audit(y_true, y_proba, class_names=["cat", "dog"])
    result.metrics["ece"], result.to_frame()

Modules that moved keep their documented names: ``calaudit.metrics`` is
:mod:`calaudit.stats.metrics` and ``calaudit.metric_functions`` is
:mod:`calaudit.stats.metric_functions` (the same module objects, imported on first use).
"""

from __future__ import annotations

import sys
from importlib.machinery import ModuleSpec
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .display import register_html

__all__ = [
    "AuditResult",
    "CalauditError",
    "InvalidInputError",
    "METRICS",
    "METRIC_FUNCTIONS",
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
    "METRICS": "calaudit.stats.metric_info",
    "METRIC_FUNCTIONS": "calaudit.stats.metric_functions",
    "CalauditError": "calaudit.errors",
    "InvalidInputError": "calaudit.errors",
    "load_prediction_file": "calaudit.loaders.table",
}

if TYPE_CHECKING:
    from .auditing import audit, audit_predictions
    from .errors import CalauditError, InvalidInputError
    from .loaders.table import load_prediction_file
    from .predictions.value import Predictions
    from .result import AuditResult
    from .stats.metric_functions import METRIC_FUNCTIONS
    from .stats.metric_info import METRICS


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'calaudit' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


#: Documented module paths that moved, and where each module lives now.
MOVED_MODULES = {
    "calaudit.metrics": "calaudit.stats.metrics",
    "calaudit.metric_functions": "calaudit.stats.metric_functions",
}


class MovedModules:
    """Finder and loader of :data:`MOVED_MODULES`: importing an old name gives the module
    at its new place (the same object, so a patch or a registry entry is shared); no
    file stays at the old path."""

    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        return ModuleSpec(name, MovedModules) if name in MOVED_MODULES else None

    @staticmethod
    def create_module(spec: ModuleSpec) -> Any:
        import importlib

        module = importlib.import_module(MOVED_MODULES[spec.name])
        spec.loader_state = module.__spec__  # the import machinery overwrites __spec__
        return module

    @staticmethod
    def exec_module(module: Any) -> None:
        module.__spec__ = module.__spec__.loader_state  # the module keeps its own spec


if MovedModules not in sys.meta_path:
    sys.meta_path.append(MovedModules)


def _audit_card(result: Any) -> str:
    from .reporters.card import render

    return render(result)


def _comparison_card(comparison: Any) -> str:
    from .reporters.card import render_comparison

    return render_comparison(comparison)


# A result shows itself in a notebook as a card (calaudit.display says why it is
# registered here, at the top of the layers, and not imported by the result types).
register_html("calaudit.result.AuditResult", _audit_card)
register_html("calaudit.decisions.comparison_result.ComparisonResult", _comparison_card)

"""Shared test settings.

Bootstrap intervals cost a second or so per audit; tests about anything else run
without them (``calaudit.bootstrap.DEFAULT_RESAMPLES`` set to 0, so that only the
default changes, never an explicit ``bootstrap=N``). Tests of the default itself are
marked ``@pytest.mark.bootstrap`` and run with the real default of 1,000.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_default_bootstrap(request, monkeypatch):
    if request.node.get_closest_marker("bootstrap") is None:
        import calaudit.bootstrap

        monkeypatch.setattr(calaudit.bootstrap, "DEFAULT_RESAMPLES", 0)

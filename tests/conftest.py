"""Shared test settings.

Bootstrap intervals cost a second or so per audit, so the test session runs without
them by default: :func:`_no_default_bootstrap` sets
``calaudit.bootstrap.DEFAULT_RESAMPLES`` to 0 once, for the whole session, before any
fixture of any scope is set up. Only the default changes: an explicit ``bootstrap=N``
or ``--bootstrap N`` (or ``CALAUDIT_BOOTSTRAP``) still draws N resamples. Because the
setting is session-wide, a module- or class-scoped fixture that audits something sees
the same default as the tests that use it (a function-scoped patch would be applied
after such fixtures, which then silently ran with 1,000 resamples).

Tests of the default itself are marked ``@pytest.mark.bootstrap``: for their duration
the module's real default (1,000) is back. Fixtures wider than one test never see it.
Audits run in a subprocess (the console script) always use the real default.
"""

from __future__ import annotations

import pytest

#: The value of ``calaudit.bootstrap.DEFAULT_RESAMPLES`` as the library defines it,
#: recorded before the session replaces it (set by :func:`_no_default_bootstrap`).
REAL_DEFAULT_RESAMPLES: int | None = None


@pytest.fixture(scope="session", autouse=True)
def _no_default_bootstrap():
    """No bootstrap by default, for every test and every fixture of the session."""
    global REAL_DEFAULT_RESAMPLES
    import calaudit.stats.bootstrap

    REAL_DEFAULT_RESAMPLES = calaudit.stats.bootstrap.DEFAULT_RESAMPLES
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(calaudit.stats.bootstrap, "DEFAULT_RESAMPLES", 0)
        yield


@pytest.fixture(autouse=True)
def _real_default_bootstrap_when_marked(request, _no_default_bootstrap):
    """``@pytest.mark.bootstrap`` tests get the library's real default back."""
    if request.node.get_closest_marker("bootstrap") is None:
        yield
        return
    import calaudit.stats.bootstrap

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(calaudit.stats.bootstrap, "DEFAULT_RESAMPLES", REAL_DEFAULT_RESAMPLES)
        yield


@pytest.fixture(autouse=True)
def _no_debug_flag(monkeypatch):
    """Every test starts without --debug (the CLI keeps the flag in module state)."""
    import calaudit.cli.group

    monkeypatch.setitem(calaudit.cli.group._state, "debug", False)

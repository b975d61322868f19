"""Tests that catch bugs the rest of the suite let through (deliberate mutations survived it).

* the default of 1,000 bootstrap resamples, through the CLI and ``CALAUDIT_BOOTSTRAP``,
  and the session-wide test default of none (tests/conftest.py) that fixtures of every
  scope share;
* the interval cells of the terminal and HTML metric tables against the JSON document
  (relations only: another module decides the interval numbers);
* :func:`calaudit.metrics.classwise_statistics` over several row blocks with a ragged
  last block, against an independent numpy reference.

The regression gate's "closer to 1" direction is covered in tests/test_gate.py.
"""

from __future__ import annotations

import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import calaudit
import calaudit.stats.bootstrap
import calaudit.cli.group as cli_module
from calaudit.cli import cli
from calaudit.stats.metrics import METRICS, classwise_statistics, compute_metrics
from calaudit.reporters import html as html_reporter
from calaudit.reporters import json_report, terminal

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "digits_gaussian_nb.csv"
#: The documented default (README, "Options of calaudit run"; ``calaudit run --help``).
DOCUMENTED_DEFAULT_RESAMPLES = 1000


def _softmax_model(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Overconfident probabilities: labels drawn from a flatter softmax than the one reported."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 2.0, (n, k))
    shown = np.exp(logits - logits.max(axis=1, keepdims=True))
    shown /= shown.sum(axis=1, keepdims=True)
    truth = np.exp(0.5 * (logits - logits.max(axis=1, keepdims=True)))
    truth /= truth.sum(axis=1, keepdims=True)
    y = (truth.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1).clip(0, k - 1)
    return y, shown


# --------------------------------------------------------------------------- the test default


@pytest.fixture(scope="module")
def module_scoped_audit():
    """What a module-scoped fixture sees: it is set up before any function-scoped fixture."""
    y, proba = _softmax_model(120, 3, seed=1)
    return calaudit.stats.bootstrap.DEFAULT_RESAMPLES, calaudit.audit(y, proba)


def test_module_scoped_fixtures_share_the_session_default(module_scoped_audit):
    default, result = module_scoped_audit
    assert default == calaudit.stats.bootstrap.DEFAULT_RESAMPLES == 0
    assert result.intervals is None and result.options["bootstrap"] == 0


def test_an_explicit_count_is_not_the_default():
    y, proba = _softmax_model(120, 3, seed=2)
    result = calaudit.audit(y, proba, bootstrap=200)
    assert result.intervals is not None and result.intervals.resamples == 200


@pytest.mark.bootstrap
def test_marked_tests_get_the_real_default(module_scoped_audit):
    assert calaudit.stats.bootstrap.DEFAULT_RESAMPLES == DOCUMENTED_DEFAULT_RESAMPLES
    # A fixture wider than the test keeps the session's default.
    assert module_scoped_audit[0] == 0


# --------------------------------------------------------------------------- the CLI's default


def _run_cli(tmp_path: Path, monkeypatch, *args: object, env: dict[str, str] | None = None) -> dict:
    """``calaudit run SAMPLE --json out.json ARGS`` in an empty directory, no CALAUDIT_* settings."""
    for name in list(os.environ):
        if name.startswith("CALAUDIT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(cli_module._state, "debug", False)
    out = tmp_path / "out.json"
    result = CliRunner().invoke(cli, ["run", str(SAMPLE), "--json", str(out), "-q", *map(str, args)],
                                prog_name="calaudit", env=env)
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(out.read_text(encoding="utf-8"))


def _assert_intervals_for_every_metric(doc: dict, resamples: int) -> None:
    intervals = doc["intervals"]
    assert intervals is not None, "no intervals"
    assert intervals["resamples"] == resamples
    assert doc["options"]["bootstrap"] == resamples
    expected = {name for name in doc["metrics"] if METRICS[name].interval}
    assert set(intervals["metrics"]) == expected
    for name, interval in intervals["metrics"].items():
        assert np.isfinite(interval["low"]) and np.isfinite(interval["high"]), name
        assert interval["low"] <= interval["high"], name


@pytest.mark.bootstrap
def test_cli_run_draws_1000_resamples_by_default(tmp_path, monkeypatch):
    doc = _run_cli(tmp_path, monkeypatch)
    _assert_intervals_for_every_metric(doc, DOCUMENTED_DEFAULT_RESAMPLES)


@pytest.mark.bootstrap
def test_cli_run_reads_the_resamples_from_calaudit_bootstrap(tmp_path, monkeypatch):
    # Marked: the variable must win over the real default, not over the test default of 0.
    doc = _run_cli(tmp_path, monkeypatch, env={"CALAUDIT_BOOTSTRAP": "200"})
    _assert_intervals_for_every_metric(doc, 200)


# --------------------------------------------------------------------------- interval cells


@pytest.fixture(scope="module", params=["multiclass", "binary"])
def audited(request):
    """(result, JSON document) of a small audit with 200 resamples."""
    n, k = (400, 4) if request.param == "multiclass" else (300, 2)
    y, proba = _softmax_model(n, k, seed=7)
    result = calaudit.audit(y, proba, bootstrap=200, seed=3)
    doc = json.loads(json_report.render(result))
    with_interval = set(doc["intervals"]["metrics"])
    # The cases must show both kinds of row.
    assert with_interval and set(doc["metrics"]) - with_interval
    return result, doc


def _expected_cell(doc: dict, name: str) -> str:
    interval = doc["intervals"]["metrics"].get(name)
    return "" if interval is None else f"{interval['low']:.4f} - {interval['high']:.4f}"


def _level_title(doc: dict) -> str:
    return f"{doc['intervals']['level'] * 100:.0f}% interval"


_TERMINAL_ROW = re.compile(
    r"^(?P<name>[a-z_]+)(?: \(\d+ bins\))?\s+(?P<value>-?\d+\.\d{4})\s+"
    r"(?P<interval>-?\d+\.\d{4} - -?\d+\.\d{4})?\s*(?P<better>lower|higher|closer to [01])\s+(?P<meaning>\S.*)$"
)


def _terminal_metric_rows(text: str) -> tuple[str, dict[str, re.Match]]:
    lines = text.splitlines()
    (start,) = [i for i, line in enumerate(lines) if line.startswith("Metric ") and " Value " in line]
    rows = {}
    for line in lines[start + 1:]:
        if not line.strip() or line.startswith("Intervals:"):
            break
        match = _TERMINAL_ROW.match(line)
        if match is None:
            assert " n/a " in line, f"unparsed metric row {line!r}"
            continue
        assert match["name"] not in rows, f"{match['name']} listed twice"
        rows[match["name"]] = match
    return lines[start], rows


def test_terminal_metric_table_shows_every_interval_of_the_json(audited):
    result, doc = audited
    text = terminal.render(result)
    header, rows = _terminal_metric_rows(text)
    assert _level_title(doc) in header
    assert set(rows) == set(doc["metrics"])
    for name, value in doc["metrics"].items():
        assert rows[name]["value"] == f"{value:.4f}", name
        assert (rows[name]["interval"] or "") == _expected_cell(doc, name), (name, rows[name].group(0))
    assert f"Intervals: {doc['intervals']['resamples']:,} bootstrap resamples" in text


class _MetricsTable(HTMLParser):
    """Header and body cells of the first <table> after ``<h3 id="metrics">``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.seen_heading = False
        self.state = "before"  # before -> in_table -> done
        self.headers: list[str] = []
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "h3" and dict(attrs).get("id") == "metrics":
            self.seen_heading = True
        elif tag == "table" and self.seen_heading and self.state == "before":
            self.state = "in_table"
        elif self.state == "in_table":
            if tag == "tr":
                self.rows.append([])
            elif tag in ("th", "td"):
                self._cell = []

    def handle_endtag(self, tag):
        if self.state != "in_table":
            return
        if tag == "table":
            self.state = "done"
        elif tag in ("th", "td") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_html_metric_table_shows_every_interval_of_the_json(audited):
    result, doc = audited
    parser = _MetricsTable()
    parser.feed(html_reporter.render(result))
    parser.close()
    assert parser.state == "done", "no metrics table after <h3 id=metrics>"
    headers, *body = parser.rows
    assert _level_title(doc) in headers, headers
    column = headers.index(_level_title(doc))
    cells = {}
    for row in body:
        assert len(row) == len(headers), row
        name = row[0].split()[0]
        assert name not in cells, f"{name} listed twice"
        cells[name] = row
    assert set(cells) == set(doc["metrics"])
    for name, value in doc["metrics"].items():
        assert cells[name][headers.index("Value")] == f"{value:.4f}", name
        assert cells[name][column] == _expected_cell(doc, name), (name, cells[name])


# --------------------------------------------------------------------------- classwise blocks


def reference_classwise(y: np.ndarray, proba: np.ndarray, n_bins: int):
    """Count, sum of P[:, k] and sum of 1[y == k] per (class, right-closed bin), one class at a time."""
    n, k = proba.shape
    inner_edges = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    count, sum_value, sum_outcome = (np.zeros((k, n_bins)) for _ in range(3))
    for j in range(k):
        column = proba[:, j]
        bins = np.searchsorted(inner_edges, column, side="left")  # (a, b]: a value on an edge is in the lower bin
        count[j] = np.bincount(bins, minlength=n_bins)
        sum_value[j] = np.bincount(bins, weights=column, minlength=n_bins)
        sum_outcome[j] = np.bincount(bins, weights=(y == j).astype(np.float64), minlength=n_bins)
    ece = float(np.mean(np.abs(sum_outcome - sum_value).sum(axis=1) / n))
    return count, sum_value, sum_outcome, ece


def _grid_rows(n: int, k: int, seed: int, denominator: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Rows of multiples of 1/denominator (many values sit exactly on bin edges) plus a
    block of continuous rows; labels drawn from the rows themselves."""
    rng = np.random.default_rng(seed)
    hits = np.zeros((n, k))
    picks = rng.integers(0, k, (n, denominator))
    np.add.at(hits, (np.repeat(np.arange(n), denominator), picks.ravel()), 1.0)
    proba = hits / denominator
    continuous = rng.dirichlet(np.full(k, 0.3), n // 3)
    proba[: n // 3] = continuous
    y = (proba.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1).clip(0, k - 1).astype(np.intp)
    return y, proba


def _block_rows(k: int) -> int:
    return max(1, (1 << 17) // k)  # the block size classwise_statistics documents (~130,000 entries)


@pytest.mark.parametrize(
    ("n", "k", "n_bins"),
    [
        (60_000, 10, 15),  # 4 full blocks of 13,107 rows and a ragged one
        (5 * _block_rows(10), 10, 15),  # exactly 5 blocks
        (5 * _block_rows(10) + 1, 10, 15),  # a last block of one row
        (7 * _block_rows(3000) + 5, 3000, 10),  # 43-row blocks, ragged last
        (4, 70_000, 5),  # K > 2^16: one row per block
    ],
    ids=["N60000-K10", "exact-blocks", "one-row-tail", "K3000", "one-row-blocks"],
)
def test_classwise_statistics_over_several_blocks_match_a_reference(n, k, n_bins):
    assert n > _block_rows(k), "the case must span more than one block"
    y, proba = _grid_rows(n, k, seed=n + k) if k <= 3000 else _sparse_rows(n, k, seed=5)
    expected_count, expected_value, expected_outcome, expected_ece = reference_classwise(y, proba, n_bins)
    stats = classwise_statistics(y, proba, n_bins)
    np.testing.assert_array_equal(stats.count, expected_count)
    np.testing.assert_array_equal(stats.sum_outcome, expected_outcome)
    np.testing.assert_allclose(stats.sum_value, expected_value, rtol=1e-12, atol=1e-12)
    assert stats.count.sum() == n * k
    suite = compute_metrics(y, proba, n_bins=n_bins)
    np.testing.assert_array_equal(suite.classwise.count, expected_count)
    assert suite.values["classwise_ece"] == pytest.approx(expected_ece, rel=1e-9, abs=1e-12)  # summed in another order


def _sparse_rows(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A few rows over very many classes: mass on a handful of classes, the rest 0."""
    rng = np.random.default_rng(seed)
    proba = np.zeros((n, k))
    for row in range(n):  # n is tiny (a handful of rows)
        classes = rng.choice(k, 4, replace=False)
        proba[row, classes] = rng.dirichlet(np.ones(4))
    y = np.array([rng.choice(np.flatnonzero(proba[row])) for row in range(n)], dtype=np.intp)
    return y, proba

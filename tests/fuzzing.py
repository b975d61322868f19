"""The crash property and the hypothesis strategies of tests/test_fuzz.py.

The property (:func:`run_cli`): whatever the files and option values, ``calaudit``
never exits 4 and never prints a traceback or a Python warning; it exits 0, or 1 with
one ``calaudit: gate failed:`` line, or 2 or 3 with one ``calaudit: error:`` line,
``calaudit: warning:`` lines only before it, and no other line on standard error.

Budget: each test runs the number of examples it names (30 to 150, so that the whole
file takes about 25 s on two cores, well within 40 s), derandomised so CI sees the
same cases on every run. ``CALAUDIT_FUZZ_EXAMPLES=N`` gives every test N examples instead, drawn at
random (hypothesis prints how to reproduce a failure) with hypothesis' example
database in ``.hypothesis/``, so a long run finds new cases and replays old failures.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import traceback
import warnings
from collections.abc import Sequence
from typing import Any

from click.testing import CliRunner
from hypothesis import HealthCheck, assume, currently_in_test_context, event, settings
from hypothesis import strategies as st

from calaudit.cli import cli

#: Examples per test for a longer run than CI's (README, "Fuzzing").
EXAMPLES_VARIABLE = "CALAUDIT_FUZZ_EXAMPLES"

#: Variables that would change what a run does; unset for every invocation.
ENVIRONMENT = {
    name: None
    for name in (
        "CALAUDIT_MAX_ECE", "CALAUDIT_MAX_MCE", "CALAUDIT_MAX_BRIER", "CALAUDIT_MAX_NLL", "CALAUDIT_MIN_ACCURACY",
        "CALAUDIT_FAIL_IF", "CALAUDIT_BASELINE_RESULT", "CALAUDIT_GATE_ON", "CALAUDIT_BOOTSTRAP",
        "GITHUB_STEP_SUMMARY", "CALAUDIT_CHROMIUM",
    )
}


def fuzz_settings(examples: int) -> settings:
    """CI's bounded, derandomised budget of ``examples``, or ``CALAUDIT_FUZZ_EXAMPLES`` random ones."""
    common = {
        "deadline": None,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    }
    requested = os.environ.get(EXAMPLES_VARIABLE, "").strip()
    if requested:
        return settings(max_examples=int(requested), derandomize=False, print_blob=True, **common)
    return settings(max_examples=examples, derandomize=True, database=None, **common)


# ---------------------------------------------------------------------- the property

#: Crashes found in modules this fuzzing may not change (calaudit/loaders/table.py,
#: calaudit/cli.py): a pattern of their ``calaudit: internal error:`` line, and the
#: strict xfail test of test_fuzz.py that keeps each one in view. In a hypothesis test
#: the property skips an example that ends in one of them (``hypothesis.assume``), so
#: the fuzzer goes on looking for others; elsewhere it fails as any crash does. When a
#: fix lands, its test passes, the strict mark fails the run, and the entry goes.
KNOWN_CRASHES: dict[str, str] = {}


#: Python's default filters hide these categories outside ``__main__``: a user never sees them.
_HIDDEN_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


def run_cli(*args: Any, cwd: str | os.PathLike | None = None):
    """Invoke ``calaudit`` through click's runner and assert the crash property.

    Python warnings are recorded as a user's terminal would show them (the test
    runner would otherwise swallow them) and fail the property: they are lines on
    standard error that are not calaudit's.
    """
    arguments = [str(a) for a in args]
    previous = os.getcwd()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for category in _HIDDEN_WARNINGS:
            warnings.simplefilter("ignore", category)
        try:
            if cwd is not None:
                os.chdir(cwd)
            result = CliRunner().invoke(cli, arguments, prog_name="calaudit", env=ENVIRONMENT)
        finally:
            os.chdir(previous)
    check_outcome(arguments, result, [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught])
    return result


def check_outcome(arguments: Sequence[str], result: Any, python_warnings: Sequence[str] = ()) -> None:
    """The crash property on a click ``Result`` (module docstring)."""
    code = result.exit_code
    stderr = result.stderr
    shown = f"calaudit {' '.join(arguments)}\nexit {code}\nstderr:\n{stderr}"
    exception = result.exception
    if currently_in_test_context():
        event(f"exit {code}")  # --hypothesis-show-statistics shows how deep the examples went
    if code == 4 and currently_in_test_context():  # a known crash is kept by its own test
        assume(not any(re.search(pattern, stderr) for pattern in KNOWN_CRASHES))
    if exception is not None and not isinstance(exception, SystemExit):
        trace = "".join(traceback.format_exception(*result.exc_info))
        raise AssertionError(f"uncaught exception\n{shown}\n{trace}")
    assert code in (0, 1, 2, 3), shown
    assert "Traceback" not in stderr and "Traceback" not in result.stdout, shown
    assert not python_warnings, f"Python warnings reached standard error: {python_warnings}\n{shown}"
    lines = stderr.splitlines()
    assert all(line.startswith("calaudit: ") for line in lines), f"a line that is not calaudit's\n{shown}"
    leading = 0
    while leading < len(lines) and lines[leading].startswith("calaudit: warning: "):
        leading += 1
    rest = lines[leading:]
    if code == 0:
        assert rest == [], shown
        return
    assert len(rest) == 1, f"expected one line after the warnings\n{shown}"
    prefix = "calaudit: gate failed: " if code == 1 else "calaudit: error: "
    assert rest[0].startswith(prefix), shown


# ---------------------------------------------------------------------- text pieces

#: Cells of a CSV file: numbers at and beyond the edges, missing-value markers, text.
SPECIAL_CELLS = [
    "", " ", "0", "1", "0.5", "0.25", "0.75", "1.0", "-0", "-1", "2", "1e-7", "-1e-7", "1.0000001", "1e308",
    "1e309", "-1e309", "1e-320", "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "NA", "N/A", "None", "null",
    "<NA>", "True", "false", "TRUE", "abc", "a", "b", "0x10", "1_000", "１", "½", "é", "\u00a0", '"', "'", ",",
    "1,5", "\n", "\r", "a\nb", "\x00", "\t", ";", "2024-01-05", "2024-01-05 10:30:00", "prob_a", "label",
    "9" * 40, "-" * 3, "\ufeff", "\u202e", "🙂",
]
#: Column names: the conventions, near misses, globs, separators, control characters.
SPECIAL_COLUMNS = [
    "label", "label", "prob_a", "prob_b", "prob_c", "prob_0", "prob_1", "prob_", "prob_prob_a", "p_x", "p_y",
    "score", "id", "", " ", "label ", "Label", "LABEL", "prob_a;prob_b", "label;prob_a", "label\tprob_a", "a\nb",
    "*", "prob_*", "[", "prob_[", "?", "日本", "\x1b[31m", "\ufeff", "True", "nan", "0", "1", "prob_True",
    "prob_nan", "prob_1.0", "prob_01",
]


def printable_text(max_size: int = 6) -> st.SearchStrategy[str]:
    """Any text that can be written as UTF-8 (no lone surrogates)."""
    return st.text(st.characters(exclude_categories=("Cs",)), max_size=max_size)


cells = st.one_of(
    st.sampled_from(SPECIAL_CELLS),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    printable_text(4),
)
column_names = st.one_of(st.sampled_from(SPECIAL_COLUMNS), printable_text(5))


def csv_bytes(header: Sequence[str], rows: Sequence[Sequence[str]], *, quoted: bool, ending: str, bom: bool) -> bytes:
    """A CSV document: through the csv module (``quoted``), or joined with commas as is."""
    if quoted:
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, lineterminator=ending)
        writer.writerow(header)
        writer.writerows(rows)
        text = buffer.getvalue()
    else:
        text = "".join(",".join(row) + ending for row in [list(header), *rows])
    return (("\ufeff" if bom else "") + text).encode("utf-8")


@st.composite
def csv_documents(draw: st.DrawFn, *, max_columns: int = 5, max_rows: int = 5) -> bytes:
    """A CSV document of random column names and cells (often near the conventions)."""
    header = draw(st.lists(column_names, min_size=0, max_size=max_columns))
    width = draw(st.sampled_from([len(header), len(header), len(header), max(len(header) - 1, 0), len(header) + 1]))
    rows = draw(st.lists(st.lists(cells, min_size=width, max_size=width), max_size=max_rows))
    return csv_bytes(header, rows, quoted=draw(st.booleans()), ending=draw(st.sampled_from(["\n", "\r\n", "\r"])),
                     bom=draw(st.booleans()))


#: Class names of the near-valid tables: words, numbers, booleans' names, an index clash.
CLASS_NAME_SETS = [["a", "b", "c"], ["0", "1", "2"], ["cat", "dog", "eel"], ["True", "False", "x"], ["1", "0", "2"],
                   ["180", "2.5", "-1"], ["NA", "None", "nan"]]


@st.composite
def probability_rows(draw: st.DrawFn, n_rows: int, n_classes: int) -> list[list[float]]:
    """Rows of probabilities that sum to 1 (ties, zeros and ones included)."""
    rows = []
    for _ in range(n_rows):
        weights = draw(st.lists(st.integers(0, 9), min_size=n_classes, max_size=n_classes).filter(any))
        rows.append([w / sum(weights) for w in weights])
    return rows


@st.composite
def prediction_tables(draw: st.DrawFn) -> tuple[list[str], list[list[str]], list[str]]:
    """A valid prediction table as text (header, rows) and its class names."""
    n_classes = draw(st.integers(2, 3))
    names = draw(st.sampled_from(CLASS_NAME_SETS))[:n_classes]
    n_rows = draw(st.integers(1, 6))
    probabilities = draw(probability_rows(n_rows, n_classes))
    by_index = draw(st.booleans())
    labels = draw(st.lists(st.integers(0, n_classes - 1), min_size=n_rows, max_size=n_rows))
    header = ["label", *(f"prob_{name}" for name in names)]
    rows = [[str(k) if by_index else names[k], *(repr(p) for p in row)] for k, row in zip(labels, probabilities)]
    if draw(st.booleans()):
        header.append("id")
        rows = [[*row, str(i)] for i, row in enumerate(rows)]
    return header, rows, names


@st.composite
def mutated_rows(draw: st.DrawFn, header: list[str], rows: list[list[str]], *, max_mutations: int = 3,
                 names: st.SearchStrategy[str] = column_names) -> tuple[list[str], list[list[str]]]:
    """``header`` and ``rows`` with up to ``max_mutations`` cells, names or row lengths changed."""
    header, rows = list(header), [list(row) for row in rows]
    for _ in range(draw(st.integers(0, max_mutations))):
        what = draw(st.sampled_from(["cell", "cell", "cell", "header", "drop-cell", "add-cell", "drop-row"]))
        if what == "header" and header:
            header[draw(st.integers(0, len(header) - 1))] = draw(names)
        elif what == "drop-row" and rows:
            del rows[draw(st.integers(0, len(rows) - 1))]
        elif rows:
            row = rows[draw(st.integers(0, len(rows) - 1))]
            if what == "drop-cell" and row:
                del row[draw(st.integers(0, len(row) - 1))]
            elif what == "add-cell":
                row.append(draw(cells))
            elif row:
                row[draw(st.integers(0, len(row) - 1))] = draw(cells)
    return header, rows


@st.composite
def near_valid_prediction_csv(draw: st.DrawFn) -> bytes:
    """A valid prediction file with a few cells, names or row lengths changed (or none)."""
    header, rows, _ = draw(prediction_tables())
    header, rows = draw(mutated_rows(header, rows))
    return csv_bytes(header, rows, quoted=draw(st.integers(0, 5)) > 0,
                     ending=draw(st.sampled_from(["\n", "\n", "\r\n", "\r"])), bom=draw(st.integers(0, 5)) == 0)


#: Beginnings of files of other kinds, so that random bytes also look like them.
MAGIC_PREFIXES = [
    b"", b"PAR1", b"\x1f\x8b\x08\x00", b"\x93NUMPY\x01\x00", b"PK\x03\x04", b"\x89PNG\r\n\x1a\n", b"\x80\x04",
    b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf", b"label,prob_a,prob_b\n", b"GIF89a", b"BM", b"\xff\xd8\xff",
    b"RIFF\x00\x00\x00\x00WEBP",
]
random_bytes = st.builds(lambda prefix, tail: prefix + tail, st.sampled_from(MAGIC_PREFIXES), st.binary(max_size=64))


@st.composite
def damaged(draw: st.DrawFn, valid: bytes) -> bytes:
    """``valid`` cut short, with bytes flipped, or with bytes inserted."""
    how = draw(st.sampled_from(["truncate", "flip", "insert", "truncate-flip"]))
    data = bytearray(valid)
    if how in ("flip", "truncate-flip") and data:
        for _ in range(draw(st.integers(1, 4))):
            position = draw(st.integers(0, len(data) - 1))
            data[position] = draw(st.integers(0, 255))
    if how == "insert":
        position = draw(st.integers(0, len(data)))
        data[position:position] = draw(st.binary(min_size=1, max_size=8))
    if how in ("truncate", "truncate-flip"):
        data = data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    return bytes(data)


# ---------------------------------------------------------------------- option values

#: Texts for integer options: in range, at the edges, beyond them, not integers.
INTEGER_TEXTS = ["0", "1", "2", "15", "1000", "1001", "-1", "1.5", "1e3", "abc", "", " ", "nan", "inf",
                 "4294967295", "4294967296", "99999999999999999999999", "0x10", "+3", " 7 ", "٣"]
NUMBER_TEXTS = ["0", "0.01", "1", "0.5", "-0.1", "1e-300", "1e308", "1e999", "-1e999", "nan", "inf", "-inf",
                "abc", "", "1/255", "0,5", "1e-7"]
NAME_TEXTS = ["label", "prob_a", "prob_b", "prob_*", "p_*", "*", "nope", "", " ", ",", "a,,b", "prob_a,prob_b",
              "label,prob_a", "prob_a,prob_a", "[", "prob_[ab]", "score", "a\nb", "日本"]


def option_text(pool: Sequence[str]) -> st.SearchStrategy[str]:
    """A value from ``pool`` (three times in four), else any text."""
    return st.one_of(st.sampled_from(pool), st.sampled_from(pool), st.sampled_from(pool), printable_text(6))


def how_many_options(draw: st.DrawFn, available: int) -> int:
    """No option half the time: most examples should reach the loaders."""
    return min(available, draw(st.sampled_from([0, 0, 0, 1, 1, 2, 3])))


@st.composite
def prediction_options(draw: st.DrawFn) -> list[str]:
    """Random values for the options of ``calaudit run FILE`` (``--bootstrap 0`` unless fuzzed)."""
    chosen: list[str] = []
    pools = {
        "--bins": INTEGER_TEXTS, "--seed": INTEGER_TEXTS, "--row-sum-tol": NUMBER_TEXTS,
        "--label-col": NAME_TEXTS, "--prob-cols": NAME_TEXTS, "--score-col": NAME_TEXTS, "--classes": NAME_TEXTS,
    }
    count = how_many_options(draw, len(pools))
    for option in draw(st.lists(st.sampled_from(sorted(pools)), min_size=count, max_size=count, unique=True)):
        chosen += [option, draw(option_text(pools[option]))]
    if draw(st.integers(0, 3)) == 0:
        chosen.append("--logits")
    chosen += ["--bootstrap", draw(st.sampled_from(["0"] * 12 + ["200", "199", "-1", "abc", "100001", ""]))]
    return chosen


# ---------------------------------------------------------------------- Arrow tables

ARROW_KINDS = [
    "bool", "int8", "int64", "uint64", "float32", "float64", "decimal", "string", "large_string", "binary",
    "dictionary", "date", "timestamp", "timestamp_tz", "duration", "time", "list", "struct", "null",
]

_FLOATS = st.one_of(
    st.sampled_from([0.0, 1.0, 0.5, 0.25, -0.0, -1.0, 2.0, 1e-7, 1e308, math.nan, math.inf, -math.inf]),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
)


def _values(kind: str) -> st.SearchStrategy[Any]:
    import datetime
    import decimal

    def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:  # a null one time in four
        return st.one_of(st.none(), strategy, strategy, strategy)

    if kind == "bool":
        return maybe(st.booleans())
    if kind == "int8":
        return maybe(st.integers(-128, 127))
    if kind == "int64":
        return maybe(st.one_of(st.integers(-2, 3), st.integers(-(2**63), 2**63 - 1)))
    if kind == "uint64":
        return maybe(st.one_of(st.integers(0, 3), st.integers(0, 2**64 - 1)))
    if kind in ("float32", "float64"):
        return maybe(_FLOATS)
    if kind == "decimal":
        return maybe(st.decimals(min_value=-999, max_value=999, places=2, allow_nan=False, allow_infinity=False)
                     .map(lambda d: d.quantize(decimal.Decimal("0.01"))))
    if kind in ("string", "large_string", "dictionary"):
        return maybe(cells)
    if kind == "binary":
        return maybe(st.one_of(cells.map(lambda s: s.encode("utf-8")), st.binary(max_size=4)))
    if kind == "date":
        return maybe(st.dates(min_value=datetime.date(1, 1, 1)))
    if kind in ("timestamp", "timestamp_tz"):
        return maybe(st.datetimes(min_value=datetime.datetime(1700, 1, 1), max_value=datetime.datetime(2250, 1, 1)))
    if kind == "duration":
        return maybe(st.timedeltas(min_value=datetime.timedelta(days=-999), max_value=datetime.timedelta(days=999)))
    if kind == "time":
        return maybe(st.times())
    if kind == "list":
        return maybe(st.lists(maybe(_FLOATS), max_size=3))
    if kind == "struct":
        return maybe(st.fixed_dictionaries({"x": maybe(_FLOATS), "y": maybe(cells)}))
    return st.none()


def arrow_type(kind: str):
    import pyarrow as pa

    return {
        "bool": pa.bool_(), "int8": pa.int8(), "int64": pa.int64(), "uint64": pa.uint64(),
        "float32": pa.float32(), "float64": pa.float64(), "decimal": pa.decimal128(5, 2), "string": pa.string(),
        "large_string": pa.large_string(), "binary": pa.binary(), "dictionary": pa.string(),
        "date": pa.date32(), "timestamp": pa.timestamp("ms"), "timestamp_tz": pa.timestamp("us", tz="Europe/Paris"),
        "duration": pa.duration("s"), "time": pa.time64("us"), "list": pa.list_(pa.float64()),
        "struct": pa.struct([("x", pa.float64()), ("y", pa.string())]), "null": pa.null(),
    }[kind]


@st.composite
def arrow_columns(draw: st.DrawFn, rows: int, kinds: Sequence[str] = tuple(ARROW_KINDS)):
    """``(kind, pyarrow.Array)`` of ``rows`` values of a random type, with nulls."""
    import pyarrow as pa

    kind = draw(st.sampled_from(list(kinds)))
    values = draw(st.lists(_values(kind), min_size=rows, max_size=rows))
    array = pa.array(values, type=arrow_type(kind))
    if kind == "dictionary":
        array = array.dictionary_encode()
    return kind, array


@st.composite
def arrow_tables(draw: st.DrawFn, *, names: st.SearchStrategy[str] = column_names, max_columns: int = 4,
                 max_rows: int = 5, kinds: Sequence[str] = tuple(ARROW_KINDS)):
    """A pyarrow table of random column names (duplicates allowed) and types."""
    import pyarrow as pa

    rows = draw(st.integers(0, max_rows))
    header = draw(st.lists(names, min_size=1, max_size=max_columns))
    arrays = [draw(arrow_columns(rows, kinds))[1] for _ in header]
    return pa.Table.from_arrays(arrays, names=header)


def parquet_bytes(table) -> bytes:
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


# ---------------------------------------------------------------------- TOML


def toml_key(key: str) -> str:
    bare = key and all(ch.isascii() and (ch.isalnum() or ch in "-_") for ch in key)
    return key if bare else json.dumps(key)


def toml_value(value: Any) -> str:
    """``value`` written as TOML (strings as basic strings, which JSON's escapes are)."""
    import datetime

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


#: Settings keys: options of run and check (dashes and underscores), ones that are not
#: settings, and unknown ones. ``baseline`` is left out: a valid value would run the
#: baselines, whose cost has nothing to do with reading the file.
SETTING_KEYS = [
    "bins", "bootstrap", "seed", "max-ece", "max_ece", "max-mce", "max-brier", "max-nll", "min-accuracy",
    "fail-if", "gate-on", "max-increase", "max-decrease", "baseline-result", "label-col", "prob-cols",
    "score-col", "classes", "logits", "row-sum-tol", "device", "batch-size", "output", "data-format",
    "feature-cols", "image-size", "resize", "crop", "scale", "mean", "std", "layout", "color",
    "resize-rounding", "skip-bad-images", "allow-large-images", "smoothing", "folds", "baseline-model",
    "embedding-output", "quiet", "json", "out-dir", "config", "junit", "report", "save-predictions", "debug",
    "help", "force", "nope", "", "BINS",
]

_SETTING_STRINGS = ["ece>0.05", "ece > 2", "mce<nan", "ece=0.01", "accuracy=0.1", "nope>1", "point", "lower", "cpu",
                    "cuda", "NCHW", "rgb", "1/255", "224x224", "label", "prob_*", "a,b", "", " ", "x" * 30,
                    "missing.json", "/", ".", "..", "logistic", "mlp", "auto", "pil", "0.5"]
toml_scalars = st.one_of(
    st.booleans(),
    st.sampled_from([0, 1, 2, 15, 200, 1000, 1001, -1, 2**32, 2**63 - 1, -(2**63)]),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0.0, 0.05, 0.5, 1.0, 7.5, -0.1, 1e308, math.nan, math.inf, -math.inf]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(_SETTING_STRINGS),
    printable_text(8),
    st.datetimes(timezones=st.none()),
    st.dates(),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["ece", "accuracy", "mce", "nope", "x y", ""]), inner, max_size=2),
    ),
    max_leaves=4,
)


@st.composite
def settings_documents(draw: st.DrawFn, *, table: str | None) -> str:
    """A TOML document of random settings, under ``[table]`` when given."""
    entries = draw(st.dictionaries(st.one_of(st.sampled_from(SETTING_KEYS), printable_text(6)), toml_values,
                                   max_size=4))
    body = "".join(f"{toml_key(key)} = {toml_value(value)}\n" for key, value in entries.items())
    return (f"[{table}]\n" if table else "") + body


def typed_column(texts: Sequence[str], kind: str):
    """``texts`` as an Arrow column of ``kind`` when they convert to it, else as strings."""
    import decimal

    import pyarrow as pa

    converters = {
        "int64": int, "uint8": int, "float64": float, "float32": float, "decimal": decimal.Decimal,
        "bool": lambda text: {"True": True, "False": False}[text],
    }
    try:
        values = [converters[kind](text) for text in texts] if kind in converters else list(texts)
        array = pa.array(values, type=arrow_type(kind))
    except (KeyError, ValueError, TypeError, OverflowError, decimal.InvalidOperation, pa.ArrowException):
        array = pa.array(list(texts), type=pa.string())
    return array.dictionary_encode() if kind == "dictionary" else array


@st.composite
def near_valid_prediction_parquet(draw: st.DrawFn):
    """A valid prediction table with typed Arrow columns, then up to two columns replaced
    by random ones, renamed, added or dropped."""
    import pyarrow as pa

    header, rows, _ = draw(prediction_tables())
    label_kind = draw(st.sampled_from(["string", "dictionary", "large_string", "int64", "uint8", "float64", "bool"]))
    arrays = [typed_column([row[0] for row in rows], label_kind)]
    for j in range(1, len(header)):
        kind = draw(st.sampled_from(["float64", "float64", "float32", "decimal", "string", "int64"]))
        arrays.append(typed_column([row[j] for row in rows], kind))
    for _ in range(draw(st.integers(0, 2))):
        what = draw(st.sampled_from(["replace", "rename", "add", "drop"]))
        j = draw(st.integers(0, len(arrays) - 1))
        if what == "replace":
            arrays[j] = draw(arrow_columns(len(rows)))[1]
        elif what == "rename":
            header[j] = draw(column_names)
        elif what == "add":
            arrays.append(draw(arrow_columns(len(rows)))[1])
            header.append(draw(column_names))
        elif len(arrays) > 1:
            del arrays[j], header[j]
    return pa.Table.from_arrays(arrays, names=header)


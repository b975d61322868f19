"""Fuzzing the loaders and the settings file through the ``calaudit`` command (issue 10).

Random bytes, damaged copies of valid files, random column names and Arrow types,
random cell values and random option values go to ``calaudit run FILE`` (CSV, CSV.gz,
Parquet), to ``calaudit run model.onnx DATA`` (arrays, a table, image folders with
``classes.txt`` and ``preprocess.json``) and to the settings file (``calaudit.toml``,
``[tool.calaudit]`` of ``pyproject.toml``, ``--config``). The property
(:func:`fuzzing.run_cli`): calaudit never exits 4 and never prints a traceback; a
failure is exit 1, 2 or 3 with exactly one line on standard error. Differential tests
add an oracle where one exists: a CSV read in blocks of a few rows, a Parquet file in
row groups of a few rows, and a model fed a few rows (or images, some skipped) at a
time give the same outcome as in one piece.

Each example runs in a fresh temporary directory. CI runs a fixed, bounded set of
examples; ``CALAUDIT_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest tests/test_fuzz.py``
runs more (README, "Fuzzing"). Crashes the fuzzer found are kept as explicit examples
and regression tests at the end of this file.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from onnx import TensorProto, helper

import onnx_graphs as g
from fuzzing import (
    arrow_columns,
    arrow_tables,
    cells,
    column_names,
    csv_bytes,
    csv_documents,
    damaged,
    fuzz_settings,
    how_many_options,
    mutated_rows,
    near_valid_prediction_csv,
    near_valid_prediction_parquet,
    option_text,
    parquet_bytes,
    prediction_options,
    printable_text,
    random_bytes,
    run_cli,
    settings_documents,
    typed_column,
)

# ---------------------------------------------------------------------- fixtures

VALID_CSV = csv_bytes(
    ["id", "label", "prob_a", "prob_b", "prob_c"],
    [["1", "a", "0.7", "0.2", "0.1"], ["2", "b", "0.1", "0.8", "0.1"], ["3", "c", "0.2", "0.2", "0.6"],
     ["4", "a", "0.5", "0.25", "0.25"]],
    quoted=True, ending="\n", bom=False,
)


def valid_parquet() -> bytes:
    import pyarrow as pa

    return parquet_bytes(pa.table({
        "label": pa.array(["a", "b", "c", "a"]).dictionary_encode(),
        "prob_a": pa.array([0.7, 0.1, 0.2, 0.5]), "prob_b": pa.array([0.2, 0.8, 0.2, 0.25], type=pa.float32()),
        "prob_c": pa.array([0.1, 0.1, 0.6, 0.25]), "id": pa.array([1, 2, 3, 4]),
    }))


def png_bytes(width: int = 4, height: int = 4, seed: int = 0) -> bytes:
    """A small RGB PNG of seeded random pixels."""
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


VALID_PNG = png_bytes()

VALID_FILES = {
    ".csv": VALID_CSV,
    ".csv.gz": gzip.compress(VALID_CSV, mtime=0),
    ".parquet": valid_parquet(),
}


def dynamic_image_model() -> object:
    """x float [N, 3, H, W] of any size -> GlobalAveragePool -> Flatten -> MatMul + Add -> Softmax."""
    w, b = g.weights(3, 2, seed=5)
    dense, inits = g._dense("flat", w, b, "z")
    nodes = [helper.make_node("GlobalAveragePool", ["pixels"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["flat"], axis=1), *dense,
             helper.make_node("Softmax", ["z"], ["probabilities"], axis=1)]
    return g.finish(nodes, [helper.make_tensor_value_info("pixels", g.FLOAT, ["N", 3, "H", "W"])],
                    [helper.make_tensor_value_info("probabilities", g.FLOAT, ["N", 2])], inits)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """The tiny graphs of tests/onnx_graphs.py, written once for the whole module."""
    folder = tmp_path_factory.mktemp("fuzz-models")
    built = {
        "dense": g.prob_model(*g.weights(3, 3, seed=1)),
        "logits": g.logits_model(*g.weights(3, 2, seed=2)),
        "binary": g.binary_model(*g.weights(3, 1, seed=3)),
        "int64": g.int64_input_model(*g.weights(3, 2, seed=4)),
        "two-inputs": g.two_input_model(*g.weights(3, 3, seed=6), split=1),
        "strings": g.string_input_model(["a", "b"], [0.5, -0.5], *g.weights(2, 2, seed=7)),
        "zipmap": g.zipmap_model(*g.weights(3, 3, seed=8), ["ant", "bee", "cow"]),
        "image-rgb": g.image_model(4, 4, 3, 2)[0],
        "image-grey-uint8": g.image_model(4, 4, 1, 2, layout="NHWC", elem_type=TensorProto.UINT8)[0],
        "image-any-size": dynamic_image_model(),
        "image-batch-1": g.image_model(3, 3, 3, 2, batch=1)[0],
    }
    return {name: g.save(model, folder / f"{name}.onnx") for name, model in built.items()}


def write(path: Path, content: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


# ---------------------------------------------------------------------- prediction files

file_suffixes = st.sampled_from([".csv", ".csv.gz", ".parquet", ".pq", ".CSV", ".Parquet"])


@pytest.mark.fuzz
@fuzz_settings(60)
@given(suffix=file_suffixes, content=random_bytes)
def test_prediction_file_of_random_bytes(suffix, content):
    with tempfile.TemporaryDirectory() as tmp:
        run_cli("run", write(Path(tmp) / f"preds{suffix}", content), "--bootstrap", "0")


@pytest.mark.fuzz
@fuzz_settings(100)
@given(data=st.data(), suffix=st.sampled_from(sorted(VALID_FILES)))
def test_damaged_prediction_file(data, suffix):
    content = data.draw(damaged(VALID_FILES[suffix]))
    with tempfile.TemporaryDirectory() as tmp:
        run_cli("run", write(Path(tmp) / f"preds{suffix}", content), "--bootstrap", "0")


@pytest.mark.fuzz
@fuzz_settings(120)
@given(document=st.one_of(csv_documents(), near_valid_prediction_csv(), near_valid_prediction_csv()),
       options=prediction_options(), gz=st.booleans())
@example(document=b"label,prob_a,prob_b\n9223372036854775808,0.0,1.0\n0,0.0,1.0\n",
         options=["--logits", "--bootstrap", "0"], gz=False)  # an index beyond int64: was exit 4
def test_prediction_csv_of_random_cells(document, options, gz):
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp) / ("preds.csv.gz" if gz else "preds.csv"), gzip.compress(document) if gz else document)
        run_cli("run", path, *options)


@st.composite
def score_files(draw) -> bytes:
    """A binary model's file: a label and one positive-class score, then perhaps changed."""
    rows = draw(st.integers(1, 5))
    scores = draw(st.lists(st.sampled_from(["0", "1", "0.5", "0.25", "0.999", "1e-9", "0.0"]), min_size=rows,
                           max_size=rows))
    labels = draw(st.lists(st.sampled_from(["0", "1", "True", "False", "neg", "pos", "1.0"]), min_size=rows,
                           max_size=rows))
    header, texts = draw(mutated_rows(["label", "score"], [list(pair) for pair in zip(labels, scores)],
                                      max_mutations=2))
    return csv_bytes(header, texts, quoted=True, ending="\n", bom=False)


@pytest.mark.fuzz
@fuzz_settings(80)
@given(document=score_files(), options=prediction_options(),
       classes=st.sampled_from([[], [], ["--classes", "neg,pos"], ["--classes", "0,1"], ["--classes", "a"]]))
def test_score_column_file(document, options, classes):
    with tempfile.TemporaryDirectory() as tmp:
        run_cli("run", write(Path(tmp) / "preds.csv", document), "--score-col", "score", *classes, *options)


#: Column names that make a table look like a prediction file, mixed with random ones.
CONVENTIONAL_NAMES = st.sampled_from(["label", "prob_a", "prob_b", "prob_0", "prob_1", "id"])


@pytest.mark.fuzz
@fuzz_settings(120)
@given(
    table=st.one_of(arrow_tables(names=st.one_of(CONVENTIONAL_NAMES, CONVENTIONAL_NAMES, column_names)),
                    near_valid_prediction_parquet(), near_valid_prediction_parquet()),
    options=prediction_options(),
)
def test_parquet_of_random_types(table, options):
    with tempfile.TemporaryDirectory() as tmp:
        run_cli("run", write(Path(tmp) / "preds.parquet", parquet_bytes(table)), *options)


@pytest.mark.fuzz
@fuzz_settings(80)
@given(suffix=st.sampled_from(sorted(VALID_FILES)), options=prediction_options())
def test_valid_prediction_file_with_random_options(suffix, options):
    with tempfile.TemporaryDirectory() as tmp:
        run_cli("run", write(Path(tmp) / f"preds{suffix}", VALID_FILES[suffix]), *options)


def comparable(result, folder: Path) -> tuple[int, str, object]:
    """Exit code, stderr and JSON result of a run, with the folder, the file's digest and
    the time left out: what two readings of the same data must agree on."""
    stderr = result.stderr.replace(str(folder), "DIR")
    document = None
    if result.exit_code in (0, 1) and result.stdout.strip():
        document = json.loads(result.stdout.replace(str(folder), "DIR"), parse_constant=str)  # NaN == NaN
        document.pop("created_at", None)
        document["input"].pop("sha256", None)
    return result.exit_code, stderr, document


@pytest.mark.fuzz
@fuzz_settings(60)
@given(document=st.one_of(near_valid_prediction_csv(), csv_documents()), options=prediction_options(),
       gz=st.booleans(), block_cells=st.integers(1, 7))
def test_csv_read_in_blocks_reads_as_in_one_piece(document, options, gz, block_cells):
    """Differential: a CSV file read a few rows at a time (the path of wide files) gives
    the same result, or the same error naming the same row, as read in one block."""
    from unittest import mock

    import calaudit.loaders.table as table_module

    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp) / ("preds.csv.gz" if gz else "preds.csv"), gzip.compress(document) if gz else document)
        whole = comparable(run_cli("run", path, *options, "--json", "-"), Path(tmp))
        with mock.patch.object(table_module, "CSV_BLOCK_CELLS", block_cells):
            blocks = comparable(run_cli("run", path, *options, "--json", "-"), Path(tmp))
    assert blocks == whole


@pytest.mark.fuzz
@fuzz_settings(60)
@given(table=st.one_of(near_valid_prediction_parquet(), arrow_tables(names=CONVENTIONAL_NAMES)),
       options=prediction_options(), row_group_size=st.integers(1, 3))
def test_parquet_row_groups_read_as_one(table, options, row_group_size):
    """Differential: a Parquet file written in row groups of one to three rows (decoded
    one group at a time) gives the same result, or the same error, as one row group."""
    import pyarrow.parquet as pq

    outcomes = []
    for group in (None, row_group_size):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "preds.parquet"
            pq.write_table(table, path, row_group_size=group)
            outcomes.append(comparable(run_cli("run", path, *options, "--json", "-"), Path(tmp)))
    assert outcomes[1] == outcomes[0]


# ---------------------------------------------------------------------- data directories

MODEL_OPTIONS = {
    "--classes": ["ant,bee,cow", "a,b", "0,1,2", "a,a,b", "x", "", ","],
    "--batch-size": ["1", "2", "256", "0", "-1", "abc", "99999999999999999999"],
    "--output": ["probabilities", "logits", "label", "scores", "output_probability", "nope", ""],
    "--data-format": ["auto", "arrays", "table", "images", "nope", ""],
    "--label-col": ["label", "y", "nope", "", "x"],
    "--feature-cols": ["f*", "x", "a,b", "nope", "*", "label", ""],
    "--row-sum-tol": ["0", "0.01", "1", "nan", "-1"],
}


@st.composite
def model_options(draw, extra: dict[str, list[str]] | None = None) -> list[str]:
    pools = {**MODEL_OPTIONS, **(extra or {})}
    chosen = ["--bootstrap", "0", "--device", "cpu"]
    count = how_many_options(draw, len(pools))
    for option in draw(st.lists(st.sampled_from(sorted(pools)), min_size=count, max_size=count, unique=True)):
        chosen += [option, draw(option_text(pools[option]))]
    if draw(st.integers(0, 4)) == 0:
        chosen.append("--logits")
    return chosen


#: What each model of the ``models`` fixture takes: ``{input: (values per row, dtype)}``,
#: its number of classes and the class names it carries.
MODEL_INPUTS = {
    "dense": ({"x": (3, "float32")}, 3, None),
    "logits": ({"x": (3, "float32")}, 2, None),
    "binary": ({"x": (3, "float32")}, 2, None),
    "int64": ({"x": (3, "int64")}, 2, None),
    "two-inputs": ({"a": (1, "float32"), "b": (2, "float32")}, 3, None),
    "strings": ({"x": (2, "<U1")}, 2, None),
    "zipmap": ({"x": (3, "float32")}, 3, ["ant", "bee", "cow"]),
}


@st.composite
def valid_inputs(draw, model: str, rows: int) -> dict[str, np.ndarray]:
    """Features the model can run on: small floats, small integers, or its two words."""
    arrays = {}
    for name, (width, dtype) in MODEL_INPUTS[model][0].items():
        if dtype == "<U1":
            elements = st.sampled_from(["a", "b"])
        elif dtype == "int64":
            elements = st.integers(-5, 5)
        else:
            elements = st.floats(-10, 10, width=32)
        arrays[name] = draw(hnp.arrays(np.dtype(dtype), (rows, width), elements=elements))
    return arrays


@st.composite
def valid_labels(draw, model: str, rows: int) -> list[str]:
    """Each row's label: a class index, or a class name when the model carries names."""
    _, n_classes, names = MODEL_INPUTS[model]
    indices = draw(st.lists(st.integers(0, n_classes - 1), min_size=rows, max_size=rows))
    return [names[k] for k in indices] if names and draw(st.booleans()) else [str(k) for k in indices]


feature_dtypes = st.sampled_from(["float32", "float64", "float16", "int64", "int8", "uint8", "bool", "complex64",
                                  "<U3", "S2", "datetime64[D]", "timedelta64[s]"])


@st.composite
def numpy_arrays(draw, *, rows: int | None = None) -> np.ndarray:
    """An array of a random dtype whose first dimension is ``rows`` (or random), any rank."""
    n = rows if rows is not None else draw(st.integers(0, 6))
    tail = draw(st.sampled_from([(), (1,), (2,), (3,), (3,), (3,), (4,), (0,), (1, 3), (3, 1)]))
    dtype = draw(feature_dtypes)
    return draw(hnp.arrays(np.dtype(dtype), (n, *tail)))


def npy_bytes(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@st.composite
def label_files(draw, rows: int) -> dict[str, bytes]:
    """Zero or one per-row label file, in any of the accepted forms, often broken."""
    kind = draw(st.sampled_from(["npy", "npy", "csv", "txt", "none", "bytes"]))
    if kind == "none":
        return {}
    n = draw(st.sampled_from([rows, rows, rows, max(rows - 1, 0), rows + 1]))
    if kind == "npy":
        labels = draw(st.one_of(
            hnp.arrays(np.int64, (n,), elements=st.integers(-1, 3)),
            hnp.arrays(np.dtype(draw(feature_dtypes)), draw(st.sampled_from([(n,), (n, 1), (n, 2)]))),
            st.just(np.array(["ant", "bee", "cow", "x"] * 2, dtype=object)[:n]),
        ))
        return {"labels.npy": npy_bytes(labels, allow_pickle=labels.dtype.kind == "O")}
    if kind == "bytes":
        return {draw(st.sampled_from(["labels.npy", "labels.csv", "labels.txt"])): draw(random_bytes)}
    values = draw(st.lists(st.one_of(st.sampled_from(["0", "1", "2", "ant", "bee", "cow"]), cells),
                           min_size=n, max_size=n))
    if kind == "txt":
        return {"labels.txt": "\n".join(values).encode("utf-8")}
    header = draw(st.sampled_from([["label"], ["label", "id"], [], ["y"], ["label;id"]]))
    rows_out = [[v] + (["1"] if len(header) == 2 else []) for v in values]
    return {"labels.csv": csv_bytes(header, rows_out, quoted=draw(st.booleans()), ending="\n", bom=False)
            if header else csv_bytes(values[:1], [[v] for v in values[1:]], quoted=True, ending="\n", bom=False)}


class_files = st.one_of(
    st.just(None),
    st.lists(st.one_of(st.sampled_from(["ant", "bee", "cow", "0", "1", "a", "b", ""]), printable_text(4)),
             max_size=4).map(lambda names: "\n".join(names).encode("utf-8")),
    random_bytes,
)


ARRAY_MUTATIONS = ["features", "labels", "classes", "non-finite", "dtype", "rows", "bytes", "pickle", "npz-names"]


@pytest.mark.fuzz
@fuzz_settings(150)
@given(data=st.data(), model=st.sampled_from(sorted(MODEL_INPUTS)))
def test_array_directory(data, model, models):
    """A valid arrays directory for the model, then up to two things in it changed."""
    files = data.draw(array_directory_files(model))
    options = data.draw(model_options())
    with tempfile.TemporaryDirectory() as tmp:
        for file, content in files.items():
            write(Path(tmp) / "data" / file, content)
        run_cli("run", models[model], Path(tmp) / "data", *options)


@st.composite
def array_directory_files(draw, model: str) -> dict[str, bytes]:
    """The files of an arrays directory for ``model``: valid, then up to two things changed."""
    rows = draw(st.integers(1, 6))
    arrays = draw(valid_inputs(model, rows))
    labels = draw(valid_labels(model, rows))
    label_form = draw(st.sampled_from(["npy", "txt", "csv"]))
    files: dict[str, bytes] = {}
    if label_form == "npy":
        files["labels.npy"] = npy_bytes(np.array([int(v) for v in labels]) if labels[0].isdigit() else
                                        np.array(labels))
    elif label_form == "txt":
        files["labels.txt"] = ("\n".join(labels) + "\n").encode("utf-8")
    else:
        files["labels.csv"] = csv_bytes(["label"], [[v] for v in labels], quoted=True, ending="\n", bom=False)
    features: bytes | None = None
    for mutation in draw(st.lists(st.sampled_from(ARRAY_MUTATIONS), max_size=2)):
        name = draw(st.sampled_from(sorted(arrays)))
        if mutation == "features":
            arrays[name] = draw(numpy_arrays(rows=draw(st.sampled_from([rows, rows, 0, rows + 1]))))
        elif mutation == "labels":
            files = {k: v for k, v in files.items() if not k.startswith("labels.")}
            files.update(draw(label_files(rows)))
        elif mutation == "classes":
            files["classes.txt"] = draw(class_files) or b""
        elif mutation == "non-finite" and arrays[name].dtype.kind == "f" and arrays[name].size:
            flat = arrays[name].reshape(-1).copy()
            with np.errstate(over="ignore"):  # 3e38 is inf in float16: wanted here
                flat[draw(st.integers(0, flat.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf, 3e38, -0.0]))
            arrays[name] = flat.reshape(arrays[name].shape)
        elif mutation == "dtype":
            try:
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # complex to real drops the imaginary part: wanted here
                    arrays[name] = arrays[name].astype(draw(feature_dtypes))
            except (TypeError, ValueError):
                pass
        elif mutation == "rows":
            arrays[name] = arrays[name][: draw(st.integers(0, rows))]
        elif mutation == "bytes":
            features = draw(random_bytes)
        elif mutation == "pickle":
            arrays[name] = np.array([{"x": 1}] * rows, dtype=object)
        elif mutation == "npz-names":
            npz_names = st.sampled_from(["x", "a", "b", "labels", "arr_0", "X"])
            arrays = {draw(npz_names): array for array in arrays.values()}
    as_npz = len(arrays) > 1 or draw(st.integers(0, 3)) == 0
    name = "features.npz" if as_npz else "features.npy"
    if features is None:
        pickled = any(a.dtype.kind == "O" for a in arrays.values())
        features = npz_bytes(arrays) if as_npz else npy_bytes(next(iter(arrays.values())), allow_pickle=pickled)
    files[name] = features
    return files


@pytest.mark.fuzz
@fuzz_settings(60)
@given(data=st.data(), model=st.sampled_from(sorted(MODEL_INPUTS)), batch_size=st.integers(1, 4))
def test_batch_size_does_not_change_the_result(data, model, batch_size, models):
    """Differential: feeding the model a few rows at a time gives the same outcome as one
    batch: the same error naming the same row, or the same rows, classes and labels.
    (Scores may differ in their last bits: onnxruntime's kernels depend on the batch.)"""
    files = data.draw(array_directory_files(model))
    outcomes = []
    with tempfile.TemporaryDirectory() as tmp:
        for file, content in files.items():
            write(Path(tmp) / "data" / file, content)
        for size in (256, batch_size):
            result = run_cli("run", models[model], Path(tmp) / "data", "--batch-size", size, "--bootstrap", "0",
                             "--device", "cpu", "--json", "-")
            exit_code, stderr, document = comparable(result, Path(tmp))
            numbers_masked = re.sub(r"-?\d+\.\d+(?:e[-+]?\d+)?", "#", stderr)
            summary = None if document is None else (
                document["n_samples"], document["class_names"], [c["support"] for c in document["per_class"]])
            outcomes.append((exit_code, numbers_masked, summary))
    assert outcomes[1] == outcomes[0]


@pytest.mark.fuzz
@fuzz_settings(60)
@given(data=st.data(), name=st.sampled_from(["features.npy", "features.npz", "labels.npy"]))
def test_damaged_arrays(data, name, models):
    x = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
    valid = {"features.npy": npy_bytes(x), "features.npz": npz_bytes({"x": x}),
             "labels.npy": npy_bytes(np.array([0, 1, 2, 0]))}
    with tempfile.TemporaryDirectory() as tmp:
        for file, content in valid.items():
            if file != ("features.npz" if name != "features.npz" else "features.npy"):
                write(Path(tmp) / "data" / file, content)
        write(Path(tmp) / "data" / name, data.draw(damaged(valid[name])))
        run_cli("run", models["dense"], Path(tmp) / "data", "--bootstrap", "0", "--device", "cpu")


feature_names = st.one_of(st.sampled_from(["label", "f1", "f2", "f3", "x", "a", "b", "b.0", "b[1]"]), column_names)


def table_header(model: str) -> list[str]:
    """Feature columns the model's inputs take: in order, or named after its inputs."""
    inputs = MODEL_INPUTS[model][0]
    if len(inputs) == 1:
        return [f"f{j + 1}" for j in range(next(iter(inputs.values()))[0])]
    return [name if width == 1 else f"{name}.{j}" for name, (width, _) in inputs.items() for j in range(width)]


@pytest.mark.fuzz
@fuzz_settings(150)
@given(data=st.data(), model=st.sampled_from(["dense", "int64", "two-inputs", "strings", "binary", "zipmap"]),
       fmt=st.sampled_from(["csv", "csv.gz", "parquet"]), as_file=st.booleans())
def test_table_directory(data, model, fmt, as_file, models):
    """A valid table for the model (text, or typed Arrow columns), then a few cells,
    names or columns changed; sometimes a table of random columns altogether."""
    draw = data.draw
    rows = draw(st.integers(1, 5))
    arrays = draw(valid_inputs(model, rows))
    features = np.concatenate([a.astype(object) for a in arrays.values()], axis=1)
    header = ["label", *table_header(model)]
    texts = [[label, *(str(v) for v in row)] for label, row in zip(draw(valid_labels(model, rows)), features)]
    order = draw(st.permutations(range(len(header))))
    header, texts = [header[j] for j in order], [[row[j] for j in order] for row in texts]
    if fmt == "parquet":
        import pyarrow as pa

        if draw(st.integers(0, 3)) == 0:
            table = draw(arrow_tables(names=feature_names, max_columns=5))
        else:
            columns = []
            for j, name in enumerate(header):
                kinds = ["string", "dictionary", "int64"] if name == "label" else ["float64", "float32", "int64",
                                                                                  "string", "decimal", "bool"]
                columns.append(typed_column([row[j] for row in texts], draw(st.sampled_from(kinds))))
            for _ in range(draw(st.integers(0, 2))):
                j = draw(st.integers(0, len(columns) - 1))
                if draw(st.booleans()):
                    columns[j] = draw(arrow_columns(rows))[1]
                else:
                    header[j] = draw(feature_names)
            table = pa.Table.from_arrays(columns, names=header)
        content = parquet_bytes(table)
    else:
        header, texts = draw(mutated_rows(header, texts, names=feature_names))
        content = csv_bytes(header, texts, quoted=draw(st.integers(0, 4)) > 0, ending="\n", bom=False)
        if fmt == "csv.gz":
            content = gzip.compress(content)
    classes = draw(st.one_of(st.none(), st.none(), class_files))
    options = draw(model_options())
    with tempfile.TemporaryDirectory() as tmp:
        table_file = write(Path(tmp) / "data" / f"table.{fmt}", content)
        if classes is not None:
            write(Path(tmp) / "data" / "classes.txt", classes)
        run_cli("run", models[model], table_file if as_file else table_file.parent, *options)


# ---------------------------------------------------------------------- image folders

IMAGE_MODES = ["RGB"] * 6 + ["L", "RGBA", "P", "1", "LA", "I;16", "I", "F", "CMYK", "PA"]
IMAGE_FORMATS = {".png": "PNG", ".PNG": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".webp": "WEBP"}


@st.composite
def image_bytes(draw, suffix: str) -> bytes:
    """A small image of a random mode and size in the suffix's format (or whatever Pillow
    accepts in that mode), random bytes, or a damaged image."""
    from PIL import Image

    kind = draw(st.sampled_from(["image"] * 8 + ["bytes", "damaged"]))
    if kind == "bytes":
        return draw(random_bytes)
    mode = draw(st.sampled_from(IMAGE_MODES))
    width, height = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**16))
    image = Image.new(mode, (width, height))
    if mode in ("I", "F"):
        low, high = draw(st.sampled_from([(0, 255), (0, 65535), (-5, 70000)]))
        image = Image.fromarray(np.random.default_rng(seed).integers(low, high, size=(height, width))
                                .astype(np.int32 if mode == "I" else np.float32))
    elif mode != "1":
        image.putdata([tuple(v) if len(v) > 1 else int(v[0]) for v in
                       np.random.default_rng(seed).integers(0, 256, size=(width * height, len(image.getbands())))
                       .tolist()])
    buffer = io.BytesIO()
    target = IMAGE_FORMATS.get(suffix, "PNG")
    try:
        image.save(buffer, format=target)
    except (OSError, ValueError, KeyError):  # a mode the format cannot hold
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format=target)
    valid = buffer.getvalue()
    return draw(damaged(valid)) if kind == "damaged" else valid


SIDE_TEXTS = ["4", "3", "2", "1", "8", "4x4", "3x3", "4X4", "2x3", "4,4", "0", "-1", "8193", "8193x1", "4x", "x4",
              "1.5", "abc", "", "4x4x4", "1e3"]
IMAGE_OPTIONS = {
    "--image-size": SIDE_TEXTS, "--crop": SIDE_TEXTS, "--resize": SIDE_TEXTS,
    "--scale": ["1", "1/255", "0.5", "255", "0", "-1", "1/0", "0/0", "nan", "inf", "1e999", "abc", "/", "1/2/3"],
    "--mean": ["0", "0.5", "0.485,0.456,0.406", "1,2", "nan", "a", "", ",", "1/2"],
    "--std": ["1", "0.5", "0.229,0.224,0.225", "0", "-1", "1,0,1", "nan", "inf", "1/0"],
    "--layout": ["NCHW", "NHWC", "nchw", "HWC", ""], "--color": ["rgb", "bgr", "grayscale", "RGB", "cmyk", ""],
    "--resize-rounding": ["torchvision", "pil", "PIL", "round", ""],
    "--classes": ["cat,dog", "a,b", "0,1", "cat", "cat,cat"],
}
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 20), st.sampled_from([0.5, 1 / 255, 0.0, -1.0, 1e309, 8193]),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
    st.sampled_from(SIDE_TEXTS + ["NCHW", "rgb", "bgr", "grayscale", "pil", "1/255"]),
)
json_values = st.one_of(json_scalars, st.lists(json_scalars, max_size=4), st.lists(st.lists(json_scalars, max_size=2),
                                                                                    max_size=2))
preprocess_keys = st.sampled_from(["size", "resize", "crop", "scale", "mean", "std", "layout", "color",
                                   "resize_rounding", "nope", "Size"])


@st.composite
def preprocess_files(draw) -> bytes | None:
    kind = draw(st.sampled_from(["none", "none", "object", "object", "object", "json", "bytes"]))
    if kind == "none":
        return None
    if kind == "bytes":
        return draw(random_bytes)
    if kind == "json":
        return json.dumps(draw(json_values)).encode("utf-8")
    text = json.dumps(draw(st.dictionaries(preprocess_keys, json_values, max_size=3)))
    return text.replace("Infinity", "1e999").encode("utf-8")


@pytest.mark.fuzz
@fuzz_settings(90)
@given(data=st.data(), model=st.sampled_from(["image-rgb", "image-grey-uint8", "image-any-size", "image-batch-1"]))
def test_image_folder(data, model, models):
    draw = data.draw
    folders = ["cat", "dog"]  # the model's two classes, then perhaps a folder changed or added
    for _ in range(draw(st.integers(0, 2))):
        other = draw(st.sampled_from([".hidden", "0", "1", "a b", "ünï", "preprocess.json", "classes.txt", "cat"]))
        if draw(st.booleans()):
            folders[draw(st.integers(0, len(folders) - 1))] = other
        folders.append(other)
    folders = list(dict.fromkeys(folders))
    files: dict[str, bytes] = {}
    for folder in folders:
        for index in range(draw(st.sampled_from([1, 1, 2, 0]))):
            suffix = draw(st.sampled_from([".png", ".png", ".png", ".PNG", ".jpg", ".jpeg", ".bmp", ".webp", ".txt"]))
            files[f"{folder}/{index}{suffix}"] = draw(image_bytes(suffix))
    preprocess = draw(preprocess_files())
    if preprocess is not None:
        files["preprocess.json"] = preprocess
    classes = draw(st.one_of(st.none(), st.none(), class_files))
    if classes is not None:
        files["classes.txt"] = classes
    options = draw(model_options(IMAGE_OPTIONS))
    if model == "image-any-size" and draw(st.booleans()):
        options += ["--image-size", draw(st.sampled_from(["4x4", "2x5", "1", "7x3"]))]
    for flag in ("--skip-bad-images", "--allow-large-images"):
        if draw(st.booleans()):
            options.append(flag)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        root.mkdir()
        for folder in folders:
            (root / folder).mkdir(exist_ok=True)
        for name, content in files.items():
            if (root / name).is_dir():
                continue
            write(root / name, content)
        run_cli("run", models[model], root, *options)


@pytest.mark.fuzz
@fuzz_settings(40)
@given(images=st.lists(st.tuples(st.sampled_from(["cat", "dog"]), image_bytes(".png")), min_size=1, max_size=6),
       batch_size=st.integers(1, 3))
def test_skipped_images_keep_their_labels_whatever_the_batch(images, batch_size, models):
    """Differential: with ``--skip-bad-images``, batches of one to three images give the
    same outcome as one batch: the same rows kept, with the same labels."""
    outcomes = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        for index, (folder, content) in enumerate(images):
            write(root / folder / f"{index}.png", content)
        for size in (256, batch_size):
            result = run_cli("run", models["image-rgb"], root, "--skip-bad-images", "--batch-size", size,
                             "--bootstrap", "0", "--device", "cpu", "--json", "-")
            exit_code, stderr, document = comparable(result, Path(tmp))
            summary = None if document is None else (
                document["n_samples"], [c["support"] for c in document["per_class"]],
                document["input"]["data"]["images_skipped"], document["input"]["data"].get("skipped_files"))
            outcomes.append((exit_code, stderr, summary))
    assert outcomes[1] == outcomes[0]


# ---------------------------------------------------------------------- settings files


@pytest.mark.fuzz
@fuzz_settings(120)
@given(
    where=st.sampled_from(["calaudit.toml", "pyproject.toml", "--config", "--config-pyproject"]),
    table=st.sampled_from([None, "tool.calaudit", "tool.calaudit", "tool", "calaudit"]),
    data=st.data(),
    command=st.sampled_from(["run", "run", "check", "run-model"]),
)
def test_settings_file_of_random_settings(where, table, data, command, result_json, models):
    """Random keys and TOML values; a prediction file, a result for ``check``, or an
    image folder (whose preprocessing settings a file may hold) to run a model over."""
    document = data.draw(settings_documents(table=table))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        name = "pyproject.toml" if where in ("pyproject.toml", "--config-pyproject") else "calaudit.toml"
        settings_file = write(folder / name, document)
        config = ["--config", settings_file] if where.startswith("--config") else []
        if command == "check":
            run_cli("check", write(folder / "r.json", result_json), *config, cwd=folder)
        elif command == "run":
            run_cli("run", write(folder / "preds.csv", VALID_CSV), *config, "--bootstrap", "0", cwd=folder)
        else:
            for image in ("cat/1.png", "dog/2.png"):
                write(folder / "images" / image, VALID_PNG)
            run_cli("run", models["image-rgb"], folder / "images", *config, "--bootstrap", "0", "--device", "cpu",
                    cwd=folder)


@pytest.mark.fuzz
@fuzz_settings(60)
@given(
    content=st.one_of(random_bytes, printable_text(20).map(lambda s: s.encode("utf-8")),
                      damaged(b'[tool.calaudit]\nbins = 10\nfail-if = ["ece>0.5"]\n')),
    name=st.sampled_from(["calaudit.toml", "pyproject.toml"]),
    given_path=st.booleans(),
)
def test_settings_file_of_random_bytes(content, name, given_path):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings_file = write(folder / name, content)
        preds = write(folder / "preds.csv", VALID_CSV)
        config = ["--config", settings_file] if given_path else []
        run_cli("run", preds, *config, "--bootstrap", "0", cwd=folder)


@pytest.mark.fuzz
@fuzz_settings(30)
@given(kind=st.sampled_from(["directory", "missing", "broken-link", "loop", "empty", "fifo", "dev-null", "link-ok",
                             "relative", "dash"]))
def test_config_paths(kind):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        preds = write(folder / "preds.csv", VALID_CSV)
        path = folder / "settings.toml"
        if kind == "directory":
            path.mkdir()
        elif kind == "broken-link":
            path.symlink_to(folder / "nowhere.toml")
        elif kind == "loop":
            path.symlink_to(path)
        elif kind == "empty":
            path = Path("")
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "dev-null":
            path = Path("/dev/null")
        elif kind == "link-ok":
            write(folder / "real.toml", "bins = 5\n")
            path.symlink_to(folder / "real.toml")
        elif kind == "relative":
            write(path, "bins = 5\n")
            path = Path("settings.toml")
        elif kind == "dash":
            path = Path("-")
        run_cli("run", preds, "--config", path, "--bootstrap", "0", cwd=folder)


@pytest.fixture(scope="module")
def result_json(tmp_path_factory) -> bytes:
    """A result written by ``calaudit run --json``, for ``calaudit check``."""
    folder = tmp_path_factory.mktemp("fuzz-result")
    preds = write(folder / "preds.csv", VALID_CSV)
    run_cli("run", preds, "--bootstrap", "0", "--json", folder / "result.json", "-q")
    return (folder / "result.json").read_bytes()


# ---------------------------------------------------------------------- crashes found

def one_line_error(result, code: int) -> str:
    """The strict form of the property: exit ``code`` and exactly one stderr line."""
    assert result.exit_code == code, (result.exit_code, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("calaudit: error: "), lines[0]
    return lines[0]


def test_a_line_break_in_a_column_name_stays_on_one_line(tmp_path):
    preds = write(tmp_path / "preds.csv", csv_bytes(["a\nb", "prob_a", "prob_b"], [["x", "0.5", "0.5"]],
                                                    quoted=True, ending="\n", bom=False))
    line = one_line_error(run_cli("run", preds, "--bootstrap", "0"), 3)
    assert "no label column 'label'" in line and "a\\nb" in line


def corrupt_gzip(content: bytes) -> bytes:
    """A gzip file whose deflate stream is broken at its first byte (a valid header)."""
    data = bytearray(gzip.compress(content, mtime=0))
    data[10] = 0  # a stored block whose length check fails: zlib.error, not OSError
    return bytes(data)


def test_read_head_of_a_corrupt_gzip_stream_is_empty(tmp_path):
    from calaudit.files.info import read_head, utf16_problem

    path = write(tmp_path / "preds.csv.gz", corrupt_gzip(VALID_CSV))
    assert read_head(path, compressed=True) == b""
    assert utf16_problem(read_head(path, compressed=True)) is None


def test_a_corrupt_gzip_stream_is_an_input_error(tmp_path):
    path = write(tmp_path / "preds.csv.gz", corrupt_gzip(VALID_CSV))
    line = one_line_error(run_cli("run", path, "--bootstrap", "0"), 3)
    assert str(path) in line


def gzip_failing_its_crc() -> bytes:
    """A gzip file whose text is not UTF-8 and whose CRC does not match: pandas stops at
    the text, and finding the bad byte reads on to the CRC check."""
    data = bytearray(gzip.compress(b"label,prob_a,prob_b\n\xff,0.5,0.5\n", mtime=0))
    data[-8] ^= 0xFF
    return bytes(data)


def test_first_invalid_utf8_of_a_gzip_failing_its_crc_names_the_file(tmp_path):
    from calaudit.errors import InvalidInputError
    from calaudit.files.info import first_invalid_utf8

    path = write(tmp_path / "preds.csv.gz", gzip_failing_its_crc())
    with pytest.raises(InvalidInputError, match="CRC check failed"):
        first_invalid_utf8(path, compressed=True)


def test_a_gzip_failing_its_crc_is_one_line(tmp_path):
    path = write(tmp_path / "preds.csv.gz", gzip_failing_its_crc())
    line = one_line_error(run_cli("run", path, "--bootstrap", "0"), 3)
    assert str(path) in line and "CRC check failed" in line


def arrays_directory(folder: Path, features: bytes, labels: bytes | None = None) -> Path:
    write(folder / "features.npy", features)
    write(folder / "labels.npy", labels if labels is not None else npy_bytes(np.array([0, 1, 2, 0])))
    return folder


VALID_FEATURES = np.arange(12, dtype=np.float32).reshape(4, 3) / 10


def npy_with_header(header: str, payload: bytes) -> bytes:
    """A version 1.0 .npy file with ``header`` as written (padded to 64 bytes)."""
    text = header + " " * (-(len(header) + 11) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode("latin1") + payload


def test_a_npy_header_the_tokenizer_cannot_read_is_one_line(tmp_path, models):
    # The fuzzer's case: the header's opening brace lost, numpy's retry as a Python 2
    # header fails in the tokenizer (TokenError, which is no ValueError).
    features = bytearray(npy_bytes(VALID_FEATURES))
    features[10] = 0
    data = arrays_directory(tmp_path / "data", bytes(features))
    line = one_line_error(run_cli("run", models["dense"], data, "--bootstrap", "0", "--device", "cpu"), 3)
    assert f"{data / 'features.npy'}: not a readable .npy array" in line


def test_a_npy_header_too_large_to_read_is_one_line(tmp_path, models):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }" + " " * 12000
    data = arrays_directory(tmp_path / "data", npy_with_header(header, VALID_FEATURES.tobytes()))
    result = run_cli("run", models["dense"], data, "--bootstrap", "0", "--device", "cpu")
    line = one_line_error(result, 3)  # numpy's message has two lines; the first is kept
    assert "Header info length" in line


def test_a_python2_npy_header_reads_without_a_warning(tmp_path, models):
    # numpy warns (UserWarning) while it cleans up the 'L' of Python 2 integers.
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4L, 3L), }"
    data = arrays_directory(tmp_path / "data", npy_with_header(header, VALID_FEATURES.tobytes()))
    result = run_cli("run", models["dense"], data, "--bootstrap", "0", "--device", "cpu", "--json", "-")
    assert result.exit_code == 0 and result.stderr == ""
    assert json.loads(result.stdout)["n_samples"] == 4


@pytest.mark.parametrize("labels", [np.zeros((0, 1), dtype=np.int64), np.array(1)], ids=["no-rows-2d", "scalar"])
def test_labels_npy_of_no_rows_or_a_single_value_is_one_line(tmp_path, models, labels):
    features = npy_bytes(np.zeros((len(labels) if labels.ndim else 1, 3), dtype=np.float32))
    data = arrays_directory(tmp_path / "data", features, npy_bytes(labels))
    line = one_line_error(run_cli("run", models["dense"], data, "--bootstrap", "0", "--device", "cpu"), 3)
    assert str(data) in line


def test_features_beyond_float32_are_refused_without_a_warning(tmp_path, models):
    # 3.5e38 does not fit a float input: the cast would make it infinite (and numpy's
    # overflow warning used to reach stderr); it is refused naming its cell.
    features = np.full((4, 3), 3.5e38)
    data = arrays_directory(tmp_path / "data", npy_bytes(features))
    line = one_line_error(run_cli("run", models["dense"], data, "--bootstrap", "0", "--device", "cpu"), 3)
    assert "features.npy: row 1, column 1" in line and "3.5e+38" in line


@pytest.mark.parametrize(
    "features, shown",
    [(np.full((4, 3), 1e300), "1e+300"), (np.full((4, 3), 2**63, dtype=np.uint64), str(2**63)),
     (np.full((4, 3), 2.0**63), "9.223372036854776e+18")],
    ids=["float-huge", "uint64-beyond-int64", "float-2**63"],
)
def test_integers_beyond_the_input_type_are_refused(tmp_path, models, features, shown):
    # numpy's cast wrapped these around to -9223372036854775808 without a word.
    data = arrays_directory(tmp_path / "data", npy_bytes(features))
    line = one_line_error(run_cli("run", models["int64"], data, "--bootstrap", "0", "--device", "cpu"), 3)
    assert "expects integers (int64, -9223372036854775808 to 9223372036854775807)" in line and shown in line


def test_fractional_text_for_an_integer_input_is_refused(tmp_path, models):
    import pyarrow as pa

    # A Parquet text column "1.5" was cast to float then truncated to 1 for an int64 input.
    table = pa.table({"label": ["0", "1"], "f1": ["1.5", "2"], "f2": ["1", "2"], "f3": ["1", "2"]})
    data = write(tmp_path / "data" / "table.parquet", parquet_bytes(table))
    line = one_line_error(run_cli("run", models["int64"], data, "--bootstrap", "0", "--device", "cpu"), 3)
    assert "expects integers (int64) but the data holds fractional or missing values" in line


def test_complex_features_are_refused(tmp_path, models):
    data = arrays_directory(tmp_path / "data", npy_bytes(VALID_FEATURES.astype(np.complex64) + 1j))
    line = one_line_error(run_cli("run", models["dense"], data, "--bootstrap", "0", "--device", "cpu"), 3)
    assert "expects numbers (float) but the data holds complex64 values" in line


@pytest.mark.parametrize("content", [b"id,label,prob_a,prob_b,\n1,a,0.5,0.5,\n",
                                     b"label,,prob_b,prob_c\na,0.0,0.0,1.0\n"], ids=["trailing-comma", "empty-name"])
def test_an_empty_column_name_is_one_line(tmp_path, content):
    path = write(tmp_path / "preds.csv", content)
    one_line_error(run_cli("run", path, "--bootstrap", "0"), 3)


def test_float16_integers_for_an_integer_input_run_without_a_warning(tmp_path, models):
    # The range check compared float16 features with 2**63, which float16 overflows.
    data = arrays_directory(tmp_path / "data", npy_bytes(np.array([[0, 1, 2]] * 4, dtype=np.float16)),
                            npy_bytes(np.array([0, 1, 1, 0])))
    result = run_cli("run", models["int64"], data, "--bootstrap", "0", "--device", "cpu", "--classes", "a,b",
                     "--json", "-")
    assert result.exit_code == 0 and result.stderr == ""


@pytest.mark.parametrize("label", ["9223372036854775808", "-9223372036854775809", "9" * 40])
def test_a_label_index_beyond_int64_is_one_line(tmp_path, label):
    # The indices were made an int64 array before their range was checked: OverflowError, exit 4.
    path = write(tmp_path / "preds.csv", f"label,prob_a,prob_b\n{label},0.0,1.0\n0,0.5,0.5\n")
    line = one_line_error(run_cli("run", path, "--bootstrap", "0"), 3)
    expected = f"{path}: row 1 (line 2), column label: label {label} is not a class index; expected an integer in 0..1"
    assert expected in line


@pytest.mark.parametrize("column", [[[]], [[1.5, 2.5]]], ids=["empty-list", "list"])
def test_a_nested_column_for_a_text_input_is_one_line(tmp_path, models, column):
    import pyarrow as pa

    # numpy cannot make text of a list ("setting an array element with a sequence"): exit 4.
    table = pa.table({"label": ["0"], "f1": ["a"], "f2": pa.array(column)})
    data = write(tmp_path / "data" / "table.parquet", parquet_bytes(table))
    line = one_line_error(run_cli("run", models["strings"], data.parent, "--bootstrap", "0", "--device", "cpu"), 3)
    assert f"{data}: the model input 'x' takes text but the data holds values such as" in line

"""Generate calaudit's sample vendor ONNX models and their labelled data directories.

Builds two small "vendor-like" ONNX classifiers from scikit-learn's bundled
datasets (nothing is downloaded), plus the held-out data to run them on with
``calaudit run model.onnx data_dir/``:

* ``breast_cancer_forest.onnx``: StandardScaler + RandomForestClassifier(60
  trees) on ``load_breast_cancer``, exported with skl2onnx with ZipMap left on,
  so it outputs a string label tensor and a list of ``{class name: prob}`` maps.
  Data: ``breast_cancer_table/data.csv`` (``label`` column, then the 30 features
  under the dataset's own feature names, in the model's input order).
* ``digits_mlp.onnx``: an MLPClassifier(64 hidden units) on ``load_digits``,
  rebuilt by hand with ``onnx.helper`` as Flatten -> Gemm -> Relu -> Gemm. It
  takes ``pixels`` [batch, 1, 16, 16] and emits raw ``logits`` [batch, 10] (no
  softmax). Data: ``digits_images/<class>/<id>.png`` (ImageFolder layout, 16x16
  8-bit grayscale) plus ``digits_images/preprocess.json`` describing how a PNG
  maps to the model input.

Each dataset is split 50/50, stratified, with ``random_state=0``; models are fit
on the train half and the data directories hold the test half. Every file is
written atomically, and the output is byte-identical from run to run on the same
library versions. The script checks each model with onnxruntime against the
scikit-learn estimator it was built from.

Run from the repository root::

    python sample_data/make_sample_models.py [--out-dir DIR]

By default the files are written next to this script.
"""

import argparse
import io
import json
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
from onnx import TensorProto, helper, numpy_helper
from PIL import Image
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

SEED = 0
TEST_SIZE = 0.5
IR_VERSION = 8  # onnxruntime rejects the IR version that new onnx releases write

FOREST_MODEL = "breast_cancer_forest.onnx"
FOREST_DATA_DIR = "breast_cancer_table"
FOREST_OPSETS = {"": 17, "ai.onnx.ml": 3}

MLP_MODEL = "digits_mlp.onnx"
MLP_DATA_DIR = "digits_images"
MLP_OPSET = 13
DIGIT_CLASSES = [str(d) for d in range(10)]
UPSCALE = 2  # each 8x8 digits pixel becomes a 2x2 block -> 16x16 images
PREPROCESS = {
    "scale": 1 / 255,  # serialised by json as 0.00392156862745098
    "mean": [0.5],
    "std": [0.5],
    "color": "grayscale",
    "layout": "NCHW",
}

ORT_PROVIDERS = ["CPUExecutionProvider"]


class Split(NamedTuple):
    """Row indices (into the original sklearn dataset) of a train/test split."""

    train: np.ndarray
    test: np.ndarray


# --------------------------------------------------------------------------- I/O


def current_umask() -> int:
    """Return the process umask (without changing it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~current_umask()  # what a plain open() would create (0644 under umask 022)


def write_bytes_atomically(data: bytes, path: Path) -> None:
    """Write ``data`` to ``path`` via a temp file in the same directory and ``os.replace``.

    The file gets the permissions a plain ``open()`` would give it (0644 under
    the usual umask), not ``mkstemp``'s 0600.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp_name, FILE_MODE)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def finish_model(model: onnx.ModelProto, producer: str, version: str,
                 metadata: dict[str, str]) -> bytes:
    """Stamp IR version, producer and metadata on ``model``, check it, and serialise it."""
    model.ir_version = IR_VERSION
    model.producer_name = producer
    model.producer_version = version
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return model.SerializeToString()


def ort_session(model_bytes: bytes) -> ort.InferenceSession:
    """Load serialised ONNX bytes into a CPU onnxruntime session."""
    return ort.InferenceSession(model_bytes, providers=ORT_PROVIDERS)


# ------------------------------------------------------------------------ shared


def stratified_split(y: np.ndarray) -> Split:
    """Split row indices 50/50, stratified on ``y``, seeded; each half sorted by index."""
    ids = np.arange(len(y))
    train, test = train_test_split(ids, test_size=TEST_SIZE, stratify=y, random_state=SEED)
    return Split(np.sort(train), np.sort(test))


def accuracy_and_confidence(probs: np.ndarray, classes: list[str],
                            labels: np.ndarray) -> tuple[float, float]:
    """Return (accuracy of the argmax prediction, mean top-class probability)."""
    predicted = np.asarray(classes)[probs.argmax(axis=1)]
    return float(np.mean(predicted == labels)), float(probs.max(axis=1).mean())


def check_close(name: str, actual: np.ndarray, expected: np.ndarray, atol: float) -> float:
    """Raise if ``actual`` and ``expected`` differ by more than ``atol``; return the max diff."""
    diff = float(np.max(np.abs(actual - expected)))
    if not diff <= atol:
        raise AssertionError(f"{name}: onnxruntime differs from scikit-learn by {diff:g} > {atol:g}")
    return diff


# ------------------------------------------------------------- breast cancer forest


def fit_forest(X: np.ndarray, y: np.ndarray) -> Pipeline:
    """Fit StandardScaler + RandomForestClassifier(60 trees) on string class labels."""
    pipeline = Pipeline([
        ("scale", StandardScaler()),
        ("forest", RandomForestClassifier(n_estimators=60, random_state=SEED)),
    ])
    return pipeline.fit(X, y)


def export_forest(pipeline: Pipeline, n_features: int) -> bytes:
    """Convert the pipeline with skl2onnx (ZipMap on, as vendors ship it) to ONNX bytes."""
    model = to_onnx(
        pipeline,
        initial_types=[("features", FloatTensorType([None, n_features]))],
        target_opset=FOREST_OPSETS,
    )
    classes = [str(c) for c in pipeline.classes_]
    description = (
        "Breast cancer (Wisconsin diagnostic) classifier: StandardScaler + "
        "RandomForestClassifier(n_estimators=60). Input 'features': float32 "
        f"[N, {n_features}] in scikit-learn load_breast_cancer feature order. "
        "Outputs 'output_label' (string class name) and 'output_probability' "
        f"(one map per row, keys {json.dumps(classes)})."
    )
    return finish_model(model, "acme-vendor-export", "2.3.1", {"description": description})


def forest_table(X: np.ndarray, labels: np.ndarray, feature_names: list[str]) -> pd.DataFrame:
    """Build the data table: ``label`` first, then one column per feature (input order)."""
    df = pd.DataFrame(X, columns=feature_names)
    df.insert(0, "label", labels)
    return df


def run_forest(session: ort.InferenceSession, table: pd.DataFrame,
               classes: list[str]) -> np.ndarray:
    """Run the ONNX forest over the table's feature columns; return probs in ``classes`` order."""
    features = table.drop(columns="label").to_numpy(dtype=np.float32)
    _, prob_maps = session.run(None, {"features": features})
    return np.array([[row[c] for c in classes] for row in prob_maps], dtype=np.float64)


def make_forest(out_dir: Path) -> None:
    """Write the breast cancer forest model and its CSV data directory."""
    data = load_breast_cancer()
    names = np.array([str(n) for n in data.target_names])
    y = names[data.target]
    feature_names = [str(f) for f in data.feature_names]
    split = stratified_split(data.target)

    pipeline = fit_forest(data.data[split.train], y[split.train])
    classes = [str(c) for c in pipeline.classes_]
    model_bytes = export_forest(pipeline, len(feature_names))
    table = forest_table(data.data[split.test], y[split.test], feature_names)
    csv_bytes = table.to_csv(index=False, lineterminator="\n").encode("utf-8")

    write_bytes_atomically(model_bytes, out_dir / FOREST_MODEL)
    csv_path = out_dir / FOREST_DATA_DIR / "data.csv"
    write_bytes_atomically(csv_bytes, csv_path)

    # Verify: run the model, as calaudit will, on the CSV read back from disk.
    read_back = pd.read_csv(csv_path)
    if not np.array_equal(read_back.drop(columns="label").to_numpy(), data.data[split.test]):
        raise AssertionError("data.csv does not round-trip the features exactly")
    session = ort_session((out_dir / FOREST_MODEL).read_bytes())
    probs = run_forest(session, read_back, classes)
    check_close(FOREST_MODEL, probs, pipeline.predict_proba(data.data[split.test]), 1e-6)
    accuracy, confidence = accuracy_and_confidence(probs, classes, read_back["label"].to_numpy())
    print(f"{FOREST_MODEL}: test_rows={len(read_back)} accuracy={accuracy:.4f} "
          f"mean_confidence={confidence:.4f}")
    print(f"{FOREST_DATA_DIR}/data.csv: rows={len(read_back)} "
          f"columns={read_back.shape[1]} (label + {len(feature_names)} features)")


# -------------------------------------------------------------------- digits MLP


def render_digit(image: np.ndarray) -> np.ndarray:
    """Turn an 8x8 digits image (values 0..16) into a 16x16 uint8 array.

    pixel = round(value * 255 / 16) (round half to even: value 8 -> 128), then
    each pixel is repeated into a 2x2 block (nearest-neighbour upscaling).
    """
    pixels = np.rint(image * 255.0 / 16.0).astype(np.uint8)
    return pixels.repeat(UPSCALE, axis=0).repeat(UPSCALE, axis=1)


def preprocess(pixels: np.ndarray) -> np.ndarray:
    """Map uint8 images [N, 16, 16] to flat model features [N, 256]: x/255, then (x-0.5)/0.5.

    This is what ``preprocess.json`` describes (with a channel axis: NCHW).
    """
    x = pixels.astype(np.float64) / 255.0
    x = (x - PREPROCESS["mean"][0]) / PREPROCESS["std"][0]
    return x.reshape(len(pixels), -1)


def png_bytes(pixels: np.ndarray) -> bytes:
    """Encode a 2-D uint8 array as an 8-bit grayscale PNG."""
    image = Image.fromarray(pixels)
    if image.mode != "L":
        raise AssertionError(f"expected an 'L' image, got {image.mode}")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def fit_mlp(features: np.ndarray, labels: np.ndarray) -> MLPClassifier:
    """Fit a one-hidden-layer (64 units) MLP on preprocessed pixels."""
    mlp = MLPClassifier(hidden_layer_sizes=(64,), random_state=SEED, max_iter=500)
    mlp.fit(features, labels)
    if [str(c) for c in mlp.classes_] != DIGIT_CLASSES:
        raise AssertionError(f"unexpected class order: {mlp.classes_}")
    return mlp


def mlp_to_onnx(mlp: MLPClassifier, height: int, width: int) -> bytes:
    """Build Flatten -> Gemm -> Relu -> Gemm (logits, no softmax) from the MLP's weights."""
    if mlp.activation != "relu" or len(mlp.coefs_) != 2:
        raise AssertionError("expected a single-hidden-layer ReLU MLP")
    (w1, w2), (b1, b2) = mlp.coefs_, mlp.intercepts_
    initializers = [
        numpy_helper.from_array(a.astype(np.float32), name)
        for a, name in [(w1, "W1"), (b1, "b1"), (w2, "W2"), (b2, "b2")]
    ]
    nodes = [
        helper.make_node("Flatten", ["pixels"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "W1", "b1"], ["hidden_pre"], name="dense1"),
        helper.make_node("Relu", ["hidden_pre"], ["hidden"], name="relu1"),
        helper.make_node("Gemm", ["hidden", "W2", "b2"], ["logits"], name="dense2"),
    ]
    graph = helper.make_graph(
        nodes,
        "digits_mlp",
        inputs=[helper.make_tensor_value_info(
            "pixels", TensorProto.FLOAT, ["batch", 1, height, width])],
        outputs=[helper.make_tensor_value_info(
            "logits", TensorProto.FLOAT, ["batch", len(DIGIT_CLASSES)])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", MLP_OPSET)])
    classes_json = json.dumps(DIGIT_CLASSES, separators=(",", ":"))
    return finish_model(model, "acme-vision", "0.9.0", {"classes": classes_json})


def remove_stale_pngs(image_dir: Path, keep: set[Path]) -> None:
    """Delete PNGs under ``image_dir`` (one level of class folders) that are not in ``keep``."""
    for path in image_dir.glob("*/*.png"):
        if path not in keep:
            path.unlink()


def load_png_dir(image_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read ``<class>/<id>.png`` back; return (uint8 images, labels, ids), sorted by id."""
    paths = sorted(image_dir.glob("*/*.png"), key=lambda p: int(p.stem))
    images = np.stack([np.asarray(Image.open(p)) for p in paths])
    labels = np.array([p.parent.name for p in paths])
    ids = np.array([int(p.stem) for p in paths])
    return images, labels, ids


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, in float64."""
    z = logits.astype(np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def make_mlp(out_dir: Path) -> None:
    """Write the digits MLP model and its PNG (ImageFolder) data directory."""
    data = load_digits()
    labels = np.array(DIGIT_CLASSES)[data.target]
    split = stratified_split(data.target)
    rendered = np.stack([render_digit(img) for img in data.images])
    height, width = rendered.shape[1:]

    mlp = fit_mlp(preprocess(rendered[split.train]), labels[split.train])
    model_bytes = mlp_to_onnx(mlp, height, width)

    image_dir = out_dir / MLP_DATA_DIR
    png_paths = {i: image_dir / labels[i] / f"{i:04d}.png" for i in split.test}
    remove_stale_pngs(image_dir, set(png_paths.values()))
    write_bytes_atomically(model_bytes, out_dir / MLP_MODEL)
    for i, path in png_paths.items():
        write_bytes_atomically(png_bytes(rendered[i]), path)
    preprocess_json = json.dumps(PREPROCESS) + "\n"
    write_bytes_atomically(preprocess_json.encode("utf-8"), image_dir / "preprocess.json")

    # Verify: load the PNGs back, preprocess them as preprocess.json says, run ONNX.
    images, read_labels, ids = load_png_dir(image_dir)
    if not (np.array_equal(ids, split.test) and np.array_equal(images, rendered[split.test])):
        raise AssertionError("PNG files do not round-trip the rendered test images")
    spec = json.loads((image_dir / "preprocess.json").read_text())
    x = (images.astype(np.float32)[:, None] * np.float32(spec["scale"])
         - np.float32(spec["mean"][0])) / np.float32(spec["std"][0])
    session = ort_session((out_dir / MLP_MODEL).read_bytes())
    (logits,) = session.run(None, {"pixels": x.astype(np.float32)})
    probs = softmax(logits)
    check_close(MLP_MODEL, probs, mlp.predict_proba(preprocess(images)), 1e-5)
    accuracy, confidence = accuracy_and_confidence(probs, DIGIT_CLASSES, read_labels)
    print(f"{MLP_MODEL}: test_images={len(images)} accuracy={accuracy:.4f} "
          f"mean_confidence={confidence:.4f}")
    print(f"{MLP_DATA_DIR}/: images={len(images)} ({height}x{width} grayscale PNG, "
          f"{len(DIGIT_CLASSES)} class folders) + preprocess.json")


def parse_args() -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="directory to write the files into (default: this script's directory)",
    )
    return parser.parse_args()


def main() -> None:
    """Write both models and their data directories, printing a line per artifact."""
    out_dir = parse_args().out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    make_forest(out_dir)
    make_mlp(out_dir)


if __name__ == "__main__":
    main()

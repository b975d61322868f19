"""Small ONNX models built with ``onnx.helper`` for the ONNX tests.

Every model is pinned to ``ir_version = 8`` (onnxruntime rejects the IR version new
onnx releases write) and imports opset 13 or 17 of the default domain and 1-3 of
``ai.onnx.ml``. Weights come from a seeded generator, so each builder is deterministic;
tests compute what the model should output independently (numpy or their own
onnxruntime session), never through calaudit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

IR_VERSION = 8
OPSET = 13
ML_OPSET = 3

FLOAT = TensorProto.FLOAT


def weights(n_features: int, n_classes: int, seed: int = 0, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded (n_features, n_classes) float32 weight matrix and (n_classes,) bias."""
    rng = np.random.default_rng(seed)
    w = (rng.normal(size=(n_features, n_classes)) * scale).astype(np.float32)
    b = (rng.normal(size=n_classes) * 0.1).astype(np.float32)
    return w, b


def finish(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[onnx.ValueInfoProto],
    outputs: Sequence[onnx.ValueInfoProto],
    initializers: Sequence[onnx.TensorProto] = (),
    *,
    name: str = "test_graph",
    opset: int = OPSET,
    ml_opset: int | None = None,
    extra_opsets: dict[str, int] | None = None,
    metadata: dict[str, str] | None = None,
    producer: tuple[str, str] = ("calaudit-tests", "1.0"),
    check: bool = True,
) -> onnx.ModelProto:
    """Assemble a model: IR version 8, the given opsets, metadata and producer."""
    graph = helper.make_graph(list(nodes), name, list(inputs), list(outputs), list(initializers))
    opsets = [helper.make_opsetid("", opset)]
    if ml_opset is not None:
        opsets.append(helper.make_opsetid("ai.onnx.ml", ml_opset))
    for domain, version in (extra_opsets or {}).items():
        opsets.append(helper.make_opsetid(domain, version))
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = IR_VERSION
    model.producer_name, model.producer_version = producer
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    if check:
        onnx.checker.check_model(model)
    return model


def save(model: onnx.ModelProto, path: Path) -> Path:
    path = Path(path)
    path.write_bytes(model.SerializeToString())
    return path


def _dense(input_name: str, w: np.ndarray, b: np.ndarray, out: str, prefix: str = "") -> tuple[list, list]:
    nodes = [
        helper.make_node("MatMul", [input_name, f"{prefix}W"], [f"{prefix}xw"]),
        helper.make_node("Add", [f"{prefix}xw", f"{prefix}B"], [out]),
    ]
    inits = [numpy_helper.from_array(w, f"{prefix}W"), numpy_helper.from_array(b, f"{prefix}B")]
    return nodes, inits


# ---------------------------------------------------------------------- tensor outputs


def prob_model(
    w: np.ndarray,
    b: np.ndarray,
    *,
    output: str = "probabilities",
    input_name: str = "x",
    batch: int | str = "N",
    metadata: dict[str, str] | None = None,
    opset: int = OPSET,
) -> onnx.ModelProto:
    """x float [batch, F] -> MatMul + Add -> Softmax -> ``output`` [batch, K]."""
    n_features, n_classes = w.shape
    nodes, inits = _dense(input_name, w, b, "z")
    nodes.append(helper.make_node("Softmax", ["z"], [output], axis=1))
    return finish(
        nodes,
        [helper.make_tensor_value_info(input_name, FLOAT, [batch, n_features])],
        [helper.make_tensor_value_info(output, FLOAT, [batch, n_classes])],
        inits, metadata=metadata, opset=opset,
    )


def logits_model(
    w: np.ndarray, b: np.ndarray, *, output: str = "logits", input_name: str = "x",
    metadata: dict[str, str] | None = None,
) -> onnx.ModelProto:
    """x float [N, F] -> MatMul + Add -> ``output`` (raw scores, no softmax)."""
    n_features, n_classes = w.shape
    nodes, inits = _dense(input_name, w, b, output)
    return finish(
        nodes,
        [helper.make_tensor_value_info(input_name, FLOAT, ["N", n_features])],
        [helper.make_tensor_value_info(output, FLOAT, ["N", n_classes])],
        inits, metadata=metadata,
    )


def binary_model(w: np.ndarray, b: np.ndarray, *, output: str = "probability", sigmoid: bool = True) -> onnx.ModelProto:
    """x float [N, F] -> MatMul + Add (-> Sigmoid) -> ``output`` [N, 1]."""
    assert w.shape[1] == 1
    nodes, inits = _dense("x", w, b, "z" if sigmoid else output)
    if sigmoid:
        nodes.append(helper.make_node("Sigmoid", ["z"], [output]))
    return finish(
        nodes,
        [helper.make_tensor_value_info("x", FLOAT, ["N", w.shape[0]])],
        [helper.make_tensor_value_info(output, FLOAT, ["N", 1])],
        inits, opset=17,
    )


def two_outputs_model(w: np.ndarray, b: np.ndarray, names: tuple[str, str] = ("out_a", "out_b")) -> onnx.ModelProto:
    """Two float outputs: softmax scores under ``names[0]``, raw scores under ``names[1]``."""
    n_features, n_classes = w.shape
    nodes, inits = _dense("x", w, b, names[1])
    nodes.append(helper.make_node("Softmax", [names[1]], [names[0]], axis=1))
    return finish(
        nodes,
        [helper.make_tensor_value_info("x", FLOAT, ["N", n_features])],
        [helper.make_tensor_value_info(n, FLOAT, ["N", n_classes]) for n in names],
        inits,
    )


def labelled_prob_model(w: np.ndarray, b: np.ndarray) -> onnx.ModelProto:
    """Softmax ``probabilities`` plus an int64 ``label`` output (ArgMax)."""
    n_features, n_classes = w.shape
    nodes, inits = _dense("x", w, b, "z")
    nodes += [
        helper.make_node("Softmax", ["z"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0),
    ]
    return finish(
        nodes,
        [helper.make_tensor_value_info("x", FLOAT, ["N", n_features])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
         helper.make_tensor_value_info("probabilities", FLOAT, ["N", n_classes])],
        inits,
    )


# ---------------------------------------------------------------------- ZipMap


def zipmap_model(
    w: np.ndarray,
    b: np.ndarray,
    classes: Sequence[str] | Sequence[int],
    *,
    metadata: dict[str, str] | None = None,
    zipmap: bool = True,
    expose_scores: bool = False,
) -> onnx.ModelProto:
    """skl2onnx-like classifier: LinearClassifier (softmax) -> label + ZipMap.

    String ``classes`` give a string label and ``seq(map(string, float))``; int classes
    give an int64 label and ``seq(map(int64, float))``. ``zipmap=False`` outputs the
    ``scores`` tensor instead of the ZipMap; ``expose_scores`` outputs both.
    """
    n_features, n_classes = w.shape
    assert len(classes) == n_classes
    strings = isinstance(classes[0], str)
    label_attr = {"classlabels_strings": list(classes)} if strings else {"classlabels_ints": [int(c) for c in classes]}
    zip_attr = {"classlabels_strings": list(classes)} if strings else {"classlabels_int64s": [int(c) for c in classes]}
    nodes = [
        helper.make_node(
            "LinearClassifier", ["x"], ["label", "scores"], domain="ai.onnx.ml",
            coefficients=w.T.reshape(-1).tolist(), intercepts=b.tolist(), post_transform="SOFTMAX",
            multi_class=0, **label_attr,
        ),
    ]
    key_type = TensorProto.STRING if strings else TensorProto.INT64
    map_type = helper.make_sequence_type_proto(helper.make_map_type_proto(key_type, helper.make_tensor_type_proto(FLOAT, [])))
    outputs = [helper.make_tensor_value_info("label", key_type, ["N"])]
    if zipmap:
        nodes.append(helper.make_node("ZipMap", ["scores"], ["output_probability"], domain="ai.onnx.ml", **zip_attr))
        outputs.append(helper.make_value_info("output_probability", map_type))
    if expose_scores or not zipmap:
        outputs.append(helper.make_tensor_value_info("scores", FLOAT, ["N", n_classes]))
    return finish(
        nodes,
        [helper.make_tensor_value_info("x", FLOAT, ["N", n_features])],
        outputs, metadata=metadata, opset=17, ml_opset=1,
    )


# ---------------------------------------------------------------------- input types


def int64_input_model(w: np.ndarray, b: np.ndarray) -> onnx.ModelProto:
    """x int64 [N, F] -> Cast float -> MatMul + Add -> Softmax."""
    n_features, n_classes = w.shape
    nodes, inits = _dense("xf", w, b, "z")
    nodes = [helper.make_node("Cast", ["x"], ["xf"], to=FLOAT), *nodes,
             helper.make_node("Softmax", ["z"], ["probabilities"], axis=1)]
    return finish(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.INT64, ["N", n_features])],
        [helper.make_tensor_value_info("probabilities", FLOAT, ["N", n_classes])],
        inits,
    )


def string_input_model(vocabulary: Sequence[str], values: Sequence[float], w: np.ndarray, b: np.ndarray) -> onnx.ModelProto:
    """x string [N, F] -> LabelEncoder (word -> float) -> MatMul + Add -> Softmax."""
    n_features, n_classes = w.shape
    nodes, inits = _dense("xf", w, b, "z")
    nodes = [
        helper.make_node("LabelEncoder", ["x"], ["xf"], domain="ai.onnx.ml",
                         keys_strings=list(vocabulary), values_floats=[float(v) for v in values], default_float=0.0),
        *nodes,
        helper.make_node("Softmax", ["z"], ["probabilities"], axis=1),
    ]
    return finish(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.STRING, ["N", n_features])],
        [helper.make_tensor_value_info("probabilities", FLOAT, ["N", n_classes])],
        inits, ml_opset=2,
    )


def two_input_model(w: np.ndarray, b: np.ndarray, split: int, names: tuple[str, str] = ("a", "b")) -> onnx.ModelProto:
    """Inputs ``a`` [N, split] and ``b`` [N, F - split] -> Concat -> MatMul + Add -> Softmax."""
    n_features, n_classes = w.shape
    nodes, inits = _dense("ab", w, b, "z")
    nodes = [helper.make_node("Concat", list(names), ["ab"], axis=1), *nodes,
             helper.make_node("Softmax", ["z"], ["probabilities"], axis=1)]
    return finish(
        nodes,
        [helper.make_tensor_value_info(names[0], FLOAT, ["N", split]),
         helper.make_tensor_value_info(names[1], FLOAT, ["N", n_features - split])],
        [helper.make_tensor_value_info("probabilities", FLOAT, ["N", n_classes])],
        inits,
    )


# ---------------------------------------------------------------------- images


def image_model(
    height: int,
    width: int,
    channels: int,
    n_classes: int,
    *,
    layout: str = "NCHW",
    elem_type: int = FLOAT,
    seed: int = 0,
    metadata: dict[str, str] | None = None,
    batch: int | str = "N",
) -> tuple[onnx.ModelProto, np.ndarray, np.ndarray]:
    """An image classifier: (Cast float) -> Flatten -> MatMul + Add -> Softmax.

    Returns the model and its weights (over the flattened input, in ``layout`` order).
    """
    shape = [batch, channels, height, width] if layout == "NCHW" else [batch, height, width, channels]
    n_values = height * width * channels
    w, b = weights(n_values, n_classes, seed=seed, scale=0.05)
    nodes = []
    source = "pixels"
    if elem_type != FLOAT:
        nodes.append(helper.make_node("Cast", ["pixels"], ["pixels_f"], to=FLOAT))
        source = "pixels_f"
    dense, inits = _dense("flat", w, b, "z")
    nodes += [helper.make_node("Flatten", [source], ["flat"], axis=1), *dense,
              helper.make_node("Softmax", ["z"], ["probabilities"], axis=1)]
    model = finish(
        nodes,
        [helper.make_tensor_value_info("pixels", elem_type, shape)],
        [helper.make_tensor_value_info("probabilities", FLOAT, [batch, n_classes])],
        inits, metadata=metadata,
    )
    return model, w, b


# ---------------------------------------------------------------------- broken models


def custom_op_model(n_features: int = 3, n_classes: int = 2) -> onnx.ModelProto:
    """A graph with ``com.acme.vision:SecretSauce``, which onnxruntime cannot run."""
    return finish(
        [helper.make_node("SecretSauce", ["x"], ["probabilities"], domain="com.acme.vision")],
        [helper.make_tensor_value_info("x", FLOAT, ["N", n_features])],
        [helper.make_tensor_value_info("probabilities", FLOAT, ["N", n_classes])],
        extra_opsets={"com.acme.vision": 1}, check=False,
    )


def metadata_json(names: Sequence[str]) -> dict[str, str]:
    return {"classes": json.dumps(list(names))}


# ---------------------------------------------------------------------- reference


def softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def sigmoid(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-z))


def ort_run(model: onnx.ModelProto, feeds: dict[str, np.ndarray], output: str | None = None) -> np.ndarray:
    """Run ``model`` with onnxruntime's CPU provider directly (the independent reference)."""
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [output] if output else [session.get_outputs()[0].name]
    return session.run(names, feeds)[0]


# ---------------------------------------------------------------------- data directories


def write_arrays(directory: Path, features: np.ndarray | dict[str, np.ndarray], labels: np.ndarray | None = None) -> Path:
    """An ``arrays`` data directory: features.npy (or .npz for a dict) plus labels.npy."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(features, dict):
        np.savez(directory / "features.npz", **features)
    else:
        np.save(directory / "features.npy", features)
    if labels is not None:
        np.save(directory / "labels.npy", labels)
    return directory

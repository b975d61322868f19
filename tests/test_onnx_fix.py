"""Temperature-scaled copies of ONNX models (``calaudit.onnx_fix``).

Models come from ``onnx_graphs`` or are built here with ``onnx.helper`` (IR version
8); skl2onnx provides one real exporter's ZipMap pipeline. Expected values are
computed with numpy from what the *original* model outputs under onnxruntime, never
through calaudit.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnx_graphs as g
from calaudit._version import __version__
from calaudit.errors import InvalidInputError
from calaudit.loaders.model_run import load_model_predictions
from calaudit.onnx.temperature import temperature_scaled_model, write_model
from calaudit.onnx.model import ScoreOutput, load_model

N_ROWS, N_FEATURES, N_CLASSES = 13, 4, 3
TEMPERATURES = (0.5, 1.0, 2.5)


@pytest.fixture
def x():
    return np.random.default_rng(20261126).normal(size=(N_ROWS, N_FEATURES)).astype(np.float32)


@pytest.fixture
def wb():
    return g.weights(N_FEATURES, N_CLASSES, seed=3, scale=1.5)


def session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def run_all(model, feeds):
    s = session(model)
    return dict(zip([o.name for o in s.get_outputs()], s.run(None, feeds)))


def calibrate(tmp_path, proto, temperature, *, logits=None, output=None, name="vendor", **options):
    """Save ``proto``, load it as calaudit does, and temperature-scale it."""
    path = g.save(proto, tmp_path / f"{name}.onnx")
    model = load_model(path, device="cpu")
    chosen = model.choose_score_output(output)
    if logits is None:
        logits = "logit" in chosen.name.lower()
    new = temperature_scaled_model(model, chosen, temperature, scores_are_logits=logits, **options)
    return model, chosen, new


def scaled_softmax_of_probs(p, t):
    return g.softmax(np.log(np.maximum(np.asarray(p, dtype=np.float64), 1e-12)) / t)


def scaled_sigmoid_of_prob(p, t):
    p = np.asarray(p, dtype=np.float64)
    return g.sigmoid((np.log(np.maximum(p, 1e-12)) - np.log(np.maximum(1 - p, 1e-12))) / t)


def zipmap_matrix(rows, keys):
    return np.array([[row[k] for k in keys] for row in rows], dtype=np.float64)


def output_info(model, name):
    return next(o for o in model.graph.output if o.name == name)


def dims(value):
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


# ---------------------------------------------------------------------- logits


@pytest.mark.parametrize("t", TEMPERATURES)
def test_logits_model_gains_calibrated_probabilities(tmp_path, wb, x, t):
    original = g.logits_model(*wb)
    before = run_all(original, {"x": x})
    _, chosen, new = calibrate(tmp_path, original, t)
    assert chosen.name == "logits"
    after = run_all(new, {"x": x})
    assert list(after) == ["logits", "probabilities"]
    np.testing.assert_array_equal(after["logits"], before["logits"])  # the raw scores are untouched
    np.testing.assert_allclose(after["probabilities"], g.softmax(before["logits"] / t), rtol=0, atol=1e-6)
    if t == 1.0:
        np.testing.assert_allclose(after["probabilities"], g.softmax(before["logits"]), rtol=0, atol=1e-6)
    info = output_info(new, "probabilities")
    assert info.type.tensor_type.elem_type == TensorProto.FLOAT
    assert dims(info) == ["N", N_CLASSES]
    path = write_model(new, tmp_path / "calibrated.onnx")
    assert load_model(path, device="cpu").choose_score_output().name == "probabilities"


def test_calaudit_run_reads_the_calibrated_logits_output(tmp_path, wb, x):
    original = g.logits_model(*wb)
    logits = g.ort_run(original, {"x": x}, "logits")
    _, _, new = calibrate(tmp_path, original, 1.7)
    path = write_model(new, tmp_path / "calibrated.onnx")
    labels = np.arange(N_ROWS) % N_CLASSES
    predictions = load_model_predictions(path, g.write_arrays(tmp_path / "data", x, labels), device="cpu")
    assert predictions.source.details["scores"]["output"] == "probabilities"
    assert predictions.source.details["scores"]["treated_as"] == "probabilities"
    np.testing.assert_allclose(predictions.y_proba, g.softmax(logits / 1.7), rtol=0, atol=1e-6)


def test_logits_output_name_clash_uses_calibrated_probabilities(tmp_path, wb, x):
    # "probabilities" already names a tensor: the new output gets the second name.
    original = g.two_outputs_model(*wb, names=("probabilities", "logits"))
    before = run_all(original, {"x": x})
    _, _, new = calibrate(tmp_path, original, 2.0, output="logits")
    after = run_all(new, {"x": x})
    assert list(after) == ["probabilities", "logits", "calibrated_probabilities"]
    np.testing.assert_array_equal(after["probabilities"], before["probabilities"])
    np.testing.assert_allclose(after["calibrated_probabilities"], g.softmax(before["logits"] / 2.0), atol=1e-6)


def test_binary_logit_column_gets_sigmoid(tmp_path, x):
    w, b = g.weights(N_FEATURES, 1, seed=5, scale=2.0)
    original = g.binary_model(w, b, output="logit", sigmoid=False)
    z = g.ort_run(original, {"x": x}, "logit")
    for t in TEMPERATURES:
        _, _, new = calibrate(tmp_path, original, t)
        after = run_all(new, {"x": x})
        np.testing.assert_array_equal(after["logit"], z)
        assert after["probabilities"].shape == (N_ROWS, 1)
        np.testing.assert_allclose(after["probabilities"], g.sigmoid(z / t), rtol=0, atol=1e-6)
        assert dims(output_info(new, "probabilities")) == ["N", 1]
        assert not [n for n in new.graph.node if n.op_type == "Softmax"]


# ---------------------------------------------------------------------- probability tensors


@pytest.mark.parametrize("t", TEMPERATURES)
def test_probability_output_keeps_its_name(tmp_path, wb, x, t):
    original = g.prob_model(*wb)
    p = g.ort_run(original, {"x": x}, "probabilities")
    _, chosen, new = calibrate(tmp_path, original, t)
    assert chosen.name == "probabilities"
    after = run_all(new, {"x": x})
    assert list(after) == ["probabilities"]
    assert after["probabilities"].dtype == np.float32
    np.testing.assert_allclose(after["probabilities"], scaled_softmax_of_probs(p, t), rtol=0, atol=1e-6)
    if t == 1.0:
        np.testing.assert_allclose(after["probabilities"], p, rtol=0, atol=1e-6)
    assert output_info(new, "probabilities") == output_info(original, "probabilities")  # same name, type, shape
    produced = {out for node in new.graph.node for out in node.output}
    assert "probabilities_uncalibrated" in produced
    added = [node for node in new.graph.node if node.name.startswith("calaudit_")]
    assert len(added) == len(new.graph.node) - len(original.graph.node)
    assert all(t.name.startswith("calaudit_") for t in new.graph.initializer[len(original.graph.initializer):])
    softmax = [n for n in new.graph.node if n.name.startswith("calaudit_") and n.op_type == "Softmax"]
    assert [a.i for a in softmax[0].attribute if a.name == "axis"] == [-1]


def test_readers_of_the_probabilities_keep_reading_the_original(tmp_path, wb, x):
    original = g.labelled_prob_model(*wb)
    before = run_all(original, {"x": x})
    _, _, new = calibrate(tmp_path, original, 3.0)
    after = run_all(new, {"x": x})
    np.testing.assert_array_equal(after["label"], before["label"])
    argmax = next(n for n in new.graph.node if n.op_type == "ArgMax")
    assert list(argmax.input) == ["probabilities_uncalibrated"]
    np.testing.assert_allclose(after["probabilities"], scaled_softmax_of_probs(before["probabilities"], 3.0), atol=1e-6)
    assert not np.allclose(after["probabilities"], before["probabilities"], atol=1e-3)


def test_subgraph_readers_keep_reading_the_original(tmp_path, wb, x):
    # An If branch reads "probabilities" from the outer scope: it must follow the rename.
    def branch(name):
        return helper.make_graph(
            [helper.make_node("Identity", ["probabilities"], [name])], name, [],
            [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", N_CLASSES])],
        )

    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "B"], ["z"]),
        helper.make_node("Softmax", ["z"], ["probabilities"], axis=1),
        helper.make_node("If", ["cond"], ["copy"], then_branch=branch("then_out"), else_branch=branch("else_out")),
    ]
    original = g.finish(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", N_FEATURES])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", N_CLASSES]),
         helper.make_tensor_value_info("copy", TensorProto.FLOAT, ["N", N_CLASSES])],
        [numpy_helper.from_array(wb[0], "W"), numpy_helper.from_array(wb[1], "B"),
         numpy_helper.from_array(np.array(True), "cond")],
    )
    before = run_all(original, {"x": x})
    _, _, new = calibrate(tmp_path, original, 2.0, output="probabilities")
    after = run_all(new, {"x": x})
    np.testing.assert_array_equal(after["copy"], before["probabilities"])
    np.testing.assert_allclose(after["probabilities"], scaled_softmax_of_probs(before["probabilities"], 2.0), atol=1e-6)


def test_single_probability_column(tmp_path, x):
    w, b = g.weights(N_FEATURES, 1, seed=6, scale=1.0)
    original = g.binary_model(w, b, output="probability", sigmoid=True)
    p = g.ort_run(original, {"x": x}, "probability")
    for t in TEMPERATURES:
        _, _, new = calibrate(tmp_path, original, t)
        after = run_all(new, {"x": x})["probability"]
        assert after.shape == (N_ROWS, 1)
        np.testing.assert_allclose(after, scaled_sigmoid_of_prob(p, t), rtol=0, atol=1e-6)
        if t == 1.0:
            np.testing.assert_allclose(after, p, rtol=0, atol=1e-6)


def test_one_dimensional_probability_output_keeps_its_shape(tmp_path, x):
    w = np.random.default_rng(8).normal(size=N_FEATURES).astype(np.float32)
    original = g.finish(
        [helper.make_node("MatMul", ["x", "W"], ["z"]), helper.make_node("Sigmoid", ["z"], ["probability"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", N_FEATURES])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["N"])],
        [numpy_helper.from_array(w, "W")],
    )
    p = g.ort_run(original, {"x": x}, "probability")
    _, _, new = calibrate(tmp_path, original, 0.7)
    after = g.ort_run(new, {"x": x}, "probability")
    assert after.shape == (N_ROWS,)
    np.testing.assert_allclose(after, scaled_sigmoid_of_prob(p, 0.7), rtol=0, atol=1e-6)


def test_saturated_probabilities_stay_finite(tmp_path):
    # p = 0 and p = 1 exactly: eps keeps the logarithms finite.
    w = np.array([[60.0, -60.0, 0.0]], dtype=np.float32)
    original = g.prob_model(w, np.zeros(3, np.float32))
    x = np.array([[1.0], [-1.0], [0.0]], dtype=np.float32)
    p = g.ort_run(original, {"x": x}, "probabilities")
    assert (p == 0).any()
    _, _, new = calibrate(tmp_path, original, 2.0)
    after = g.ort_run(new, {"x": x}, "probabilities")
    assert np.isfinite(after).all()
    np.testing.assert_allclose(after, scaled_softmax_of_probs(p, 2.0), rtol=0, atol=1e-6)


# ---------------------------------------------------------------------- ZipMap


def sklearn_zipmap_model():
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(11)
    features = rng.normal(size=(300, N_FEATURES)).astype(np.float32)
    labels = np.array(["ant", "bee", "cat"])[(features[:, 0] + rng.normal(size=300) > 0).astype(int) + (features[:, 1] > 0.5)]
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(features, labels)
    return convert_sklearn(
        pipe, initial_types=[("input", FloatTensorType([None, N_FEATURES]))],
        target_opset={"": 15, "ai.onnx.ml": 1}, options={"zipmap": True},
    )


@pytest.mark.parametrize("t", TEMPERATURES)
def test_sklearn_zipmap_output_carries_calibrated_probabilities(tmp_path, x, t):
    original = sklearn_zipmap_model()
    before = run_all(original, {"input": x})
    keys = ["ant", "bee", "cat"]
    _, chosen, new = calibrate(tmp_path, original, t)
    assert chosen.via_zipmap and chosen.name == "output_probability"
    after = run_all(new, {"input": x})
    assert list(after) == list(before)
    assert [sorted(row) for row in after["output_probability"]] == [keys] * N_ROWS
    expected = scaled_softmax_of_probs(zipmap_matrix(before["output_probability"], keys), t)
    np.testing.assert_allclose(zipmap_matrix(after["output_probability"], keys), expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(after["output_label"], before["output_label"])
    zipmap = next(n for n in new.graph.node if n.op_type == "ZipMap")
    assert zipmap.input[0].startswith("calaudit_")
    assert chosen.fetch in {out for node in new.graph.node for out in node.output}  # original tensor kept


@pytest.mark.parametrize("classes", [["cat", "dog", "eel"], [3, 7, 9]])
def test_helper_zipmap_with_string_and_int_keys(tmp_path, wb, x, classes):
    original = g.zipmap_model(*wb, classes)
    before = run_all(original, {"x": x})
    _, _, new = calibrate(tmp_path, original, 1.8)
    after = run_all(new, {"x": x})
    expected = scaled_softmax_of_probs(zipmap_matrix(before["output_probability"], classes), 1.8)
    np.testing.assert_allclose(zipmap_matrix(after["output_probability"], classes), expected, rtol=0, atol=1e-6)


def test_zipmap_with_exposed_scores_keeps_the_raw_tensor(tmp_path, wb, x):
    original = g.zipmap_model(*wb, ["a", "b", "c"], expose_scores=True)
    before = run_all(original, {"x": x})
    _, _, new = calibrate(tmp_path, original, 2.0)
    after = run_all(new, {"x": x})
    np.testing.assert_array_equal(after["scores"], before["scores"])
    np.testing.assert_allclose(
        zipmap_matrix(after["output_probability"], "abc"), scaled_softmax_of_probs(before["scores"], 2.0), atol=1e-6
    )


def test_calaudit_run_reads_the_calibrated_zipmap(tmp_path, x):
    original = sklearn_zipmap_model()
    before = run_all(original, {"input": x})
    _, _, new = calibrate(tmp_path, original, 0.6)
    path = write_model(new, tmp_path / "calibrated.onnx")
    labels = np.array(["ant", "bee", "cat"])[np.arange(N_ROWS) % 3]
    predictions = load_model_predictions(path, g.write_arrays(tmp_path / "data", x, labels), device="cpu")
    expected = scaled_softmax_of_probs(zipmap_matrix(before["output_probability"], ["ant", "bee", "cat"]), 0.6)
    np.testing.assert_allclose(predictions.y_proba, expected, rtol=0, atol=1e-6)
    assert predictions.class_names == ("ant", "bee", "cat")


# ---------------------------------------------------------------------- dtypes, opsets, shapes


def double_model(w, b, *, logits):
    out = "logits" if logits else "probabilities"
    nodes = [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "B"], ["z" if not logits else out])]
    if not logits:
        nodes.append(helper.make_node("Softmax", ["z"], [out], axis=1))
    return g.finish(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["batch", w.shape[0]])],
        [helper.make_tensor_value_info(out, TensorProto.DOUBLE, ["batch", w.shape[1]])],
        [numpy_helper.from_array(w.astype(np.float64), "W"), numpy_helper.from_array(b.astype(np.float64), "B")],
    )


@pytest.mark.parametrize("logits", [False, True])
def test_double_precision_model(tmp_path, wb, x, logits):
    original = double_model(*wb, logits=logits)
    xd = x.astype(np.float64)
    raw = g.ort_run(original, {"x": xd})
    _, _, new = calibrate(tmp_path, original, 1.3)
    out = "probabilities"
    after = g.ort_run(new, {"x": xd}, out)
    assert after.dtype == np.float64
    expected = g.softmax(raw / 1.3) if logits else scaled_softmax_of_probs(raw, 1.3)
    np.testing.assert_allclose(after, expected, rtol=0, atol=1e-12)
    added = [t for t in new.graph.initializer if t.name.startswith("calaudit_")]
    assert added and all(t.data_type == TensorProto.DOUBLE and not t.dims for t in added)
    if logits:
        assert dims(output_info(new, "probabilities")) == ["batch", N_CLASSES]
        assert output_info(new, "probabilities").type.tensor_type.elem_type == TensorProto.DOUBLE


@pytest.mark.parametrize("opset, axis", [(11, 1), (12, 1), (13, -1), (17, -1)])
def test_softmax_axis_follows_the_opset(tmp_path, wb, x, opset, axis):
    original = g.prob_model(*wb, opset=opset)
    p = g.ort_run(original, {"x": x})
    _, _, new = calibrate(tmp_path, original, 2.0)
    assert [(o.domain, o.version) for o in new.opset_import] == [(o.domain, o.version) for o in original.opset_import]
    assert new.ir_version == original.ir_version == 8
    softmax = next(n for n in new.graph.node if n.op_type == "Softmax" and n.name.startswith("calaudit_"))
    assert [a.i for a in softmax.attribute if a.name == "axis"] == [axis]
    np.testing.assert_allclose(g.ort_run(new, {"x": x}), scaled_softmax_of_probs(p, 2.0), rtol=0, atol=1e-6)


@pytest.mark.parametrize("opset", [11, 13])
def test_three_dimensional_scores_are_scaled_over_the_flattened_row(tmp_path, wb, x, opset):
    # (N, 1, K) probabilities: calaudit run reads them as (N, K); the output keeps (N, 1, K).
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "B"], ["z"]),
        helper.make_node("Softmax", ["z"], ["p2"], axis=1),
        helper.make_node("Unsqueeze", ["p2"], ["probabilities"], axes=[1])
        if opset < 13 else helper.make_node("Unsqueeze", ["p2", "axes"], ["probabilities"]),
    ]
    inits = [numpy_helper.from_array(wb[0], "W"), numpy_helper.from_array(wb[1], "B")]
    if opset >= 13:
        inits.append(numpy_helper.from_array(np.array([1], np.int64), "axes"))
    original = g.finish(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", N_FEATURES])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 1, N_CLASSES])],
        inits, opset=opset,
    )
    p = g.ort_run(original, {"x": x})
    _, _, new = calibrate(tmp_path, original, 2.0)
    after = g.ort_run(new, {"x": x})
    assert after.shape == (N_ROWS, 1, N_CLASSES)
    np.testing.assert_allclose(after[:, 0, :], scaled_softmax_of_probs(p[:, 0, :], 2.0), rtol=0, atol=1e-6)


def test_opset_older_than_8_is_refused(tmp_path, wb):
    with pytest.raises(InvalidInputError, match="opset 7 .* needs opset 8") as error:
        calibrate(tmp_path, g.prob_model(*wb, opset=7), 2.0)
    assert str(tmp_path / "vendor.onnx") in str(error.value)


def test_ir_version_3_gets_constants_not_initializers(tmp_path, wb, x):
    # IR 3 wants every initializer listed as an input too; the edit must not add inputs.
    w, b = wb
    original = g.finish(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "B"], ["z"]),
         helper.make_node("Softmax", ["z"], ["probabilities"], axis=1)],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", N_FEATURES]),
         helper.make_tensor_value_info("W", TensorProto.FLOAT, list(w.shape)),
         helper.make_tensor_value_info("B", TensorProto.FLOAT, list(b.shape))],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", N_CLASSES])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")], opset=8, check=False,
    )
    original.ir_version = 3
    onnx.checker.check_model(original)
    p = g.ort_run(original, {"x": x})
    _, _, new = calibrate(tmp_path, original, 2.0)
    assert new.ir_version == 3
    assert [i.name for i in new.graph.input] == ["x", "W", "B"]
    assert len(new.graph.initializer) == 2
    assert any(n.op_type == "Constant" and n.name.startswith("calaudit_") for n in new.graph.node)
    np.testing.assert_allclose(g.ort_run(new, {"x": x}), scaled_softmax_of_probs(p, 2.0), rtol=0, atol=1e-6)


def test_model_without_a_default_domain_import(tmp_path, wb, x):
    original = g.zipmap_model(*wb, ["a", "b", "c"])
    kept = [o for o in original.opset_import if o.domain == "ai.onnx.ml"]
    del original.opset_import[:]
    original.opset_import.extend(kept)
    onnx.checker.check_model(original)
    before = run_all(original, {"x": x})
    _, _, new = calibrate(tmp_path, original, 2.0)
    assert {o.domain for o in new.opset_import} == {"", "ai.onnx.ml"}
    after = run_all(new, {"x": x})
    expected = scaled_softmax_of_probs(zipmap_matrix(before["output_probability"], "abc"), 2.0)
    np.testing.assert_allclose(zipmap_matrix(after["output_probability"], "abc"), expected, atol=1e-6)


def test_undeclared_width_needs_n_columns(tmp_path, wb, x):
    original = g.logits_model(*wb)
    original.graph.output[0].type.tensor_type.ClearField("shape")
    logits = g.ort_run(original, {"x": x})
    path = g.save(original, tmp_path / "noshape.onnx")
    model = load_model(path, device="cpu")
    chosen = model.choose_score_output()
    new = temperature_scaled_model(model, chosen, 2.0, scores_are_logits=True, n_columns=N_CLASSES)
    np.testing.assert_allclose(g.ort_run(new, {"x": x}, "probabilities"), g.softmax(logits / 2.0), atol=1e-6)
    with pytest.raises(InvalidInputError, match="declares 3 columns but 4"):
        temperature_scaled_model(load_model(g.save(g.logits_model(*wb), tmp_path / "m.onnx")), chosen, 2.0,
                                 scores_are_logits=True, n_columns=4)


def test_calibrating_a_calibrated_model_again(tmp_path, wb, x):
    original = g.prob_model(*wb)
    p = g.ort_run(original, {"x": x})
    _, _, once = calibrate(tmp_path, original, 2.0, name="first")
    _, _, twice = calibrate(tmp_path, once, 1.5, name="second")
    expected = scaled_softmax_of_probs(scaled_softmax_of_probs(p, 2.0), 1.5)
    np.testing.assert_allclose(g.ort_run(twice, {"x": x}), expected, rtol=0, atol=1e-6)
    produced = [out for node in twice.graph.node for out in node.output]
    assert len(produced) == len(set(produced))
    meta = {m.key: m.value for m in twice.metadata_props}
    assert meta["calaudit_temperature"] == "1.5"
    assert len([m for m in twice.metadata_props if m.key == "calaudit_temperature"]) == 1


# ---------------------------------------------------------------------- metadata, files, validation


def test_metadata_and_provenance(tmp_path, wb):
    t = 0.1 + 0.2  # 0.30000000000000004: repr round-trips exactly
    original = g.prob_model(*wb, metadata={"classes": '["a", "b", "c"]', "author": "vendor"})
    model, _, new = calibrate(tmp_path, original, t, metadata={"calaudit_data": "val/", "note": "fitted"})
    meta = {m.key: m.value for m in new.metadata_props}
    assert float(meta["calaudit_temperature"]) == t
    assert meta["calaudit_source_sha256"] == model.sha256
    assert meta["calaudit_scores"] == "probabilities"
    assert meta["calaudit_output"] == "probabilities"
    assert meta["calaudit_version"] == __version__
    assert meta["calaudit_data"] == "val/" and meta["note"] == "fitted"
    assert meta["classes"] == '["a", "b", "c"]' and meta["author"] == "vendor"
    assert (new.producer_name, new.producer_version) == (original.producer_name, original.producer_version)
    assert [i.name for i in new.graph.input] == [i.name for i in original.graph.input]
    onnx.checker.check_model(new)
    logits_meta = {m.key: m.value for m in calibrate(tmp_path, g.logits_model(*wb), 2.0, name="l")[2].metadata_props}
    assert logits_meta["calaudit_scores"] == "logits" and logits_meta["calaudit_output"] == "probabilities"


def test_input_untouched_and_write_is_atomic(tmp_path, wb, x):
    source = g.save(g.prob_model(*wb), tmp_path / "vendor.onnx")
    before = source.read_bytes()
    model = load_model(source, device="cpu")
    proto_before = model.proto.SerializeToString()
    new = temperature_scaled_model(model, model.choose_score_output(), 2.0, scores_are_logits=False)
    assert model.proto.SerializeToString() == proto_before  # the loaded model is not edited either
    out_dir = tmp_path / "out"
    written = write_model(new, out_dir / "calibrated.onnx")
    assert written == out_dir / "calibrated.onnx"
    assert sorted(p.name for p in out_dir.iterdir()) == ["calibrated.onnx"]  # no temporary file left
    assert source.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "vendor.onnx"]
    onnx.checker.check_model(str(written))
    reloaded = ort.InferenceSession(str(written), providers=["CPUExecutionProvider"])
    p = g.ort_run(g.prob_model(*wb), {"x": x})
    np.testing.assert_allclose(reloaded.run(None, {"x": x})[0], scaled_softmax_of_probs(p, 2.0), atol=1e-6)
    assert load_model(written).metadata["calaudit_temperature"] == "2.0"


def test_non_float_score_tensor_is_refused(tmp_path, wb):
    path = g.save(g.labelled_prob_model(*wb), tmp_path / "vendor.onnx")
    model = load_model(path, device="cpu")
    spec = next(s for s in model.outputs if s.name == "label")
    label = ScoreOutput("label", spec, "label", False, None, "test")
    with pytest.raises(InvalidInputError, match="int64, not float or double") as error:
        temperature_scaled_model(model, label, 2.0, scores_are_logits=True)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_external_data_is_refused(tmp_path, wb):
    path = tmp_path / "vendor.onnx"
    onnx.save_model(g.prob_model(*wb), str(path), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    assert (tmp_path / "weights.bin").is_file()
    model = load_model(path, device="cpu")
    with pytest.raises(InvalidInputError, match="external data") as error:
        temperature_scaled_model(model, model.choose_score_output(), 2.0, scores_are_logits=False)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("t", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_temperature_is_refused(tmp_path, wb, t):
    path = g.save(g.prob_model(*wb), tmp_path / "vendor.onnx")
    model = load_model(path, device="cpu")
    with pytest.raises(InvalidInputError, match="temperature") as error:
        temperature_scaled_model(model, model.choose_score_output(), t, scores_are_logits=False)
    assert str(path) in str(error.value)

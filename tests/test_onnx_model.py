"""Loading vendor ONNX models, choosing the score output, reading scores, naming classes.

Models come from ``onnx_graphs`` (tiny, built with ``onnx.helper``); expected scores
are computed independently, by running onnxruntime directly or with numpy.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

import onnx_graphs as g
from calaudit.errors import CalauditError, InvalidInputError, UsageError
from calaudit.loaders.model_run import load_model_predictions
from calaudit.onnx.model import VendorModel, load_model
from calaudit.onnx.scores import decide_logits

N_ROWS, N_FEATURES, N_CLASSES = 11, 4, 3


@pytest.fixture
def rng():
    return np.random.default_rng(20261125)


@pytest.fixture
def wb():
    return g.weights(N_FEATURES, N_CLASSES, seed=7)


@pytest.fixture
def x(rng):
    return rng.normal(size=(N_ROWS, N_FEATURES)).astype(np.float32)


@pytest.fixture
def y(rng):
    labels = rng.integers(0, N_CLASSES, N_ROWS)
    labels[:N_CLASSES] = np.arange(N_CLASSES)  # every class present
    return labels


@pytest.fixture
def data(tmp_path, x, y):
    return g.write_arrays(tmp_path / "data", x, y)


def renormalised(p):
    p = np.asarray(p, dtype=np.float64)
    return p / p.sum(axis=1, keepdims=True)


def run(tmp_path, model, data, name="model", **options):
    path = g.save(model, tmp_path / f"{name}.onnx")
    return load_model_predictions(path, data, **options)


# ---------------------------------------------------------------------- probability tensors and logits


def test_probability_tensor_model(tmp_path, wb, x, y, data):
    model = g.prob_model(*wb)
    expected = g.ort_run(model, {"x": x})
    predictions = run(tmp_path, model, data)
    np.testing.assert_allclose(predictions.y_proba, renormalised(expected), rtol=0, atol=1e-12)
    assert predictions.y_true.tolist() == y.tolist()
    assert predictions.transform == "none"
    scores = predictions.source.details["scores"]
    assert scores["output"] == "probabilities"
    assert scores["treated_as"] == "probabilities"
    assert predictions.class_names == ("0", "1", "2")


def test_logits_model_named_logits_gets_softmax(tmp_path, wb, x, data):
    model = g.logits_model(*wb)
    raw = g.ort_run(model, {"x": x})
    assert (raw < 0).any() and (raw > 1).any()  # the fixture really emits logits
    predictions = run(tmp_path, model, data)
    np.testing.assert_allclose(predictions.y_proba, g.softmax(raw), rtol=0, atol=1e-12)
    assert predictions.transform == "softmax"
    assert predictions.source.details["scores"]["treated_as"] == "logits"
    assert "logits" in predictions.source.details["scores"]["reason"]


def test_logits_behind_an_output_named_probabilities_is_an_error_suggesting_logits(tmp_path, wb, data):
    model = g.logits_model(*wb, output="probabilities")
    with pytest.raises(InvalidInputError) as info:
        run(tmp_path, model, data)
    message = str(info.value)
    assert "--logits" in message
    assert "'probabilities'" in message
    assert "model.onnx" in message
    assert "\n" not in message


def test_logits_behind_an_output_named_probabilities_work_with_the_logits_flag(tmp_path, wb, x, data):
    model = g.logits_model(*wb, output="probabilities")
    predictions = run(tmp_path, model, data, logits=True)
    np.testing.assert_allclose(predictions.y_proba, g.softmax(g.ort_run(model, {"x": x})), rtol=0, atol=1e-12)
    assert predictions.source.details["scores"]["treated_as"] == "logits"
    assert predictions.source.details["scores"]["reason"] == "--logits was given"


def test_row_sum_tolerance_decides_between_probabilities_and_an_error(tmp_path, wb, x, data):
    # Softmax * 0.98: in [0, 1] but summing to 0.98.
    model = g.prob_model(*wb)
    node = onnx.helper.make_node("Mul", ["sm", "k"], ["probabilities"])
    model.graph.node[-1].output[0] = "sm"
    model.graph.node.append(node)
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.array(0.98, dtype=np.float32), "k"))
    raw = g.ort_run(model, {"x": x})
    assert raw.max() <= 1.0
    with pytest.raises(InvalidInputError, match="--logits"):
        run(tmp_path, model, data)
    predictions = run(tmp_path, model, data, row_sum_tolerance=0.05)
    np.testing.assert_allclose(predictions.y_proba, renormalised(raw), rtol=0, atol=1e-12)
    assert predictions.max_row_sum_deviation == pytest.approx(0.02, abs=1e-5)


# ---------------------------------------------------------------------- binary, one column


@pytest.fixture
def binary(tmp_path, rng):
    w, b = g.weights(N_FEATURES, 1, seed=3)
    x = rng.normal(size=(N_ROWS, N_FEATURES)).astype(np.float32)
    y = np.array([0, 1] * (N_ROWS // 2) + [1])
    return w, b, x, g.write_arrays(tmp_path / "binary", x, y)


def test_binary_sigmoid_model_with_one_output_column(tmp_path, binary):
    w, b, x, data = binary
    model = g.binary_model(w, b)
    s = g.ort_run(model, {"x": x})[:, 0].astype(np.float64)
    predictions = run(tmp_path, model, data)
    assert predictions.n_classes == 2
    np.testing.assert_allclose(predictions.y_proba[:, 1], s, rtol=0, atol=1e-12)
    np.testing.assert_allclose(predictions.y_proba[:, 0], 1.0 - s, rtol=0, atol=1e-12)
    assert predictions.class_names == ("0", "1")
    assert predictions.source.details["scores"]["treated_as"] == "probabilities"
    assert "binary" in predictions.source.details["scores"]["reason"]


def test_binary_logit_named_output_gets_sigmoid(tmp_path, binary):
    w, b, x, data = binary
    model = g.binary_model(w, b, output="logit", sigmoid=False)
    z = g.ort_run(model, {"x": x})[:, 0]
    predictions = run(tmp_path, model, data)
    np.testing.assert_allclose(predictions.y_proba[:, 1], g.sigmoid(z), rtol=0, atol=1e-12)
    assert predictions.transform == "sigmoid"


def test_binary_raw_score_outside_0_1_is_an_error(tmp_path, binary):
    w, b, x, data = binary
    model = g.binary_model(w, b, output="score", sigmoid=False)
    with pytest.raises(InvalidInputError, match="--logits") as info:
        run(tmp_path, model, data)
    assert "one column" in str(info.value)
    predictions = run(tmp_path, model, data, logits=True)
    np.testing.assert_allclose(predictions.y_proba[:, 1], g.sigmoid(g.ort_run(model, {"x": x})[:, 0]), atol=1e-12)


# ---------------------------------------------------------------------- ZipMap


def zipmap_reference(model, x, keys):
    maps = g.ort_run(model, {"x": x}, "output_probability")
    assert isinstance(maps, list) and set(maps[0]) == set(keys)
    return np.array([[row[k] for k in keys] for row in maps], dtype=np.float64)


def test_zipmap_with_string_keys_is_read_through_its_input_tensor(tmp_path, wb, x, y):
    names = ["setosa", "versicolor", "virginica"]
    model = g.zipmap_model(*wb, names)
    data = g.write_arrays(tmp_path / "data", x, np.array(names)[y])
    expected = zipmap_reference(model, x, names)
    predictions = run(tmp_path, model, data)
    assert predictions.class_names == tuple(names)
    assert predictions.source.details["class_names_source"] == "ZipMap keys"
    assert predictions.y_true.tolist() == y.tolist()
    np.testing.assert_allclose(predictions.y_proba, renormalised(expected), rtol=0, atol=1e-12)
    scores = predictions.source.details["scores"]
    assert scores["output"] == "output_probability"
    assert scores["read_from"] == "scores"  # the tensor feeding the ZipMap, not the maps


def test_zipmap_session_exposes_the_zipmap_input(tmp_path, wb):
    path = g.save(g.zipmap_model(*wb, ["a", "b", "c"]), tmp_path / "zip.onnx")
    model = load_model(path)
    chosen = model.choose_score_output()
    assert chosen.via_zipmap is True
    assert chosen.fetch == "scores"
    assert chosen.class_labels == ("a", "b", "c")
    assert "scores" in [o.name for o in model.session.get_outputs()]
    # the signature recorded is the vendor's, not the edited graph's
    assert [o.name for o in model.outputs] == ["label", "output_probability"]
    assert path.read_bytes() == g.zipmap_model(*wb, ["a", "b", "c"]).SerializeToString()  # file untouched


def test_zipmap_with_int64_keys(tmp_path, wb, x, y):
    keys = [3, 5, 7]
    model = g.zipmap_model(*wb, keys)
    data = g.write_arrays(tmp_path / "data", x, np.array(keys)[y])
    expected = zipmap_reference(model, x, keys)
    predictions = run(tmp_path, model, data)
    assert predictions.class_names == ("3", "5", "7")
    assert predictions.y_true.tolist() == y.tolist()
    np.testing.assert_allclose(predictions.y_proba, renormalised(expected), rtol=0, atol=1e-12)


@pytest.mark.parametrize("keys", [["a", "b", "c"], [3, 5, 7]])
def test_zipmap_maps_are_read_when_the_input_cannot_be_exposed(tmp_path, monkeypatch, wb, x, y, keys):
    monkeypatch.setattr(VendorModel, "expose", lambda self, tensor: False)
    model = g.zipmap_model(*wb, keys)
    data = g.write_arrays(tmp_path / "data", x, np.array(keys)[y])
    predictions = run(tmp_path, model, data)
    assert predictions.source.details["scores"]["read_from"] == "output_probability"
    assert predictions.class_names == tuple(str(k) for k in keys)
    np.testing.assert_allclose(predictions.y_proba, renormalised(zipmap_reference(model, x, keys)), atol=1e-12)


def test_labels_the_model_cannot_output_are_an_error_naming_them(tmp_path, wb, x):
    model = g.zipmap_model(*wb, ["a", "b", "c"])
    labels = np.array(["a", "b", "c", "zebra"] + ["a"] * (N_ROWS - 4))
    data = g.write_arrays(tmp_path / "data", x, labels)
    with pytest.raises(InvalidInputError) as info:
        run(tmp_path, model, data)
    assert "zebra" in str(info.value)
    assert "\n" not in str(info.value)


def test_real_skl2onnx_logistic_regression_pipeline_matches_predict_proba(tmp_path, rng):
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = rng.normal(size=(80, 5)).astype(np.float32)
    names = np.array(["ant", "bee", "cow"])
    y = names[(x[:, 0] + 0.5 * rng.normal(size=80) > 0).astype(int) + (x[:, 1] > 0.5)]
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    model = to_onnx(pipeline, initial_types=[("input", FloatTensorType([None, 5]))],
                    target_opset={"": 17, "ai.onnx.ml": 3})
    model.ir_version = g.IR_VERSION
    assert any(node.op_type == "ZipMap" for node in model.graph.node)
    data = g.write_arrays(tmp_path / "data", x, y)
    predictions = run(tmp_path, model, data)
    assert predictions.class_names == tuple(pipeline.classes_)
    assert predictions.source.details["class_names_source"] == "ZipMap keys"
    np.testing.assert_allclose(predictions.y_proba, pipeline.predict_proba(x), rtol=0, atol=1e-6)
    assert predictions.y_true.tolist() == [list(pipeline.classes_).index(v) for v in y]


# ---------------------------------------------------------------------- choosing the score output


def test_label_output_is_ignored(tmp_path, wb, x, data):
    model = g.labelled_prob_model(*wb)
    predictions = run(tmp_path, model, data)
    assert predictions.source.details["scores"]["output"] == "probabilities"
    np.testing.assert_allclose(predictions.y_proba, renormalised(g.ort_run(model, {"x": x}, "probabilities")), atol=1e-12)


def test_several_candidates_prefer_the_zipmap(tmp_path, wb):
    model = g.zipmap_model(*wb, ["a", "b", "c"], expose_scores=True)
    chosen = load_model(g.save(model, tmp_path / "m.onnx")).choose_score_output()
    assert chosen.name == "output_probability"
    assert chosen.via_zipmap


@pytest.mark.parametrize(
    ("names", "chosen"),
    [
        (("class_probs", "raw"), "class_probs"),
        (("out", "Probabilities"), "Probabilities"),
        (("embedding", "logits"), "logits"),
        (("probs", "logits"), "probs"),
    ],
)
def test_several_float_outputs_choose_by_name(tmp_path, wb, names, chosen):
    model = g.two_outputs_model(*wb, names)
    assert load_model(g.save(model, tmp_path / "m.onnx")).choose_score_output().name == chosen


def test_several_float_outputs_without_prob_or_logit_ask_for_output(tmp_path, wb, x, data):
    model = g.two_outputs_model(*wb, ("out_a", "out_b"))
    with pytest.raises(UsageError) as info:
        run(tmp_path, model, data)
    message = str(info.value)
    assert "--output" in message and "out_a" in message and "out_b" in message
    predictions = run(tmp_path, model, data, output="out_a")
    np.testing.assert_allclose(predictions.y_proba, renormalised(g.ort_run(model, {"x": x}, "out_a")), atol=1e-12)
    assert predictions.source.details["scores"]["output"] == "out_a"


def test_output_naming_a_missing_output(tmp_path, wb, data):
    model = g.labelled_prob_model(*wb)
    with pytest.raises(UsageError) as info:
        run(tmp_path, model, data, output="proba")
    message = str(info.value)
    assert "'proba'" in message
    assert "probabilities" in message and "label" in message  # lists the real outputs


def test_output_naming_a_label_output(tmp_path, wb, data):
    model = g.labelled_prob_model(*wb)
    with pytest.raises(CalauditError) as info:
        run(tmp_path, model, data, output="label")
    message = str(info.value)
    assert "'label'" in message
    assert "int64" in message
    assert "not class scores" in message


# ---------------------------------------------------------------------- input types and shapes


def test_int64_input(tmp_path, wb, rng, y):
    model = g.int64_input_model(*wb)
    x = rng.integers(-4, 5, size=(N_ROWS, N_FEATURES)).astype(np.int64)
    data = g.write_arrays(tmp_path / "data", x, y)
    predictions = run(tmp_path, model, data)
    np.testing.assert_allclose(predictions.y_proba, renormalised(g.ort_run(model, {"x": x})), atol=1e-12)


def test_string_input(tmp_path, wb, rng, y):
    vocabulary, values = ["low", "mid", "high"], [-1.0, 0.0, 2.0]
    model = g.string_input_model(vocabulary, values, *wb)
    x = np.array(vocabulary)[rng.integers(0, 3, size=(N_ROWS, N_FEATURES))]
    data = g.write_arrays(tmp_path / "data", x, y)
    expected = g.ort_run(model, {"x": x.astype(object)})
    numeric = np.vectorize(dict(zip(vocabulary, values)).get)(x).astype(np.float64)
    np.testing.assert_allclose(expected, g.softmax(numeric @ wb[0] + wb[1]), atol=1e-5)  # the model is what we think
    predictions = run(tmp_path, model, data)
    np.testing.assert_allclose(predictions.y_proba, renormalised(expected), atol=1e-12)


def test_two_named_inputs(tmp_path, wb, x, y):
    model = g.two_input_model(*wb, split=1)
    data = g.write_arrays(tmp_path / "data", {"b": x[:, 1:], "a": x[:, :1]}, y)
    predictions = run(tmp_path, model, data)
    expected = g.ort_run(model, {"a": x[:, :1], "b": x[:, 1:]})
    np.testing.assert_allclose(predictions.y_proba, renormalised(expected), atol=1e-12)
    np.testing.assert_allclose(expected, g.softmax(x.astype(np.float64) @ wb[0] + wb[1]), atol=1e-5)


@pytest.mark.parametrize(("fixed", "batch_size"), [(1, 256), (4, 256), (4, 3)])
def test_fixed_batch_dimension(tmp_path, wb, x, data, fixed, batch_size):
    model = g.prob_model(*wb, batch=fixed)
    reference = g.prob_model(*wb)  # same weights, free batch
    predictions = run(tmp_path, model, data, batch_size=batch_size)
    assert N_ROWS % fixed != 0 or fixed == 1  # 11 rows: the last batch of 4 is padded
    np.testing.assert_allclose(predictions.y_proba, renormalised(g.ort_run(reference, {"x": x})), atol=1e-7)
    assert predictions.n_samples == N_ROWS
    assert predictions.source.details["batch_size"] == fixed


def test_fixed_batch_feeds_exactly_that_many_rows(tmp_path, wb, data, monkeypatch):
    seen = []
    original = VendorModel.run

    def spy(self, fetch, feeds):
        seen.append({name: array.shape for name, array in feeds.items()})
        return original(self, fetch, feeds)

    monkeypatch.setattr(VendorModel, "run", spy)
    run(tmp_path, g.prob_model(*wb, batch=4), data)
    assert seen == [{"x": (4, N_FEATURES)}] * 3


def test_nhwc_image_input_from_arrays(tmp_path, rng):
    model, w, b = g.image_model(5, 6, 3, 2, layout="NHWC")
    path = g.save(model, tmp_path / "nhwc.onnx")
    spec = load_model(path).inputs[0]
    assert spec.shape[1:] == (5, 6, 3)
    assert spec.fixed_batch is None
    images = rng.random(size=(7, 5, 6, 3)).astype(np.float32)
    data = g.write_arrays(tmp_path / "data", images, np.array([0, 1, 0, 1, 0, 1, 1]))
    predictions = load_model_predictions(path, data)
    expected = g.softmax(images.reshape(7, -1).astype(np.float64) @ w + b)
    np.testing.assert_allclose(predictions.y_proba, expected, atol=1e-5)


# ---------------------------------------------------------------------- class names


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("classes", '["cat", "dog", "emu"]'),
        ("class_names", "cat,dog,emu"),
        ("labels", "cat, dog ,emu"),
        ("classes", "cat\ndog\nemu\n"),
        ("Classes", '{"0": "cat", "1": "dog", "2": "emu"}'),
    ],
)
def test_class_names_in_metadata(tmp_path, wb, x, y, key, value):
    model = g.prob_model(*wb, metadata={key: value})
    data = g.write_arrays(tmp_path / "data", x, np.array(["cat", "dog", "emu"])[y])
    predictions = run(tmp_path, model, data)
    assert predictions.class_names == ("cat", "dog", "emu")
    assert predictions.source.details["class_names_source"] == "the model's metadata"
    assert predictions.y_true.tolist() == y.tolist()


def test_metadata_with_the_wrong_number_of_classes_is_skipped_with_a_note(tmp_path, wb, data):
    model = g.prob_model(*wb, metadata={"classes": '["cat", "dog"]'})
    predictions = run(tmp_path, model, data)
    assert predictions.class_names == ("0", "1", "2")
    assert any("2 classes" in note for note in predictions.source.details["notes"])


def test_class_name_precedence(tmp_path, wb, x, y):
    zip_names = ["a", "b", "c"]
    metadata = {"classes": '["m1", "m2", "m3"]'}
    data = g.write_arrays(tmp_path / "data", x, np.array(zip_names)[y])
    (data / "classes.txt").write_text("t1\nt2\nt3\n")
    # ZipMap keys beat the metadata and classes.txt
    predictions = run(tmp_path, g.zipmap_model(*wb, zip_names, metadata=metadata), data, name="zip")
    assert predictions.class_names == tuple(zip_names)
    # the classifier node's classlabels (no ZipMap) beat the metadata
    predictions = run(tmp_path, g.zipmap_model(*wb, zip_names, metadata=metadata, zipmap=False), data, name="lc")
    assert predictions.class_names == tuple(zip_names)
    assert predictions.source.details["class_names_source"].startswith("the model's classifier node")
    # --classes beats everything
    predictions = run(tmp_path, g.zipmap_model(*wb, zip_names), data, name="zip2", class_names=["c", "b", "a"])
    assert predictions.class_names == ("c", "b", "a")
    assert predictions.source.details["class_names_source"] == "--classes"
    assert predictions.y_true.tolist() == [2 - k for k in y.tolist()]
    # metadata beats classes.txt
    data2 = g.write_arrays(tmp_path / "data2", x, np.array(["m1", "m2", "m3"])[y])
    (data2 / "classes.txt").write_text("t1\nt2\nt3\n")
    predictions = run(tmp_path, g.prob_model(*wb, metadata=metadata), data2, name="meta")
    assert predictions.class_names == ("m1", "m2", "m3")
    # classes.txt beats indices
    data3 = g.write_arrays(tmp_path / "data3", x, np.array(["t1", "t2", "t3"])[y])
    (data3 / "classes.txt").write_text("t1\nt2\nt3\n")
    predictions = run(tmp_path, g.prob_model(*wb), data3, name="plain")
    assert predictions.class_names == ("t1", "t2", "t3")
    assert predictions.source.details["class_names_source"] == "classes.txt"


def test_classes_option_with_the_wrong_count_is_a_usage_error(tmp_path, wb, data):
    with pytest.raises(UsageError, match="--classes"):
        run(tmp_path, g.prob_model(*wb), data, class_names=["a", "b"])


# ---------------------------------------------------------------------- broken models


def test_ir_version_too_new(tmp_path, wb):
    model = g.prob_model(*wb)
    model.ir_version = 14
    path = g.save(model, tmp_path / "new.onnx")
    with pytest.raises(InvalidInputError) as info:
        load_model(path)
    message = str(info.value)
    assert str(path) in message
    assert "IR version 14" in message
    assert "ir_version =" in message and "upgrade onnxruntime" in message
    assert "\n" not in message


def test_custom_op_domain_is_named(tmp_path):
    path = g.save(g.custom_op_model(), tmp_path / "custom.onnx")
    with pytest.raises(InvalidInputError) as info:
        load_model(path)
    message = str(info.value)
    assert "com.acme.vision:SecretSauce" in message
    assert str(path) in message


def test_opset_too_new(tmp_path, wb):
    model = g.prob_model(*wb)
    model.opset_import[0].version = 99
    path = g.save(model, tmp_path / "future.onnx")
    with pytest.raises(InvalidInputError) as info:
        load_model(path)
    assert "opset 99" in str(info.value)


@pytest.mark.parametrize(
    "content",
    [b"this is not an onnx model \x00\xff\xfe garbage", np.random.default_rng(0).bytes(2000), b"", b"\x08\x08"],
    ids=["text", "random", "empty", "ir-version-only"],
)
def test_garbage_bytes_are_not_an_onnx_model(tmp_path, content):
    path = tmp_path / "garbage.onnx"
    path.write_bytes(content)
    with pytest.raises(InvalidInputError) as info:
        load_model(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert "not an ONNX model" in message


def test_missing_model_file(tmp_path):
    with pytest.raises(InvalidInputError, match="no such model file"):
        load_model(tmp_path / "absent.onnx")
    with pytest.raises(InvalidInputError, match="not a file"):
        load_model(tmp_path)


# ---------------------------------------------------------------------- provenance


def test_provenance(tmp_path, wb):
    import hashlib

    model = g.prob_model(*wb, metadata={"classes": "a,b,c", "author": "acme"})
    path = g.save(model, tmp_path / "m.onnx")
    info = load_model(path).provenance()
    assert info["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (info["producer_name"], info["producer_version"]) == ("calaudit-tests", "1.0")
    assert info["ir_version"] == 8
    assert info["opsets"] == {"ai.onnx": g.OPSET}
    assert info["metadata"] == {"classes": "a,b,c", "author": "acme"}
    assert info["inputs"] == [{"name": "x", "type": "tensor(float)", "shape": [None, N_FEATURES]}]
    assert info["outputs"] == [{"name": "probabilities", "type": "tensor(float)", "shape": [None, N_CLASSES]}]
    assert info["provider"] == "CPUExecutionProvider"
    json.dumps(info)  # JSON-ready


# ---------------------------------------------------------------------- decide_logits


def decide(scores, name="probabilities", logits=False, tol=1e-2):
    return decide_logits(np.asarray(scores, dtype=np.float64), output_name=name, logits_flag=logits,
                         row_sum_tolerance=tol, where="m.onnx")


def test_decide_logits_rounding_tolerance():
    assert decide([[1.0 + 5e-7, -5e-7], [0.5, 0.5]])[0] is False
    with pytest.raises(InvalidInputError):
        decide([[1.0 + 1e-5, -1e-5], [0.5, 0.5]])


def test_decide_logits_single_column():
    assert decide([[0.2], [1.0], [0.0]])[0] is False
    with pytest.raises(InvalidInputError, match="--logits"):
        decide([[0.2], [1.5]], name="score")
    assert decide([[0.2], [0.7]], name="Logit")[0] is True
    assert decide([[0.2], [1.5]], logits=True)[0] is True


def test_decide_logits_rejects_non_finite_scores():
    with pytest.raises(InvalidInputError, match="finite"):
        decide([[0.5, 0.5], [np.nan, 1.0]], logits=True)

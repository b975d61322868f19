"""Image folders (calaudit.loaders.images): decoding, preprocessing, errors, batching.

Expected tensors are computed here with Pillow and numpy from the files on disk.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from PIL import Image

import calaudit.cli.group as cli_module
import onnx_graphs as g
from calaudit.cli import cli
from calaudit.errors import InvalidInputError, UsageError
from calaudit.loaders.datadir import load_data_directory
from calaudit.loaders.images import load_image_folder
from calaudit.loaders.model_run import load_model_predictions
from calaudit.onnx.model import load_model

H, W = 6, 5
FORMATS = {"png": "PNG", "jpg": "JPEG", "bmp": "BMP", "webp": "WEBP"}
SCALE = np.float32(1.0 / 255.0)


@pytest.fixture(autouse=True)
def _reset_debug_flag(monkeypatch):
    monkeypatch.setitem(cli_module._state, "debug", False)


def make_folder(root, classes=("cat", "dog"), size=(H, W), per_class=None, seed=0, mode="RGB"):
    """``root/<class>/<i>.<ext>``: one image per format per class, random pixels."""
    rng = np.random.default_rng(seed)
    files = []
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i, ext in enumerate(per_class or FORMATS):
            shape = (size[0], size[1], 3) if mode == "RGB" else size
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(
                root / name / f"{i}.{ext}", format=FORMATS[ext])
            files.append(root / name / f"{i}.{ext}")
    return sorted(files)


def decoded(path, mode="RGB"):
    """The file as Pillow decodes it, converted to ``mode``, as float32 pixels (H, W, C)."""
    with Image.open(path) as image:
        pixels = np.asarray(image.convert(mode), dtype=np.float32)
    return pixels if pixels.ndim == 3 else pixels[:, :, None]


def all_rows(dataset, model_path, batch_size=1000):
    spec = load_model(model_path).inputs[0]
    batches = list(dataset.batches([spec], batch_size))
    return np.concatenate([b.feeds[spec.name] for b in batches]), np.concatenate([b.rows for b in batches])


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="calaudit")


def one_error_line(result, code):
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("calaudit: error: ")
    return lines[0]


# ---------------------------------------------------------------------- formats and layouts


def test_every_format_is_decoded_nchw_inferred(tmp_path):
    root = tmp_path / "images"
    files = make_folder(root)
    model, w, b = g.image_model(H, W, 3, 2, layout="NCHW")
    path = g.save(model, tmp_path / "m.onnx")
    dataset = load_data_directory(root)
    assert dataset.kind == "images"
    assert dataset.class_names == ("cat", "dog")
    assert dataset.labels.tolist() == ["cat"] * 4 + ["dog"] * 4
    assert sorted(dataset.row_ids.tolist()) == sorted(str(f.relative_to(root)) for f in files)
    tensors, rows = all_rows(dataset, path, batch_size=3)
    assert tensors.shape == (8, 3, H, W) and tensors.dtype == np.float32
    for row, rel in zip(rows, dataset.row_ids[rows]):
        expected = (decoded(root / rel) * SCALE).transpose(2, 0, 1)
        np.testing.assert_allclose(tensors[row], expected, rtol=1e-6, atol=0)
    predictions = load_model_predictions(path, root)
    flat = np.stack([(decoded(root / rel) * SCALE).transpose(2, 0, 1).reshape(-1) for rel in dataset.row_ids])
    np.testing.assert_allclose(predictions.y_proba, g.softmax(flat.astype(np.float64) @ w + b), atol=1e-5)
    assert predictions.class_names == ("cat", "dog")
    assert predictions.source.details["data"]["preprocess"]["layout"] == "NCHW"


def test_nhwc_inferred(tmp_path):
    root = tmp_path / "images"
    make_folder(root)
    model, _, _ = g.image_model(H, W, 3, 2, layout="NHWC")
    path = g.save(model, tmp_path / "m.onnx")
    dataset = load_image_folder(root)
    tensors, rows = all_rows(dataset, path)
    assert tensors.shape == (8, H, W, 3)
    for row in rows:
        np.testing.assert_allclose(tensors[row], decoded(root / dataset.row_ids[row]) * SCALE, rtol=1e-6)
    assert dataset.resolved.layout == "NHWC"


def test_uppercase_extensions_and_hidden_folders(tmp_path):
    root = tmp_path / "images"
    make_folder(root, per_class=["png"])
    (root / "cat" / "0.png").rename(root / "cat" / "0.PNG")
    (root / ".thumbnails").mkdir()
    Image.new("RGB", (W, H)).save(root / ".thumbnails" / "x.png")
    (root / "cat" / "notes.txt").write_text("not an image")
    dataset = load_image_folder(root)
    assert dataset.labels.tolist() == ["cat", "dog"]
    assert dataset.class_names == ("cat", "dog")


def test_preprocess_json_for_a_model_without_a_fixed_size(tmp_path):
    root = tmp_path / "images"
    make_folder(root, per_class=["png", "bmp"])
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.5]
    (root / "preprocess.json").write_text(json.dumps(
        {"size": [H, W], "scale": 0.5, "mean": mean, "std": std, "color": "bgr", "layout": "NHWC"}))
    model, _, _ = g.image_model(H, W, 3, 2, layout="NHWC", batch="N")
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_param = "height"
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "width"
    path = g.save(model, tmp_path / "m.onnx")
    assert load_model(path).inputs[0].shape[1:3] == ("height", "width")
    dataset = load_image_folder(root)
    tensors, rows = all_rows(dataset, path)
    for row in rows:
        pixels = decoded(root / dataset.row_ids[row])[:, :, ::-1]
        expected = (pixels * np.float32(0.5) - np.float32(mean)) / np.float32(std)
        np.testing.assert_allclose(tensors[row], expected, rtol=1e-6, atol=1e-6)
    assert dataset.describe()["preprocess"]["color"] == "bgr"
    assert "preprocess.json" in dataset.describe()["files"]


def test_options_override_preprocess_json(tmp_path):
    root = tmp_path / "images"
    make_folder(root, per_class=["png"])
    (root / "preprocess.json").write_text(json.dumps({"scale": 0.5, "mean": [9.0]}))
    model, _, _ = g.image_model(H, W, 3, 2)
    path = g.save(model, tmp_path / "m.onnx")
    dataset = load_image_folder(root, preprocess={"scale": "1"})
    tensors, rows = all_rows(dataset, path)
    for row in rows:
        expected = (decoded(root / dataset.row_ids[row]) - np.float32(9.0)).transpose(2, 0, 1)
        np.testing.assert_allclose(tensors[row], expected, rtol=1e-6)


def test_resize_and_crop_give_the_hand_computed_tensor(tmp_path):
    root = tmp_path / "images"
    (root / "cat").mkdir(parents=True)
    rng = np.random.default_rng(4)
    Image.fromarray(rng.integers(0, 256, (30, 45, 3), dtype=np.uint8)).save(root / "cat" / "wide.png")
    model, _, _ = g.image_model(16, 16, 3, 2)
    path = g.save(model, tmp_path / "m.onnx")
    dataset = load_image_folder(root, preprocess={"resize": 20, "crop": "16x16"})
    tensors, _ = all_rows(dataset, path)
    # by hand: shorter side 30 -> 20, so 45x30 -> 30x20 (bilinear); centre 16x16 crop
    with Image.open(root / "cat" / "wide.png") as image:
        resized = np.asarray(image.convert("RGB").resize((30, 20), Image.Resampling.BILINEAR))
    top, left = (20 - 16) // 2, (30 - 16) // 2
    expected = (resized[top:top + 16, left:left + 16].astype(np.float32) * SCALE).transpose(2, 0, 1)
    np.testing.assert_allclose(tensors[0], expected, rtol=1e-6, atol=0)
    assert dataset.describe()["preprocess"]["resize"] == 20


def test_resize_alone_crops_to_the_model_size(tmp_path):
    root = tmp_path / "images"
    (root / "cat").mkdir(parents=True)
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 256, (40, 24, 3), dtype=np.uint8)).save(root / "cat" / "tall.png")
    model, _, _ = g.image_model(8, 8, 3, 2, layout="NHWC")
    path = g.save(model, tmp_path / "m.onnx")
    tensors, _ = all_rows(load_image_folder(root, preprocess={"resize": 12}), path)
    with Image.open(root / "cat" / "tall.png") as image:
        resized = np.asarray(image.convert("RGB").resize((12, 20), Image.Resampling.BILINEAR))
    expected = resized[6:14, 2:10].astype(np.float32) * SCALE
    np.testing.assert_allclose(tensors[0], expected, rtol=1e-6, atol=0)


def test_images_of_another_size_are_resized_to_the_model_size(tmp_path):
    root = tmp_path / "images"
    make_folder(root, per_class=["png"], size=(12, 10))
    model, _, _ = g.image_model(H, W, 3, 2, layout="NHWC")
    path = g.save(model, tmp_path / "m.onnx")
    dataset = load_image_folder(root)
    tensors, rows = all_rows(dataset, path)
    for row in rows:
        with Image.open(root / dataset.row_ids[row]) as image:
            small = np.asarray(image.convert("RGB").resize((W, H), Image.Resampling.BILINEAR), dtype=np.float32)
        np.testing.assert_allclose(tensors[row], small * SCALE, rtol=1e-6)


# ---------------------------------------------------------------------- colour, scale, dtype


def test_grayscale_inferred_from_one_channel(tmp_path):
    root = tmp_path / "images"
    make_folder(root, per_class=["png", "jpg"])
    model, _, _ = g.image_model(H, W, 1, 2)
    path = g.save(model, tmp_path / "m.onnx")
    dataset = load_image_folder(root)
    tensors, rows = all_rows(dataset, path)
    assert tensors.shape == (4, 1, H, W)
    for row in rows:
        expected = (decoded(root / dataset.row_ids[row], "L") * SCALE).transpose(2, 0, 1)
        np.testing.assert_allclose(tensors[row], expected, rtol=1e-6)
    assert dataset.resolved.color == "grayscale"


def test_grayscale_files_for_an_rgb_model_are_expanded(tmp_path):
    root = tmp_path / "images"
    make_folder(root, per_class=["png"], mode="L")
    model, _, _ = g.image_model(H, W, 3, 2, layout="NHWC")
    path = g.save(model, tmp_path / "m.onnx")
    dataset = load_image_folder(root)
    tensors, rows = all_rows(dataset, path)
    for row in rows:
        with Image.open(root / dataset.row_ids[row]) as image:
            gray = np.asarray(image, dtype=np.float32)
        for channel in range(3):
            np.testing.assert_allclose(tensors[row][:, :, channel], gray * SCALE, rtol=1e-6)


def test_color_that_contradicts_the_channels_is_a_usage_error(tmp_path):
    root = tmp_path / "images"
    make_folder(root, per_class=["png"])
    model, _, _ = g.image_model(H, W, 1, 2)
    path = g.save(model, tmp_path / "m.onnx")
    with pytest.raises(UsageError, match="channel"):
        load_model_predictions(path, root, preprocess={"color": "rgb"})
    model3, _, _ = g.image_model(H, W, 3, 2)
    path3 = g.save(model3, tmp_path / "m3.onnx")
    with pytest.raises(UsageError, match="channel"):
        load_model_predictions(path3, root, preprocess={"color": "grayscale"})


def test_mean_and_std_per_channel(tmp_path):
    root = tmp_path / "images"
    make_folder(root, per_class=["png"])
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    model, _, _ = g.image_model(H, W, 3, 2)
    path = g.save(model, tmp_path / "m.onnx")
    dataset = load_image_folder(root, preprocess={"mean": ",".join(map(str, mean)), "std": ",".join(map(str, std))})
    tensors, rows = all_rows(dataset, path)
    for row in rows:
        pixels = decoded(root / dataset.row_ids[row]) * SCALE
        expected = ((pixels - np.float32(mean)) / np.float32(std)).transpose(2, 0, 1)
        np.testing.assert_allclose(tensors[row], expected, rtol=1e-5, atol=1e-6)
    assert np.all(tensors.min(axis=(0, 2, 3)) < 0)  # normalisation really happened


def test_mean_with_the_wrong_number_of_channels(tmp_path):
    root = tmp_path / "images"
    make_folder(root, per_class=["png"])
    model, _, _ = g.image_model(H, W, 3, 2)
    path = g.save(model, tmp_path / "m.onnx")
    with pytest.raises(UsageError, match="mean"):
        load_model_predictions(path, root, preprocess={"mean": "0.1,0.2"})
    with pytest.raises(UsageError, match="std"):
        load_model_predictions(path, root, preprocess={"std": "0"})


def test_uint8_input_gets_raw_pixels(tmp_path):
    root = tmp_path / "images"
    make_folder(root, per_class=["png", "bmp"])
    model, w, b = g.image_model(H, W, 3, 2, layout="NHWC", elem_type=onnx.TensorProto.UINT8)
    path = g.save(model, tmp_path / "m.onnx")
    dataset = load_image_folder(root)
    tensors, rows = all_rows(dataset, path)
    assert tensors.dtype == np.uint8
    for row in rows:
        with Image.open(root / dataset.row_ids[row]) as image:
            np.testing.assert_array_equal(tensors[row], np.asarray(image.convert("RGB")))
    predictions = load_model_predictions(path, root)
    expected = g.ort_run(model, {"pixels": tensors[np.argsort(rows)]})
    np.testing.assert_allclose(predictions.y_proba, expected / expected.sum(axis=1, keepdims=True), atol=1e-12)


# ---------------------------------------------------------------------- errors


def test_unknown_key_in_preprocess_json(tmp_path):
    root = tmp_path / "images"
    make_folder(root, per_class=["png"])
    (root / "preprocess.json").write_text(json.dumps({"scale": 1, "colour": "rgb"}))
    with pytest.raises(InvalidInputError) as info:
        load_image_folder(root)
    message = str(info.value)
    assert "'colour'" in message
    assert "preprocess.json" in message


@pytest.mark.parametrize(("text", "words"), [("{not json", "JSON"), ("[1, 2]", "object"),
                                               ('{"layout": "NCWH"}', "layout")])
def test_invalid_preprocess_json(tmp_path, text, words):
    root = tmp_path / "images"
    make_folder(root, per_class=["png"])
    (root / "preprocess.json").write_text(text)
    with pytest.raises(InvalidInputError, match=words):
        load_image_folder(root)


@pytest.mark.parametrize("content", [b"definitely not a png", "truncated"])
def test_undecodable_image_fails_with_its_path(tmp_path, content):
    root = tmp_path / "images"
    make_folder(root, per_class=["png", "jpg"])
    bad = root / "dog" / "broken.jpg"
    if content == "truncated":
        content = (root / "dog" / "1.jpg").read_bytes()[:200]
    bad.write_bytes(content)
    model, _, _ = g.image_model(H, W, 3, 2)
    path = g.save(model, tmp_path / "m.onnx")
    with pytest.raises(InvalidInputError) as info:
        load_model_predictions(path, root)
    message = str(info.value)
    assert message.startswith(str(bad))
    assert "--skip-bad-images" in message


def test_skip_bad_images_skips_and_counts(tmp_path):
    root = tmp_path / "images"
    make_folder(root, per_class=["png", "bmp"])
    (root / "cat" / "2_broken.png").write_bytes(b"\x89PNG not really")
    (root / "dog" / "2_broken.webp").write_bytes(b"RIFF....WEBP")
    model, _, _ = g.image_model(H, W, 3, 2)
    path = g.save(model, tmp_path / "m.onnx")
    predictions = load_model_predictions(path, root, skip_bad_images=True, batch_size=2)
    assert predictions.n_samples == 4
    assert predictions.y_true.tolist() == [0, 0, 1, 1]
    data = predictions.source.details["data"]
    assert data["images_skipped"] == 2
    assert sorted(data["skipped_files"]) == ["cat/2_broken.png", "dog/2_broken.webp"]
    assert "broken" not in " ".join(map(str, predictions.extra_columns["path"]))
    result = invoke("run", path, root, "--skip-bad-images", "--json", tmp_path / "r.json", "-q")
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "r.json").read_text())
    assert document["input"]["data"]["images_skipped"] == 2
    assert document["n_samples"] == 4
    failed = invoke("run", path, root, "-q")
    assert "broken" in one_error_line(failed, 3)


def test_folder_that_is_not_a_model_class(tmp_path):
    root = tmp_path / "images"
    make_folder(root, classes=("cat", "dog", "gnu"), per_class=["png"])
    model, _, _ = g.image_model(H, W, 3, 3, metadata=g.metadata_json(["cat", "dog", "emu"]))
    path = g.save(model, tmp_path / "m.onnx")
    with pytest.raises(InvalidInputError) as info:
        load_model_predictions(path, root)
    message = str(info.value)
    assert "'gnu'" in message
    assert "metadata" in message


def test_class_names_error_hint_names_a_remedy_that_works(tmp_path):
    """The error suggests classes.txt; following that advice must change the outcome."""
    root = tmp_path / "images"
    make_folder(root, classes=("cat", "dog"), per_class=["png"])
    model, _, _ = g.image_model(H, W, 3, 2, metadata=g.metadata_json(["cat", "emu"]))
    path = g.save(model, tmp_path / "m.onnx")
    with pytest.raises(InvalidInputError) as info:
        load_model_predictions(path, root)
    if "classes.txt" in str(info.value):
        (root / "classes.txt").write_text("cat\ndog\n")
        predictions = load_model_predictions(path, root)
        assert predictions.class_names == ("cat", "dog")


def test_classes_txt_orders_the_folders(tmp_path):
    root = tmp_path / "images"
    make_folder(root, classes=("cat", "dog"), per_class=["png"])
    (root / "classes.txt").write_text("dog\ncat\n")
    model, _, _ = g.image_model(H, W, 3, 2)
    predictions = load_model_predictions(g.save(model, tmp_path / "m.onnx"), root)
    assert predictions.class_names == ("dog", "cat")
    assert predictions.y_true.tolist() == [1, 0]
    assert predictions.source.details["class_names_source"] == "classes.txt"


def test_empty_class_folder_still_names_a_class(tmp_path):
    """A class with no images in this data set is still a class folder (ImageFolder)."""
    root = tmp_path / "images"
    make_folder(root, classes=("ant", "cat"), per_class=["png"])
    (root / "bee").mkdir()
    model, _, _ = g.image_model(H, W, 3, 3)
    predictions = load_model_predictions(g.save(model, tmp_path / "m.onnx"), root)
    assert predictions.class_names == ("ant", "bee", "cat")
    assert predictions.y_true.tolist() == [0, 2]


def test_image_folder_for_a_two_input_model(tmp_path):
    root = tmp_path / "images"
    make_folder(root, per_class=["png"])
    path = g.save(g.two_input_model(*g.weights(4, 2), split=2), tmp_path / "two.onnx")
    with pytest.raises(InvalidInputError, match="one model input"):
        load_model_predictions(path, root)


def test_no_images(tmp_path):
    root = tmp_path / "images"
    (root / "cat").mkdir(parents=True)
    (root / "cat" / "a.txt").write_text("x")
    with pytest.raises(InvalidInputError):
        load_data_directory(root)
    with pytest.raises(InvalidInputError, match="no images"):
        load_data_directory(root, data_format="images")


# ---------------------------------------------------------------------- memory: decoding per batch


def test_images_are_decoded_one_batch_at_a_time(tmp_path, monkeypatch):
    root = tmp_path / "images"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(11):
            Image.new("RGB", (W, H), (i * 20, 0, 0)).save(root / name / f"{i:02d}.png")
    model, _, _ = g.image_model(H, W, 3, 2)
    path = g.save(model, tmp_path / "m.onnx")
    spec = load_model(path).inputs[0]
    dataset = load_image_folder(root)

    opened = []
    real_open = Image.open

    def counting_open(fp, *args, **kwargs):
        opened.append(fp)
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", counting_open)
    batches = dataset.batches([spec], 5)
    seen = 0
    sizes = []
    for batch in batches:
        rows = batch.feeds["pixels"].shape[0]
        sizes.append(rows)
        seen += rows
        assert len(opened) == seen  # nothing decoded ahead of the batch being handed out
    assert sizes == [5, 5, 5, 5, 2]
    assert len(opened) == 22

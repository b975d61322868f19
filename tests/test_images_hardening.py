"""Image folders, hardened (issue 10): pixel modes, memory bounds, decompression bombs,
option values, torchvision's resize and crop, stretched images, model metadata, and the
terminal line stating the preprocessing.

Expected tensors are computed here with numpy (and Pillow only to write and decode the
files); torchvision's size and crop formulas are written out below, without torch.
"""

from __future__ import annotations

import json
import struct
import warnings
import zlib

import numpy as np
import onnx
import pytest
from PIL import Image

import calaudit.loaders.images as images
import onnx_graphs as g
from calaudit.errors import InvalidInputError, UsageError
from calaudit.loaders.images import (
    ResolvedPreprocess,
    centre_crop_box,
    load_image_folder,
    resized_size,
)
from calaudit.loaders.model_run import load_model_predictions
from calaudit.onnx.model import load_model
from clitools import error_line, invoke

H, W = 6, 5


def one_error_line(result, code):
    return error_line(result, code)


def rgb_folder(root, sizes=((H, W),), classes=("cat", "dog"), seed=0):
    """``root/<class>/<i>.png``: one random RGB picture per (height, width) per class."""
    rng = np.random.default_rng(seed)
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i, (height, width) in enumerate(sizes):
            pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def rows_of(dataset, model_path, batch_size=1000):
    """Every row the dataset feeds the model, in file order."""
    spec = load_model(model_path).inputs[0]
    batches = list(dataset.batches([spec], batch_size))
    tensors = np.concatenate([b.feeds[spec.name] for b in batches])
    rows = np.concatenate([b.rows for b in batches])
    return tensors[np.argsort(rows)], [b.feeds[spec.name].shape[0] for b in batches]


def model_file(tmp_path, height=H, width=W, channels=3, layout="NCHW", name="m.onnx", **kwargs):
    model, _, _ = g.image_model(height, width, channels, 2, layout=layout, **kwargs)
    return g.save(model, tmp_path / name)


def resolved(size, color="rgb", layout="NHWC", **kwargs):
    settings = dict(resize=None, crop=None, scale=1.0 / 255.0, mean=None, std=None, dtype=np.float32)
    settings.update(kwargs)
    return ResolvedPreprocess(size=size, layout=layout, color=color, **settings)


# ---------------------------------------------------------------------- 1. pixel modes


def sixteen_bit_values(height=H, width=W, seed=1):
    values = np.random.default_rng(seed).integers(0, 65536, (height, width), dtype=np.uint16)
    values[0, 0], values[0, 1], values[0, 2] = 1000, 65535, 0
    return values


def test_a_16_bit_png_keeps_its_range(tmp_path):
    root = tmp_path / "images"
    (root / "cat").mkdir(parents=True)
    values = sixteen_bit_values()
    Image.fromarray(values).save(root / "cat" / "deep.png")
    with Image.open(root / "cat" / "deep.png") as image:
        assert image.mode.startswith("I")  # really a 16-bit file
    expected = values.astype(np.float64) / 65535.0  # (v * 255 / 65535) * (1/255)
    gray, _ = rows_of(load_image_folder(root), model_file(tmp_path, channels=1, name="gray.onnx"))
    np.testing.assert_allclose(gray[0, 0], expected, rtol=1e-6, atol=1e-7)
    assert gray[0, 0, 0, 0] == pytest.approx(1000 / 65535, rel=1e-6)  # not 255/255
    colour, _ = rows_of(load_image_folder(root), model_file(tmp_path, layout="NHWC", name="rgb.onnx"))
    for channel in range(3):
        np.testing.assert_allclose(colour[0, :, :, channel], expected, rtol=1e-6, atol=1e-7)


def test_a_16_bit_png_for_a_uint8_model_is_rounded_to_8_bits(tmp_path):
    root = tmp_path / "images"
    (root / "cat").mkdir(parents=True)
    values = sixteen_bit_values()
    Image.fromarray(values).save(root / "cat" / "deep.png")
    path = model_file(tmp_path, channels=1, elem_type=onnx.TensorProto.UINT8)
    tensors, _ = rows_of(load_image_folder(root), path)
    assert tensors.dtype == np.uint8
    np.testing.assert_array_equal(tensors[0, 0], np.rint(values / 257.0).astype(np.uint8))  # 255/65535 = 1/257


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I;16L", "I"])
def test_every_16_bit_mode_gives_the_same_pixels(mode):
    values = sixteen_bit_values()
    if mode == "I":
        image = Image.fromarray(values.astype(np.int32))
    else:
        order = ">" if mode == "I;16B" else "<"
        image = Image.frombytes(mode, (W, H), values.astype(f"{order}u2").tobytes())
    assert image.mode == mode
    pixels = resolved((H, W), color="grayscale").tensor(image, where="deep.png")
    np.testing.assert_allclose(pixels[:, :, 0], values / 65535.0, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("low_high", [(-1, 10), (0, 70000)])
def test_a_32_bit_image_outside_16_bits_is_refused(low_high):
    values = np.zeros((H, W), dtype=np.int32)
    values[0, 0], values[1, 1] = low_high
    with pytest.raises(InvalidInputError) as info:
        resolved((H, W)).tensor(Image.fromarray(values), where="wide.png")
    message = str(info.value)
    assert message.startswith("wide.png: ") and "mode I" in message and "\n" not in message
    assert str(low_high[0]) in message and str(low_high[1]) in message


def test_a_float_image_is_refused_naming_the_file_and_mode(tmp_path, monkeypatch):
    root = rgb_folder(tmp_path / "images")
    path = model_file(tmp_path)
    real_open = Image.open

    def open_as_float(fp, *args, **kwargs):  # no image suffix calaudit reads decodes to mode F
        image = real_open(fp, *args, **kwargs)
        image.load()
        return image.convert("F")

    monkeypatch.setattr(Image, "open", open_as_float)
    with pytest.raises(InvalidInputError) as info:
        load_model_predictions(path, root)
    message = str(info.value)
    assert message.startswith(str(root / "cat" / "0.png")) and "mode F" in message and "\n" not in message


def save_png(image, file):
    file.parent.mkdir(parents=True, exist_ok=True)
    image.save(file)
    return file


def test_alpha_cmyk_and_bilevel_images(tmp_path):
    rng = np.random.default_rng(3)
    root = tmp_path / "images"
    rgba = rng.integers(0, 256, (H, W, 4), dtype=np.uint8)
    la = rng.integers(0, 256, (H, W, 2), dtype=np.uint8)
    bits = rng.integers(0, 2, (H, W)).astype(bool)
    save_png(Image.fromarray(rgba, "RGBA"), root / "a" / "0_rgba.png")
    save_png(Image.fromarray(la, "LA"), root / "a" / "1_la.png")
    save_png(Image.fromarray(bits), root / "a" / "2_bits.png")
    cmyk = Image.fromarray(rng.integers(0, 256, (H, W, 4), dtype=np.uint8), "CMYK")
    cmyk.save(root / "a" / "3_cmyk.jpg", format="JPEG", quality=95)
    with Image.open(root / "a" / "3_cmyk.jpg") as image:
        assert image.mode == "CMYK"
        cmyk_as_rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    tensors, _ = rows_of(load_image_folder(root), model_file(tmp_path, layout="NHWC"))
    scale = np.float32(1 / 255)
    np.testing.assert_allclose(tensors[0], rgba[:, :, :3] * scale, rtol=1e-6)  # alpha dropped
    np.testing.assert_allclose(tensors[1], np.repeat(la[:, :, :1], 3, axis=2) * scale, rtol=1e-6)
    np.testing.assert_allclose(tensors[2], np.repeat(bits[:, :, None] * 255.0, 3, axis=2) * scale, rtol=1e-6)
    np.testing.assert_allclose(tensors[3], cmyk_as_rgb * scale, rtol=1e-6)


def test_a_palette_image_with_transparency_gives_no_warning(tmp_path):
    root = tmp_path / "images"
    rng = np.random.default_rng(4)
    palette = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    indices = rng.integers(0, 4, (H, W), dtype=np.uint8)
    image = Image.fromarray(indices, "P")
    image.putpalette(palette.reshape(-1).tolist())
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        image.save(root / name / "0.png", transparency=bytes([0, 128, 255, 64]))
    with Image.open(root / "cat" / "0.png") as reopened:
        assert reopened.mode == "P" and isinstance(reopened.info.get("transparency"), bytes)
    path = model_file(tmp_path, layout="NHWC")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning from Pillow fails the test
        tensors, _ = rows_of(load_image_folder(root), path)
        load_model_predictions(path, root)
    np.testing.assert_allclose(tensors[0], palette[indices].astype(np.float32) / 255, rtol=1e-6)
    result = invoke("run", path, root, "-q")
    assert result.exit_code == 0 and result.stderr == "", result.stderr


# ---------------------------------------------------------------------- 2. bounded memory


@pytest.mark.parametrize(("option", "value"), [("--resize", "100000"), ("--image-size", "9000x8"),
                                               ("--crop", "8x8193")])
def test_sides_above_the_maximum_are_usage_errors(tmp_path, option, value):
    root = rgb_folder(tmp_path / "images")
    line = one_error_line(invoke("run", model_file(tmp_path), root, option, value), 2)
    assert f"'{option}'" in line and value in line and str(images.MAX_SIDE) in line


@pytest.mark.parametrize(("key", "value"), [("resize", 100000), ("size", [9000, 8]), ("crop", 8193)])
def test_sides_above_the_maximum_in_preprocess_json(tmp_path, key, value):
    root = rgb_folder(tmp_path / "images")
    (root / "preprocess.json").write_text(json.dumps({key: value}))
    line = one_error_line(invoke("run", model_file(tmp_path), root), 3)
    assert "preprocess.json" in line and f"{key} = " in line and str(images.MAX_SIDE) in line


def png_header_only(width, height):
    """A PNG whose header says ``width`` x ``height`` but holds no pixels: decoding it fails."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 16))[:20]


def test_a_resize_too_large_for_the_image_is_refused_before_decoding(tmp_path):
    root = rgb_folder(tmp_path / "images", classes=("b",))
    (root / "a").mkdir()
    thin = root / "a" / "thin.png"  # the first file read
    thin.write_bytes(png_header_only(3, 1))  # 3 wide, 1 high: --resize 8192 makes it 24576 x 8192
    line = one_error_line(invoke("run", model_file(tmp_path, 16, 16), root, "--resize", "8192"), 3)
    assert str(thin) in line and "--resize 8192" in line and "cannot decode" not in line
    assert f"{24576 * 8192:,}" in line


def test_a_batch_is_kept_under_the_memory_budget(tmp_path, monkeypatch):
    root = rgb_folder(tmp_path / "images", sizes=[(H, W)] * 5)
    path = model_file(tmp_path)
    unbounded, sizes = rows_of(load_image_folder(root), path, batch_size=256)
    assert sizes == [10]
    monkeypatch.setattr(images, "MAX_BATCH_BYTES", 3 * 3 * H * W * 4)  # three rows of float32
    dataset = load_image_folder(root)
    bounded, sizes = rows_of(dataset, path, batch_size=256)
    assert sizes == [3, 3, 3, 1]
    np.testing.assert_array_equal(bounded, unbounded)
    assert dataset.describe()["batch_rows"] == 3
    predictions = load_model_predictions(path, root, batch_size=256)
    assert predictions.source.details["data"]["batch_rows"] == 3


def test_a_fixed_batch_is_not_split(tmp_path, monkeypatch):
    root = rgb_folder(tmp_path / "images", sizes=[(H, W)] * 4)
    path = model_file(tmp_path, batch=4)
    monkeypatch.setattr(images, "MAX_BATCH_BYTES", 3 * H * W * 4)  # one row
    dataset = load_image_folder(root)
    _, sizes = rows_of(dataset, path, batch_size=4)
    assert sizes == [4, 4]
    assert dataset.describe()["batch_rows"] == 4


# ---------------------------------------------------------------------- 3. decompression bombs


def test_an_image_above_pillows_limit_is_one_line_naming_the_option(tmp_path):
    root = rgb_folder(tmp_path / "images")
    bomb = root / "dog" / "bomb.png"
    bomb.write_bytes(png_header_only(10000, 10000))  # between Pillow's warning and its error
    path = model_file(tmp_path)
    line = one_error_line(invoke("run", path, root), 3)
    assert str(bomb) in line and f"{10000 * 10000:,} pixels" in line and "--allow-large-images" in line
    bigger = root / "dog" / "bomb.png"
    bigger.write_bytes(png_header_only(20000, 20000))  # above Pillow's error
    line = one_error_line(invoke("run", path, root), 3)
    assert f"{20000 * 20000:,} pixels" in line and "--allow-large-images" in line
    skipped = invoke("run", path, root, "--skip-bad-images", "-q")
    assert skipped.exit_code == 0 and skipped.stderr == "", skipped.stderr


@pytest.mark.parametrize("limit", [20, 10])  # a 6x5 image is above the warning, then the error
def test_allow_large_images_lifts_the_limit_for_the_run_only(tmp_path, monkeypatch, limit):
    root = rgb_folder(tmp_path / "images")
    path = model_file(tmp_path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    line = one_error_line(invoke("run", path, root), 3)
    assert f"{H * W:,} pixels" in line and "--allow-large-images" in line
    assert Image.MAX_IMAGE_PIXELS == limit
    allowed = invoke("run", path, root, "--allow-large-images", "-q")
    assert allowed.exit_code == 0 and allowed.stderr == "", allowed.stderr
    assert Image.MAX_IMAGE_PIXELS == limit
    predictions = load_model_predictions(path, root, allow_large_images=True)
    assert predictions.n_samples == 2 and Image.MAX_IMAGE_PIXELS == limit


# ---------------------------------------------------------------------- 4. option values


@pytest.mark.parametrize(("option", "value"), [
    ("--image-size", "abc"), ("--image-size", "3x4x5"), ("--crop", "0x5"), ("--crop", "x5"),
    ("--resize", "1.5"), ("--resize", "0"), ("--mean", "a,b,c"), ("--mean", "0.1,0.2"), ("--std", "1,0"),
    ("--std", "1,0,1"), ("--std", "-1"), ("--scale", "0"), ("--scale", "-2"), ("--scale", "nan"),
    ("--scale", "inf"), ("--scale", "1/0"), ("--scale", "abc"), ("--resize-rounding", "floor"),
])
def test_bad_option_values_are_usage_errors_naming_the_option(tmp_path, option, value):
    root = rgb_folder(tmp_path / "images")
    line = one_error_line(invoke("run", model_file(tmp_path), root, option, value), 2)
    assert f"Invalid value for '{option}'" in line
    assert "options:" not in line


@pytest.mark.parametrize("scale", ["1/255", "0.00392156862745098", "2/510"])
def test_scale_accepts_fractions(tmp_path, scale):
    root = rgb_folder(tmp_path / "images")
    path = model_file(tmp_path)
    default = load_model_predictions(path, root)
    result = invoke("run", path, root, "--scale", scale, "--json", tmp_path / "r.json", "-q")
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "r.json").read_text())
    assert document["input"]["data"]["preprocess"]["scale"] == pytest.approx(1 / 255, rel=1e-12)
    ece = document["metrics"]["ece"]
    from calaudit import audit

    assert ece == pytest.approx(audit(default.y_true, default.y_proba, bootstrap=0).metrics["ece"], abs=1e-12)


@pytest.mark.parametrize(("key", "value"), [("size", "abc"), ("crop", [0, 5]), ("mean", "a,b,c"),
                                            ("std", [1, 0, 1]), ("scale", 0), ("scale", "1/0"),
                                            ("resize_rounding", "floor")])
def test_bad_preprocess_json_values_name_the_file_and_key(tmp_path, key, value):
    root = rgb_folder(tmp_path / "images")
    (root / "preprocess.json").write_text(json.dumps({key: value}))
    line = one_error_line(invoke("run", model_file(tmp_path), root), 3)
    assert str(root / "preprocess.json") in line and f"{key} = " in line


def test_bad_library_options_name_the_option(tmp_path):
    root = rgb_folder(tmp_path / "images")
    with pytest.raises(UsageError, match="--image-size 'abc'"):
        load_image_folder(root, preprocess={"size": "abc"})
    with pytest.raises(UsageError, match="--scale"):
        load_image_folder(root, preprocess={"scale": "-1"})
    assert load_image_folder(root, preprocess={"scale": "1/2"}).settings.scale == 0.5


# ---------------------------------------------------------------------- 5. torchvision's conventions


def torchvision_resize(width, height, size):
    """torchvision.transforms.functional._compute_resized_output_size for ``Resize(int)``."""
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size, int(size * long / short)
    return (new_short, new_long) if width <= height else (new_long, new_short)


def torchvision_crop_box(width, height, crop_height, crop_width):
    """torchvision.transforms.functional.center_crop: pad with zeros, then round the offsets."""
    pad_left = (crop_width - width) // 2 if crop_width > width else 0
    pad_top = (crop_height - height) // 2 if crop_height > height else 0
    pad_right = (crop_width - width + 1) // 2 if crop_width > width else 0
    pad_bottom = (crop_height - height + 1) // 2 if crop_height > height else 0
    padded_width, padded_height = width + pad_left + pad_right, height + pad_top + pad_bottom
    top = int(round((padded_height - crop_height) / 2.0))
    left = int(round((padded_width - crop_width) / 2.0))
    return left - pad_left, top - pad_top, left - pad_left + crop_width, top - pad_top + crop_height


def pil_resize(width, height, size):
    factor = size / min(width, height)
    return max(1, round(width * factor)), max(1, round(height * factor))


def pil_crop_box(width, height, crop_height, crop_width):
    left, top = max(0, (width - crop_width) // 2), max(0, (height - crop_height) // 2)
    return left, top, left + min(crop_width, width), top + min(crop_height, height)


SIDES = [1, 2, 3, 5, 7, 10, 31, 64, 99, 224, 225, 256, 299, 427, 480, 500, 640, 1023, 1920]
TARGETS = [1, 2, 8, 32, 36, 224, 256, 299, 384]


def test_resize_and_crop_follow_torchvision_and_pil_formulas():
    differ = 0
    for width in SIDES:
        for height in SIDES:
            for size in TARGETS:
                assert resized_size(width, height, size, "torchvision") == torchvision_resize(width, height, size)
                assert resized_size(width, height, size, "pil") == pil_resize(width, height, size)
                differ += torchvision_resize(width, height, size) != pil_resize(width, height, size)
                crop = (size, max(1, size - 3))
                assert centre_crop_box(width, height, crop, "torchvision") == torchvision_crop_box(
                    width, height, *crop)
                assert centre_crop_box(width, height, crop, "pil") == pil_crop_box(width, height, *crop)
    assert differ > 100  # the two conventions really are different
    assert resized_size(640, 427, 36, "torchvision") == (53, 36)
    assert resized_size(640, 427, 36, "pil") == (54, 36)


def bilinear(pixels, size):
    with Image.fromarray(pixels) as image:
        return np.asarray(image.resize(size, Image.Resampling.BILINEAR), dtype=np.float32)


@pytest.mark.parametrize("rounding", ["torchvision", "pil"])
def test_a_640x427_picture_resized_to_36(tmp_path, rounding):
    root = tmp_path / "images"
    (root / "cat").mkdir(parents=True)
    pixels = np.random.default_rng(6).integers(0, 256, (427, 640, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(root / "cat" / "photo.png")
    path = model_file(tmp_path, 36, 33, layout="NHWC")
    options = {"resize": 36, "crop": "36x33"} | ({"resize_rounding": rounding} if rounding == "pil" else {})
    dataset = load_image_folder(root, preprocess=options)
    tensors, _ = rows_of(dataset, path)
    reference_resize, reference_crop = (
        (torchvision_resize, torchvision_crop_box) if rounding == "torchvision" else (pil_resize, pil_crop_box))
    new_width, new_height = reference_resize(640, 427, 36)
    left, top, right, bottom = reference_crop(new_width, new_height, 36, 33)
    expected = bilinear(pixels, (new_width, new_height))[top:bottom, left:right] / np.float32(255)
    np.testing.assert_allclose(tensors[0], expected, rtol=1e-6, atol=0)
    assert dataset.describe()["preprocess"]["resize_rounding"] == rounding


def test_a_crop_larger_than_the_image_pads_with_zeros(tmp_path):
    root = tmp_path / "images"
    (root / "cat").mkdir(parents=True)
    pixels = np.random.default_rng(7).integers(1, 256, (4, 3, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(root / "cat" / "small.png")
    path = model_file(tmp_path, 7, 6, layout="NHWC")
    tensors, _ = rows_of(load_image_folder(root, preprocess={"crop": "7x6"}), path)
    left, top, _, _ = torchvision_crop_box(3, 4, 7, 6)  # (-1, -1): 1 column, 1 row of zeros before
    expected = np.zeros((7, 6, 3), dtype=np.float32)
    expected[-top:-top + 4, -left:-left + 3] = pixels / np.float32(255)
    np.testing.assert_allclose(tensors[0], expected, rtol=1e-6, atol=0)


def test_resize_rounding_through_the_cli_is_recorded(tmp_path):
    root = rgb_folder(tmp_path / "images", sizes=[(427, 64)])
    path = model_file(tmp_path, 8, 8)
    result = invoke("run", path, root, "--resize", "8", "--resize-rounding", "pil", "--json", tmp_path / "r.json", "-q")
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "r.json").read_text())
    assert document["input"]["data"]["preprocess"]["resize_rounding"] == "pil"
    assert document["input"]["data"]["preprocess_sources"]["resize_rounding"] == "options"
    assert document["options"]["resize_rounding"] == "pil"


# ---------------------------------------------------------------------- 6. stretched images


def test_images_of_another_aspect_ratio_are_counted_and_warned_about_once(tmp_path):
    root = rgb_folder(tmp_path / "images", sizes=[(H, W), (2 * H, 2 * W), (30, 45), (7, 5)])
    path = model_file(tmp_path)
    dataset = load_image_folder(root)
    rows_of(dataset, path)
    info = dataset.describe()
    assert info["images_stretched"] == 4  # 30x45 and 7x5, in both classes
    assert info["images_resized_to_input"] == 6  # those and the 12x10 ones (same proportions)
    assert info["image_sizes_seen"] == {f"{H}x{W}": 2, f"{2 * H}x{2 * W}": 2, "30x45": 2, "7x5": 2}
    result = invoke("run", path, root, "--json", tmp_path / "r.json", "-q")
    assert result.exit_code == 0, result.output
    warnings_shown = [line for line in result.stderr.splitlines() if line.startswith("calaudit: warning: ")]
    assert len(warnings_shown) == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "4 of 8 images" in warnings_shown[0] and "--resize" in warnings_shown[0]
    document = json.loads((tmp_path / "r.json").read_text())
    assert document["input"]["data"]["images_stretched"] == 4
    assert document["input"]["data"]["warnings"] == [warnings_shown[0].removeprefix("calaudit: warning: ")]


def test_no_stretch_warning_with_a_resize_or_same_sized_images(tmp_path):
    mixed = rgb_folder(tmp_path / "mixed", sizes=[(H, W), (30, 45)])
    path = model_file(tmp_path)
    result = invoke("run", path, mixed, "--resize", "6", "-q")
    assert result.exit_code == 0 and result.stderr == "", result.stderr
    same = rgb_folder(tmp_path / "same", sizes=[(H, W)])
    result = invoke("run", path, same, "-q")
    assert result.exit_code == 0 and result.stderr == "", result.stderr


def test_fix_warns_once_although_it_reads_the_data_twice(tmp_path):
    root = rgb_folder(tmp_path / "images", sizes=[(H, W), (30, 45), (H, W), (H, W)], classes=("a", "b"))
    path = model_file(tmp_path)
    result = invoke("fix", path, root, "-o", tmp_path / "fixed.onnx", "-q", "--folds", "2")
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stderr.count("calaudit: warning: ") == 1, result.stderr


# ---------------------------------------------------------------------- 7. the model's metadata


def metadata_model(tmp_path, settings, name="meta.onnx", **kwargs):
    text = settings if isinstance(settings, str) else json.dumps(settings)
    return model_file(tmp_path, name=name, metadata={"preprocessing": text}, **kwargs)


def test_the_models_preprocessing_metadata_is_used_below_preprocess_json_and_options(tmp_path):
    root = rgb_folder(tmp_path / "images")
    path = metadata_model(tmp_path, {"scale": "1/2", "mean": [1, 2, 3], "std": 4}, layout="NHWC")
    with Image.open(root / "cat" / "0.png") as image:
        pixels = np.asarray(image, dtype=np.float32)

    def first_row(**kwargs):
        predictions = load_model_predictions(path, root, **kwargs)
        dataset = load_image_folder(root, model=load_model(path), **kwargs)
        tensors, _ = rows_of(dataset, path)
        return tensors[0], predictions.source.details["data"]["preprocess_sources"]

    row, sources = first_row()
    np.testing.assert_allclose(row, (pixels * 0.5 - np.float32([1, 2, 3])) / 4, rtol=1e-6)
    assert sources["scale"] == sources["mean"] == sources["std"] == "model metadata 'preprocessing'"
    assert sources["size"] == "model input" and sources["layout"] == "model input"
    (root / "preprocess.json").write_text(json.dumps({"scale": 1, "mean": 0}))
    row, sources = first_row()
    np.testing.assert_allclose(row, pixels / 4, rtol=1e-6)
    assert sources["scale"] == sources["mean"] == "preprocess.json"
    assert sources["std"] == "model metadata 'preprocessing'"
    row, sources = first_row(preprocess={"std": "2"})
    np.testing.assert_allclose(row, pixels / 2, rtol=1e-6)
    assert sources["std"] == "options"


@pytest.mark.parametrize(("settings", "words", "override"), [
    ({"resize": -3}, "resize = -3", ["--resize", "4"]), ({"size": [8, 8]}, "takes 6x5 images", ["--image-size", "6x5"]),
    ({"color": "grayscale"}, "channel", ["--color", "rgb"]),
])
def test_invalid_preprocessing_metadata_names_the_model_unless_its_setting_is_overridden(
        tmp_path, settings, words, override):
    root = rgb_folder(tmp_path / "images")
    path = metadata_model(tmp_path, settings)
    line = one_error_line(invoke("run", path, root), 3)
    assert str(path) in line and "preprocessing" in line and words in line
    result = invoke("run", path, root, *override, "-q")
    assert result.exit_code == 0 and result.stderr == "", (result.output, result.exception)
    (root / "preprocess.json").write_text(json.dumps({override[0].removeprefix("--").replace("-", "_")
                                                      .replace("image_size", "size"): override[1]}))
    result = invoke("run", path, root, "-q")
    assert result.exit_code == 0 and result.stderr == "", (result.output, result.exception)


VENDOR_TEXT = ("resize shorter side 36 (bilinear), center crop 32, scale 1/255, "
               "normalize mean (0.485,0.456,0.406) std (0.229,0.224,0.225)")
VENDOR_FLAGS = ("--resize", "36", "--crop", "32", "--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225")


def test_free_text_preprocessing_metadata_is_the_vendors_note_not_a_refusal(tmp_path):
    """Regression (issue 19): a description in the metadata was refused with exit 3."""
    root = rgb_folder(tmp_path / "images", sizes=[(40, 50), (36, 36)])
    described = model_file(tmp_path, 32, 32, name="vendor.onnx", metadata={"preprocessing": VENDOR_TEXT})
    plain = model_file(tmp_path, 32, 32, name="plain.onnx")  # the same weights, no metadata

    def run(path, *options):
        out = tmp_path / f"{path.stem}{len(options)}.json"
        result = invoke("run", path, root, *options, "--json", out)
        assert result.exit_code == 0 and "metadata" not in result.stderr, (result.output, result.exception)
        assert ("stretched" in result.stderr) == (not options), result.stderr  # only 40x50 without a resize
        return result.stdout.splitlines(), json.loads(out.read_text())

    for options in (VENDOR_FLAGS, ()):  # every setting from the options, then none at all
        lines, document = run(described, *options)
        _, reference = run(plain, *options)
        # The text is not read for settings: the same preprocessing, and scores, as without it.
        assert document["input"]["data"]["preprocess"] == reference["input"]["data"]["preprocess"]
        assert document["metrics"] == reference["metrics"]
        assert "model metadata 'preprocessing'" not in document["input"]["data"]["preprocess_sources"].values()
        assert document["input"]["data"]["preprocess_note"] == VENDOR_TEXT
        assert document["input"]["model"]["metadata"]["preprocessing"] == VENDOR_TEXT
        assert lines[2].startswith("Image preprocessing: 32x32")
        assert lines[3].startswith("Vendor's note on preprocessing") and lines[3].endswith(VENDOR_TEXT), lines[3]
        assert "preprocess_note" not in reference["input"]["data"]
    (root / "preprocess.json").write_text(json.dumps({"resize": 36, "crop": 32}))
    lines, document = run(described, "--scale", "1/255")
    assert document["input"]["data"]["preprocess"]["resize"] == 36
    assert document["input"]["data"]["preprocess_sources"]["resize"] == "preprocess.json"


@pytest.mark.parametrize(("text", "note", "warning"), [
    ("{not json", "{not json", "not valid JSON"), ("[1, 2]", "[1, 2]", None),
    (json.dumps("Resize 256 then\n crop 224"), "Resize 256 then crop 224", None),
    (json.dumps({"colour": "bgr", "scale": 0.5}), None, "'colour'"),
])
def test_preprocessing_metadata_that_holds_no_usable_settings_runs_with_at_most_one_line(tmp_path, text, note, warning):
    root = rgb_folder(tmp_path / "images")
    path = metadata_model(tmp_path, text)
    result = invoke("run", path, root, "--json", tmp_path / "r.json")
    assert result.exit_code == 0, (result.output, result.exception)
    data = json.loads((tmp_path / "r.json").read_text())["input"]["data"]
    assert data.get("preprocess_note") == note
    if warning is None:
        assert result.stderr == "" and "warnings" not in data
    else:
        assert result.stderr.count("\n") == 1 and warning in result.stderr and str(path) in result.stderr
        assert data["warnings"] == [result.stderr.strip().removeprefix("calaudit: warning: ")]
    if text.startswith('{"colour"'):  # the known key is still used, the unknown one is not
        assert data["preprocess"]["scale"] == 0.5 and data["preprocess"]["color"] == "rgb"


def test_preprocessing_metadata_is_not_read_for_a_table(tmp_path):
    x = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    data = g.write_arrays(tmp_path / "data", x, np.array([0, 1, 0, 1, 0, 1]))
    model = g.prob_model(*g.weights(4, 2), metadata={"preprocessing": "{not json"})
    predictions = load_model_predictions(g.save(model, tmp_path / "m.onnx"), data)
    assert predictions.n_samples == 6


# ---------------------------------------------------------------------- 8. the terminal summary


def test_the_summary_states_the_preprocessing_after_the_classes_line(tmp_path):
    root = rgb_folder(tmp_path / "images", sizes=[(20, 30)])
    path = model_file(tmp_path, 8, 8)
    result = invoke("run", path, root, "--resize", "10", "--mean", "0.5", "--std", "0.25")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1].startswith("2 predictions, 2 classes")
    line = lines[2]
    for words in ("8x8 input", "NCHW", "rgb", "shorter side to 10", "torchvision rounding", "centre crop 8x8",
                  "1/255", "mean 0.5", "std 0.25"):
        assert words in line, line
    plain = invoke("run", path, rgb_folder(tmp_path / "plain", sizes=[(8, 8)]))
    assert "no resize or crop" in plain.stdout.splitlines()[2]


def test_no_preprocessing_line_for_arrays(tmp_path):
    x = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    data = g.write_arrays(tmp_path / "data", x, np.array([0, 1, 0, 1, 0, 1]))
    result = invoke("run", g.save(g.prob_model(*g.weights(4, 2)), tmp_path / "m.onnx"), data)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[2] == ""
    assert "Image preprocessing" not in result.stdout


# ------------------------------------------------------------------ links that cannot be followed


def _digits_folder(tmp_path):
    from PIL import Image

    root = tmp_path / "images"
    for name in ("0", "1"):
        (root / name).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (8, 8), color=40 * i).save(root / name / f"{i}.png")
    return root


def test_a_class_folder_that_is_a_symlink_loop_is_an_error(tmp_path):
    from calaudit.loaders.images import load_image_folder

    root = _digits_folder(tmp_path)
    (root / "2").symlink_to(root / "2")
    with pytest.raises(InvalidInputError, match=r"2: symlink loop.*expected a class folder"):
        load_image_folder(root)


def test_an_image_that_is_a_broken_link_is_an_error_or_skipped(tmp_path):
    from calaudit.loaders.images import load_image_folder

    root = _digits_folder(tmp_path)
    (root / "1" / "9.png").symlink_to(tmp_path / "missing.png")
    with pytest.raises(InvalidInputError, match=r"9.png: broken symbolic link.*--skip-bad-images"):
        load_image_folder(root)
    dataset = load_image_folder(root, skip_bad_images=True)
    assert dataset.n_rows == 6 and dataset.skipped == ["1/9.png"]

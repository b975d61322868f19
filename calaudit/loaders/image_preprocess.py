"""Image preprocessing: how a picture becomes the tensor a vendor's model was trained on.

Resize, centre crop, scale, mean/std, channel layout and colour. Each setting comes
from the options, else ``preprocess.json`` in the data directory, else the model's
``preprocessing`` metadata entry, else the model's input shape where it is fixed,
else the default (docs/onnx.md, "Image preprocessing"). The resize and the centre crop
follow torchvision's ``Resize(int)`` and ``CenterCrop`` unless ``resize_rounding`` is
``pil``. :mod:`calaudit.loaders.images` reads the folders and feeds the model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from ..errors import InvalidInputError, UsageError, first_line

PREPROCESS_FILE = "preprocess.json"
METADATA_KEY = "preprocessing"
METADATA_SOURCE = f"model metadata '{METADATA_KEY}'"
LAYOUTS = ("NCHW", "NHWC")
COLORS = ("rgb", "bgr", "grayscale")
ROUNDINGS = ("torchvision", "pil")
#: Largest ``size``, ``crop`` or ``resize`` side, in pixels.
MAX_SIDE = 8192
#: The command-line option of each setting, for messages about option values.
OPTION_NAMES = {
    "size": "--image-size", "resize": "--resize", "crop": "--crop", "scale": "--scale", "mean": "--mean",
    "std": "--std", "layout": "--layout", "color": "--color", "resize_rounding": "--resize-rounding",
}
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
_TO_EIGHT_BIT = np.float32(255.0 / 65535.0)


@dataclass(frozen=True)
class ImagePreprocess:
    """How an image becomes model input; ``None`` fields are inferred or defaulted.

    ``size`` (height, width) is what the model takes; ``resize`` first scales the
    shorter side to that many pixels, then the centre is cropped to ``crop`` (or
    ``size``); ``scale`` multiplies pixel values (default 1/255 for float inputs, none
    for integer inputs); ``mean``/``std`` then normalise each channel.
    ``resize_rounding`` is ``torchvision`` (default) or ``pil`` (see
    :func:`resized_size` and :func:`centre_crop_box`).
    """

    size: tuple[int, int] | None = None
    resize: int | None = None
    crop: tuple[int, int] | None = None
    scale: float | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    layout: str | None = None
    color: str | None = None
    resize_rounding: str | None = None

    @classmethod
    def from_mapping(
        cls, values: dict[str, Any], *, where: str, error: type[Exception] = InvalidInputError,
        names: dict[str, str] | None = None,
    ) -> ImagePreprocess:
        """Validate a ``preprocess.json``-style mapping; unknown keys are errors.

        ``error`` is raised for a bad value, naming ``where`` and the key (or, with
        ``names``, the option the key comes from).
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise error(
                f"{where}: unknown preprocessing key {unknown[0]!r}; expected {', '.join(sorted(known))}"
            )
        parsed: dict[str, Any] = {}
        for key, value in values.items():
            if value is None:
                continue
            try:
                parsed[key] = parse_setting(key, value)
            except (TypeError, ValueError) as exc:
                if names:
                    raise error(f"{names[key]} {value!r} is invalid: {exc}") from None
                raise error(f"{where}: {key} = {value!r} is invalid: {exc}") from None
        return cls(**parsed)

    def merged_over(self, base: ImagePreprocess) -> ImagePreprocess:
        """These settings where given, ``base`` elsewhere."""
        return replace(base, **{f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None})

    def given(self) -> list[str]:
        """The names of the settings this holds."""
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}


# ---------------------------------------------------------------------- model metadata


@dataclass(frozen=True)
class MetadataPreprocessing:
    """What a model's ``preprocessing`` metadata entry says.

    ``settings``: the entry's keys that are settings, values not yet checked (a value is
    checked only where it is used, not where the options or ``preprocess.json`` give the
    setting); ``note``: the vendor's description, when the entry is not a JSON object;
    ``problem``: a one-line warning (an object that does not parse, keys not known).
    """

    settings: dict[str, Any] = field(default_factory=dict)
    note: str | None = None
    problem: str | None = None


def read_metadata(text: str, *, where: str) -> MetadataPreprocessing:
    """A model's ``preprocessing`` metadata entry (docs/onnx.md, "Image preprocessing").

    Settings only when it parses as a JSON object with ``preprocess.json``'s keys;
    anything else ("resize shorter side 256, center crop 224, ...") is the vendor's
    description, kept as a note and never parsed for settings.
    """
    known = {f.name for f in fields(ImagePreprocess)}
    try:
        value = json.loads(text)
    except ValueError as exc:
        note = " ".join(text.split()) or None
        if text.lstrip().startswith("{"):
            return MetadataPreprocessing(note=note, problem=(
                f"{where} starts like a JSON object of settings but is not valid JSON ({first_line(exc)}); "
                "none of it was used, it is kept as the vendor's note"
            ))
        return MetadataPreprocessing(note=note)
    if not isinstance(value, dict):
        shown = value if isinstance(value, str) else text
        return MetadataPreprocessing(note=" ".join(shown.split()) or None)
    unknown = sorted(str(key) for key in value if key not in known)
    problem = None
    if unknown:
        problem = (
            f"{where}: calaudit does not know the key(s) {', '.join(map(repr, unknown[:5]))}; not used "
            f"(the settings are {', '.join(sorted(known))})"
        )
    return MetadataPreprocessing({key: v for key, v in value.items() if key in known}, None, problem)


# ---------------------------------------------------------------------- setting values


def parse_setting(key: str, value: Any) -> Any:
    """One preprocessing value (an option's text or a ``preprocess.json`` value), checked.

    Raises ``ValueError`` saying what was expected; ``KeyError`` for an unknown key.
    """
    return _PARSERS[key](value)


def _whole_number(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected {what}")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"expected {what}")
        return int(value)
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError(f"expected {what}") from None


def _side(value: Any, what: str = "a whole number of pixels") -> int:
    number = _whole_number(value, what)
    if not 1 <= number <= MAX_SIDE:
        raise ValueError(f"sides are from 1 to {MAX_SIDE} pixels (calaudit's largest image side); got {number}")
    return number


def _size(value: Any) -> tuple[int, int]:
    shape = "HxW (such as 224x224) or one number for a square, in whole pixels"
    if isinstance(value, str):
        value = [part.strip() for part in value.lower().replace("x", ",").split(",")]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)) or len(value) not in (1, 2) or not all(str(v) for v in value):
        raise ValueError(f"expected {shape}")
    sides = [_side(v, shape) for v in value]
    return (sides[0], sides[-1])


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number")
    if isinstance(value, str):
        text = value.strip()
        if "/" in text:
            numerator, _, denominator = text.partition("/")
            return float(numerator) / float(denominator)
        return float(text)
    return float(value)


def _scale(value: Any) -> float:
    expected = "expected a positive number or a fraction such as 1/255"
    try:
        number = _number(value)
    except (TypeError, ValueError, ZeroDivisionError):
        raise ValueError(expected) from None
    if not math.isfinite(number) or number <= 0:
        raise ValueError(expected)
    return number


def _channel_values(name: str) -> Callable[[Any], tuple[float, ...]]:
    positive = name == "std"
    what = "positive numbers" if positive else "numbers"
    expected = f"expected one value or three (R,G,B) comma-separated {what}"

    def parse(value: Any) -> tuple[float, ...]:
        if isinstance(value, str):
            value = value.split(",")
        elif isinstance(value, (int, float)):
            value = [value]
        if not isinstance(value, (list, tuple)) or len(value) not in (1, 3):
            raise ValueError(expected)
        try:
            numbers = tuple(_number(v) for v in value)
        except (TypeError, ValueError, ZeroDivisionError):
            raise ValueError(expected) from None
        if not all(math.isfinite(v) for v in numbers) or (positive and not all(v > 0 for v in numbers)):
            raise ValueError(expected + (" (std divides the pixels)" if positive else ""))
        return numbers

    return parse


def _choice(options: Sequence[str], lower: bool) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).lower() if lower else str(value).upper()
        if text not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return text

    return parse


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "size": _size,
    "resize": _side,
    "crop": _size,
    "scale": _scale,
    "mean": _channel_values("mean"),
    "std": _channel_values("std"),
    "layout": _choice(LAYOUTS, lower=False),
    "color": _choice(COLORS, lower=True),
    "resize_rounding": _choice(ROUNDINGS, lower=True),
}


# ---------------------------------------------------------------------- geometry


def resized_size(width: int, height: int, resize: int, rounding: str) -> tuple[int, int]:
    """``(width, height)`` once the shorter side is ``resize`` pixels.

    ``torchvision`` (``Resize(int)``): the longer side is ``int(resize * long / short)``,
    truncated. ``pil``: both sides are multiplied by ``resize / short`` and rounded.
    """
    if rounding == "pil":
        factor = resize / min(width, height)
        return max(1, round(width * factor)), max(1, round(height * factor))
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(resize * long / short)
    return (resize, new_long) if width <= height else (new_long, resize)


def centre_crop_box(width: int, height: int, crop: tuple[int, int], rounding: str) -> tuple[int, int, int, int]:
    """The ``(left, top, right, bottom)`` box of a centre crop of ``crop`` (height, width).

    ``torchvision`` (``CenterCrop``): ``top = int(round((height - crop_h) / 2))`` (and so
    ``left``); a crop larger than the image pads it with zeros, ``(crop - side) // 2``
    before. ``pil``: offsets ``(side - crop) // 2`` and a crop larger than the image is
    clipped to it (the clipped picture is then stretched to the input size).
    """
    crop_height, crop_width = crop
    if rounding == "pil":
        left, top = max(0, (width - crop_width) // 2), max(0, (height - crop_height) // 2)
        return left, top, left + min(crop_width, width), top + min(crop_height, height)

    def offset(side: int, wanted: int) -> int:
        return -((wanted - side) // 2) if wanted > side else int(round((side - wanted) / 2.0))

    left, top = offset(width, crop_width), offset(height, crop_height)
    return left, top, left + crop_width, top + crop_height


def working_image(image: Any, *, grayscale: bool, where: str) -> Any:
    """The image as 8-bit ``L``/``RGB``, or as ``F`` holding a 16-bit image on the 0..255 scale.

    16-bit images (``I;16*``, and ``I`` with values in 0..65535) keep their precision:
    ``v`` becomes ``v * 255 / 65535`` in float, so the default scale of 1/255 gives
    [0, 1] as for 8-bit images. Alpha is dropped, as torchvision's ``pil_loader``
    (``convert("RGB")``) does. A float image (``F``) has no defined range: refused.
    """
    from PIL import Image

    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES or mode == "I":
        values = np.asarray(image)
        if mode == "I" and values.size:
            low, high = int(values.min()), int(values.max())
            if low < 0 or high > 65535:
                raise InvalidInputError(
                    f"{where}: a 32-bit integer image (mode I) with values from {low} to {high}; calaudit reads "
                    "mode I as 16-bit (0 to 65535): save it as an 8- or 16-bit image"
                )
        return Image.fromarray(np.multiply(values, _TO_EIGHT_BIT, dtype=np.float32))
    if mode == "F":
        raise InvalidInputError(
            f"{where}: a floating-point image (mode F) has no defined pixel range; save it as an 8- or 16-bit image"
        )
    if mode == "P" and "transparency" in image.info:
        # Straight to RGB, Pillow warns about a palette's byte transparency; via RGBA the
        # colours are the same and the alpha is dropped next.
        image = image.convert("RGBA")
    return image.convert("L" if grayscale else "RGB")


@dataclass(frozen=True)
class ResolvedPreprocess:
    """Preprocessing with every choice made for one model input."""

    size: tuple[int, int]
    resize: int | None
    crop: tuple[int, int] | None
    scale: float
    mean: np.ndarray | None
    std: np.ndarray | None
    layout: str  # NCHW, NHWC, HW (rank-3 input) or FLAT (rank-2 input)
    color: str
    dtype: Any
    resize_rounding: str = "torchvision"
    sources: dict[str, str] = field(default_factory=dict)  # setting -> where it came from

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": list(self.size), "resize": self.resize, "crop": list(self.crop) if self.crop else None,
            "scale": self.scale,
            "mean": self.mean.tolist() if self.mean is not None else None,
            "std": self.std.tolist() if self.std is not None else None,
            "layout": self.layout, "color": self.color, "resize_rounding": self.resize_rounding,
        }

    @property
    def channels(self) -> int:
        return 1 if self.color == "grayscale" else 3

    @property
    def row_shape(self) -> tuple[int, ...]:
        """The shape of one row of model input."""
        height, width = self.size
        return {
            "NCHW": (self.channels, height, width), "NHWC": (height, width, self.channels),
            "HW": (height, width), "FLAT": (height * width * self.channels,),
        }[self.layout]

    def resized(self, width: int, height: int) -> tuple[int, int] | None:
        """``(width, height)`` of an image of that size after ``resize`` (``None``: no resize)."""
        if self.resize is None:
            return None
        return resized_size(width, height, self.resize, self.resize_rounding)

    def tensor(self, image: Any, *, where: str = "image") -> np.ndarray:
        """One decoded PIL image -> the model's per-row array (float32)."""
        from PIL import Image

        image = working_image(image, grayscale=self.color == "grayscale", where=where)
        height, width = self.size
        if self.resize is not None:
            image = image.resize(self.resized(*image.size), Image.Resampling.BILINEAR)
        crop = self.crop or ((height, width) if self.resize is not None else None)
        if crop is not None:
            image = image.crop(centre_crop_box(*image.size, crop, self.resize_rounding))
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        pixels = np.asarray(image, dtype=np.float32)
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        if self.channels == 3 and pixels.shape[2] == 1:  # a 16-bit grey image for a colour model
            pixels = np.repeat(pixels, 3, axis=2)
        if self.color == "bgr":
            pixels = pixels[:, :, ::-1]
        if self.scale != 1.0:
            pixels = pixels * np.float32(self.scale)
        if self.mean is not None:
            pixels = pixels - self.mean
        if self.std is not None:
            pixels = pixels / self.std
        if self.layout == "NCHW":
            return np.ascontiguousarray(pixels.transpose(2, 0, 1))
        if self.layout == "HW":
            return pixels[:, :, 0]
        if self.layout == "FLAT":
            return pixels.reshape(-1)
        return pixels


def preprocess_summary(preprocess: dict[str, Any]) -> str:
    """One sentence saying what :meth:`ResolvedPreprocess.to_dict` describes."""
    height, width = preprocess["size"]
    steps = []
    if preprocess.get("resize"):
        steps.append(f"shorter side to {preprocess['resize']} ({preprocess.get('resize_rounding')} rounding)")
    crop = preprocess.get("crop") or ([height, width] if preprocess.get("resize") else None)
    if crop:
        steps.append(f"centre crop {crop[0]}x{crop[1]}")
        if list(crop) != [height, width]:
            steps.append(f"then resized to {height}x{width}")
    else:
        steps.append(f"each image resized to {height}x{width} (no resize or crop given)")
    scale = preprocess["scale"]
    scale_text = "1/255" if math.isclose(scale, 1 / 255, rel_tol=1e-9) else f"{scale:g}"
    values = [f"pixels x {scale_text}"]
    for name, verb in (("mean", "minus"), ("std", "divided by")):
        if preprocess.get(name) is not None:
            values.append(f"{verb} {name} {','.join(f'{v:g}' for v in preprocess[name])}")
    return (
        f"Image preprocessing: {height}x{width} input ({preprocess['layout']}, {preprocess['color']}); "
        f"{', '.join(steps)}; {', '.join(values)}."
    )


def resolve_preprocess(
    settings: ImagePreprocess, spec: Any, *, where: str, sources: dict[str, str] | None = None,
    metadata_where: str | None = None,
) -> ResolvedPreprocess:
    """Fill what ``settings`` leaves open from the model input ``spec``.

    ``sources`` says where each given setting came from; a setting from the model's
    metadata (``metadata_where`` names it) that contradicts the model's input is the
    model's fault (exit 3), one from the options or ``preprocess.json`` a usage error.
    """
    from ..onnx.model import INPUT_DTYPES

    sources = dict(sources or {})

    def conflict(key: str, message: str) -> Exception:
        if sources.get(key) == METADATA_SOURCE:
            return InvalidInputError(f"{metadata_where or where}: {message}")
        return UsageError(f"{where}: {message}")

    shape = spec.shape
    dims = [d if isinstance(d, int) and d > 0 else None for d in shape]
    layout = settings.layout
    channels: int | None = None
    size: tuple[int, int] | None = None
    if len(dims) == 4:
        if layout is None:
            first, last = dims[1], dims[3]
            if first in (1, 3) and last not in (1, 3):
                layout = "NCHW"
            elif last in (1, 3) and first not in (1, 3):
                layout = "NHWC"
            elif first in (1, 3):
                layout = "NCHW"
            else:
                raise UsageError(
                    f"{where}: cannot tell the channel layout of input {spec.describe()}; pass --layout NCHW or NHWC"
                )
            sources["layout"] = "model input"
        channels = dims[1] if layout == "NCHW" else dims[3]
        hw = (dims[2], dims[3]) if layout == "NCHW" else (dims[1], dims[2])
        size = (hw[0], hw[1]) if None not in hw else None
    elif len(dims) == 3:
        layout, channels = "HW", 1
        sources["layout"] = "model input"
        size = (dims[1], dims[2]) if None not in dims[1:] else None
    elif len(dims) == 2:
        layout = "FLAT"
        sources["layout"] = "model input"
    else:
        raise InvalidInputError(f"{where}: input {spec.describe()} does not look like an image batch")
    color = settings.color or ("grayscale" if channels == 1 else "rgb")
    if settings.color is None:
        sources["color"] = "model input" if channels is not None else "default"
    if channels is not None and (1 if color == "grayscale" else 3) != channels:
        plural = "" if channels == 1 else "s"
        raise conflict("color", f"input {spec.describe()} takes {channels} channel{plural} but color is {color}")
    if size is not None and settings.size is not None and settings.size != size:
        raise conflict(
            "size", f"input {spec.describe()} takes {size[0]}x{size[1]} images, not {settings.size[0]}x{settings.size[1]}"
        )
    if size is not None and max(size) > MAX_SIDE:
        raise InvalidInputError(
            f"{where}: input {spec.describe()} takes {size[0]}x{size[1]} images; calaudit feeds at most "
            f"{MAX_SIDE} pixels a side"
        )
    if settings.size is None:
        sources["size"] = "model input" if size is not None else sources.get("crop", "crop")
    size = size or settings.size or settings.crop
    if size is None:
        raise UsageError(f"{where}: input {spec.describe()} has no fixed image size; pass --image-size HxW")
    if layout == "FLAT":
        wanted = dims[1]
        got = size[0] * size[1] * (1 if color == "grayscale" else 3)
        if wanted is not None and wanted != got:
            raise UsageError(f"{where}: input {spec.describe()} takes {wanted} values per image, {size} gives {got}")
    dtype = INPUT_DTYPES.get(spec.element_type)
    if dtype is None or dtype is np.str_ or dtype is np.bool_:
        raise InvalidInputError(f"{where}: image input {spec.describe()} has a type calaudit cannot feed")
    integer_input = np.issubdtype(dtype, np.integer)
    scale = settings.scale if settings.scale is not None else (1.0 if integer_input else 1.0 / 255.0)
    n_channels = 1 if color == "grayscale" else 3

    def per_channel(values: tuple[float, ...] | None, name: str) -> np.ndarray | None:
        if values is None:
            return None
        if len(values) not in (1, n_channels):
            raise conflict(name, f"{name} has {len(values)} values for {n_channels} channel"
                                 f"{'' if n_channels == 1 else 's'}")
        array = np.asarray(values, dtype=np.float32)
        if name == "std" and np.any(array == 0):
            raise conflict(name, "std must not be 0")
        return array

    for key in ("resize", "crop", "scale", "mean", "std", "resize_rounding"):
        sources.setdefault(key, "default")
    return ResolvedPreprocess(
        size=size, resize=settings.resize, crop=settings.crop, scale=scale,
        mean=per_channel(settings.mean, "mean"), std=per_channel(settings.std, "std"),
        layout=layout, color=color, dtype=dtype, resize_rounding=settings.resize_rounding or "torchvision",
        sources={f.name: sources[f.name] for f in fields(ImagePreprocess)},
    )

"""Image folders (``data/<class_name>/*.png``) and their preprocessing.

Preprocessing is what turns a picture into the tensor the model was trained on:
resize, centre crop, scale, mean/std, channel layout and colour. It comes from
options, else ``preprocess.json`` in the data directory, else the model's input shape
where it is fixed (README, "Image preprocessing"). Images are decoded one batch at a
time with Pillow, so memory stays bounded whatever the folder's size.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError, UsageError
from ..location import Location
from .datadir import IMAGE_SUFFIXES, Dataset, FeatureBatch, read_class_names_file

PREPROCESS_FILE = "preprocess.json"
LAYOUTS = ("NCHW", "NHWC")
COLORS = ("rgb", "bgr", "grayscale")


@dataclass(frozen=True)
class ImagePreprocess:
    """How an image becomes model input; ``None`` fields are inferred or defaulted.

    ``size`` (height, width) is what the model takes; ``resize`` first scales the
    shorter side to that many pixels, then the centre is cropped to ``crop`` (or
    ``size``); ``scale`` multiplies pixel values (default 1/255 for float inputs, none
    for integer inputs); ``mean``/``std`` then normalise each channel.
    """

    size: tuple[int, int] | None = None
    resize: int | None = None
    crop: tuple[int, int] | None = None
    scale: float | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    layout: str | None = None
    color: str | None = None

    @classmethod
    def from_mapping(cls, values: dict[str, Any], *, where: str) -> ImagePreprocess:
        """Validate a ``preprocess.json``-style mapping; unknown keys are errors."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InvalidInputError(
                f"{where}: unknown preprocessing key {unknown[0]!r}; expected {', '.join(sorted(known))}"
            )
        parsed: dict[str, Any] = {}
        for key, value in values.items():
            if value is None:
                continue
            try:
                parsed[key] = _PARSERS[key](value)
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"{where}: {key} = {value!r} is invalid: {exc}") from None
        return cls(**parsed)

    def merged_over(self, base: ImagePreprocess) -> ImagePreprocess:
        """These settings where given, ``base`` elsewhere."""
        return replace(base, **{f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None})

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}


def _size(value: Any) -> tuple[int, int]:
    if isinstance(value, str):
        parts = value.lower().replace("x", ",").split(",")
        value = [int(p) for p in parts if p.strip()]
    if isinstance(value, int):
        value = [value, value]
    if len(value) == 1:
        value = [value[0], value[0]]
    height, width = (int(v) for v in value)
    if height < 1 or width < 1:
        raise ValueError("sizes must be positive")
    return height, width


def _floats(value: Any) -> tuple[float, ...]:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if isinstance(value, (int, float)):
        value = [value]
    return tuple(float(v) for v in value)


def _choice(options: Sequence[str], lower: bool) -> Any:
    def parse(value: Any) -> str:
        text = str(value).lower() if lower else str(value).upper()
        if text not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return text

    return parse


def _positive_int(value: Any) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("must be a positive integer")
    return number


_PARSERS = {
    "size": _size,
    "resize": _positive_int,
    "crop": _size,
    "scale": float,
    "mean": _floats,
    "std": _floats,
    "layout": _choice(LAYOUTS, lower=False),
    "color": _choice(COLORS, lower=True),
}


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": list(self.size), "resize": self.resize, "crop": list(self.crop) if self.crop else None,
            "scale": self.scale,
            "mean": self.mean.tolist() if self.mean is not None else None,
            "std": self.std.tolist() if self.std is not None else None,
            "layout": self.layout, "color": self.color,
        }

    def tensor(self, image: Any) -> np.ndarray:
        """One decoded PIL image -> the model's per-row array."""
        from PIL import Image

        image = image.convert("L" if self.color == "grayscale" else "RGB")
        height, width = self.size
        if self.resize is not None:
            w, h = image.size
            factor = self.resize / min(w, h)
            image = image.resize((max(1, round(w * factor)), max(1, round(h * factor))), Image.Resampling.BILINEAR)
        crop = self.crop or ((height, width) if self.resize is not None else None)
        if crop is not None:
            image = _centre_crop(image, crop)
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        pixels = np.asarray(image, dtype=np.float32)
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
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


def _centre_crop(image: Any, size: tuple[int, int]) -> Any:
    height, width = size
    w, h = image.size
    left = max(0, (w - width) // 2)
    top = max(0, (h - height) // 2)
    return image.crop((left, top, left + min(width, w), top + min(height, h)))


def resolve_preprocess(settings: ImagePreprocess, spec: Any, *, where: str) -> ResolvedPreprocess:
    """Fill what ``settings`` leaves open from the model input ``spec``."""
    from ..onnx_model import INPUT_DTYPES

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
        channels = dims[1] if layout == "NCHW" else dims[3]
        hw = (dims[2], dims[3]) if layout == "NCHW" else (dims[1], dims[2])
        size = (hw[0], hw[1]) if None not in hw else None
    elif len(dims) == 3:
        layout, channels = "HW", 1
        size = (dims[1], dims[2]) if None not in dims[1:] else None
    elif len(dims) == 2:
        layout = "FLAT"
    else:
        raise InvalidInputError(f"{where}: input {spec.describe()} does not look like an image batch")
    color = settings.color or ("grayscale" if channels == 1 else "rgb")
    if channels is not None and (1 if color == "grayscale" else 3) != channels:
        raise UsageError(f"{where}: input {spec.describe()} takes {channels} channel(s) but color is {color}")
    if size is not None and settings.size is not None and settings.size != size:
        raise UsageError(f"{where}: input {spec.describe()} takes {size[0]}x{size[1]} images, not {settings.size[0]}x{settings.size[1]}")
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
            raise UsageError(f"{where}: {name} has {len(values)} values for {n_channels} channel(s)")
        array = np.asarray(values, dtype=np.float32)
        if name == "std" and np.any(array == 0):
            raise UsageError(f"{where}: std must not be 0")
        return array

    return ResolvedPreprocess(
        size=size, resize=settings.resize, crop=settings.crop, scale=scale,
        mean=per_channel(settings.mean, "mean"), std=per_channel(settings.std, "std"),
        layout=layout, color=color, dtype=dtype,
    )


@dataclass
class ImageFolderDataset(Dataset):
    """``root/<class>/<image>`` files, labelled by their folder."""

    image_files: list[Path] = field(default_factory=list)
    settings: ImagePreprocess = field(default_factory=ImagePreprocess)
    skip_bad_images: bool = False
    resolved: ResolvedPreprocess | None = None

    def batches(self, inputs: Sequence[Any], batch_size: int) -> Iterator[FeatureBatch]:
        from PIL import Image, UnidentifiedImageError

        if len(inputs) != 1:
            raise InvalidInputError(
                f"{self.path}: an image folder fills one model input, but the model expects "
                f"{', '.join(s.describe() for s in inputs)}"
            )
        spec = inputs[0]
        self.resolved = resolve_preprocess(self.settings, spec, where=str(self.path))
        resolved = self.resolved
        for start in range(0, self.n_rows, batch_size):
            rows, tensors = [], []
            for index in range(start, min(start + batch_size, self.n_rows)):  # decoding is per file
                file = self.image_files[index]
                try:
                    with Image.open(file) as image:
                        image.load()
                        tensors.append(resolved.tensor(image))
                except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
                    if not self.skip_bad_images:
                        raise InvalidInputError(
                            f"{file}: cannot decode the image ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                            "fix or remove it, or pass --skip-bad-images"
                        ) from None
                    self.skipped.append(str(file.relative_to(self.path)))
                    continue
                rows.append(index)
            if not rows:
                continue
            batch = np.stack(tensors).astype(resolved.dtype, copy=False)
            yield FeatureBatch({spec.name: batch}, np.asarray(rows, dtype=np.intp))

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["preprocess"] = self.resolved.to_dict() if self.resolved else self.settings.to_dict()
        info["images_skipped"] = len(self.skipped)
        if self.skipped:
            info["skipped_files"] = self.skipped[:20]
        return info


def load_image_folder(
    path: Path, *, preprocess: dict[str, Any] | None = None, skip_bad_images: bool = False
) -> ImageFolderDataset:
    """List ``path/<class>/<image>`` files (sorted) and read the preprocessing settings."""
    from ..fileinfo import Digests

    folders = sorted(child for child in path.iterdir() if child.is_dir() and not child.name.startswith("."))
    files: list[Path] = []
    labels: list[str] = []
    for folder in folders:
        images = sorted(
            p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        files += images
        labels += [folder.name] * len(images)
    if not files:
        raise InvalidInputError(
            f"{path}: no images found; expected class folders holding {', '.join(IMAGE_SUFFIXES)} files"
        )
    file_settings = ImagePreprocess()
    hashes = Digests()
    config = path / PREPROCESS_FILE
    if config.is_file():
        try:
            values = json.loads(config.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidInputError(f"{config}: not valid JSON ({exc})") from None
        if not isinstance(values, dict):
            raise InvalidInputError(f"{config}: expected a JSON object of preprocessing settings")
        file_settings = ImagePreprocess.from_mapping(values, where=str(config))
        hashes.add(PREPROCESS_FILE, config)
    option_settings = ImagePreprocess.from_mapping(preprocess or {}, where="options")
    class_names = read_class_names_file(path / "classes.txt")
    source = "classes.txt" if class_names else "image folder names (sorted)"
    if class_names:
        hashes.add("classes.txt", path / "classes.txt")
    return ImageFolderDataset(
        path, "images", np.asarray(labels, dtype=object), Location(str(path), None, True),
        # Every class folder is a class, empty or not (torchvision's ImageFolder rule).
        class_names or tuple(folder.name for folder in folders),
        source, np.asarray([str(f.relative_to(path)) for f in files], dtype=object), "path", hashes,
        image_files=files, settings=option_settings.merged_over(file_settings), skip_bad_images=skip_bad_images,
    )

"""Image folders (``data/<class_name>/*.png``), read one batch at a time.

The folder names are the labels; each picture is decoded with Pillow and turned into
the model's input by :mod:`calaudit.loaders.image_preprocess`. A batch is kept under
:data:`MAX_BATCH_BYTES`, so memory stays bounded whatever the folder's size.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError, Location, UsageError, first_line
from ..files.info import path_problem
from .dataset import IMAGE_SUFFIXES, Dataset, FeatureBatch, read_class_names_file
from .image_preprocess import (  # noqa: F401 - re-exported: the image loader's public names
    COLORS,
    LAYOUTS,
    MAX_SIDE,
    METADATA_KEY,
    METADATA_SOURCE,
    OPTION_NAMES,
    PREPROCESS_FILE,
    ROUNDINGS,
    ImagePreprocess,
    MetadataPreprocessing,
    ResolvedPreprocess,
    centre_crop_box,
    parse_setting,
    preprocess_summary,
    read_metadata,
    resized_size,
    resolve_preprocess,
    working_image,
)

#: Largest image the resize may make before the crop: MAX_SIDE by twice as many pixels
#: (about 400 MB as 8-bit RGB), so a picture up to 1:2 can be resized to MAX_SIDE.
MAX_RESIZED_PIXELS = 2 * MAX_SIDE * MAX_SIDE
#: Largest batch of model input (rows x H x W x C x 4 bytes) when the batch is free.
MAX_BATCH_BYTES = 1 << 30


@contextmanager
def _pillow_pixel_limit(limit: int | None) -> Iterator[None]:
    """Pillow's decompression-bomb limit set to ``limit`` for one ``Image.open``, then restored."""
    from PIL import Image

    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = limit
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


class _Undecodable(Exception):
    """An image that cannot be used; ``--skip-bad-images`` skips it."""


@dataclass
class ImageFolderDataset(Dataset):
    """``root/<class>/<image>`` files, labelled by their folder."""

    image_files: list[Path] = field(default_factory=list)
    settings: ImagePreprocess = field(default_factory=ImagePreprocess)
    skip_bad_images: bool = False
    resolved: ResolvedPreprocess | None = None
    setting_sources: dict[str, str] = field(default_factory=dict)  # given setting -> its source
    metadata_where: str | None = None  # the model's preprocessing metadata, for messages
    preprocess_note: str | None = None  # that metadata when it is the vendor's description, not settings
    allow_large_images: bool = False
    warn: Callable[[str], None] | None = None  # told each warning once, as it arises
    warnings: list[str] = field(default_factory=list)
    batch_rows: int | None = None  # rows per batch actually used
    image_sizes: Counter = field(default_factory=Counter)  # (height, width) -> images
    images_resized: int = 0  # images of another size than the input, without resize or crop
    images_stretched: int = 0  # ... of which the aspect ratio differs from the input's

    def batches(self, inputs: Sequence[Any], batch_size: int) -> Iterator[FeatureBatch]:
        from PIL import Image

        if len(inputs) != 1:
            raise InvalidInputError(
                f"{self.path}: an image folder fills one model input, but the model expects "
                f"{', '.join(s.describe() for s in inputs)}"
            )
        spec = inputs[0]
        self.resolved = resolve_preprocess(self.settings, spec, where=str(self.path), sources=self.setting_sources,
                                           metadata_where=self.metadata_where)
        resolved = self.resolved
        row_shape = resolved.row_shape
        row_bytes = int(np.prod(row_shape)) * max(4, np.dtype(resolved.dtype).itemsize)
        rows_per_batch = batch_size
        if spec.fixed_batch is None:  # a fixed batch is what the model takes, whatever its size
            rows_per_batch = max(1, min(batch_size, MAX_BATCH_BYTES // row_bytes))
        self.batch_rows = rows_per_batch
        pixel_limit = None if self.allow_large_images else Image.MAX_IMAGE_PIXELS
        self.image_sizes, self.images_resized, self.images_stretched = Counter(), 0, 0
        for start in range(0, self.n_rows, rows_per_batch):
            stop = min(start + rows_per_batch, self.n_rows)
            block = np.empty((stop - start, *row_shape), dtype=np.float32)
            rows: list[int] = []
            for index in range(start, stop):  # decoding is per file
                file = self.image_files[index]
                try:
                    block[len(rows)] = self._read(file, resolved, pixel_limit)
                except _Undecodable as exc:
                    if not self.skip_bad_images:
                        raise InvalidInputError(f"{exc}; fix or remove it, or pass --skip-bad-images") from None
                    self.skipped.append(str(file.relative_to(self.path)))
                    continue
                rows.append(index)
            if not rows:
                continue
            yield FeatureBatch({spec.name: _cast(block[:len(rows)], resolved.dtype)}, np.asarray(rows, dtype=np.intp))
        if self.images_stretched:
            self._warn(self._stretch_warning())

    def _read(self, file: Path, resolved: ResolvedPreprocess, pixel_limit: int | None) -> np.ndarray:
        """One file -> its row of model input; ``_Undecodable`` when it cannot be used."""
        from PIL import Image, UnidentifiedImageError

        with _pillow_pixel_limit(None):  # the limit is checked below, with a message of ours
            try:
                image = Image.open(file)
            except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
                raise _Undecodable(f"{file}: cannot decode the image ({first_line(exc)})") from None
            with image:
                return self._convert(file, image, resolved, pixel_limit)

    def _convert(self, file: Path, image: Any, resolved: ResolvedPreprocess, pixel_limit: int | None) -> np.ndarray:
        """An opened (not yet decoded) image -> its row, after the size checks."""
        from PIL import Image

        width, height = image.size
        pixels = width * height
        if pixel_limit is not None and pixels > pixel_limit:
            raise _Undecodable(
                f"{file}: {pixels:,} pixels ({width} wide, {height} high), more than the {pixel_limit:,} Pillow "
                "decodes by default (its guard against decompression bombs); pass --allow-large-images if the "
                "image is genuine"
            )
        resized = resolved.resized(width, height)
        if resized is not None and resized[0] * resized[1] > MAX_RESIZED_PIXELS:
            source = resolved.sources.get("resize", "options")
            setting = f"--resize {resolved.resize}" if source == "options" else f"resize {resolved.resize} ({source})"
            raise InvalidInputError(
                f"{file}: {setting} turns its {width}x{height} pixels (width x height) into "
                f"{resized[0]}x{resized[1]} = {resized[0] * resized[1]:,}, more than the {MAX_RESIZED_PIXELS:,} "
                "calaudit allows; use a smaller resize or crop the image first"
            )
        try:
            image.load()
            row = resolved.tensor(image, where=str(file))
        except InvalidInputError as exc:  # a pixel format calaudit cannot read
            raise _Undecodable(str(exc)) from None
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise _Undecodable(f"{file}: cannot decode the image ({first_line(exc)})") from None
        self._count_size(width, height, resolved)
        return row

    def _count_size(self, width: int, height: int, resolved: ResolvedPreprocess) -> None:
        self.image_sizes[(height, width)] += 1
        target_height, target_width = resolved.size
        if resolved.resize is None and resolved.crop is None and (height, width) != (target_height, target_width):
            self.images_resized += 1
            if width * target_height != height * target_width:
                self.images_stretched += 1

    def _sizes_seen(self) -> dict[str, int]:
        return {f"{h}x{w}": n for (h, w), n in self.image_sizes.most_common(5)}

    def _stretch_warning(self) -> str:
        height, width = self.resolved.size
        total = sum(self.image_sizes.values())
        return (
            f"{self.path}: {self.images_stretched} of {total} images have another aspect ratio than the model's "
            f"{height}x{width} input and were stretched to it (sizes seen: {', '.join(self._sizes_seen())}); "
            "pass --resize N (and --crop HxW) to keep their proportions, as torchvision's Resize and CenterCrop do"
        )

    def _warn(self, message: str) -> None:
        if message in self.warnings:
            return
        self.warnings.append(message)
        if self.warn is not None:
            self.warn(message)

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        if self.resolved:
            info["preprocess"] = self.resolved.to_dict()
            info["preprocess_sources"] = dict(self.resolved.sources)
            info["preprocess_summary"] = preprocess_summary(info["preprocess"])
        else:
            info["preprocess"] = self.settings.to_dict()
            info["preprocess_sources"] = dict(self.setting_sources)
        if self.preprocess_note:
            info["preprocess_note"] = self.preprocess_note
        info["images_skipped"] = len(self.skipped)
        if self.skipped:
            info["skipped_files"] = self.skipped[:20]
        if self.batch_rows is not None:
            info["batch_rows"] = self.batch_rows
        if self.image_sizes:
            info["image_sizes_seen"] = self._sizes_seen()
            info["images_resized_to_input"] = self.images_resized
            info["images_stretched"] = self.images_stretched
        if self.warnings:
            info["warnings"] = list(self.warnings)
        return info


def _cast(block: np.ndarray, dtype: Any) -> np.ndarray:
    """Float pixels -> the input's type; integer inputs get rounded, clipped values."""
    if np.issubdtype(dtype, np.integer):
        limits = np.iinfo(dtype)
        block = np.clip(np.rint(block), limits.min, limits.max)
    return block.astype(dtype, copy=False)


def _class_folders(path: Path) -> list[Path]:
    """The class folders of an image data directory, sorted. A child that cannot be
    listed (a symlink loop, a broken link, no permission) is an error naming it: skipping
    it would drop a whole class without a word."""
    folders = []
    for child in sorted(path.iterdir()):
        if child.name.startswith("."):
            continue
        problem = path_problem(child, want_dir=True)
        if problem is None:
            folders.append(child)
        elif not problem.startswith("is a file"):  # a file beside the folders (classes.txt) is fine
            raise InvalidInputError(f"{child}: {problem}; expected a class folder of images")
    return folders


def load_image_folder(
    path: Path, *, preprocess: dict[str, Any] | None = None, skip_bad_images: bool = False,
    allow_large_images: bool = False, model: Any = None, warn: Callable[[str], None] | None = None,
) -> ImageFolderDataset:
    """List ``path/<class>/<image>`` files (sorted) and read the preprocessing settings.

    Settings: ``preprocess`` (the options) > ``preprocess.json`` > ``model``'s
    ``preprocessing`` metadata entry > the model's input shape > defaults.
    """
    from ..files.info import Digests

    folders = _class_folders(path)
    files: list[Path] = []
    labels: list[str] = []
    unreadable: list[str] = []
    for folder in folders:
        images = []
        for entry in sorted(folder.iterdir()):  # directory entries, not samples
            if entry.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            problem = path_problem(entry)
            if problem is None:
                images.append(entry)
            elif not skip_bad_images:  # a looping or broken link would drop an image silently
                raise InvalidInputError(f"{entry}: {problem}; fix or remove it, or pass --skip-bad-images")
            else:
                unreadable.append(str(entry.relative_to(path)))
        files += images
        labels += [folder.name] * len(images)
    if not files:
        raise InvalidInputError(
            f"{path}: no images found; expected class folders holding {', '.join(IMAGE_SUFFIXES)} files"
        )
    layers: list[tuple[str, ImagePreprocess]] = [
        ("options", ImagePreprocess.from_mapping(preprocess or {}, where="options", error=UsageError,
                                                 names=OPTION_NAMES)),
    ]
    hashes = Digests()
    config = path / PREPROCESS_FILE
    if config.is_file():
        try:
            values = json.loads(config.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidInputError(f"{config}: not valid JSON ({exc})") from None
        if not isinstance(values, dict):
            raise InvalidInputError(f"{config}: expected a JSON object of preprocessing settings")
        layers.append((PREPROCESS_FILE, ImagePreprocess.from_mapping(values, where=str(config))))
        hashes.add(PREPROCESS_FILE, config)
    entry = model.metadata_preprocessing() if model is not None else None
    metadata_where = f"{model.path}: metadata '{entry[0] if entry else METADATA_KEY}'" if model is not None else None
    metadata = read_metadata(entry[1], where=metadata_where) if entry is not None else MetadataPreprocessing()
    given = {key for _, layer in layers for key in layer.given()}
    # A metadata setting the options or preprocess.json give is not used, so not checked.
    used = {key: value for key, value in metadata.settings.items() if key not in given}
    if used:
        layers.append((METADATA_SOURCE, ImagePreprocess.from_mapping(used, where=metadata_where)))
    settings, sources = ImagePreprocess(), {}
    for source, layer in reversed(layers):
        settings = layer.merged_over(settings)
        sources.update({key: source for key in layer.given()})
    class_names = read_class_names_file(path / "classes.txt")
    names_source = "classes.txt" if class_names else "image folder names (sorted)"
    if class_names:
        hashes.add("classes.txt", path / "classes.txt")
    dataset = ImageFolderDataset(
        path, "images", np.asarray(labels, dtype=object), Location(str(path), None, True),
        # Every class folder is a class, empty or not (torchvision's ImageFolder rule).
        class_names or tuple(folder.name for folder in folders),
        names_source, np.asarray([str(f.relative_to(path)) for f in files], dtype=object), "path", hashes,
        image_files=files, settings=settings, skip_bad_images=skip_bad_images, setting_sources=sources,
        allow_large_images=allow_large_images, warn=warn, metadata_where=metadata_where,
        skipped=unreadable, preprocess_note=metadata.note,
    )
    if metadata.problem:
        dataset._warn(metadata.problem)
    return dataset

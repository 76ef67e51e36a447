"""What ``pan_tf.enhance`` and ``pan_tf.evaluate`` share: exported models and image files.

Models. Both tools run the SavedModels that export.py writes (``EXPORT_ROOT/<name>/
<version>/``), so they test exactly what TF Serving serves. ``--model`` names a
version directory, or a model directory; there ``--label`` (``x2``/``x4``/``x8``,
``r64``, …) picks the version whose ``assets/stage.json`` carries it — the same
labels ``models.config`` lists, since export writes both from one ``stage_info`` —
and without a label the highest version wins, like TF Serving's default policy.
:class:`SRModel` calls the export's ``upscale(images, seed, noise_strength)``
function; with the default seed it equals ``serving_default``.

Image files are read with Pillow, which covers what users bring: JPEG (its EXIF
orientation applied, as viewers do), PNG (8/16-bit, gray, palette, alpha), WebP,
BMP, GIF (first frame), TIFF. The model sees RGB uint8; a gray file is replicated
to RGB and its output written gray again, an alpha channel is kept aside and
upscaled separately (bicubic), 16-bit samples are scaled to 8 bits. Files that do
not decode raise :class:`UnreadableImage`, which the tools turn into a one-line
warning and a skip.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import sys
import warnings

import numpy as np
import tensorflow as tf
from PIL import Image, ImageOps

from pan_tf import export as export_lib
from pan_tf.data import IMAGE_EXTENSIONS

INPUT_EXTENSIONS = IMAGE_EXTENSIONS + (".tif", ".tiff")   # what Pillow reads beyond core TF
# File extension → the Pillow format outputs are written in (--format=same).
OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP",
                  ".gif": "GIF", ".tif": "TIFF", ".tiff": "TIFF"}
JPEG_QUALITY = 95                      # when an output is written as JPEG


class InferenceError(ValueError):
    """A tool cannot run at all; the message (one line) says what to change."""


class UnreadableImage(Exception):
    """One input file cannot be used; the message is the reason (one line)."""


# -- exported models ------------------------------------------------------------------
def _read_stage_info(version_dir: str) -> dict:
    path = os.path.join(version_dir, "assets", export_lib.STAGE_INFO)
    if not tf.io.gfile.exists(path):
        raise InferenceError(f"{version_dir} has no assets/{export_lib.STAGE_INFO}; "
                             f"is it a pan_tf.export SavedModel?")
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def resolve_version(model: str, label: str | None = None) -> str:
    """The version directory that ``--model`` (and ``--label``) name; see the module doc."""
    model = model.rstrip("/")
    if tf.io.gfile.exists(os.path.join(model, "saved_model.pb")):
        if label is not None and _read_stage_info(model).get("label") != label:
            raise InferenceError(f"--model={model} is version "
                                 f"{_read_stage_info(model).get('label')!r}, not --label={label}; "
                                 f"drop --label or point --model at the model directory")
        return model
    versions = export_lib.exported_versions(model)
    if not versions:
        raise InferenceError(f"--model={model} is neither an exported version (with "
                             f"saved_model.pb) nor a model directory holding versions "
                             f"(EXPORT_ROOT/<model_name>)")
    if label is None:
        return os.path.join(model, str(max(versions)))
    matches = [v for v, info in versions.items() if info.get("label") == label]
    if not matches:
        have = ", ".join(f"{info.get('label')} (version {v})" for v, info in versions.items())
        raise InferenceError(f"--label={label} is not exported under {model}; it has: {have}")
    return os.path.join(model, str(max(matches)))


class SRModel:
    """One exported version: its ``upscale`` function and its ``assets/stage.json``.

    Attributes mirror stage.json: ``scale`` (output/input side), ``input_size`` (LR
    side the stage trained on), ``resolution`` (output side it trained on),
    ``pad_multiple`` (the graph pads H, W to it), ``label``, ``version``. Build it
    with :func:`load_model`, or around an unsaved ``export.ServingModule`` and
    ``export.stage_info(...)`` (benchmarks do, to skip writing a SavedModel).
    """

    def __init__(self, module, info: dict, path: str | None = None):
        if not hasattr(module, "upscale"):
            raise InferenceError(f"{path or 'the model'} has no upscale function; re-export it "
                                 f"with python -m pan_tf.export")
        self.module, self.info, self.path = module, info, path
        self.version, self.label = int(info["version"]), info["label"]
        self.scale, self.input_size = int(info["scale"]), int(info["input_size"])
        self.resolution, self.lr_size = int(info["resolution"]), int(info["lr_size"])
        self.pad_multiple = int(info["pad_multiple"])
        self.max_input_pixels = int(info["max_input_pixels"])
        self.noise_seed = tuple(int(s) for s in info["noise_seed"])

    def upscale(self, images: np.ndarray, seed=None, noise_strength: float = 1.0) -> np.ndarray:
        """uint8 [N,H,W,3] → uint8 [N,sH,sW,3].

        ``seed`` (two ints, or an int32 [2] tensor) defaults to the export's fixed
        inference seed, so ``noise_strength=1`` reproduces ``serving_default``.
        """
        seed = self.noise_seed if seed is None else seed
        out = self.module.upscale(tf.convert_to_tensor(images, tf.uint8),
                                  tf.cast(seed, tf.int32), tf.constant(noise_strength, tf.float32))
        return out.numpy()

    def describe(self) -> dict:
        return {"path": self.path, "version": self.version, "label": self.label,
                "scale": self.scale, "input_size": self.input_size,
                "resolution": self.resolution, "images_seen": self.info.get("images_seen")}


def load_model(model: str, label: str | None = None) -> SRModel:
    """Loads the version that ``--model``/``--label`` name (:func:`resolve_version`)."""
    path = resolve_version(model, label)
    return SRModel(tf.saved_model.load(path), _read_stage_info(path), path)


# -- image files ------------------------------------------------------------------------
def list_inputs(spec: str) -> list[str]:
    """Image files named by ``spec``: a folder (recursive), a glob, or one file.

    In folders and globs only image extensions count; a file named on its own is
    always tried (it is reported if it does not decode).
    """
    if tf.io.gfile.isdir(spec):
        paths = [os.path.join(folder, name)
                 for folder, _, names in tf.io.gfile.walk(spec) for name in names]
    elif any(ch in spec for ch in "*?["):
        paths = tf.io.gfile.glob(spec)
    elif tf.io.gfile.exists(spec):
        return [spec]
    else:
        raise InferenceError(f"--input={spec}: no such file, folder or glob")
    return sorted(p for p in paths if p.lower().endswith(INPUT_EXTENSIONS))


@dataclasses.dataclass
class Picture:
    """A decoded input file, ready for the model."""

    rgb: np.ndarray              # uint8 [H,W,3]; gray files are replicated to 3 channels
    alpha: np.ndarray | None     # uint8 [H,W] when the file has transparency
    gray: bool                   # the file has a single colour channel
    format: str                  # Pillow's format name: PNG, JPEG, WEBP, BMP, GIF, TIFF, …


def _to_uint8(array: np.ndarray) -> np.ndarray:
    """Pillow's integer/float gray planes (8, 16 or 32 bit) → uint8."""
    if array.dtype == np.uint8:
        return array
    is_float = array.dtype.kind == "f"
    array = array.astype(np.float64)
    if is_float and array.max(initial=0) <= 1.0:   # float planes in [0, 1]
        array = array * 255.0
    elif array.max(initial=0) > 255:               # 16-bit samples
        array = array / 257.0
    return np.clip(np.round(array), 0, 255).astype(np.uint8)


def decode_picture(data: bytes) -> Picture:
    """Encoded bytes → :class:`Picture`; raises :class:`UnreadableImage`."""
    if not data:
        raise UnreadableImage("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")                  # e.g. Pillow's large-image notice
            with Image.open(io.BytesIO(data)) as image:
                fmt = image.format or "PNG"
                image = ImageOps.exif_transpose(image)       # loads the (first) frame
                mode = image.mode
                if mode in ("1", "L", "I", "I;16", "I;16B", "I;16L", "F"):
                    gray = _to_uint8(np.asarray(image.convert("L") if mode == "1" else image))
                    return Picture(np.repeat(gray[..., None], 3, axis=-1), None, True, fmt)
                if mode in ("LA", "La", "PA") or (mode == "P" and "transparency" in image.info):
                    image = image.convert("RGBA" if mode.startswith("P") else "LA")
                    array = np.asarray(image)
                    if image.mode == "LA":
                        return Picture(np.repeat(array[..., :1], 3, axis=-1),
                                       np.ascontiguousarray(array[..., 1]), True, fmt)
                    return Picture(np.ascontiguousarray(array[..., :3]),
                                   np.ascontiguousarray(array[..., 3]), False, fmt)
                if mode in ("RGBA", "RGBa"):
                    array = np.asarray(image.convert("RGBA"))
                    return Picture(np.ascontiguousarray(array[..., :3]),
                                   np.ascontiguousarray(array[..., 3]), False, fmt)
                return Picture(np.asarray(image.convert("RGB")), None, False, fmt)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise UnreadableImage(f"not a readable image ({_one_line(e)})") from None


def read_picture(path: str) -> Picture:
    """Reads and decodes one file (any ``tf.io.gfile`` path); raises :class:`UnreadableImage`."""
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            data = f.read()
    except tf.errors.OpError as e:
        raise UnreadableImage(f"cannot read the file ({_one_line(e)})") from None
    return decode_picture(data)


def encode_picture(rgb: np.ndarray, alpha: np.ndarray | None, gray: bool, fmt: str) -> bytes:
    """uint8 [H,W,3] (+ alpha [H,W]) → file bytes in ``fmt``; gray pictures are stored gray.

    Formats without transparency (JPEG, BMP) drop the alpha channel.
    """
    image = Image.fromarray(rgb)
    if gray:
        image = image.convert("L")                    # BT.601 luma, what viewers show
    if alpha is not None and fmt in ("PNG", "WEBP", "TIFF", "GIF"):
        image.putalpha(Image.fromarray(alpha))        # L → LA, RGB → RGBA
    buffer = io.BytesIO()
    options = {"quality": JPEG_QUALITY} if fmt in ("JPEG", "WEBP") else {}
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def write_bytes(path: str, data: bytes) -> None:
    """Writes ``data`` to ``path`` (any ``tf.io.gfile`` path), creating folders."""
    folder = os.path.dirname(path)
    if folder:
        tf.io.gfile.makedirs(folder)
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(data)


def resize_alpha(alpha: np.ndarray, height: int, width: int) -> np.ndarray:
    """An alpha plane uint8 [h,w] → [height,width] (bicubic, clipped)."""
    return np.asarray(Image.fromarray(alpha).resize((width, height), Image.BICUBIC))


# -- small things -------------------------------------------------------------------------
def _one_line(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:160]


def warn(message: str) -> None:
    """One line on stderr, for skipped files and notices."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def progress_bar(total: int, unit: str = "image"):
    """A Keras progress bar over ``total`` items (dynamic on a terminal, quiet in logs)."""
    import keras   # only for the bar: the tools never build Keras models

    return keras.utils.Progbar(total, interval=1.0, unit_name=unit)

"""Training data: (LR, HR) batches at a stage's resolutions (DESIGN §4).

The trainer asks :func:`make_dataset` for a stage and gets an endless,
batched ``tf.data.Dataset`` of ``(lr [B,r_in,r_in,3], hr [B,r,r,3])`` in
[-1, 1]. Per example:

    HR  = centre-crop to square, resize to hr_size          (once, or cached)
    HR  = random horizontal flip
    LR  = degrade(HR) at lr_size                            (degrade.py)
    out = (area-downsample LR to r_in, area-downsample HR to r)

**Reproducible by position.** Example ``i`` of a run is fully determined by
``(seed, i)``: which file (a stateless permutation per pass over the data,
``tf.random.experimental.index_shuffle``), the flip and every degradation draw.
A resumed run starts the stream at ``images_seen`` and sees exactly the
examples the uninterrupted run would have seen.

**Bad files never stop training.** Sources are scanned once at start: every
file is decoded; corrupt, truncated, non-image and too-small files are skipped
with one warning line naming the file and counted. Good files are all used; a
source with no usable image fails at once with a clear message. When the
prepared HR images fit in ``cache_mb`` they are kept in memory, so the pipeline
does no decoding at all while training.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
from collections import Counter

import numpy as np
import tensorflow as tf
from absl import logging

from pan_tf import degrade as degrade_lib
from pan_tf.config import DataConfig, ModelConfig

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
BUILTIN_SKIMAGE = "builtin:skimage"
# Natural photographs that ship inside scikit-image's wheel (no download needed).
SKIMAGE_PHOTOS = (
    "astronaut.png", "camera.png", "chelsea.png", "coffee.png", "rocket.jpg",
    "motorcycle_left.png", "motorcycle_right.png", "hubble_deep_field.jpg", "moon.png",
    "coins.png", "brick.png", "grass.png", "gravel.png", "retina.jpg", "ihc.png", "cell.png",
)


class DataError(ValueError):
    """The data source cannot be used; the message says what to fix."""


@dataclasses.dataclass
class ScanReport:
    """What a scan of a source found."""

    paths: list[str]                    # usable files, sorted
    skipped: list[tuple[str, str]]      # (file, reason)
    images: np.ndarray | None = None    # [n,S,S,3] uint8 prepared HR images, when cached

    def summary(self) -> str:
        reasons = Counter(reason.split(":")[0] for _, reason in self.skipped)
        detail = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
        return (f"{len(self.paths)} usable images, {len(self.skipped)} skipped"
                + (f" ({detail})" if detail else ""))


# -- decoding -----------------------------------------------------------------
def decode_image(data: tf.Tensor) -> tf.Tensor:
    """Encoded bytes → float32 [H,W,3] in [0,1].

    JPEG/PNG/WebP/BMP/GIF (first frame); gray becomes RGB, alpha is dropped,
    8- and 16-bit samples are both scaled to [0,1].
    """
    image = tf.io.decode_image(data, channels=3, expand_animations=False, dtype=tf.float32)
    image.set_shape([None, None, 3])
    return image


def center_square(image: tf.Tensor, size: int) -> tf.Tensor:
    """Centre-crop [H,W,3] to a square and resize it to [size,size,3] (antialiased)."""
    shape = tf.shape(image)
    side = tf.minimum(shape[0], shape[1])
    top, left = (shape[0] - side) // 2, (shape[1] - side) // 2
    image = image[top:top + side, left:left + side]
    image = tf.image.resize(image, [size, size], method="bicubic", antialias=True)
    return tf.clip_by_value(image, 0.0, 1.0)


# -- sources ------------------------------------------------------------------
def list_images(source: str) -> list[str]:
    """Image files of a folder (recursive), a glob, or ``builtin:skimage``."""
    if source == BUILTIN_SKIMAGE:
        import skimage  # only the quick-start needs it

        root = os.path.join(os.path.dirname(skimage.__file__), "data")
        paths = [os.path.join(root, name) for name in SKIMAGE_PHOTOS]
        return [p for p in paths if os.path.exists(p)]
    if tf.io.gfile.isdir(source):
        paths = []
        for folder, _, files in tf.io.gfile.walk(source):
            paths += [os.path.join(folder, f) for f in files]
    elif any(ch in source for ch in "*?["):
        paths = tf.io.gfile.glob(source)
    elif tf.io.gfile.exists(source):
        paths = [source]
    else:
        raise DataError(f"--data={source!r}: no such folder, file or glob")
    return sorted(p for p in paths if p.lower().endswith(IMAGE_EXTENSIONS))


def _check_file(path: str, size: int, min_size: int) -> tuple[str, np.ndarray | None, str]:
    """Decode one file; returns (path, prepared uint8 HR or None, reason if bad)."""
    try:
        data = tf.io.read_file(path)
        if int(tf.strings.length(data)) == 0:
            return path, None, "empty file"
        image = decode_image(data)
    except (tf.errors.OpError, ValueError) as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return path, None, f"not a decodable image: {message[:120]}"
    height, width = int(image.shape[0]), int(image.shape[1])
    if min(height, width) < min_size:
        return path, None, f"too small: {width}x{height} < {min_size} px"
    hr = center_square(image, size)
    return path, np.round(hr.numpy() * 255.0).astype(np.uint8), ""


def scan(source: str, hr_size: int, min_size: int = 0, cache_mb: int = 0,
         workers: int = 8) -> ScanReport:
    """Decodes every image of ``source`` once, skipping (and naming) bad ones."""
    paths = list_images(source)
    if not paths:
        raise DataError(f"--data={source!r} contains no {'/'.join(IMAGE_EXTENSIONS)} files")
    min_size = min_size or max(1, hr_size // 2)
    good, skipped, images = [], [], []
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for path, hr, reason in pool.map(lambda p: _check_file(p, hr_size, min_size), paths):
            if reason:
                logging.warning("skipping %s: %s", path, reason)
                skipped.append((path, reason))
            else:
                good.append(path)
                images.append(hr)
    if not good:
        raise DataError(f"--data={source!r} has no usable image ({len(skipped)} files skipped; "
                        f"see the warnings above)")
    fits = len(good) * hr_size * hr_size * 3 <= cache_mb * 2**20
    return ScanReport(good, skipped, np.stack(images) if fits else None)


# -- the stream ---------------------------------------------------------------
def example_seed(seed: int, index: tf.Tensor) -> tf.Tensor:
    """Stateless seed [2] of example ``index``."""
    return tf.stack([tf.constant(seed, tf.int64), tf.cast(index, tf.int64)])


def file_index(seed: int, index: tf.Tensor, num_files: int) -> tf.Tensor:
    """Which file example ``index`` shows: a fresh permutation for every pass."""
    index = tf.cast(index, tf.int64)
    epoch, position = index // num_files, index % num_files
    perm_seed = tf.stack([tf.constant(seed, tf.int64) + 7919, epoch])
    return tf.random.experimental.index_shuffle(position, perm_seed, num_files - 1)


def make_example_fn(report: ScanReport, model: ModelConfig, data: DataConfig,
                    resolution: int, input_resolution: int, seed: int):
    """index → (lr [r_in,r_in,3], hr [r,r,3]) in [-1,1], for tf.data.map."""
    hr_size, num = model.hr_size, len(report.paths)
    if report.images is not None:
        cache = tf.constant(report.images)                      # [n,S,S,3] uint8
        load = lambda i: tf.cast(tf.gather(cache, i), tf.float32) / 255.0
    else:
        paths = tf.constant(report.paths)
        load = lambda i: center_square(decode_image(tf.io.read_file(tf.gather(paths, i))), hr_size)

    def example(index):
        ex_seed = example_seed(seed, index)
        hr = load(file_index(seed, index, num))                # [S,S,3] in [0,1]
        hr.set_shape([hr_size, hr_size, 3])
        flip = tf.random.stateless_uniform([], tf.random.experimental.stateless_fold_in(ex_seed, 1))
        hr = tf.cond(flip < 0.5, lambda: tf.reverse(hr, axis=[1]), lambda: hr)
        lr = degrade_lib.degrade(hr, tf.random.experimental.stateless_fold_in(ex_seed, 2),
                                 model.scale, data.degrade)     # [L,L,3]
        lr = degrade_lib.area_downsample(lr, model.lr_size // input_resolution)
        hr = degrade_lib.area_downsample(hr, hr_size // resolution)
        return lr * 2.0 - 1.0, hr * 2.0 - 1.0

    return example


def make_dataset(report: ScanReport, model: ModelConfig, data: DataConfig, resolution: int,
                 input_resolution: int, batch: int, start_index: int = 0,
                 seed: int = 0) -> tf.data.Dataset:
    """Endless batched stream of examples start_index, start_index + 1, …"""
    example = make_example_fn(report, model, data, resolution, input_resolution, seed)
    ds = tf.data.Dataset.range(start_index, np.iinfo(np.int64).max)
    ds = ds.map(example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch, drop_remainder=True)
    options = tf.data.Options()
    # Every worker computes the same global batches and keeps its own share.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def fixed_batch(report: ScanReport, model: ModelConfig, data: DataConfig, resolution: int,
                input_resolution: int, count: int, seed: int = 0):
    """The same ``count`` examples every call (sample grids, evaluation)."""
    example = make_example_fn(report, model, data, resolution, input_resolution, seed + 1)
    ds = tf.data.Dataset.range(count).map(example).batch(count)
    return next(iter(ds))

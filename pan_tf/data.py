"""Training data: (LR, HR) batches at a stage's resolutions (DESIGN §4).

The trainer asks :func:`make_dataset` for a stage and gets an endless,
batched ``tf.data.Dataset`` of ``(lr [B,r_in,r_in,3], hr [B,r,r,3])`` in
[-1, 1]. Per example:

    HR  = centre-crop to square, resize to hr_size          (once, or cached)
    HR  = random zoom-in crop, resized to hr_size           (--hr_zoom > 0 only)
    HR  = random horizontal flip
    LR  = degrade(HR) at lr_size                            (degrade.py)
    out = (area-downsample LR to r_in, area-downsample HR to r)

**Sources.** ``--data`` names an image folder (recursive; JPEG, PNG, WebP, BMP,
GIF first frame; 8- or 16-bit; gray, RGB or with alpha), a glob, one image,
``builtin:skimage``, or TFRecord shards written by ``python -m pan_tf.prepare``
(the prefix ``PREFIX``, a glob ``PREFIX-*.tfrecord``, one shard, or a folder of
shards); several, separated by commas, are pooled (e.g. a glob picking a
training split plus a second folder). Paths go through ``tf.io.gfile``, so
``gs://`` works too.

**Bad files never stop training.** Sources are scanned once at start: every
file (or record) is decoded; corrupt, truncated, non-image and too-small ones
are skipped with one warning line naming them and counted in a
:class:`ScanReport`. Good ones are all used; a source with no usable image
fails at once with :class:`DataError`. ``prepare`` uses the same check.

**Reproducible by position.** Example ``i`` of a run is fully determined by
``(seed, i)``, so a resumed run that starts the stream at ``images_seen`` sees
exactly the examples the uninterrupted run would have seen:

* When the prepared HR images fit in ``cache_mb`` (folders and TFRecords alike)
  they are kept in RAM and example ``i`` shows image ``perm_e(i mod n)``, a
  fresh stateless permutation per pass ``e`` (``index_shuffle``). Resuming is
  free; no decoding happens while training.
* Folders that do not fit are read by the same index (one file per example).
* TFRecord shards that do not fit are streamed: each pass reads the shards in a
  seeded order, :data:`SHARDS_PER_GROUP` at a time, interleaved record by record,
  and permutes every block of :data:`SHUFFLE_BUFFER` records with a stateless
  seed of (seed, pass, group, block). ``prepare`` deals images to shards in a
  shuffled order, so every shard is already a random sample.
  The order is still a pure function of ``(seed, i)``; resuming skips whole
  groups by their record counts and reads through at most one group's records
  (bytes only, no decoding) to reach position ``i``. The stream's order differs
  from the cached order, so flipping between cached and streamed on resume
  (by changing ``--cache_mb``) changes which images follow, not correctness.

**Zoom** (``--hr_zoom``, beyond the paper) gives the same faces new framings:
each HR is prepared at twice hr_size (:func:`source_size`), and every example
crops a square of side S/z, z uniform in [1, 1 + hr_zoom], at a uniform place
inside it, and resizes it to hr_size (antialiased bicubic). No border is
invented, and images at least twice hr_size are only ever downscaled; smaller
ones are upsampled to S when prepared, so their zoomed crops are a little
softer. The cache then holds 4x the bytes (``--cache_mb``).

Flip, zoom and degradation draws come from ``(seed, i)`` in every case. A file that
breaks or vanishes *after* the scan stops the run with an error naming it;
running the same command again resumes, and the new scan skips the file.

``python -m pan_tf.data --flagfile=… --preview=OUT.png`` draws HR | degraded LR
pairs (preview.py).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import itertools
import os
import re
from collections import Counter

import numpy as np
import tensorflow as tf
from absl import logging

from pan_tf import degrade as degrade_lib
from pan_tf.config import DataConfig, ModelConfig

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
TFRECORD_EXTENSIONS = (".tfrecord", ".tfrecords")
BUILTIN_SKIMAGE = "builtin:skimage"
# Natural photographs that ship inside scikit-image's wheel (no download needed).
SKIMAGE_PHOTOS = (
    "astronaut.png", "camera.png", "chelsea.png", "coffee.png", "rocket.jpg",
    "motorcycle_left.png", "motorcycle_right.png", "hubble_deep_field.jpg", "moon.png",
    "coins.png", "brick.png", "grass.png", "gravel.png", "retina.jpg", "ihc.png", "cell.png",
)
# One record of a prepared shard (prepare.py writes it): the encoded N×N image and
# the file it came from.
RECORD_FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),                 # PNG or JPEG bytes
    "name": tf.io.FixedLenFeature([], tf.string, default_value=""),  # original file name
}
SHARDS_PER_GROUP = 4    # streamed TFRecords: shards interleaved (and shuffled) together
SHUFFLE_BUFFER = 256    # streamed TFRecords: encoded records permuted together
_SCAN_CHUNK = 64        # records decoded per batch of scan work (bounds scan memory)


class DataError(ValueError):
    """The data source cannot be used; the message says what to fix."""


@dataclasses.dataclass
class Records:
    """Where a TFRecord source's usable records are."""

    shards: list[str]        # shard files, sorted
    readable: np.ndarray     # [num_shards] int64: records readable per shard (stops at damage)
    usable: np.ndarray       # [sum(readable)] bool, shard by shard: record decodes and is big enough

    def counts(self) -> np.ndarray:
        """Usable records per shard."""
        bounds = np.concatenate([[0], np.cumsum(self.readable)])
        return np.array([self.usable[a:b].sum() for a, b in zip(bounds[:-1], bounds[1:])],
                        np.int64)


@dataclasses.dataclass
class ScanReport:
    """What a scan of a source found."""

    paths: list[str]                    # usable images: file paths, or record names (TFRecords)
    skipped: list[tuple[str, str]]      # (file or record, reason)
    images: np.ndarray | None = None    # [n,S,S,3] uint8 prepared HR images, when cached
    records: Records | None = None      # TFRecord sources only
    _tensor: tf.Tensor | None = dataclasses.field(default=None, repr=False, compare=False)

    def summary(self) -> str:
        reasons = Counter(reason.split(":")[0] for _, reason in self.skipped)
        detail = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
        where = ("cached in RAM" if self.images is not None
                 else "streamed from TFRecords" if self.records else "read from files")
        return (f"{len(self.paths)} usable images ({where}), {len(self.skipped)} skipped"
                + (f" ({detail})" if detail else ""))

    def cached(self) -> tf.Tensor:
        """The cache as one tensor, made once per report (shared by every stage's stream)."""
        if self._tensor is None:
            self._tensor = tf.constant(self.images)
        return self._tensor


# -- decoding -----------------------------------------------------------------
def _header(data: tf.Tensor, length: int = 32) -> tf.Tensor:
    """The first ``length`` bytes of ``data`` as uint8 [length], zero-padded."""
    head = tf.strings.substr(data, 0, length)
    head = tf.strings.substr(tf.strings.join([head, "\0" * length]), 0, length)
    return tf.io.decode_raw(head, tf.uint8)


def _bytes_equal(head: tf.Tensor, offset: int, text: bytes) -> tf.Tensor:
    return tf.reduce_all(head[offset:offset + len(text)] == tf.constant(list(text), tf.uint8))


def decode_image(data: tf.Tensor) -> tf.Tensor:
    """Encoded bytes → float32 [H,W,3] in [0,1]; works eagerly and in tf.data.

    JPEG/PNG/WebP/BMP/GIF (first frame); gray becomes RGB, alpha is dropped,
    8- and 16-bit samples are both scaled to [0,1]. Raises ``InvalidArgumentError``
    for bytes that are no such image. Two quirks of core TF are handled here:
    WebP decodes to uint8 only (``decode_image(dtype=float32)`` refuses it), and
    animated WebP corrupts the heap in TF's decoder, so it is refused before decoding.
    """
    data = tf.convert_to_tensor(data, tf.string)
    head = _header(data)
    webp = _bytes_equal(head, 0, b"RIFF") & _bytes_equal(head, 8, b"WEBP")
    animated = webp & _bytes_equal(head, 12, b"VP8X") & (tf.bitwise.bitwise_and(head[20], 2) > 0)
    check = tf.debugging.Assert(tf.logical_not(animated),
                                ["animated WebP is not supported; convert it to a still image"])
    with tf.control_dependencies([check]):
        image = tf.cond(
            webp,
            lambda: tf.image.convert_image_dtype(tf.io.decode_webp(data)[0], tf.float32),
            lambda: tf.io.decode_image(data, expand_animations=False, dtype=tf.float32))
    channels = tf.shape(image)[-1]                              # 1 gray, 2 gray+α, 3, 4 RGBA
    rgb = tf.where(channels < 3, tf.constant([0, 0, 0]), tf.constant([0, 1, 2]))
    image = tf.gather(image, rgb, axis=-1)
    image.set_shape([None, None, 3])
    return image


def center_square(image: tf.Tensor, size: int) -> tf.Tensor:
    """Centre-crop [H,W,3] to a square and resize it to [size,size,3] (antialiased bicubic).

    An image that already is size×size is returned unchanged (no resampling).
    """
    image = tf.convert_to_tensor(image, tf.float32)
    shape = tf.shape(image)
    side = tf.minimum(shape[0], shape[1])
    top, left = (shape[0] - side) // 2, (shape[1] - side) // 2
    image = image[top:top + side, left:left + side]
    image = tf.cond(
        tf.equal(side, size), lambda: image,
        lambda: tf.clip_by_value(
            tf.image.resize(image, [size, size], method="bicubic", antialias=True), 0.0, 1.0))
    return tf.ensure_shape(image, [size, size, 3])


def _error_text(error: Exception) -> str:
    """A TF error as one short line (no function-node or op-name noise)."""
    text = " ".join(str(error).split()) or type(error).__name__
    asserted = re.search(r"Summarized data: b'([^']*)'|assertion failed: \[([^\]]*)\]", text)
    if asserted:                                            # tf.debugging.Assert, eager or graph
        text = asserted.group(1) or asserted.group(2)
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text)              # {{function_node …}}
    text = re.sub(r"\s*\[Op:\w+\].*$", "", text)                # [Op:DecodeImage] name: …
    return text.strip()[:120]


def check_image(data: bytes | tf.Tensor, size: int, min_size: int) -> tuple[np.ndarray | None, str]:
    """The one validity check for every source (folder scan, TFRecord scan, prepare).

    Returns (prepared uint8 [size,size,3] HR image, "") or (None, reason).
    """
    if int(tf.strings.length(data)) == 0:
        return None, "empty file"
    try:
        image = decode_image(data)
    except (tf.errors.OpError, ValueError) as e:
        return None, f"not a decodable image: {_error_text(e)}"
    height, width = int(image.shape[0]), int(image.shape[1])
    if min(height, width) < min_size:
        return None, f"too small: {width}x{height} < {min_size} px"
    hr = center_square(image, size)
    return np.round(hr.numpy() * 255.0).astype(np.uint8), ""


def check_file(path: str, size: int, min_size: int) -> tuple[np.ndarray | None, str]:
    """:func:`check_image` on a file's bytes; unreadable files are bad files too."""
    try:
        data = tf.io.read_file(path)
    except tf.errors.OpError as e:
        return None, f"unreadable: {_error_text(e)}"
    return check_image(data, size, min_size)


def _check_record(record: bytes, size: int, min_size: int) -> tuple[str, np.ndarray | None, str]:
    """(original name, HR or None, reason) of one serialized record."""
    try:
        example = tf.io.parse_single_example(record, RECORD_FEATURES)
    except (tf.errors.OpError, ValueError) as e:
        return "", None, f"not a pan_tf.prepare record: {_error_text(e)}"
    hr, reason = check_image(example["image"], size, min_size)
    return example["name"].numpy().decode("utf-8", "replace"), hr, reason


# -- sources ------------------------------------------------------------------
def list_images(source: str) -> list[str]:
    """Image files of a folder (recursive), a glob, one file, or ``builtin:skimage``."""
    return _list_source(source)[0]


def _list_source(source: str) -> tuple[list[str], list[str]]:
    """(image files, TFRecord shards) named by ``source``; at most one list is non-empty.

    ``source`` may list several sources separated by commas (e.g. two folders, or
    globs picking a split); their files are pooled.
    """
    if "," in source:
        parts = [_list_source(part) for part in source.split(",") if part.strip()]
        images = sorted({p for found, _ in parts for p in found})
        shards = sorted({p for _, found in parts for p in found})
        if images and shards:
            raise DataError(f"--data={source!r} mixes image files and TFRecord shards; "
                            f"convert the images with pan_tf.prepare or train on one kind")
        return images, shards
    source = source.strip()
    if source == BUILTIN_SKIMAGE:
        import skimage  # only the quick-start needs it

        root = os.path.join(os.path.dirname(skimage.__file__), "data")
        paths = [os.path.join(root, name) for name in SKIMAGE_PHOTOS]
        return [p for p in paths if os.path.exists(p)], []
    if tf.io.gfile.isdir(source):
        paths = []
        for folder, _, files in tf.io.gfile.walk(source):
            paths += [os.path.join(folder, f) for f in files]
    elif any(ch in source for ch in "*?["):
        paths = tf.io.gfile.glob(source)
    elif tf.io.gfile.exists(source):
        paths = [source]
    else:  # a prepare.py prefix: PREFIX-00000-of-00008.tfrecord, …
        paths = tf.io.gfile.glob(source + "-*-of-*")
        if not paths:
            raise DataError(f"--data={source!r}: no such folder, file, glob or TFRecord prefix")
    images = sorted(p for p in paths if p.lower().endswith(IMAGE_EXTENSIONS))
    shards = sorted(p for p in paths if p.lower().endswith(TFRECORD_EXTENSIONS))
    return (images, []) if images else ([], shards)


def scan(source: str, hr_size: int, min_size: int = 0, cache_mb: int = 0,
         workers: int = 8) -> ScanReport:
    """Decodes every image (or record) of ``source`` once, skipping (and naming) bad ones.

    Args:
      source: see the module docstring.
      hr_size: side of the prepared HR images.
      min_size: images whose shorter side is below this are skipped; 0 = hr_size // 2.
      cache_mb: keep the prepared images in RAM when all of them fit in this many MiB.
      workers: decoding threads.

    Raises:
      DataError: the source does not exist or has no usable image.
    """
    paths, shards = _list_source(source)
    if not paths and not shards:
        raise DataError(f"--data={source!r} contains no {'/'.join(IMAGE_EXTENSIONS)} "
                        f"or {'/'.join(TFRECORD_EXTENSIONS)} files")
    min_size = min_size or max(1, hr_size // 2)
    cache, good, skipped, records = _Cache(cache_mb), [], [], None
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        if shards:
            records = _scan_shards(shards, hr_size, min_size, pool, good, skipped, cache)
        else:
            results = pool.map(lambda p: check_file(p, hr_size, min_size), paths)
            for path, (hr, reason) in zip(paths, results):
                _tally(path, path, hr, reason, good, skipped, cache)
    if not good:
        hint = ("; lower --min_image_size or use bigger images"
                if any(r.startswith("too small") for _, r in skipped) else "")
        raise DataError(f"--data={source!r} has no usable image ({len(skipped)} skipped; "
                        f"see the warnings above{hint})")
    return ScanReport(good, skipped, cache.stacked(), records)


class _Cache:
    """Collects prepared images while they fit in the RAM budget; gives up past it."""

    def __init__(self, cache_mb: int):
        self.left, self.images = cache_mb * 2**20, []

    def add(self, hr: np.ndarray) -> None:
        self.left -= hr.nbytes
        if self.left < 0:
            self.images = None
        elif self.images is not None:
            self.images.append(hr)

    def stacked(self) -> np.ndarray | None:
        return np.stack(self.images) if self.images else None


def _tally(label, name, hr, reason, good, skipped, cache) -> bool:
    if reason:
        logging.warning("skipping %s: %s", label, reason)
        skipped.append((label, reason))
        return False
    good.append(name)
    cache.add(hr)
    return True


def _scan_shards(shards, hr_size, min_size, pool, good, skipped, cache) -> Records:
    """Reads every record of every shard once; damaged shards are used up to the damage."""
    readable, usable = [], []
    for shard in shards:
        records = _read_records(shard, skipped)
        count = 0
        while chunk := list(itertools.islice(records, _SCAN_CHUNK)):
            results = pool.map(lambda r: _check_record(r, hr_size, min_size), chunk)
            for name, hr, reason in results:
                label = f"{shard}[{count}]" + (f" ({name})" if name else "")
                usable.append(_tally(label, name or label, hr, reason, good, skipped, cache))
                count += 1
        readable.append(count)
    return Records(list(shards), np.array(readable, np.int64), np.array(usable, bool))


def _read_records(shard: str, skipped: list):
    """Yields a shard's serialized records; stops (with a warning) where it is damaged."""
    count = 0
    try:
        for record in tf.data.TFRecordDataset(shard):
            yield record.numpy()
            count += 1
    except tf.errors.OpError as e:
        reason = f"damaged shard: records from {count} on unreadable ({_error_text(e)})"
        logging.warning("skipping %s[%d:]: %s", shard, count, reason)
        skipped.append((f"{shard}[{count}:]", reason))


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


def source_size(model: ModelConfig, data: DataConfig) -> int:
    """Side at which HR images are scanned, cached and decoded: hr_size, or twice it
    under ``--hr_zoom``, so that a zoomed crop (side ≥ S/2) is never upscaled to hr_size."""
    return model.hr_size * 2 if data.hr_zoom > 0 else model.hr_size


def zoom_crop(image: tf.Tensor, size: int, zoom: float, seed: tf.Tensor) -> tf.Tensor:
    """A square of side S/z, z ~ U[1, 1 + zoom], at a uniform place in ``image`` [S,S,3]
    (uint8 or float in [0,1]), resized to [size,size,3] float32 in [0,1]."""
    side_in = image.shape[0]
    u = tf.random.stateless_uniform([3], seed)
    side = tf.cast(tf.round(side_in / (1.0 + zoom * u[0])), tf.int32)
    room = side_in - side                                  # ≥ 0 positions to spare per axis
    top = tf.minimum(tf.cast(u[1] * tf.cast(room + 1, tf.float32), tf.int32), room)
    left = tf.minimum(tf.cast(u[2] * tf.cast(room + 1, tf.float32), tf.int32), room)
    crop = tf.slice(image, tf.stack([top, left, 0]), tf.stack([side, side, 3]))
    if crop.dtype == tf.uint8:
        crop = tf.cast(crop, tf.float32) / 255.0
    return center_square(crop, size)                       # square already: only the resize


def scan_training_data(model: ModelConfig, data: DataConfig) -> ScanReport:
    """:func:`scan` of ``--data`` as training reads it: at :func:`source_size`, skipping
    images below ``--min_image_size`` (0 = hr_size // 2, whatever the source size)."""
    return scan(data.source, source_size(model, data),
                data.min_image_size or max(1, model.hr_size // 2), data.cache_mb)


def make_pair_fn(model: ModelConfig, data: DataConfig, resolution: int, input_resolution: int,
                 seed: int):
    """(index, HR [S,S,3] uint8, or float32 in [0,1]; S = :func:`source_size`)
    → (lr [r_in,r_in,3], hr [r,r,3]) in [-1,1]."""
    hr_size, side = model.hr_size, source_size(model, data)
    degrade = data.degrade_at(resolution)

    def pair(index, hr):
        ex_seed = example_seed(seed, index)
        hr = tf.ensure_shape(hr, [side, side, 3])
        if data.hr_zoom > 0:
            hr = zoom_crop(hr, hr_size, data.hr_zoom,
                           tf.random.experimental.stateless_fold_in(ex_seed, 3))
        flip = tf.random.stateless_uniform([], tf.random.experimental.stateless_fold_in(ex_seed, 1))
        hr = tf.cond(flip < 0.5, lambda: tf.reverse(hr, axis=[1]), lambda: hr)
        if hr.dtype == tf.uint8:                                 # flipping bytes is 4x cheaper
            hr = tf.cast(hr, tf.float32) / 255.0
        lr = degrade_lib.degrade(hr, tf.random.experimental.stateless_fold_in(ex_seed, 2),
                                 model.scale, degrade)          # [L,L,3]
        lr = degrade_lib.area_downsample(lr, model.lr_size // input_resolution)
        hr = degrade_lib.area_downsample(hr, hr_size // resolution)
        return lr * 2.0 - 1.0, hr * 2.0 - 1.0

    return pair


def _decode_record(record: tf.Tensor, size: int) -> tf.Tensor:
    """A serialized record → HR float32 [size,size,3] in [0,1] (resized if stored at another size)."""
    example = tf.io.parse_single_example(record, RECORD_FEATURES)
    return center_square(decode_image(example["image"]), size)


def _record_stream(records: Records, start_index: int, seed: int) -> tf.data.Dataset:
    """Serialized usable records in stream order, from position ``start_index`` on.

    Pass e reads the shards in a seeded order, in groups of SHARDS_PER_GROUP that are
    interleaved record by record and permuted SHUFFLE_BUFFER records at a time.
    """
    counts = records.counts()
    num_shards, total = len(records.shards), int(counts.sum())
    shards = tf.constant(records.shards)
    readable = tf.constant(records.readable)
    first = tf.constant(np.concatenate([[0], np.cumsum(records.readable)[:-1]]), tf.int64)
    usable = tf.constant(records.usable)

    def shard_order(epoch):
        perm_seed = tf.stack([tf.constant(seed, tf.int64) + 104729, tf.cast(epoch, tf.int64)])
        return tf.random.experimental.index_shuffle(
            tf.range(num_shards, dtype=tf.int64), perm_seed, num_shards - 1)

    def read_shard(s):
        ds = tf.data.TFRecordDataset(tf.gather(shards, s)).take(tf.gather(readable, s))
        ds = ds.enumerate().filter(lambda j, _: tf.gather(usable, tf.gather(first, s) + j))
        return ds.map(lambda _, record: record)

    def read_group(epoch, group, shard_ids):
        ds = tf.data.Dataset.from_tensor_slices(shard_ids).interleave(
            read_shard, cycle_length=SHARDS_PER_GROUP, block_length=1,
            num_parallel_calls=SHARDS_PER_GROUP, deterministic=True)
        # Shuffle blocks of SHUFFLE_BUFFER records with stateless permutations
        # (Dataset.shuffle would also depend on the global seed).
        group_seed = tf.random.experimental.stateless_fold_in(
            tf.stack([tf.constant(seed, tf.int64) + 15485863, epoch]), group)

        def shuffle_block(block, records):
            block_seed = tf.random.experimental.stateless_fold_in(group_seed, block)
            return tf.random.experimental.stateless_shuffle(records, block_seed)

        ds = ds.batch(SHUFFLE_BUFFER).enumerate().map(shuffle_block)
        return ds.unbatch()

    def one_pass(epoch, first_group=0):
        groups = tf.data.Dataset.from_tensor_slices(shard_order(epoch)).batch(SHARDS_PER_GROUP)
        groups = groups.enumerate().skip(first_group)
        return groups.flat_map(lambda group, ids: read_group(epoch, group, ids))

    # Resume: skip whole groups of the current pass by their counts, then records.
    epoch, position = divmod(start_index, total)
    order = shard_order(epoch).numpy()
    group_sizes = [int(counts[order[k:k + SHARDS_PER_GROUP]].sum())
                   for k in range(0, num_shards, SHARDS_PER_GROUP)]
    done = np.cumsum([0] + group_sizes)
    group = int(np.searchsorted(done, position, side="right")) - 1
    current = one_pass(tf.constant(epoch, tf.int64), group).skip(position - int(done[group]))
    later = tf.data.Dataset.range(epoch + 1, np.iinfo(np.int64).max).flat_map(one_pass)
    return current.concatenate(later)


def _examples(report: ScanReport, model: ModelConfig, data: DataConfig, resolution: int,
              input_resolution: int, start_index: int, seed: int) -> tf.data.Dataset:
    """Unbatched (lr, hr) examples start_index, start_index + 1, …"""
    pair = make_pair_fn(model, data, resolution, input_resolution, seed)
    side, num = source_size(model, data), len(report.paths)   # S of the prepared HR
    indices = tf.data.Dataset.range(start_index, np.iinfo(np.int64).max)
    parallel = dict(num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if report.images is not None:
        cache = report.cached()                                # [n,S,S,3] uint8
        load = lambda i: tf.gather(cache, file_index(seed, i, num))
        ds = indices.map(lambda i: pair(i, load(i)), **parallel)
    elif report.records is None:
        paths = tf.constant(report.paths)
        load = lambda i: center_square(
            decode_image(tf.io.read_file(tf.gather(paths, file_index(seed, i, num)))), side)
        ds = indices.map(lambda i: pair(i, load(i)), **parallel)
    else:
        records = _record_stream(report.records, start_index, seed)
        ds = tf.data.Dataset.zip(indices, records)
        ds = ds.map(lambda i, record: pair(i, _decode_record(record, side)), **parallel)
    # No ignore_errors(): it hides the static batch size from multi-worker rebatching.
    return ds


def make_dataset(report: ScanReport, model: ModelConfig, data: DataConfig, resolution: int,
                 input_resolution: int, batch: int, start_index: int = 0,
                 seed: int = 0) -> tf.data.Dataset:
    """Endless batched stream of examples start_index, start_index + 1, …"""
    ds = _examples(report, model, data, resolution, input_resolution, start_index, seed)
    ds = ds.batch(batch, drop_remainder=True)
    options = tf.data.Options()
    # Every worker computes the same global batches and keeps its own share.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def fixed_batch(report: ScanReport, model: ModelConfig, data: DataConfig, resolution: int,
                input_resolution: int, count: int, seed: int = 0):
    """The same ``count`` examples every call (sample grids, evaluation)."""
    ds = _examples(report, model, data, resolution, input_resolution, 0, seed + 1)
    return next(iter(ds.batch(count)))


if __name__ == "__main__":  # python -m pan_tf.data --flagfile=… --preview=OUT.png
    from pan_tf import preview

    preview.run()

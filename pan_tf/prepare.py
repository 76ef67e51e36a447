"""Write an image folder as TFRecord shards, resized once.

    python -m pan_tf.prepare --input=DIR --output=PREFIX --size=N [--shards=K] [--format=png|jpeg]

writes ``PREFIX-00000-of-0000K.tfrecord`` … Each record holds one image, centre-
cropped to a square and resized to N×N exactly like the training scan does
(``data.check_image``: the same check, so bad files are skipped for the same
reasons), encoded as PNG (lossless) or JPEG, plus the file name it came from.
Images are dealt to the shards in a fixed shuffled order, so every shard is a
random sample of the folder. Train on the result with ``--data=PREFIX``.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import math
import os
import sys
import time
from collections import Counter

from absl import app, flags

FLAGS = flags.FLAGS
FORMATS = ("png", "jpeg")
SHARD_BYTES = 128 * 2**20                                   # aim of --shards=0, bytes per shard
_BYTES_PER_PIXEL = {"png": 1.5, "jpeg": 0.3}                # rough encoded size, for --shards=0


@dataclasses.dataclass
class PrepareReport:
    written: int                        # images written
    shards: list[str]                   # shard files
    skipped: list[tuple[str, str]]      # (file, reason)

    def summary(self) -> str:
        reasons = Counter(reason.split(":")[0] for _, reason in self.skipped)
        detail = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
        return (f"wrote {self.written} images to {len(self.shards)} shards; "
                f"skipped {len(self.skipped)}" + (f" ({detail})" if detail else ""))


def shard_names(prefix: str, shards: int) -> list[str]:
    return [f"{prefix}-{i:05d}-of-{shards:05d}.tfrecord" for i in range(shards)]


def _progress(done: int, total: int, written: int, start: float) -> None:
    rate = done / max(time.perf_counter() - start, 1e-9)
    sys.stderr.write(f"\rprepare: {done}/{total} files, {written} written, "
                     f"{done - written} skipped, {rate:.1f} files/s ")
    sys.stderr.flush()


def prepare(input_dir: str, prefix: str, size: int, shards: int = 0, fmt: str = "png",
            quality: int = 95, min_size: int = 0, workers: int = 8, seed: int = 0,
            progress: bool = True) -> PrepareReport:
    """Writes the usable images of ``input_dir`` as TFRecord shards; returns what it did.

    Raises:
      DataError: no image files, or none usable (nothing is written then).
      ValueError: a bad argument.
    """
    import numpy as np
    import tensorflow as tf
    from absl import logging

    from pan_tf import data as data_lib

    if fmt not in FORMATS:
        raise ValueError(f"--format must be one of {FORMATS}, got {fmt!r}")
    if size < 1 or shards < 0:
        raise ValueError("--size must be ≥ 1 and --shards ≥ 0")
    paths = data_lib.list_images(input_dir)
    if not paths:
        raise data_lib.DataError(f"--input={input_dir!r} contains no "
                                 f"{'/'.join(data_lib.IMAGE_EXTENSIONS)} files")
    if not shards:
        estimate = len(paths) * size * size * _BYTES_PER_PIXEL[fmt]
        shards = max(1, math.ceil(estimate / SHARD_BYTES))
    shards = min(shards, len(paths))
    paths = [paths[i] for i in np.random.default_rng(seed).permutation(len(paths))]
    min_size = min_size or max(1, size // 2)
    root = input_dir if tf.io.gfile.isdir(input_dir) else os.path.dirname(input_dir)

    def encode(path):
        hr, reason = data_lib.check_file(path, size, min_size)
        if reason:
            return path, None, reason
        data = (tf.io.encode_png(hr) if fmt == "png"
                else tf.io.encode_jpeg(hr, quality=quality, chroma_downsampling=False))
        example = tf.train.Example(features=tf.train.Features(feature={
            "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data.numpy()])),
            "name": tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[os.path.relpath(path, root).encode()])),
        }))
        return path, example.SerializeToString(), ""

    names = shard_names(prefix, shards)
    parent = os.path.dirname(prefix)
    if parent:
        tf.io.gfile.makedirs(parent)
    writers = [tf.io.TFRecordWriter(name + ".tmp") for name in names]
    written, skipped, start, shown = 0, [], time.perf_counter(), 0.0
    try:
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            for done, (path, record, reason) in enumerate(pool.map(encode, paths), 1):
                if reason:
                    logging.warning("skipping %s: %s", path, reason)
                    skipped.append((path, reason))
                else:
                    writers[written % shards].write(record)
                    written += 1
                if progress and (time.perf_counter() - shown > 0.5 or done == len(paths)):
                    _progress(done, len(paths), written, start)
                    shown = time.perf_counter()
    finally:
        for writer in writers:
            writer.close()
        if progress:
            sys.stderr.write("\n")
    if not written:
        for name in names:
            tf.io.gfile.remove(name + ".tmp")
        raise data_lib.DataError(f"--input={input_dir!r} has no usable image "
                                 f"({len(skipped)} skipped; see the warnings above)")
    for name in names:  # only a complete set of shards gets the names the scan looks for
        tf.io.gfile.rename(name + ".tmp", name, overwrite=True)
    return PrepareReport(written, names, skipped)


def define_flags() -> None:
    if "input" in FLAGS:
        return
    flags.DEFINE_string("input", None, "Image folder (recursive), glob or file.")
    flags.DEFINE_string("output", None, "Shard prefix: writes PREFIX-00000-of-0000K.tfrecord, ….")
    flags.DEFINE_integer("size", None, "Side N of the stored N×N images (use the run's HR size).")
    flags.DEFINE_integer("shards", 0, f"Number of shards; 0 = about {SHARD_BYTES >> 20} MiB each.")
    flags.DEFINE_enum("format", "png", FORMATS, "Stored encoding: png (lossless) or jpeg.")
    flags.DEFINE_integer("jpeg_quality", 95, "Quality of --format=jpeg, 0-100.")
    flags.DEFINE_integer("min_size", 0, "Skip images whose shorter side is below this; 0 = N // 2.")
    flags.DEFINE_integer("workers", 8, "Decoding threads.")


def main(argv) -> int:
    if len(argv) > 1:
        sys.exit(f"error: unexpected arguments {argv[1:]}; flags look like --name=value")
    missing = [name for name in ("input", "output", "size") if FLAGS[name].value is None]
    if missing:
        sys.exit(f"error: --{', --'.join(missing)} required")

    from pan_tf.data import DataError

    try:
        report = prepare(FLAGS.input, FLAGS.output, FLAGS.size, FLAGS.shards, FLAGS.format,
                         FLAGS.jpeg_quality, FLAGS.min_size, FLAGS.workers)
    except (DataError, ValueError) as e:
        sys.exit(f"error: {e}")
    print(report.summary())
    print(f"shards: {FLAGS.output}-*-of-{len(report.shards):05d}.tfrecord "
          f"({FLAGS.size}x{FLAGS.size} {FLAGS.format}); train with --data={FLAGS.output}")
    for path, reason in report.skipped:
        print(f"  skipped {path}: {reason}")
    return 0


if __name__ == "__main__":
    define_flags()
    app.run(main)

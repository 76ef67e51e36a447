"""See the degradations: ``python -m pan_tf.data --flagfile=configs/X.flags --preview=OUT.png``.

Writes a grid of HR | degraded LR pairs (LR nearest-upscaled to the HR size),
made exactly as training makes the last stage's examples — the same examples
as the trainer's sample grids — so the degradation flags can be judged by eye
before a long run. Takes every training flag (``--data``, ``--seed``, the
degradation flags, …) plus the ``--preview*`` flags below.
"""

from __future__ import annotations

import math
import sys

from absl import app, flags

from pan_tf import flags as flags_lib
from pan_tf.config import ConfigError

FLAGS = flags.FLAGS


def define_flags() -> None:
    flags_lib.define_flags()
    if "preview" in FLAGS:
        return
    flags.DEFINE_string("preview", None, "Write the HR | degraded LR grid to this PNG.")
    flags.DEFINE_integer("preview_count", 8, "HR | LR pairs in the grid.")
    flags.DEFINE_integer("preview_columns", 4, "Pairs per row of the grid.")
    flags.DEFINE_integer("preview_zoom", 1, "Nearest-neighbour zoom of the whole grid.")


def preview_grid(lr, hr, columns: int, zoom: int = 1):
    """[N,l,l,3], [N,h,h,3] in [-1,1] → uint8 grid of HR | LR↑ pairs, ``columns`` pairs a row."""
    import tensorflow as tf

    n, size = hr.shape[0], hr.shape[1]
    rows = math.ceil(n / columns)
    pairs = tf.concat([hr, tf.image.resize(lr, [size, size], method="nearest")], axis=2)
    pairs = tf.concat([pairs, -tf.ones([rows * columns - n, *pairs.shape[1:]])], axis=0)
    grid = tf.reshape(pairs, [rows, columns, size, 2 * size, 3])       # [R,C,h,2h,3]
    grid = tf.reshape(tf.transpose(grid, [0, 2, 1, 3, 4]), [rows * size, columns * 2 * size, 3])
    grid = tf.repeat(tf.repeat(grid, zoom, axis=0), zoom, axis=1)
    return tf.cast(tf.round(tf.clip_by_value((grid + 1.0) * 127.5, 0, 255)), tf.uint8)


def main(argv) -> int:
    if len(argv) > 1:
        sys.exit(f"error: unexpected arguments {argv[1:]}; flags look like --name=value")
    try:
        config = flags_lib.config_from_flags()
        if not FLAGS.preview:
            raise ConfigError("--preview=OUT.png is required")
        if FLAGS.preview_count < 1 or FLAGS.preview_columns < 1 or FLAGS.preview_zoom < 1:
            raise ConfigError("--preview_count, --preview_columns and --preview_zoom must be ≥ 1")
    except ConfigError as e:
        sys.exit(f"error: {e}")

    import tensorflow as tf

    from pan_tf import data as data_lib

    model = config.model
    try:
        report = data_lib.scan_training_data(model, config.data)
    except data_lib.DataError as e:
        sys.exit(f"error: {e}")
    lr, hr = data_lib.fixed_batch(report, model, config.data, model.hr_size, model.lr_size,
                                  FLAGS.preview_count, seed=config.train.seed)
    grid = preview_grid(lr, hr, min(FLAGS.preview_columns, FLAGS.preview_count), FLAGS.preview_zoom)
    tf.io.write_file(FLAGS.preview, tf.io.encode_png(grid))
    print(f"wrote {FLAGS.preview}: {FLAGS.preview_count} HR {model.hr_size}px | "
          f"LR {model.lr_size}px pairs from {config.data.source} ({report.summary()})")
    return 0


def run() -> None:
    define_flags()
    app.run(main)


if __name__ == "__main__":
    run()

"""Train PAN: ``python -m pan_tf.train --flagfile=configs/X.flags --workdir=DIR``.

Flags become one validated config (printed; ``--dry_run`` stops there) before
TensorFlow is even imported, so a bad flag costs a one-line error and nothing
else. Then ``trainer.train`` runs the progressive schedule in ``--workdir``,
resuming from its last checkpoint if there is one. See trainer.py for the loop
and README.md for the flags that matter.
"""

from __future__ import annotations

import sys

from absl import app, flags

from pan_tf import flags as flags_lib
from pan_tf.config import ConfigError

FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        sys.exit(f"error: unexpected arguments {argv[1:]}; flags look like --name=value")
    try:
        config = flags_lib.config_from_flags()
        print(config.to_json())
        if FLAGS.dry_run:
            return 0
        if not FLAGS.workdir:
            raise ConfigError("--workdir is required (where checkpoints and exports go)")
    except ConfigError as e:
        sys.exit(f"error: {e}")

    import tensorflow as tf  # only now: a bad flag never pays for importing TensorFlow

    from pan_tf import trainer as trainer_lib
    from pan_tf.data import DataError

    tf.get_logger().setLevel("WARNING")  # keep TF's own INFO chatter out of the run log
    try:
        strategy = trainer_lib.make_strategy(config.run.strategy, config.run.logical_cpus)
        trainer = trainer_lib.train(config, FLAGS.workdir, strategy)
    except (ConfigError, DataError) as e:
        sys.exit(f"error: {e}")
    images = int(trainer.model.images_seen.numpy())
    if trainer.stop.requested:
        print(f"stopped by signal at {images} images; checkpoint saved; "
              f"run the same command again to resume")
    else:
        print(f"done: {images} images shown; outputs in {FLAGS.workdir}")
    return 0


if __name__ == "__main__":
    flags_lib.define_flags()
    app.run(main)

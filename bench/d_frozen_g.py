"""Can D tell G's fakes from real faces when G stands still? (issue 7, round 4)

    python bench/d_frozen_g.py runs/faces/pan_realloc/checkpoints/ckpt-119008 \\
        --flags=--data=… --stage=3 --steps=400

Restores G (and D) from a training checkpoint, freezes G, and trains D alone with the
trainer's own D step (Eq. 3 with R1, the config's Adam, the training pipeline): once
from the checkpoint's D and once from a freshly initialised one. Prints D's mean loss and
real logit every 50 steps. A D that drops well below log 4 = 1.386 here, while it sits
near log 4 in training, is a D that can see the difference and a G that keeps pace.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from stage_setup import load_config  # noqa: E402  (puts the repo on sys.path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", help="a checkpoint path (…/checkpoints/ckpt-N)")
    parser.add_argument("--flagfile", default="configs/faces_x4_cpu.flags")
    parser.add_argument("--flags", nargs="*", default=[], help="more flags, as for pan_tf.train")
    parser.add_argument("--stage", type=int, default=3)
    parser.add_argument("--steps", type=int, default=400)
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    from pan_tf import data as data_lib
    from pan_tf.checkpoint import Checkpointer
    from pan_tf.discriminator import Discriminator
    from pan_tf.gan import DTYPE_POLICIES, PAN
    from pan_tf.trainer import make_optimizers

    config = load_config(args.flagfile, args.flags)
    res = config.model.stage_resolutions[args.stage]
    r_in = config.model.input_resolution(args.stage)
    batch = config.schedule.batch_at(res)
    report = data_lib.scan_training_data(config.model, config.data)
    for fresh in (False, True):
        keras.utils.set_random_seed(1)
        model = PAN(config)
        Checkpointer(model, os.path.dirname(args.checkpoint)).restore_networks(args.checkpoint)
        if fresh:  # a newly initialised D, built like PAN builds its own
            new_d = Discriminator(config.model, dtype=DTYPE_POLICIES[config.train.mixed_precision])
            for mine, new in zip(model.discriminator.weights, new_d.weights):
                mine.assign(new)
        model.compile(*make_optimizers(model, config.train, config.schedule.learning_rate_at(res)))
        model.set_stage(args.stage, batch)
        model.alpha.assign(1.0)
        # Examples the run has not shown yet (start_index far past the checkpoint).
        batches = iter(data_lib.make_dataset(report, config.model, config.data, res, r_in,
                                             batch, start_index=10**7, seed=3))
        d_step = tf.function(lambda lr, hr: model._discriminator_step(lr, hr, tf.constant(1.0))[0])
        history = []
        for step in range(1, args.steps + 1):
            lr, hr = next(batches)
            model.images_seen.assign_add(batch)          # fresh training noise per step
            stats = d_step(lr, hr)
            history.append([float(stats["d_loss"]), float(stats["real_logits"])])
            if step % 50 == 0:
                loss, real = np.mean(history[-50:], axis=0)
                print(f"{'fresh' if fresh else 'checkpoint'} D, step {step}: "
                      f"d_loss {loss:.3f}, real logit {real:+.3f}", flush=True)


if __name__ == "__main__":
    main()

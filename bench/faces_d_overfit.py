"""Does D learn the training faces instead of faces? D's logits per checkpoint (issue 7).

    python bench/faces_d_overfit.py runs/faces_v5/pan runs/faces_v5/pan_diffaug

For every checkpoint of the last stage (``--all_checkpoints``: of every stage), at the
stage and α it was saved at: D's mean logit on the training faces, on the held-out ones
and on G_ema's outputs for the held-out faces (area-downsampled inputs, as in
faces_stages.py), and StyleGAN2-ADA's overfitting heuristic r_t = E[sign D(x_train)]
(ADA holds it at 0.6; near 1, D calls every training face real). A D that generalises
scores the held-out faces like the training ones; one that memorises scores them lower,
towards the fakes. With ``--d_augment`` the logits are of the plain images, as at
evaluation.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# faces_stages puts the repo on sys.path.
from faces_stages import (area, checkpoint_phases, load_faces, run_config,  # noqa: E402
                          run_size)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from pan_tf.discriminator import Discriminator  # noqa: E402
from pan_tf.generator import Generator  # noqa: E402
from pan_tf.schedule import Schedule  # noqa: E402


def logits(d: Discriminator, images: np.ndarray, stage: int, alpha: float) -> np.ndarray:
    """D's logits for uint8-range float images, 50 at a time."""
    return np.concatenate([d(tf.constant(images[i:i + 50] / 127.5 - 1.0), stage=stage,
                             alpha=alpha).numpy() for i in range(0, len(images), 50)])


def report(run: str, train: np.ndarray, held: np.ndarray, all_checkpoints: bool) -> None:
    config = run_config(run)
    if config.model.conditional_d:
        raise SystemExit(f"{run}: a conditional D also needs each face's LR; not measured here")
    schedule = Schedule(config.model, config.schedule)
    d = Discriminator(config.model, dtype="float32")
    g = Generator(config.model, name="g_ema", dtype="float32")
    print(run)
    for path, phase in checkpoint_phases(run, schedule):
        if not all_checkpoints and phase.stage != schedule.stages[-1]:
            continue
        tf.train.Checkpoint(discriminator=d, g_ema=g).restore(path).expect_partial()
        stage, alpha, res = phase.stage, phase.alpha, phase.resolution
        real_train, real_held = area(train, res), area(held, res)
        lr = area(real_held, phase.input_resolution)
        fake = (g(tf.constant(lr / 127.5 - 1.0), stage=stage, alpha=alpha).numpy() + 1) * 127.5
        on_train = logits(d, real_train, stage, alpha)
        on_held = logits(d, real_held, stage, alpha)
        on_fake = logits(d, np.round(np.clip(fake, 0, 255)), stage, alpha)
        print(f"  {os.path.basename(path)} (stage {stage}, α {alpha:.2f}): "
              f"D(train) {on_train.mean():+.2f}  D(held out) {on_held.mean():+.2f}  "
              f"D(G(held out)) {on_fake.mean():+.2f}  gap train−held {on_train.mean() - on_held.mean():+.2f}  "
              f"r_t {np.sign(on_train).mean():+.2f}  "
              f"held out > 0: {np.mean(on_held > 0):.2f}  fakes < 0: {np.mean(on_fake < 0):.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--faces", default="../shared/data/faces256/*.png",
                        help="the faces, sorted by name: the first --train are the training set")
    parser.add_argument("--train", type=int, default=250)
    parser.add_argument("--held_out", type=int, default=50)
    parser.add_argument("--size", type=int, default=None,
                        help="HR side of the runs' last stage (default: each run's own)")
    parser.add_argument("--all_checkpoints", action="store_true")
    args = parser.parse_args()
    for run in args.runs:
        faces = load_faces(args.faces, run_size(run, args.size), flag="--faces")
        if len(faces) < args.train + args.held_out:
            raise SystemExit(f"--faces={args.faces!r} matches {len(faces)} files, "
                             f"fewer than --train + --held_out = {args.train + args.held_out}")
        train, held = faces[:args.train], faces[args.train:args.train + args.held_out]
        report(run, train, held, args.all_checkpoints)


if __name__ == "__main__":
    main()

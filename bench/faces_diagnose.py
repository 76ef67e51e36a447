"""Two checks on the faces grid's remaining flaws (issue 7, round 8).

    python bench/faces_diagnose.py spectrum runs/faces_v5/pan/export/pan runs/faces_v5/l1/export/pan
    python bench/faces_diagnose.py average runs/faces_v5/pan 110000 115008 119008

``spectrum``: the last exported version of each model super-resolves the 50 held-out
faces (bicubic LR, as ``pan_tf.evaluate`` makes it), and the mean power spectrum of the
outputs' luma is compared with the HR faces' at the frequencies a 2-px or 4-px lattice
would show up at (cycles per 64 px): the power there, and its ratio to the 8 neighbouring
frequencies. A resampling layer that paints a lattice gives a ratio far above HR's.

``average``: the last stage's G_ema at each listed checkpoint, and the plain average of
their weights (a post-hoc long EMA), on the held-out faces with area resampling both
ways like ``faces_stages.py``: would averaging over a longer window make G more faithful?
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import tensorflow as tf

from faces_stages import area, load_faces, psnr  # also puts the repo on sys.path
from pan_tf.config import Config
from pan_tf.evaluate import bicubic_down, to_uint8
from pan_tf.export import exported_versions
from pan_tf.generator import Generator

LATTICE = [(16, 0), (0, 16), (16, 16), (32, 0), (0, 32), (32, 32), (16, 32), (32, 16)]


def power_spectrum(images: np.ndarray) -> np.ndarray:
    """Mean |FFT|² of the images' mean-removed luma, normalised to sum to 1."""
    luma = images.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    luma -= luma.mean(axis=(1, 2), keepdims=True)
    power = (np.abs(np.fft.fft2(luma)) ** 2).mean(axis=0)
    return power / power.sum()


def lattice_row(name: str, images: np.ndarray) -> str:
    p, n = power_spectrum(images), images.shape[1]
    cells = []
    for u, v in LATTICE:
        around = [p[(u + du) % n, (v + dv) % n] for du in (-1, 0, 1) for dv in (-1, 0, 1)
                  if (du, dv) != (0, 0)]
        cells.append(f"({u},{v}) {p[u, v] * 1e6:6.2f} ppm ×{p[u, v] / np.mean(around):4.1f}")
    return f"{name:>24}  " + "  ".join(cells)


def spectrum(models: list[str], hr: np.ndarray) -> None:
    lr = tf.constant(to_uint8(bicubic_down(hr, hr.shape[1] // 4)))  # as evaluate makes it
    print(lattice_row("HR", hr))
    for model in models:
        version = max(exported_versions(model))
        serve = tf.saved_model.load(os.path.join(model, str(version))).signatures["serving_default"]
        print(lattice_row(model, serve(images=lr)["sr_images"].numpy()))


def average(run: str, checkpoints: list[str], hr: np.ndarray) -> None:
    with open(os.path.join(run, "config.json")) as f:
        config = Config.from_dict(json.load(f))
    stage = config.model.num_stages - 1
    r_in = config.model.input_resolution(stage)
    lr = np.round(area(hr, r_in))

    def report(name, g):
        sr = (g(tf.constant(lr / 127.5 - 1.0), stage=stage).numpy() + 1.0) * 127.5
        sr = np.round(np.clip(sr, 0, 255))
        print(f"  {name}: LR-PSNR {psnr(area(sr, r_in), lr):5.2f}  PSNR {psnr(sr, hr):5.2f}")

    nets = []
    for number in checkpoints:
        g = Generator(config.model, name="g_ema", dtype="float32")
        path = os.path.join(run, "checkpoints", f"ckpt-{number}")
        tf.train.Checkpoint(g_ema=g).restore(path).expect_partial()
        report(f"ckpt-{number}", g)
        nets.append(g)
    mean = Generator(config.model, name="g_ema", dtype="float32")
    mean(tf.zeros([1, r_in, r_in, 3]), stage=stage)
    for i, w in enumerate(mean.weights):
        w.assign(np.mean([g.weights[i].numpy() for g in nets], axis=0))
    report("weights averaged", mean)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("check", choices=["spectrum", "average"])
    parser.add_argument("args", nargs="+", help="spectrum: MODEL_DIR…; average: RUN CKPT_NUMBER…")
    parser.add_argument("--hr", default="../shared/data/faces256/002[5-9][0-9].png")
    parser.add_argument("--size", type=int, default=64, help="HR side of the runs' last stage")
    args = parser.parse_args()
    hr = load_faces(args.hr, args.size)
    if args.check == "spectrum":
        spectrum(args.args, hr)
    else:
        average(args.args[0], args.args[1:], hr)


if __name__ == "__main__":
    main()

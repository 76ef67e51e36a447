"""Checks on the faces runs' remaining flaws (issue 7, rounds 8, 13 and 28).

    python bench/faces_diagnose.py spectrum runs/faces_v5/pan/export/pan runs/faces_v5/l1/export/pan
    python bench/faces_diagnose.py average runs/faces_v5/pan 110000 115008 119008
    python bench/faces_diagnose.py average runs/faces_v28/ema10_s1 126000 132000 138000 139000 \
        --net=generator
    python bench/faces_diagnose.py bands runs/faces_v5/pan_avx2/export/pan@2 runs/faces_v5/pan_avx2/export/pan
    python bench/faces_diagnose.py noise runs/faces_v5/pan_avx2 119008

``spectrum``: the last exported version of each model super-resolves the 50 held-out
faces (bicubic LR, as ``pan_tf.evaluate`` makes it), and the mean power spectrum of the
outputs' luma is compared with the HR faces' at the frequencies a 2-px or 4-px lattice
would show up at (cycles per 64 px): the power there, and its ratio to the 8 neighbouring
frequencies. A resampling layer that paints a lattice gives a ratio far above HR's.
A local check goes with it: the mean absolute luma step between neighbouring pixels,
split by where the step falls in the 4-px cell of one LR pixel. ``blocks`` = the step
across a cell's edge over the steps inside it (HR: 1.00; nearest-neighbour upsampling:
inf). An output that kept the LR pixels' blocks, even only in places, shows it.

``average``: the last stage's G_ema (``--net=generator``: the raw G) at each listed
checkpoint, and the plain average of their weights (a post-hoc long EMA), on the held-out
faces with area resampling both ways like ``faces_stages.py``: would averaging over a
longer window make G more faithful, or less speckled (``faces_speckle.py``'s rate, ‰)?

``bands``: where a model's LR-inconsistency lives. Each MODEL_DIR[@VERSION] (default: the
last version; it must take the LR size, HR/4) super-resolves the 50 held-out faces from
bicubic LR, and the error e = bicubic_down(output) − LR (``pan_tf.evaluate``'s
LR-consistency) is checked for a global sub-pixel shift (the best of ±0.5 px in 1/8-px
steps; a misaligned resampling layer would show as one) and for its share off the grey
axis (colour rather than brightness), then split by radial spatial frequency of the LR
grid (Parseval, so the bands' shares add up to the whole MSE). For each band the input's
content there is regressed out: ``gain`` = ⟨out↓, LR⟩ / ⟨LR, LR⟩ in that band (1: the
input kept at full contrast; below 1: flattened), ``added`` = the power of what is left,
out↓ − gain·LR, relative to the input's power in the band (content G put there that is
not the input). Then by place: the error's share in each quarter-row of the 16×16 grid
(faces are aligned, so the eyes sit in one row and the mouth in another). Bicubic
upsampling is the reference row. Last, the correlation between the models' errors on the
same faces: near 1, they get the same faces wrong the same way.

``noise``: the last stage's G_ema at checkpoint CKPT_NUMBER with its noise off, and with 8
noise seeds, on the same bicubic LR: how much of the LR error the noise inputs cause.

``agree``: each MODEL_DIR[@VERSION] super-resolves the held-out faces (bicubic LR at the
first model's input side, HR at ``--size``), and the PSNR of each output against the HR
and of every pair of outputs against each other is averaged over the faces (and given for
each face in ``--faces``). Two runs that agree with each other far better than with the HR
draw the same face where they go wrong: the error is the data's or the objective's, not a
seed's (round 43).

``trajectory``: the faces named by ``--faces`` as RUN's G_ema (``--net=generator``: the
raw G) draws them at each listed checkpoint of STAGE, at the α each was saved at, beside
the HR, drawn ×2 into ``--out``: when a face goes wrong during a stage, and whether G_ema's
average or G itself does it (round 43).

``jitter``: every held-out face moved right by a quarter, a half and three quarters of an
LR pixel and zoomed by 0.9 and 1.1 about its centre (at 4× the HR side, then box-averaged
down), each super-resolved by MODEL_DIR[@VERSION] from its own bicubic LR: PSNR against its
own moved HR for the faces named by ``--faces`` and over all of them, bicubic's beside it
(which moves with the content alone), and the named faces drawn ×2 into ``--out``. A face
that fails only at some positions fails by where its features fall on the LR grid; one
that fails at all of them fails by what it is (round 49).
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import tensorflow as tf

from PIL import Image

from faces_speckle import speckle_rate
# faces_stages also puts the repo on sys.path
from faces_stages import (area, checkpoint_phases, draw, face_files, generator, load_faces,
                          psnr, run_config, run_size)
from pan_tf.evaluate import bicubic_down, to_uint8, upscale_baseline
from pan_tf.export import exported_versions
from pan_tf.generator import inference_noise
from pan_tf.schedule import Schedule

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
    return f"{name:>24}  " + "  ".join(cells) + f"  blocks {block_ratio(images):4.2f}"


def block_ratio(images: np.ndarray, cell: int = 4) -> float:
    """Mean |luma step| across the edges of cell×cell pixel blocks over that inside them."""
    luma = images.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    steps = (np.abs(np.diff(luma, axis=2)).mean(axis=(0, 1))
             + np.abs(np.diff(luma, axis=1)).mean(axis=(0, 2)))  # step j: pixel j → j + 1
    edge = np.arange(steps.size) % cell == cell - 1
    with np.errstate(divide="ignore"):  # nearest-neighbour: no step inside a block
        return float(np.float64(steps[edge].mean()) / steps[~edge].mean())


def held_out_lr(hr: np.ndarray, size: int | None = None) -> np.ndarray:
    """uint8 LR of the HR faces at ``size`` px (default: a quarter of their side), as
    ``pan_tf.evaluate`` makes it."""
    return to_uint8(bicubic_down(hr, size or hr.shape[1] // 4))


def exported_version(model: str) -> tuple[str, int, dict]:
    """MODEL_DIR[@VERSION] → (MODEL_DIR, VERSION, its stage info: resolution, input_size…);
    the last version when none is named."""
    path, _, version = model.partition("@")
    versions = exported_versions(path)
    number = int(version) if version else max(versions)
    return path, number, versions[number]


def super_resolve(model: str, lr: np.ndarray) -> tuple[str, np.ndarray]:
    """MODEL_DIR[@VERSION] (default: its last version) on uint8 LR → (label, uint8 output)."""
    path, version, _ = exported_version(model)
    serve = tf.saved_model.load(os.path.join(path, str(version))).signatures["serving_default"]
    return f"{path}@{version}", serve(images=tf.constant(lr, tf.uint8))["sr_images"].numpy()


def spectrum(models: list[str], hr: np.ndarray) -> None:
    lr = held_out_lr(hr)
    print(lattice_row("HR", hr))
    print(lattice_row("bicubic", upscale_baseline(lr, hr.shape[1], "bicubic")))
    print(lattice_row("nearest", upscale_baseline(lr, hr.shape[1], "nearest")))
    for model in models:
        print(lattice_row(*super_resolve(model, lr)))


def last_stage_g(run: str, checkpoint: str | None = None, net: str = "g_ema"):
    """(G_ema, or the raw G for ``net="generator"``, restored from RUN's checkpoint
    ckpt-NUMBER, or unrestored when None; its last stage; that stage's input side)."""
    config = run_config(run)
    stage = config.model.num_stages - 1
    path = None if checkpoint is None else os.path.join(run, "checkpoints", f"ckpt-{checkpoint}")
    return generator(config, path, net), stage, config.model.input_resolution(stage)


def average(run: str, checkpoints: list[str], hr: np.ndarray, net: str = "g_ema") -> None:
    mean, stage, r_in = last_stage_g(run, net=net)  # unrestored: takes the average below
    lr = np.round(area(hr, r_in))
    print(f"  HR: speckle {speckle_rate(hr).mean():5.2f}")

    def report(name, g):
        sr = (g(tf.constant(lr / 127.5 - 1.0), stage=stage).numpy() + 1.0) * 127.5
        sr = np.round(np.clip(sr, 0, 255))
        print(f"  {name}: LR-PSNR {psnr(area(sr, r_in), lr):5.2f}  PSNR {psnr(sr, hr):5.2f}"
              f"  speckle {speckle_rate(sr).mean():5.2f}")

    nets = []
    for number in checkpoints:
        g = last_stage_g(run, number, net)[0]
        report(f"{net} ckpt-{number}", g)
        nets.append(g)
    mean(tf.zeros([1, r_in, r_in, 3]), stage=stage)
    for i, w in enumerate(mean.weights):
        w.assign(np.mean([g.weights[i].numpy() for g in nets], axis=0))
    report("weights averaged", mean)


BANDS = [(0.0, 0.5, "DC"), (0.5, 2.0, "1-2"), (2.0, 4.0, "2-4"), (4.0, np.inf, "4+")]
SHIFTS = np.arange(-0.5, 0.51, 0.125)


def band_masks(size: int) -> list[np.ndarray]:
    """Radial frequency (cycles per image) of each FFT bin of a size×size grid, as masks."""
    f = np.fft.fftfreq(size) * size
    radius = np.hypot(f[:, None], f[None, :])
    return [(radius >= lo) & (radius < hi) for lo, hi, _ in BANDS]


def shifted(images: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """[N,S,S,C] moved by (dy, dx) pixels, Fourier (circular) interpolation."""
    f = np.fft.fftfreq(images.shape[1])
    ramp = np.exp(-2j * np.pi * (f[:, None] * dy + f[None, :] * dx))[None, :, :, None]
    return np.real(np.fft.ifft2(np.fft.fft2(images, axes=(1, 2)) * ramp, axes=(1, 2)))


INNER = (slice(None), slice(2, -2), slice(2, -2))  # the grid less a 2-px border


def best_shift(down: np.ndarray, lr: np.ndarray) -> tuple[float, float, float]:
    """The global sub-pixel shift of the outputs that best matches the inputs, ±0.5 px, and
    its LR-PSNR over INNER (a circular shift wraps at the border): (PSNR, dy, dx)."""
    return max((psnr(shifted(down, dy, dx)[INNER], lr[INNER]), dy, dx)
               for dy in SHIFTS for dx in SHIFTS)


def band_row(name: str, down: np.ndarray, lr: np.ndarray) -> str:
    """One model's LR error split by frequency band, luma / chroma and quarter-row of the
    LR grid, and the best global shift."""
    err = down - lr
    gray = err.mean(axis=-1, keepdims=True)  # the error along (1,1,1); the rest is colour
    colour = float(np.sum((err - gray) ** 2) / np.sum(err ** 2))
    shift_psnr, dy, dx = best_shift(down, lr)
    fe, fl, fd = (np.fft.fft2(x, axes=(1, 2)) for x in (err, lr, down))
    cells = []
    for mask, (_, _, label) in zip(band_masks(lr.shape[1]), BANDS):
        m = mask[None, :, :, None]
        energy = np.sum(np.abs(fe) ** 2 * m)
        gain = float(np.real(np.sum(fd * np.conj(fl) * m)) / np.sum(np.abs(fl) ** 2 * m))
        added = np.sum(np.abs(fd - gain * fl) ** 2 * m) / np.sum(np.abs(fl) ** 2 * m)
        cells.append(f"{label:>3}: {energy / np.sum(np.abs(fe) ** 2):4.0%} of it, "
                     f"gain {gain:4.2f} added {added:5.3f}")
    rows = np.mean(err ** 2, axis=(0, 2, 3))
    quarters = rows.reshape(4, -1).sum(axis=1) / rows.sum()
    where = " ".join(f"{q:3.0%}" for q in quarters)
    return (f"{name}\n  LR-PSNR {psnr(down, lr):5.2f} (inner {psnr(down[INNER], lr[INNER]):5.2f}; "
            f"best shift {dy:+.3f},{dx:+.3f} px: {shift_psnr:5.2f}); share in colour (off grey) "
            f"{colour:3.0%}\n  " + " | ".join(cells)
            + f"\n  error by quarter-row (0-3/4-7/8-11/12-15): {where}")


def bands(models: list[str], hr: np.ndarray) -> None:
    size = hr.shape[1] // 4
    lr8 = held_out_lr(hr, size)
    lr = lr8.astype(np.float64)
    print(f"{len(hr)} faces, LR {size} px. Per band (cycles per {size} px): its share of "
          "the error, the input's gain, the added content's power / the input's")
    up = upscale_baseline(lr8, hr.shape[1], "bicubic")
    print(band_row("bicubic", bicubic_down(up, size), lr))
    errors = {}
    for model in models:
        label, out = super_resolve(model, lr8)
        down = bicubic_down(out, size)
        errors[label] = down - lr
        print(band_row(label, down, lr))
    if len(errors) > 1:
        print("correlation of the LR errors (bicubic_down(output) − LR) on the same faces:")
        for a, ea in errors.items():
            print(f"  {a:>40} " + " ".join(
                f"{np.sum(ea * eb) / np.sqrt(np.sum(ea ** 2) * np.sum(eb ** 2)):5.2f}"
                for eb in errors.values()))


def noise(run: str, checkpoint: str, hr: np.ndarray) -> None:
    g, stage, size = last_stage_g(run, checkpoint)
    lr = held_out_lr(hr, size).astype(np.float64)

    def down(spec):
        sr = (g(tf.constant(lr / 127.5 - 1.0, tf.float32), stage=stage, noise=spec).numpy()
              + 1.0) * 127.5
        return bicubic_down(np.round(np.clip(sr, 0, 255)), size)

    silent = down(inference_noise(0.0))
    seeded = np.stack([down(inference_noise(1.0, seed=(seed, 0))) for seed in range(8)])
    mean = seeded.mean(axis=0)
    print(f"{run} ckpt-{checkpoint}: LR-PSNR without noise {psnr(silent, lr):5.2f}, with 8 "
          "noise seeds " + " ".join(f"{psnr(d, lr):5.2f}" for d in seeded)
          + f"; the seeds' spread is {np.mean((seeded - mean) ** 2) / np.mean((seeded - lr) ** 2):.2%}"
          " of the LR error")


def agree(models: list[str], hr: np.ndarray, faces: list[int], names: list[str]) -> None:
    info = exported_version(models[0])[2]
    if info["resolution"] != hr.shape[1]:
        raise SystemExit(f"{models[0]} outputs {info['resolution']} px: pass --size="
                         f"{info['resolution']}, or name the version that outputs {hr.shape[1]}")
    lr = held_out_lr(hr, info["input_size"])
    outputs = [super_resolve(model, lr) for model in models]

    def row(title, values):
        cells = "".join(f"  {names[i]} {values[i]:5.2f}" for i in faces)
        print(f"  {title}: {values.mean():5.2f} dB mean{cells}")

    for i, (name, out) in enumerate(outputs):
        row(f"{name} vs HR", psnr(out, hr, per_image=True))
        for other, out2 in outputs[i + 1:]:
            row(f"{name} vs {other}", psnr(out, out2, per_image=True))


def save_x2(grid: np.ndarray, out: str) -> None:
    """A float [H,W,3] picture in [0, 255], rounded and drawn at 2× (nearest) into ``out``."""
    image = Image.fromarray(np.clip(np.round(grid), 0, 255).astype(np.uint8))
    image.resize((image.width * 2, image.height * 2), Image.NEAREST).save(out)


def trajectory(run: str, stage: int, checkpoints: list[str], hr: np.ndarray,
               faces: list[int], names: list[str], net: str, out: str) -> None:
    config = run_config(run)
    wanted = {f"ckpt-{number}" for number in checkpoints}
    columns = []
    for path, phase in checkpoint_phases(run, Schedule(config.model, config.schedule)):
        if phase.stage != stage or os.path.basename(path) not in wanted:
            continue
        target = area(hr[faces], phase.resolution)
        columns.append(np.clip(draw(config, path, phase, target, net)[0], 0, 255))
        print(f"  column {len(columns)}: {os.path.basename(path)} (α {phase.alpha:.2f})")
    if not columns:
        raise SystemExit(f"none of ckpt-{', ckpt-'.join(checkpoints)} in {run} is at stage {stage}")
    columns.append(target)
    save_x2(np.concatenate([np.concatenate(list(c), axis=0) for c in columns], axis=1), out)
    print(f"wrote {out}: rows {', '.join(names[i] for i in faces)}; last column HR")


JITTERS = [("as is", 0, 1.0), ("1/4 px", 1, 1.0), ("1/2 px", 2, 1.0), ("3/4 px", 3, 1.0),
           ("zoom 0.9", 0, 0.9), ("zoom 1.1", 0, 1.1)]


def jittered(image: np.ndarray, quarters: int, zoom: float, scale: int) -> np.ndarray:
    """One face at 4× the HR side [4S,4S,3], moved right by ``quarters`` quarters of an LR
    pixel (repeating the edge), zoomed about its centre, then box-averaged to S."""
    big = image.shape[0]
    if zoom != 1.0:
        side = int(round(big * zoom))
        image = np.asarray(Image.fromarray(np.round(image).astype(np.uint8)).resize(
            (side, side), Image.BICUBIC), np.float32)
        if side > big:
            o = (side - big) // 2
            image = image[o:o + big, o:o + big]
        else:
            o = (big - side) // 2
            image = np.pad(image, ((o, big - side - o), (o, big - side - o), (0, 0)), "edge")
    step = quarters * scale                   # a quarter LR pixel = scale px at 4× the HR side
    image = np.pad(image, ((0, 0), (0, step), (0, 0)), "edge")[:, step:step + big]
    return area(image[None], big // 4)[0]


def jitter(model: str, files: list[str], faces: list[int], names: list[str],
           out: str) -> None:
    info = exported_version(model)[2]
    size, lr_size = info["resolution"], info["input_size"]
    big = load_faces(files, 4 * size)
    hr = np.stack([[jittered(image, q, z, size // lr_size) for _, q, z in JITTERS]
                   for image in big])                                   # [N,J,S,S,3]
    flat = hr.reshape((-1,) + hr.shape[2:])
    lr = held_out_lr(flat, lr_size)
    sr = super_resolve(model, lr)[1].reshape(hr.shape)
    bicubic = upscale_baseline(lr, size, "bicubic").reshape(hr.shape)

    def cells(values):
        return "".join(f"  {v:8.2f}" for v in values)

    print(f"  PSNR vs its own moved HR (dB), {model}")
    print(f"  {'':>16}" + "".join(f"  {t:>8}" for t, _, _ in JITTERS))
    for i in faces:
        print(f"  {names[i]:>16}" + cells(psnr(sr[i], hr[i], per_image=True)))
    per_jitter = [psnr(sr[:, j], hr[:, j]) for j in range(len(JITTERS))]
    print(f"  {f'all {len(files)}':>16}" + cells(per_jitter))
    print(f"  {'bicubic, all':>16}"
          + cells(psnr(bicubic[:, j], hr[:, j]) for j in range(len(JITTERS))))
    save_x2(np.concatenate([np.concatenate(list(sr[i]) + [hr[i, 0]], axis=1) for i in faces],
                           axis=0), out)
    print(f"wrote {out}: rows {', '.join(names[i] for i in faces)}; columns "
          f"{' | '.join(t for t, _, _ in JITTERS)} | HR")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("check", choices=["spectrum", "average", "bands", "noise", "agree",
                                          "trajectory", "jitter"])
    parser.add_argument("args", nargs="+", help="spectrum: MODEL_DIR…; average: RUN "
                        "CKPT_NUMBER…; bands, agree: MODEL_DIR[@VERSION]…; noise: RUN "
                        "CKPT_NUMBER; trajectory: RUN STAGE CKPT_NUMBER…; jitter: "
                        "MODEL_DIR[@VERSION]")
    parser.add_argument("--hr", default="../shared/data/faces256/002[5-9][0-9].png")
    parser.add_argument("--size", type=int, default=None, help="HR side of the runs' last "
                        "stage (default: average, noise: the run's own; else 64)")
    parser.add_argument("--net", choices=["g_ema", "generator"], default="g_ema",
                        help="average, trajectory: G_ema's weights or the raw G's")
    parser.add_argument("--faces", default="",
                        help="agree, trajectory, jitter: held-out faces by file name, "
                        "e.g. 00288,00296")
    parser.add_argument("--out", default="trajectory.png",
                        help="trajectory, jitter: the picture")
    args = parser.parse_args()
    by_run = args.check in ("average", "noise", "trajectory")
    files = face_files(args.hr)
    hr = load_faces(files, run_size(args.args[0], args.size) if by_run else args.size or 64)
    names = [os.path.basename(f).split(".")[0] for f in files]
    faces = []
    for name in filter(None, args.faces.split(",")):
        if name not in names:
            raise SystemExit(f"--faces: {name} is not one of the --hr faces")
        faces.append(names.index(name))
    if args.check == "spectrum":
        spectrum(args.args, hr)
    elif args.check == "bands":
        bands(args.args, hr)
    elif args.check == "noise":
        noise(args.args[0], args.args[1], hr)
    elif args.check == "agree":
        agree(args.args, hr, faces, names)
    elif args.check == "jitter":
        if not faces:
            raise SystemExit("jitter: name the faces to move with --faces")
        jitter(args.args[0], files, faces, names, args.out)
    elif args.check == "trajectory":
        if not faces:
            raise SystemExit("trajectory: name the faces to draw with --faces")
        trajectory(args.args[0], int(args.args[1]), args.args[2:], hr, faces, names, args.net,
                   args.out)
    else:
        average(args.args[0], args.args[1:], hr, args.net)


if __name__ == "__main__":
    main()

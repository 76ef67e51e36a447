"""Colour speckle on the held-out faces: isolated pixels of false colour (issue 7's grid).

    python bench/faces_speckle.py runs/faces_v26/pan_128 runs/faces_v26/l1_128 --size=128
    python bench/faces_speckle.py runs/faces_v27/pan_128_s1 --size=128 --checkpoints

A pixel is speckle when its chroma (Cb, Cr of BT.601, 0-255 scale) lies more than
``--threshold`` from the median chroma of the 5×5 pixels around it: a dot of colour one or
two pixels wide that its neighbourhood does not have, like the cyan irises and the specks
in hair and backgrounds of the 32 → 128 runs (docs/results.md, round 27). Smooth colour
changes and edges between two flat colours are not speckle (the median follows them).
The rate is per mille of each face's pixels; it is printed for every exported model (the
last stage, or each stage upscaled bicubically to ``--size`` with ``--all_stages``), for
the HR faces themselves (what real photographs at this size have) and for bicubic
upscaling (none). ``--checkpoints`` adds G_ema at each last-stage checkpoint on disk,
which shows whether training removes speckle or adds it. The inputs are evaluate's
bicubic LR (antialiased bicubic downscale of the centre-cropped HR face).
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from scipy.ndimage import median_filter  # noqa: E402

from faces_stages import checkpoint_phases, generator, run_config  # noqa: E402
from pan_tf import inference  # noqa: E402
from pan_tf.evaluate import bicubic_down, prepare_hr, to_uint8  # noqa: E402
from pan_tf.export import exported_versions  # noqa: E402
from pan_tf.schedule import Schedule  # noqa: E402


def chroma(images: np.ndarray) -> np.ndarray:
    """[N,H,W,3] RGB (0-255) → [N,H,W,2] Cb, Cr around 0 (BT.601, full range)."""
    r, g, b = (images[..., k].astype(np.float32) for k in range(3))
    return np.stack([-0.168736 * r - 0.331264 * g + 0.5 * b,
                     0.5 * r - 0.418688 * g - 0.081312 * b], axis=-1)


THRESHOLD = 12.0  # chroma distance (0-255 scale) that counts a pixel as a speck


def speckle_rate(images: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """Per-image speckle, per mille of pixels: chroma farther than ``threshold`` from the
    per-channel median of its 5×5 neighbourhood (edges mirrored)."""
    c = chroma(images)
    median = median_filter(c, size=(1, 5, 5, 1), mode="reflect")
    distance = np.sqrt(((c - median) ** 2).sum(axis=-1))
    return (distance > threshold).mean(axis=(1, 2)) * 1e3


def to_size(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 [N,R,R,3] at ``size``² (bicubic when R differs, rounded as a saved file)."""
    if images.shape[1] == size:
        return images
    return to_uint8(tf.image.resize(images.astype(np.float32), [size, size], "bicubic"))


def held_out(pattern: str, size: int, scale: int):
    """(names, HR uint8 [N,S,S,3], LR uint8 [N,S/scale,…]) as evaluate --degrade=bicubic."""
    paths = inference.list_inputs(pattern)
    if not paths:
        raise SystemExit(f"--hr={pattern!r} matches no image")
    hr = np.stack([prepare_hr(inference.read_picture(p).rgb, size) for p in paths])
    names = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    return names, hr, to_uint8(bicubic_down(hr, size // scale))


def report(label: str, rates: np.ndarray, hr_rates: np.ndarray, names, worst: int):
    line = (f"  {label:34s} mean {rates.mean():6.2f}  median {np.median(rates):6.2f}"
            f"  ×HR {rates.mean() / max(hr_rates.mean(), 1e-9):5.2f}")
    above = [i for i in np.argsort(-(rates - hr_rates))[:worst] if rates[i] > hr_rates[i]]
    if above:
        line += "  most above HR: " + " ".join(f"{names[i]} {rates[i]:.1f}" for i in above)
    print(line)


def checkpoint_outputs(run: str, lr: np.ndarray, size: int):
    """(label, uint8 outputs) of G_ema at every checkpoint of the run's last stage."""
    config = run_config(run)
    schedule = Schedule(config.model, config.schedule)
    for path, phase in checkpoint_phases(run, schedule):
        if phase.stage != schedule.stages[-1]:
            continue
        g = generator(config, path)
        sr = g(tf.constant(lr.astype(np.float32) / 127.5 - 1.0), stage=phase.stage,
               alpha=phase.alpha).numpy()
        label = f"{os.path.basename(path)} (α {phase.alpha:.2f})"
        yield label, to_size(to_uint8((sr + 1.0) * 127.5), size)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="training workdirs (their export/pan)")
    parser.add_argument("--hr", default="../shared/data/faces256/002[5-9][0-9].png")
    parser.add_argument("--size", type=int, default=None,
                        help="HR side of the runs' last stage (default: each run's own)")
    parser.add_argument("--threshold", type=float, default=THRESHOLD,
                        help="chroma distance from the 5×5 median that counts as speckle "
                             "(0-255 scale; 12 is about a tenth of Cb/Cr's range)")
    parser.add_argument("--all_stages", action="store_true",
                        help="every exported stage, upscaled bicubically to --size")
    parser.add_argument("--checkpoints", action="store_true",
                        help="also G_ema at every last-stage checkpoint on disk")
    parser.add_argument("--noise_strength", type=float, default=1.0)
    parser.add_argument("--worst", type=int, default=8,
                        help="name this many faces whose rate is most above their HR's")
    args = parser.parse_args()
    for run in args.runs:
        model_config = run_config(run).model
        size, scale = args.size or model_config.hr_size, model_config.scale
        names, hr, lr = held_out(args.hr, size, scale)
        hr_rates = speckle_rate(hr, args.threshold)
        print(f"{run} ({size // scale} → {size} px)")
        report("HR", hr_rates, hr_rates, names, 0)
        report("bicubic", speckle_rate(to_size(lr, size), args.threshold), hr_rates, names, 0)
        root = os.path.join(run, "export", "pan")
        versions = sorted(exported_versions(root))
        if not args.all_stages:
            versions = versions[-1:]
        for version in versions:
            model = inference.load_model(os.path.join(root, str(version)))
            if model.info["input_size"] != lr.shape[1]:
                continue                       # a restoration stage: another input size
            sr = to_size(model.upscale(lr, noise_strength=args.noise_strength), size)
            report(f"stage {version} ({model.info['resolution']} px)",
                   speckle_rate(sr, args.threshold), hr_rates, names, args.worst)
        if args.checkpoints:
            for label, sr in checkpoint_outputs(run, lr, size):
                report(label, speckle_rate(sr, args.threshold), hr_rates, names, 0)


if __name__ == "__main__":
    main()

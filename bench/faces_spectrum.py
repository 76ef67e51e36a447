"""Detail energy of exported faces against the HR photographs, per scale (issue 7).

    python bench/faces_spectrum.py runs/faces_v30/stagema_s1_long \
        runs/faces_v33/stagema_zoom01_long

SWD (evaluate) normalises each set's descriptors per colour channel before comparing them,
so a model that paints too little or too much detail at one scale can score well or badly
there for reasons SWD does not show. This prints, for each run's last exported stage on
evaluate's bicubic LR of the held-out faces, two measures as ratios to the HR faces (1.0 =
as much detail as the photographs):
- the RMS of every level of SWD's own Laplacian pyramid (R, R/2, …, 32 px band-pass, and
  the 16-px low-pass level);
- the mean power of the luma spectrum in radial bands of spatial frequency, in cycles per
  image (R/2 is the Nyquist frequency).
When a run's folder has ``eval_bicubic.json``, its SWD per level is printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from faces_speckle import held_out  # noqa: E402
from pan_tf import inference  # noqa: E402
from pan_tf.metrics.swd import laplacian_pyramid  # noqa: E402


def level_rms(images: np.ndarray) -> np.ndarray:
    """RMS of each Laplacian-pyramid level of [N,R,R,3] images (0-255), finest first."""
    return np.array([np.sqrt(np.mean(np.square(level, dtype=np.float64)))
                     for level in laplacian_pyramid(images.astype(np.float32))])


def band_power(images: np.ndarray, bands: list[tuple[int, int]]) -> np.ndarray:
    """Mean power of the luma spectrum of [N,R,R,3] images (its mean removed per image)
    in each radial band [lo, hi) of cycles per image."""
    luma = images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    luma -= luma.mean(axis=(1, 2), keepdims=True)
    power = np.fft.fftshift((np.abs(np.fft.fft2(luma)) ** 2).mean(axis=0), axes=(0, 1))
    half = images.shape[1] // 2
    y, x = np.mgrid[-half:half, -half:half]
    radius = np.hypot(y, x)
    return np.array([power[(radius >= lo) & (radius < hi)].mean() for lo, hi in bands])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="training workdirs (their export/pan)")
    parser.add_argument("--hr", default="../shared/data/faces256/002[5-9][0-9].png",
                        help="held-out HR faces: folder or glob")
    parser.add_argument("--label", default="x4")
    args = parser.parse_args()

    models = [(run, inference.load_model(os.path.join(run, "export", "pan"), args.label))
              for run in args.runs]
    size, scale = models[0][1].info["resolution"], models[0][1].info["scale"]
    names, hr, lr = held_out(args.hr, size, scale)
    edges = [size // 16, size // 8, size // 4, 3 * size // 8, size // 2]
    bands = list(zip(edges[:-1], edges[1:]))
    hr_rms, hr_power = level_rms(hr), band_power(hr, bands)
    levels = [size >> k for k in range(len(hr_rms))]
    print(f"{len(names)} faces, {size // scale} -> {size}; ratios to HR")
    print(f"HR Laplacian RMS per level {levels} px: {[round(float(v), 2) for v in hr_rms]}")
    print("columns: Laplacian RMS / HR per level | luma power / HR per band "
          f"{[f'{lo}-{hi}' for lo, hi in bands]} cycles | SWD per level")
    for run, model in models:
        out = model.upscale(lr)
        rms = [round(float(v), 3) for v in level_rms(out) / hr_rms]
        power = [round(float(v), 3) for v in band_power(out, bands) / hr_power]
        swd = []
        report = os.path.join(run, "eval_bicubic.json")
        if os.path.exists(report):
            with open(report) as f:
                model_swd = json.load(f)["metrics"]["model"].get("swd") or {}
            swd = [round(v, 1) for v in model_swd.get("per_level", [])]
        seen = model.info.get("images_seen")    # which export: a stopped run has none of its own
        print(f"{run} (export at {seen} images): {rms} | {power} | {swd}")


if __name__ == "__main__":
    main()

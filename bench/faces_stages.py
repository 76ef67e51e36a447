"""Where a faces run loses faithfulness: LR-consistency per exported stage and per checkpoint.

    python bench/faces_stages.py runs/faces/pan runs/faces/l1 \\
        --hr='../shared/data/faces256/002[5-9][0-9].png'

For each run: (1) every exported stage (version) on the held-out faces, its input made by
area-downsampling the HR face to the stage's input size, and its output area-downsampled
back: PSNR(output↓, input) and the mean colour shift; (2) the last stage's G_ema (and G)
at every checkpoint still on disk (``--all_checkpoints``: every checkpoint, each at the
stage and α it was saved at), which shows whether consistency improves or drifts as
training goes on; ``--swd`` adds G_ema's SWD at the full-resolution checkpoints, which
shows whether realism keeps improving meanwhile. Area resampling on both sides, so a
perfectly consistent model scores ∞ (issue 7's evaluate numbers use bicubic LR and
bicubic downscaling instead).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from pan_tf.checkpoint import trained_stage  # noqa: E402
from pan_tf.config import Config  # noqa: E402
from pan_tf.degrade import area_downsample  # noqa: E402
from pan_tf.evaluate import SWD_SEED  # noqa: E402
from pan_tf.export import exported_versions  # noqa: E402
from pan_tf.generator import Generator  # noqa: E402
from pan_tf.metrics.swd import swd  # noqa: E402
from pan_tf.schedule import Schedule  # noqa: E402


def psnr(a: np.ndarray, b: np.ndarray, per_image: bool = False):
    """PSNR (dB, peak 255) of a against b over the whole set; ``per_image``: one per image
    of [N,H,W,C] arrays. In float64, so uint8 inputs cannot wrap."""
    err = (np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2
    if per_image:
        return 10 * np.log10(255.0 ** 2 / err.mean(axis=(1, 2, 3)))
    return float(10 * np.log10(255.0 ** 2 / err.mean()))


def area(images: np.ndarray, size: int) -> np.ndarray:
    """[N,S,S,3] → [N,size,size,3] by exact box averaging."""
    return area_downsample(images, images.shape[1] // size).numpy()


def face_files(pattern: str, flag: str = "--hr") -> list[str]:
    """The files ``pattern`` matches, sorted by name (``flag``: the option that gave the
    pattern, for the error)."""
    files = sorted(glob.glob(pattern))
    if not files:
        raise SystemExit(f"{flag}={pattern!r} matches no file")
    return files


def load_faces(faces: str | list[str], size: int, flag: str = "--hr") -> np.ndarray:
    """The faces (a pattern, or files from ``face_files``) resized to size², as float32."""
    files = face_files(faces, flag) if isinstance(faces, str) else faces
    return np.stack([np.asarray(Image.open(f).convert("RGB").resize((size, size), Image.BICUBIC))
                     for f in files]).astype(np.float32)


def run_config(run: str) -> Config:
    with open(os.path.join(run, "config.json")) as f:
        return Config.from_dict(json.load(f))


def run_size(run: str, size: int | None) -> int:
    """``size`` when given (``--size``), else the HR side of the run's last stage."""
    return size or run_config(run).model.hr_size


def per_version(run: str, hr: np.ndarray):
    root = os.path.join(run, "export", "pan")
    for version, info in sorted(exported_versions(root).items()):
        r_in, res = info["input_size"], info["resolution"]
        lr = np.round(area(area(hr, res), r_in))
        serve = tf.saved_model.load(os.path.join(root, str(version))).signatures["serving_default"]
        sr = serve(images=tf.constant(lr.astype(np.uint8)))["sr_images"].numpy().astype(np.float32)
        down = area(sr, r_in)
        shift = (down - lr).mean(axis=(0, 1, 2))
        print(f"  stage {version} ({info['label']}, {r_in}→{res}): LR-PSNR {psnr(down, lr):5.2f} dB"
              f"  mean RGB shift {np.array2string(shift, precision=1)}")


def checkpoint_phases(run: str, schedule: Schedule):
    """(path, phase) of every checkpoint in RUN/checkpoints, oldest first. The phase is
    the last step's before it: a checkpoint at a stage boundary holds the finished stage,
    not the next one at α = 0, also when that step's batch ran past the boundary (the
    checkpoint's opt_stage says which stage it trained)."""
    index = sorted(glob.glob(os.path.join(run, "checkpoints", "ckpt-*.index")),
                   key=lambda p: int(p.rsplit("-", 1)[1].split(".")[0]))
    for path in (p[:-len(".index")] for p in index):
        phase = schedule.phase_at(int(path.rsplit("-", 1)[1]) - 1)
        trained = trained_stage(tf.train.load_checkpoint(path))
        if 0 <= trained < phase.stage:
            phase = schedule.phase_at(schedule.stage_end(trained) - 1)
        yield path, phase


def generator(config: Config, path: str | None = None, net: str = "g_ema") -> Generator:
    """G_ema (``net="generator"``: the raw G) in float32, restored from checkpoint PATH
    (unrestored when None)."""
    g = Generator(config.model, name=net, dtype="float32")
    if path is not None:
        tf.train.Checkpoint(**{net: g}).restore(path).expect_partial()
    return g


def draw(config: Config, path: str, phase, target: np.ndarray, net: str = "g_ema"):
    """G_ema (``net="generator"``: the raw G) restored from checkpoint PATH, at the phase
    (stage, α) it was saved in, on TARGET's area LR: (output in [0, 255], unclipped; LR)."""
    g = generator(config, path, net)
    lr = area(target, phase.input_resolution)
    sr = g(tf.constant(lr / 127.5 - 1.0), stage=phase.stage, alpha=phase.alpha)
    return (sr.numpy() + 1.0) * 127.5, lr


def per_checkpoint(run: str, hr: np.ndarray, last_only: bool = False, with_swd: bool = False):
    """G_ema and G at every checkpoint on disk, each at the phase (stage, α) it was
    saved in, so a run that keeps all its checkpoints shows its whole trajectory.
    ``with_swd``: also G_ema's SWD average against the HR faces (evaluate's protocol
    and seed, on these area-downsampled inputs) at the full-resolution stages."""
    config = run_config(run)
    schedule = Schedule(config.model, config.schedule)
    for path, phase in checkpoint_phases(run, schedule):
        if last_only and phase.stage != schedule.stages[-1]:
            continue
        res, r_in = phase.resolution, phase.input_resolution
        target = area(hr, res)
        cells = []
        for name in ("g_ema", "generator"):
            sr, lr = draw(config, path, phase, target, name)
            cells.append(f"{name} LR-PSNR {psnr(area(sr, r_in), lr):5.2f} "
                         f"PSNR {psnr(np.clip(sr, 0, 255), target):5.2f}")
            if with_swd and name == "g_ema" and res == hr.shape[1]:
                images = np.round(np.clip(sr, 0, 255)).astype(np.uint8)
                cells[-1] += f" SWD {swd(images, hr.astype(np.uint8), seed=SWD_SEED)['average']:5.1f}"
        print(f"  {os.path.basename(path)} (stage {phase.stage}, α {phase.alpha:.2f}): "
              + " | ".join(cells))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--hr", default="../shared/data/faces256/002[5-9][0-9].png")
    parser.add_argument("--size", type=int, default=None,
                        help="HR side of the runs' last stage (default: each run's own)")
    parser.add_argument("--all_checkpoints", action="store_true",
                        help="every checkpoint at its own stage, not only the last stage's")
    parser.add_argument("--swd", action="store_true",
                        help="also G_ema's SWD average at each full-resolution checkpoint")
    args = parser.parse_args()
    for run in args.runs:
        print(run)
        hr = load_faces(args.hr, run_size(run, args.size))
        per_version(run, hr)
        per_checkpoint(run, hr, last_only=not args.all_checkpoints, with_swd=args.swd)


if __name__ == "__main__":
    main()

"""The paper's evaluation (§5) of an exported model: ``python -m pan_tf.evaluate``.

    python -m pan_tf.evaluate --model=runs/ffhq/export/pan --hr_dir=celeba_hq/ --scale=8 \\
        [--lr_dir=DIR] [--degrade=bicubic|pipeline] [--baselines=bicubic,lanczos3] \\
        [--crop_border=S] [--pool=2] [--inception=classify_image_graph_def.pb] \\
        [--max_images=N] --report=OUT

``--scale`` is the model's SR factor: it picks the version labelled ``x<scale>``
under a model directory (``--label`` overrides) and must match a version
directory's stage.json. Writes ``OUT.json`` (everything), ``OUT.md`` (a table)
and ``OUT.png`` (LR | bicubic | model | HR crops of the first few images).

Per image, in this order:

1. **HR**: decoded (inference.read_picture), centre-cropped to a square and
   resized to the model's output side R = stage.json ``resolution`` with
   antialiased bicubic (data.center_square, the training preparation); images
   smaller than R are counted in a note, since upscaled HR flatters every method.
2. **LR** (L = R / scale), uint8 like a real input file:
   ``--degrade=bicubic`` (default): HR downscaled by antialiased bicubic
   (``tf.image.resize(..., "bicubic", antialias=True)``);
   ``--degrade=pipeline``: the training degradation ``degrade.degrade`` with the
   DegradeConfig stored in the export's stage.json, applied to every image (its
   ``degrade_prob``, the clean fraction of training inputs, is set to 1), and the seed
   ``(--degrade_seed, i)``, i = the file's position in the sorted HR list;
   ``--lr_dir``: the file with the HR file's name stem (any image extension),
   which must be L×L.
3. **Model** output from the export's ``upscale`` (its fixed noise seed, i.e.
   ``serving_default`` when ``--noise_strength=1``); **baselines** upscale the
   same LR with ``tf.image.resize`` (bicubic, bilinear, nearest, lanczos3).
4. ``--pool=P`` (the paper's ×4 protocol for its ×8 model, P = 2): the model's
   output is average-pooled P×P and compared with HR average-pooled the same
   way, i.e. at R/P and at scale S/P; baselines upscale the LR by S/P directly.

Metrics, each for the model and every baseline against the same HR:

* PSNR and SSIM on RGB and on BT.601 Y (metrics.psnr_ssim), ``--crop_border``
  pixels cut from every side first (default: the evaluated scale, the SR
  literature's convention); per-image values averaged.
* NIQE (metrics.niqe, published pristine model) on Y after the same crop; it
  needs at least one 96×96 block, so smaller outputs report null with a note.
  Also given for HR itself, as the reference.
* SWD ×10³ (metrics.swd, ProGAN: Laplacian levels R … 16, 128 descriptors per
  image and level, 4×128 projections) per level and averaged, method vs HR;
  descriptors are streamed, so memory grows with descriptors, not images.
* FID (metrics.fid, Inception-v3 pool_3 from ``--inception``, Fréchet distance in
  float64), skipped with a notice without the file. FID on few images is biased
  upwards; compare only values computed on the same number of images.
* LR-consistency: PSNR between the evaluated output downscaled back to L×L —
  with the same antialiased bicubic that ``--degrade=bicubic`` makes LR with,
  unrounded — and the LR input (no border crop). It measures how faithful a
  GAN-only model stays to its input; HR itself scores ≈ 58.9 dB under bicubic
  LR (only the uint8 rounding of LR differs: 10·log10(255²·12)), which is the
  ceiling. Under ``--degrade=pipeline`` or ``--lr_dir`` the LR is not a bicubic
  downscale, so the ceiling (HR's row) is lower.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys

import numpy as np
import tensorflow as tf

from pan_tf import data as data_lib
from pan_tf import degrade as degrade_lib
from pan_tf import inference
from pan_tf.config import Config
from pan_tf.metrics import niqe, psnr, ssim
from pan_tf.metrics.niqe import BLOCK_SIZE
from pan_tf.metrics.swd import MIN_RESOLUTION, DescriptorCollector, swd_from_collectors

BASELINES = ("bicubic", "bilinear", "nearest", "lanczos3")   # tf.image.resize methods
DEGRADES = ("bicubic", "pipeline")
MODEL, HR = "model", "hr"          # method names next to the baselines'
PIXEL_METRICS = ("psnr_rgb", "psnr_y", "ssim_rgb", "ssim_y")
SWD_SEED = 0                       # fixes SWD's sampling positions and directions


@dataclasses.dataclass(frozen=True)
class EvalOptions:
    """The command line, parsed once (see the module doc)."""

    model: str                           # EXPORT_ROOT/<name> or a version directory
    hr_dir: str                          # ground-truth images: folder or glob
    scale: int                           # the model's SR factor (picks version x<scale>)
    report: str                          # writes report.json, report.md, report.png
    label: str | None = None             # overrides x<scale>
    lr_dir: str | None = None            # LR inputs by file name stem, instead of --degrade
    degrade: str = "bicubic"             # bicubic | pipeline (the training degradation)
    baselines: tuple[str, ...] = ("bicubic",)
    crop_border: int | None = None       # px cut from each side; None = the evaluated scale
    pool: int = 1                        # average-pool the output P×P (paper's ×4 protocol: 2)
    inception: str | None = None         # classify_image_graph_def.pb, for FID
    max_images: int | None = None        # first N readable HR images (sorted by path)
    batch_size: int = 8                  # LR images per model call
    degrade_seed: int = 0                # --degrade=pipeline draws from (seed, image index)
    noise_strength: float = 1.0          # the model's noise (1 = as served)
    grid_images: int = 4                 # rows in report.png
    grid_crop: int = 256                 # side of the centre crop shown per image, px


# -- image preparation --------------------------------------------------------------------
def to_uint8(x) -> np.ndarray:
    """Float pixels in [0, 255] → uint8 (rounded, clipped)."""
    return np.clip(np.round(np.asarray(x, np.float64)), 0, 255).astype(np.uint8)


def prepare_hr(rgb: np.ndarray, size: int) -> np.ndarray:
    """uint8 [H,W,3] → uint8 [size,size,3]: centre square, antialiased bicubic resize."""
    return to_uint8(data_lib.center_square(rgb.astype(np.float32) / 255.0, size).numpy() * 255.0)


def bicubic_down(image: np.ndarray, size: int) -> np.ndarray:
    """Antialiased bicubic downscale to size×size, float in [0, 255] (unrounded)."""
    x = tf.image.resize(tf.constant(image, tf.float32), [size, size], "bicubic", antialias=True)
    return np.clip(x.numpy(), 0.0, 255.0)


def pipeline_degradation(info: dict):
    """The DegradeConfig of ``--degrade=pipeline``: the export's training degradation,
    applied to every image. Training leaves a fraction of inputs clean (degrade_prob);
    this protocol measures degraded ones, and ``--degrade=bicubic`` the clean ones."""
    return dataclasses.replace(Config.from_dict(info["config"]).data.degrade, degrade_prob=1.0)


def degrade_pipeline(hr: np.ndarray, scale: int, config, seed) -> np.ndarray:
    """The training degradation of one HR image (uint8) → uint8 LR."""
    lr = degrade_lib.degrade(tf.constant(hr, tf.float32) / 255.0, tf.constant(seed, tf.int64),
                             scale, config)
    return to_uint8(lr.numpy() * 255.0)


def upscale_baseline(lr: np.ndarray, size: int, method: str) -> np.ndarray:
    """Interpolation baseline: uint8 LR → uint8 size×size."""
    return to_uint8(tf.image.resize(tf.constant(lr, tf.float32), [size, size], method).numpy())


def average_pool(image: np.ndarray, factor: int) -> np.ndarray:
    """uint8 [H,W,3] → uint8 [H/f,W/f,3] by f×f averaging (the paper's ×8 → ×4 step)."""
    if factor == 1:
        return image
    h, w, c = image.shape
    blocks = image.reshape(h // factor, factor, w // factor, factor, c).astype(np.float64)
    return to_uint8(blocks.mean(axis=(1, 3)))


def lr_consistency(output: np.ndarray, lr: np.ndarray) -> float:
    """PSNR (dB) of the output downscaled back to the LR size against the LR input."""
    return psnr(bicubic_down(output, lr.shape[0]), lr)


# -- metrics ------------------------------------------------------------------------------
def image_metrics(output: np.ndarray, hr: np.ndarray, lr: np.ndarray, crop: int) -> dict:
    """Per-image metrics of one evaluated output against HR and its LR input."""
    side = output.shape[0] - 2 * crop
    return {
        "psnr_rgb": psnr(output, hr, crop),
        "psnr_y": psnr(output, hr, crop, y_channel=True),
        "ssim_rgb": ssim(output, hr, crop),
        "ssim_y": ssim(output, hr, crop, y_channel=True),
        "niqe": niqe(output, crop) if side >= BLOCK_SIZE else None,
        "lr_psnr": lr_consistency(output, lr),
    }


def reference_metrics(hr: np.ndarray, lr: np.ndarray, crop: int) -> dict:
    """The no-reference values of HR itself (the ceiling the methods are read against)."""
    side = hr.shape[0] - 2 * crop
    return {"niqe": niqe(hr, crop) if side >= BLOCK_SIZE else None,
            "lr_psnr": lr_consistency(hr, lr)}


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _finite(x):
    """JSON has no inf/nan: such values (e.g. PSNR of identical images) become null."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def swd_supported(size: int) -> bool:
    return size >= MIN_RESOLUTION and size & (size - 1) == 0


# -- the run ------------------------------------------------------------------------------
def _check(options: EvalOptions, model) -> tuple[int, int, int]:
    """(evaluated scale, evaluated side, crop border), or InferenceError."""
    if model.scale != options.scale:
        raise inference.InferenceError(f"{model.path} is a ×{model.scale} model, not "
                                       f"--scale={options.scale}")
    if options.pool < 1 or options.scale % options.pool or model.resolution % options.pool:
        raise inference.InferenceError(f"--pool={options.pool} must divide --scale={options.scale}")
    eval_scale, eval_size = options.scale // options.pool, model.resolution // options.pool
    crop = eval_scale if options.crop_border is None else options.crop_border
    if crop < 0 or eval_size - 2 * crop < 11:
        raise inference.InferenceError(f"--crop_border={crop} leaves less than 11 px of the "
                                       f"{eval_size} px outputs (SSIM's window)")
    return eval_scale, eval_size, crop


def _read_lr(lr_dir: str, hr_path: str, lr_size: int) -> np.ndarray:
    """The --lr_dir file named like ``hr_path`` (any image extension); must be lr_size²."""
    stem = os.path.splitext(os.path.basename(hr_path))[0]
    candidates = [os.path.join(lr_dir, stem + ext) for ext in inference.INPUT_EXTENSIONS]
    path = next((c for c in candidates if tf.io.gfile.exists(c)), None)
    if path is None:
        raise inference.UnreadableImage(f"no LR file named {stem}.* in {lr_dir}")
    lr = inference.read_picture(path).rgb
    if lr.shape[:2] != (lr_size, lr_size):
        raise inference.UnreadableImage(f"LR {path} is {lr.shape[1]}×{lr.shape[0]}, the model "
                                        f"takes {lr_size}×{lr_size}")
    return lr


def _load_pairs(options: EvalOptions, model, paths: list[str], counts: dict):
    """Yields (index, name, hr uint8 [R,R,3], lr uint8 [L,L,3]) for usable images.

    ``counts["upscaled"]`` counts HR images smaller than R (upscaled to it).
    """
    size, lr_size = model.resolution, model.resolution // model.scale
    degrade_config = pipeline_degradation(model.info)
    for index, path in enumerate(paths):
        try:
            picture = inference.read_picture(path)
            lr = _read_lr(options.lr_dir, path, lr_size) if options.lr_dir else None
        except inference.UnreadableImage as e:
            inference.warn(f"skipping {path}: {e}")
            continue
        counts["upscaled"] += min(picture.rgb.shape[:2]) < size
        hr = prepare_hr(picture.rgb, size)
        if lr is None and options.degrade == "pipeline":
            lr = degrade_pipeline(hr, model.scale, degrade_config, (options.degrade_seed, index))
        elif lr is None:
            lr = to_uint8(bicubic_down(hr, lr_size))
        yield index, os.path.basename(path), hr, lr


class _Sets:
    """What set metrics need, streamed per batch: SWD descriptors and Inception features."""

    def __init__(self, methods: list[str], size: int, inception_path: str | None):
        self.swd = {m: DescriptorCollector(size, seed=SWD_SEED) for m in [*methods, HR]} \
            if swd_supported(size) else None
        self.inception = None
        if inception_path:
            from pan_tf.metrics.fid import InceptionFeatures

            self.inception = InceptionFeatures(inception_path)
        self.features = {m: [] for m in [*methods, HR]}

    def add(self, method: str, images: list[np.ndarray]) -> None:
        batch = np.stack(images)                                         # [n,R,R,3]
        if self.swd is not None:
            self.swd[method].add(batch)
        if self.inception is not None:
            self.features[method].append(self.inception(batch))

    def scores(self, method: str, notes: list[str]) -> dict:
        """{"swd": per level and average | None, "fid": float | None} of method vs HR."""
        out = {"swd": None, "fid": None}
        if self.swd is not None:
            out["swd"] = swd_from_collectors(self.swd[method], self.swd[HR], seed=SWD_SEED)
        if self.inception is not None and sum(len(f) for f in self.features[HR]) >= 2:
            from pan_tf.metrics.fid import fid_from_features

            try:
                out["fid"] = fid_from_features(np.concatenate(self.features[method]),
                                               np.concatenate(self.features[HR]))
            except ValueError as e:       # e.g. ill-conditioned covariances of few images
                notes.append(f"FID of {method} is null: {e}")
        return out


def _measure(options: EvalOptions, model, paths: list[str], sets: _Sets, eval_size: int,
             crop: int, counts: dict) -> tuple[list[dict], list[tuple]]:
    """Runs the model and the baselines batch by batch; returns (per-image rows, grid rows)."""
    methods = [MODEL, *options.baselines]
    target = len(paths) if options.max_images is None else min(options.max_images, len(paths))
    pairs = _load_pairs(options, model, paths, counts)
    rows, grid = [], []
    bar = inference.progress_bar(target)
    while len(rows) < target:
        chunk = []
        for item in pairs:
            chunk.append(item)
            if len(chunk) == options.batch_size or len(rows) + len(chunk) == target:
                break
        if not chunk:
            break                                                         # files ran out
        lrs = np.stack([lr for _, _, _, lr in chunk])                    # [n,L,L,3]
        outputs = {MODEL: [average_pool(o, options.pool) for o in
                           model.upscale(lrs, None, options.noise_strength)]}
        for method in options.baselines:
            outputs[method] = [upscale_baseline(lr, eval_size, method) for lr in lrs]
        hrs = [average_pool(hr, options.pool) for _, _, hr, _ in chunk]  # each [R,R,3]
        for j, (_, name, _, lr) in enumerate(chunk):
            row = {"name": name, HR: reference_metrics(hrs[j], lr, crop)}
            for method in methods:
                row[method] = image_metrics(outputs[method][j], hrs[j], lr, crop)
            rows.append(row)
            if len(grid) < options.grid_images:
                bicubic = (outputs["bicubic"][j] if "bicubic" in outputs
                           else upscale_baseline(lr, eval_size, "bicubic"))
                grid.append((lr, bicubic, outputs[MODEL][j], hrs[j]))
            bar.update(len(rows))
        for method, images in [*outputs.items(), (HR, hrs)]:
            sets.add(method, images)
    return rows, grid


def evaluate(options: EvalOptions) -> dict:
    """Runs the evaluation, writes the three files; returns the report (OUT.json's content)."""
    try:
        model = inference.load_model(options.model, options.label or f"x{options.scale}")
    except inference.InferenceError as e:
        raise inference.InferenceError(f"--scale={options.scale}: {e}" if options.label is None
                                       else str(e)) from None
    eval_scale, eval_size, crop = _check(options, model)
    paths = inference.list_inputs(options.hr_dir)
    if not paths:
        raise inference.InferenceError(f"--hr_dir={options.hr_dir} holds no image files")
    methods = [MODEL, *options.baselines]
    notes: list[str] = []
    if not options.inception:
        notes.append("FID skipped: pass --inception=PATH to classify_image_graph_def.pb "
                     "(from the inception-2015-12-05 archive)")
    sets, counts = _Sets(methods, eval_size, options.inception), {"upscaled": 0}
    rows, grid = _measure(options, model, paths, sets, eval_size, crop, counts)
    if not rows:
        raise inference.InferenceError(f"no usable image in --hr_dir={options.hr_dir}")

    # Means of per-image values; set metrics (SWD, FID) of each method's outputs vs HR's.
    summary = {}
    for method in methods:
        summary[method] = {k: _mean([r[method][k] for r in rows])
                           for k in (*PIXEL_METRICS, "niqe", "lr_psnr")}
        summary[method].update(sets.scores(method, notes))
    summary[HR] = {k: _mean([r[HR][k] for r in rows]) for k in ("niqe", "lr_psnr")}

    if counts["upscaled"]:
        notes.append(f"{counts['upscaled']} HR image(s) were smaller than {model.resolution} px "
                     f"and were upscaled (bicubic) to it; this flatters every method")
    if eval_size - 2 * crop < BLOCK_SIZE:
        notes.append(f"NIQE is null: it needs a {BLOCK_SIZE}×{BLOCK_SIZE} block and the outputs "
                     f"are {eval_size - 2 * crop} px after the {crop} px border crop")
    if sets.swd is None:
        notes.append(f"SWD is null: it needs a power-of-two side ≥ {MIN_RESOLUTION}, "
                     f"outputs are {eval_size} px")
    if sets.inception is not None:
        notes.append("FID is null: it needs at least 2 images" if len(rows) < 2 else
                     f"FID on {len(rows)} images: biased upwards at small N; compare only "
                     f"values computed on the same number of images")
    lr_source = f"lr_dir:{options.lr_dir}" if options.lr_dir else options.degrade
    report = _finite({
        "model": model.describe(),
        "settings": {
            "hr_dir": options.hr_dir, "lr_source": lr_source, "scale": options.scale,
            "pool": options.pool, "eval_scale": eval_scale, "eval_size": eval_size,
            "lr_size": model.resolution // model.scale, "crop_border": crop,
            "baselines": list(options.baselines), "noise_strength": options.noise_strength,
            "degrade_seed": options.degrade_seed if lr_source == "pipeline" else None,
            "lr_consistency": "PSNR(bicubic_antialiased_down(output), LR), unrounded, no crop",
            "swd_seed": SWD_SEED, "inception": options.inception,
        },
        "num_images": len(rows),
        "images": [r["name"] for r in rows],
        "methods": methods,
        "metrics": summary,
        "per_image": rows,
        "notes": notes,
    })
    write_report(report, grid, options)
    return report


# -- outputs ------------------------------------------------------------------------------
def _fmt(value, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(report: dict) -> str:
    """The report as a Markdown page: settings, one table, notes."""
    s, m = report["settings"], report["model"]
    levels = next((v["swd"]["levels"] for v in report["metrics"].values()
                   if v.get("swd")), [])
    head = ["method", "PSNR RGB ↑", "PSNR Y ↑", "SSIM RGB ↑", "SSIM Y ↑", "NIQE ↓",
            "LR-PSNR ↑", *[f"SWD {r} ↓" for r in levels], "SWD avg ↓", "FID ↓"]
    lines = [f"# Evaluation of {m['path']} ({m['label']}, version {m['version']})", "",
             f"{report['num_images']} images from `{s['hr_dir']}`; LR: {s['lr_source']}; "
             f"evaluated at ×{s['eval_scale']}, {s['eval_size']} px"
             + (f" (output average-pooled {s['pool']}×{s['pool']})" if s["pool"] > 1 else "")
             + f"; border crop {s['crop_border']} px. SWD ×10³.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method, v in report["metrics"].items():
        swd = v.get("swd") or {}
        cells = [method if method != HR else "HR (reference)",
                 _fmt(v.get("psnr_rgb"), 2), _fmt(v.get("psnr_y"), 2),
                 _fmt(v.get("ssim_rgb"), 4), _fmt(v.get("ssim_y"), 4),
                 _fmt(v.get("niqe"), 3), _fmt(v.get("lr_psnr"), 2),
                 *[_fmt(x, 2) for x in swd.get("per_level", [None] * len(levels))],
                 _fmt(swd.get("average"), 2), _fmt(v.get("fid"), 2)]
        lines.append("| " + " | ".join(cells) + " |")
    if report["notes"]:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in report["notes"]]
    return "\n".join(lines) + "\n"


def comparison_grid(rows, crop: int) -> np.ndarray:
    """Rows of LR (nearest-upscaled) | bicubic | model | HR centre crops, with a header."""
    from PIL import Image, ImageDraw

    size = rows[0][3].shape[0]
    crop = min(crop, size)
    zoom = max(1, 128 // crop)                       # tiny outputs are enlarged to be seen
    top = (size - crop) // 2
    cells = []
    for lr, bicubic, output, hr in rows:
        lr_up = np.asarray(Image.fromarray(lr).resize((size, size), Image.NEAREST))
        row = [im[top:top + crop, top:top + crop] for im in (lr_up, bicubic, output, hr)]
        cells.append(np.concatenate(row, axis=1))
    grid = np.concatenate(cells, axis=0)
    grid = grid.repeat(zoom, axis=0).repeat(zoom, axis=1)
    header = Image.new("RGB", (grid.shape[1], 16), "white")
    draw = ImageDraw.Draw(header)
    for i, title in enumerate(("LR", "bicubic", "model", "HR")):
        draw.text((i * crop * zoom + 4, 2), title, fill="black")
    return np.concatenate([np.asarray(header), grid], axis=0)


def write_report(report: dict, grid_rows, options: EvalOptions) -> None:
    out = options.report
    inference.write_bytes(out + ".json", (json.dumps(report, indent=2) + "\n").encode())
    inference.write_bytes(out + ".md", markdown(report).encode())
    grid = comparison_grid(grid_rows, options.grid_crop)
    inference.write_bytes(out + ".png", inference.encode_picture(grid, None, False, "PNG"))


# -- the command --------------------------------------------------------------------------
def parse_args(argv=None) -> EvalOptions:
    parser = argparse.ArgumentParser(
        prog="python -m pan_tf.evaluate", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True,
                        help="EXPORT_ROOT/<model_name> or one version directory")
    parser.add_argument("--hr_dir", required=True, help="ground-truth images: folder or glob")
    parser.add_argument("--scale", type=int, required=True,
                        help="the model's SR factor; picks the version labelled x<scale>")
    parser.add_argument("--report", required=True, help="writes REPORT.json, .md and .png")
    parser.add_argument("--label", default=None, help="version label, instead of x<scale>")
    parser.add_argument("--lr_dir", default=None,
                        help="LR inputs matched by file name stem (instead of --degrade)")
    parser.add_argument("--degrade", choices=DEGRADES, default="bicubic",
                        help="how LR is made from HR: antialiased bicubic, or the training "
                             "degradation pipeline from the export's config")
    parser.add_argument("--baselines", default="bicubic",
                        help=f"comma-separated subset of {','.join(BASELINES)}, or none")
    parser.add_argument("--crop_border", type=int, default=None,
                        help="px cut from each side for PSNR/SSIM/NIQE (default: the scale)")
    parser.add_argument("--pool", type=int, default=1,
                        help="average-pool the output P×P (the paper's ×4 protocol: 2)")
    parser.add_argument("--inception", default=None,
                        help="classify_image_graph_def.pb for FID (skipped without it)")
    parser.add_argument("--max_images", type=int, default=None)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--degrade_seed", type=int, default=0)
    parser.add_argument("--noise_strength", type=float, default=1.0)
    parser.add_argument("--grid_images", type=int, default=4)
    args = parser.parse_args(argv)
    names = [] if args.baselines in ("", "none") else args.baselines.split(",")
    unknown = [b for b in names if b not in BASELINES]
    if unknown:
        parser.error(f"--baselines: unknown {unknown}; choose from {','.join(BASELINES)}")
    if args.lr_dir and args.degrade != "bicubic":
        parser.error("--lr_dir and --degrade=pipeline exclude each other")
    for flag in ("max_images", "batch_size", "grid_images"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            parser.error(f"--{flag} must be ≥ 1")
    return EvalOptions(**{**vars(args), "baselines": tuple(dict.fromkeys(names))})


def main(argv=None) -> int:
    options = parse_args(argv)
    try:
        report = evaluate(options)
    except (inference.InferenceError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(markdown(report))
    print(f"wrote {options.report}.json, .md, .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

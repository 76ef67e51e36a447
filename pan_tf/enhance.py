"""Super-resolve image files with an exported model: ``python -m pan_tf.enhance``.

    python -m pan_tf.enhance --model=runs/ffhq/export/pan --label=x4 \\
        --input=photos/ --output_dir=out/ [--tile=N] [--tile_overlap=N] [--batch_size=N] \\
        [--format=png|same] [--seed=S] [--noise_strength=F]

``--model`` is ``EXPORT_ROOT/<model_name>`` (``--label`` picks the version, else the
highest) or one version directory; ``--input`` a file, a folder (recursive) or a glob.
Outputs keep the inputs' relative paths under ``--output_dir``, as PNG (or the
input's own format with ``--format=same``); gray inputs stay gray, alpha is kept
(upscaled bicubically). Unreadable files are skipped with a one-line warning; the
exit status is non-zero only when no image succeeded.

Small images (both sides ≤ the tile) run whole; consecutive ones of the same size
share a batch (``--batch_size``). The export's noise is one map per layer
broadcast over a batch, so batching never changes an image's output.

**Tiling.** Larger images run in overlapping LR tiles whose outputs are blended.
The generator is fully convolutional, but every output pixel sees a large
neighbourhood (a U-Net whose bottleneck, at input/32 for the paper's model,
mixes ±150 LR px), so a tile's output differs from the whole-image pass near the
tile's cut edges, where the network sees zero padding instead of the neighbours.
Measured on the paper-size generator (random weights, ×4, a 256 px face cut at
column 128, noise off), the mean |difference| falls with the distance d from the
cut: 4.3 grey levels at d = 0, 1.0 at 4 LR px, 0.47 at 8, 0.19 at 16, 0.08 at 32.
So:

* Tile origins are multiples of the export's ``pad_multiple`` (input/bottleneck),
  so every tile sees the stride-2 grid the whole-image pass sees, and the last
  tile of a row/column simply stops at the image edge, where the graph pads it
  by reflection exactly as it pads the whole image.
* Of the overlap O between neighbours, each tile's outer O/4 next to a cut edge
  is discarded (weight 0: the worst errors), and the middle O/2 is cross-faded
  with a raised cosine, 0.5 − 0.5·cos(π t), whose two halves sum to 1; weights
  are separable (w(y)·w(x)), so four-tile corners sum to 1 as well, and the
  blend is normalised by the summed weight anyway. Sides on the image border
  keep full weight up to the edge. A pixel therefore takes full weight only
  from tiles whose cut edges are ≥ 3O/4 away, and partial weight from ≥ O/4.
* Each tile draws its own noise (the seed folded with the tile's index); the
  whole-image pass has one noise field, which tiles cannot reproduce since the
  export draws noise per call shape. In a cross-fade band two independent noise
  fields are averaged, which lowers the noise's share of the detail there by up
  to ~30% (at the band's centre); ``--noise_strength=0`` removes noise entirely.
  Tiles run one at a time (they are large; a batch would share one noise map).

Defaults: ``--tile`` = 4 × the model's input size, capped so that the tile's
*output* side stays ≤ 2048 px, but never below the input size: 512 for the
paper's ×4 (128 → 512), 256 for its ×8. (An untiled pass of the paper's
generator peaks at ~510 B per output pixel at ×4 and ~255 B at ×8: 1–2 GB for a
2048² output, ~64 GB for a 2048² input at ×8.) ``--tile_overlap`` = half the
input size: 64 for the paper, i.e. 16 px discarded and 32 px faded, so
full-weight pixels are ≥ 48 LR px from any cut. Tiles and steps are rounded to
the pad multiple. With these defaults the paper-size generator (random weights,
noise off) tiled differs from its whole-image pass by at most 1 grey level (mean
0.01–0.02) away from the image borders, at ×4 (512 px tiles) and ×8 (256 px);
256 px tiles overlapping by 32 give at most 2, hard cuts (no overlap) up to 49,
with mean errors of 19 along the cuts: visible seams. A trained network may
reach further than a random one: raise ``--tile_overlap`` if seams ever show.
Time: tiling computes (tile / step)² more pixels than a whole pass (1.3× at ×4,
1.8× at ×8 with the defaults), yet on CPU it measured 0.5–1.4× the untiled time,
since smaller activations stay in cache (bench/enhance_bench.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable

import numpy as np

MAX_TILE_OUTPUT = 2048     # default tiles keep their output side ≤ this, pixels


@dataclasses.dataclass(frozen=True)
class EnhanceOptions:
    """The command line, parsed once (see the module doc)."""

    model: str                        # EXPORT_ROOT/<name> or a version directory
    input: str                        # file, folder (recursive) or glob
    output_dir: str
    label: str | None = None          # x2 / x4 / x8 / rN: picks the version under --model
    tile: int | None = None           # LR tile side, px; None = the model's default
    tile_overlap: int | None = None   # LR overlap between neighbouring tiles, px
    batch_size: int = 8               # small same-sized images per model call
    format: str = "png"               # png | same (the input's own format)
    seed: tuple[int, int] | None = None  # noise seed; None = the export's fixed seed
    noise_strength: float = 1.0       # scales every noise map; 0 = no stochastic detail


# -- tiling -------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Tiling:
    """Tile geometry along one axis, in LR pixels (the same for rows and columns)."""

    tile: int                         # tile side, a multiple of the pad multiple
    step: int                         # distance between tile origins, a multiple too

    @property
    def overlap(self) -> int:
        return self.tile - self.step

    @property
    def margin(self) -> int:
        """Discarded next to a cut edge."""
        return self.overlap // 4

    @property
    def ramp(self) -> int:
        """Cross-faded after the margin."""
        return self.overlap - 2 * self.margin


def default_tile(model) -> int:
    cap = max(model.input_size, MAX_TILE_OUTPUT // model.scale)
    return min(4 * model.input_size, cap)


def make_tiling(model, tile: int | None = None, overlap: int | None = None) -> Tiling:
    """Validated tile geometry for ``model`` (an SRModel); see the module doc."""
    from pan_tf.inference import InferenceError

    m = model.pad_multiple
    tile = default_tile(model) if tile is None else tile
    overlap = model.input_size // 2 if overlap is None else overlap
    aligned = tile // m * m
    if aligned < m or tile < 1:
        raise InferenceError(f"--tile={tile} is smaller than this model's pad multiple {m}; "
                             f"use --tile ≥ {m}")
    if overlap < 0 or 2 * overlap > aligned:
        raise InferenceError(f"--tile_overlap={overlap} must be between 0 and half the tile "
                             f"({aligned // 2})")
    step = (aligned - overlap) // m * m
    if step < m:
        raise InferenceError(f"--tile={tile} with --tile_overlap={overlap} leaves no step that is "
                             f"a multiple of the pad multiple {m}; use --tile ≥ {2 * m}")
    if aligned * aligned > model.max_input_pixels:
        raise InferenceError(f"--tile={tile} exceeds the export's max_input_pixels "
                             f"({model.max_input_pixels}); use a smaller --tile")
    return Tiling(aligned, step)


def tile_spans(length: int, tiling: Tiling) -> list[tuple[int, int]]:
    """[start, stop) of the tiles covering an axis of ``length`` LR px.

    Starts are multiples of the step; the last tile stops at the edge (it is then
    narrower than a tile but always wider than the overlap).
    """
    spans, start = [], 0
    while True:
        stop = min(start + tiling.tile, length)
        spans.append((start, stop))
        if stop == length:
            return spans
        start += tiling.step


def _raised_cosine(n: int) -> np.ndarray:
    """n rising weights in (0, 1); w[i] + w[n-1-i] = 1."""
    t = (np.arange(n) + 0.5) / max(n, 1)
    return 0.5 - 0.5 * np.cos(np.pi * t)


def span_weights(start: int, stop: int, length: int, tiling: Tiling, scale: int) -> np.ndarray:
    """Blend weights of one tile along one axis, per output pixel: float64 [scale·(stop-start)]."""
    size, margin, ramp = scale * (stop - start), scale * tiling.margin, scale * tiling.ramp
    w = np.ones(size)
    rise = _raised_cosine(ramp)
    if start > 0:                                     # a cut edge before this tile
        w[:margin] = 0.0
        w[margin:margin + ramp] *= rise
    if stop < length:                                 # a cut edge after it
        w[size - margin:] = 0.0
        w[size - margin - ramp:size - margin] *= rise[::-1]
    return w


def tile_seed(seed, index: int):
    """The noise seed of tile ``index``: the image's seed folded with the index."""
    import tensorflow as tf

    return tf.random.experimental.stateless_fold_in(tf.constant(seed, tf.int32), index)


def enhance_tiled(model, rgb: np.ndarray, tiling: Tiling, seed=None, noise_strength: float = 1.0,
                  on_tile: Callable[[int, int], None] | None = None) -> np.ndarray:
    """uint8 [H,W,3] → uint8 [sH,sW,3], tile by tile (see the module doc).

    Works through one row of tiles at a time: output rows that no later tile
    touches are normalised and written out, so float memory stays at about one
    tile row of output (the uint8 result is the only full-size array).
    """
    s = model.scale
    seed = model.noise_seed if seed is None else seed
    height, width = rgb.shape[:2]
    rows, cols = tile_spans(height, tiling), tile_spans(width, tiling)
    col_weights = [span_weights(a, b, width, tiling, s).astype(np.float32) for a, b in cols]
    total_x = np.zeros(s * width, np.float32)                  # Σ of column weights
    for (a, b), w in zip(cols, col_weights):
        total_x[s * a:s * b] += w
    out = np.empty((s * height, s * width, 3), np.uint8)
    acc = np.zeros((0, s * width, 3), np.float32)              # rows [top, top + len) pending
    acc_w = np.zeros(0, np.float32)                            # Σ of row weights there
    top, done = 0, 0

    def flush(until: int):
        nonlocal acc, acc_w, top
        n = until - top
        norm = acc_w[:n, None, None] * total_x[None, :, None]
        out[top:until] = np.clip(np.round(acc[:n] / norm), 0, 255).astype(np.uint8)
        acc, acc_w, top = acc[n:], acc_w[n:], until

    for r, (y0, y1) in enumerate(rows):
        flush(s * y0)                                          # no later tile reaches above
        grow = s * y1 - (top + len(acc_w))
        acc = np.concatenate([acc, np.zeros((grow, s * width, 3), np.float32)])
        acc_w = np.concatenate([acc_w, np.zeros(grow, np.float32)])
        wy = span_weights(y0, y1, height, tiling, s).astype(np.float32)
        acc_w[s * y0 - top:s * y1 - top] += wy
        for c, (x0, x1) in enumerate(cols):
            sr = model.upscale(rgb[None, y0:y1, x0:x1], tile_seed(seed, r * len(cols) + c),
                               noise_strength)[0]              # [s(y1-y0),s(x1-x0),3]
            weight = wy[:, None, None] * col_weights[c][None, :, None]
            acc[s * y0 - top:s * y1 - top, s * x0:s * x1] += sr * weight
            done += 1
            if on_tile is not None:
                on_tile(done, len(rows) * len(cols))
    flush(s * height)
    return out


# -- the command --------------------------------------------------------------------------
def output_paths(paths: list[str], spec: str, output_dir: str,
                 fmt: str) -> dict[str, tuple[str, str]]:
    """{input: (output path, Pillow format)}.

    Outputs keep the input's path relative to a --input folder (else its name).
    ``png`` writes PNG; ``same`` keeps the input's extension and format when Pillow
    can write it (else PNG). A clash (``a.jpg`` and ``a.png`` → ``a.png``) keeps the
    input's extension in the name: ``a_jpg.png``.
    """
    import tensorflow as tf

    from pan_tf.inference import OUTPUT_FORMATS

    root = spec if tf.io.gfile.isdir(spec) else None
    taken, out = set(), {}
    for path in paths:
        rel = os.path.relpath(path, root) if root else os.path.basename(path)
        stem, ext = os.path.splitext(rel)
        new_ext = ext if fmt == "same" and ext.lower() in OUTPUT_FORMATS else ".png"
        name = stem + new_ext
        if name in taken:
            name = stem + ext.replace(".", "_") + new_ext
        taken.add(name)
        out[path] = (os.path.join(output_dir, name), OUTPUT_FORMATS[new_ext.lower()])
    return out


def run(options: EnhanceOptions) -> tuple[int, int]:
    """Enhances every input; returns (succeeded, failed)."""
    from pan_tf import inference

    paths = inference.list_inputs(options.input)
    if not paths:
        raise inference.InferenceError(f"--input={options.input} names no image files "
                                       f"({', '.join(inference.INPUT_EXTENSIONS)})")
    model = inference.load_model(options.model, options.label)
    tiling = make_tiling(model, options.tile, options.tile_overlap)
    targets = output_paths(paths, options.input, options.output_dir, options.format)
    print(f"model {model.path} ({model.label}, ×{model.scale}); {len(paths)} input(s); "
          f"tiles of {tiling.tile} px overlapping by {tiling.overlap} px", flush=True)
    bar = inference.progress_bar(len(paths))
    done, succeeded = 0, 0

    def save(path, picture, sr):
        nonlocal done, succeeded
        alpha = None
        if picture.alpha is not None:
            alpha = inference.resize_alpha(picture.alpha, sr.shape[0], sr.shape[1])
        target, fmt = targets[path]
        inference.write_bytes(target, inference.encode_picture(sr, alpha, picture.gray, fmt))
        done, succeeded = done + 1, succeeded + 1
        bar.update(done)

    # A batch's worth of files at a time: same-sized small ones share a model call,
    # larger ones are tiled one by one.
    for first in range(0, len(paths), options.batch_size):
        pictures = {}
        for path in paths[first:first + options.batch_size]:
            try:
                pictures[path] = inference.read_picture(path)
            except inference.UnreadableImage as e:
                inference.warn(f"skipping {path}: {e}")
                done += 1
                bar.update(done)
        small, large = {}, []
        for path, picture in pictures.items():
            if max(picture.rgb.shape[:2]) <= tiling.tile:
                small.setdefault(picture.rgb.shape, []).append(path)
            else:
                large.append(path)
        for group in small.values():
            batch = np.stack([pictures[p].rgb for p in group])          # [n,H,W,3]
            for path, sr in zip(group, model.upscale(batch, options.seed, options.noise_strength)):
                save(path, pictures[path], sr)
        for path in large:
            sr = enhance_tiled(model, pictures[path].rgb, tiling, options.seed,
                               options.noise_strength,
                               on_tile=lambda d, n: bar.update(done + d / n))
            save(path, pictures[path], sr)
    failed = len(paths) - succeeded
    print(f"enhanced {succeeded} of {len(paths)} image(s) into {options.output_dir}"
          + (f"; skipped {failed} unreadable" if failed else ""), flush=True)
    return succeeded, failed


def parse_seed(text: str) -> tuple[int, int]:
    """``S`` → (S, 0); ``S0,S1`` → (S0, S1) (the export's own seed is printed in stage.json)."""
    parts = [int(p) for p in text.split(",")]
    if len(parts) == 1:
        parts.append(0)
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected S or S0,S1, got {text!r}")
    return parts[0], parts[1]


def parse_args(argv=None) -> EnhanceOptions:
    parser = argparse.ArgumentParser(
        prog="python -m pan_tf.enhance", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True,
                        help="EXPORT_ROOT/<model_name> (version by --label, else the highest) "
                             "or one version directory")
    parser.add_argument("--label", default=None, help="version label: x2, x4, x8, r64, …")
    parser.add_argument("--input", required=True, help="an image file, a folder, or a glob")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--tile", type=int, default=None,
                        help="LR tile side in px for images larger than it (default: 4 × the "
                             "model's input size, output side capped at 2048)")
    parser.add_argument("--tile_overlap", type=int, default=None,
                        help="LR overlap of neighbouring tiles in px (default: half the "
                             "model's input size)")
    parser.add_argument("--batch_size", type=int, default=8,
                        help="same-sized small images per model call")
    parser.add_argument("--format", choices=("png", "same"), default="png",
                        help="png, or same: the input's own format")
    parser.add_argument("--seed", type=parse_seed, default=None,
                        help="noise seed S or S0,S1 (default: the export's fixed seed)")
    parser.add_argument("--noise_strength", type=float, default=1.0,
                        help="scales the injected noise (0 = none, 1 = as trained)")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch_size must be ≥ 1")
    if args.noise_strength < 0:
        parser.error("--noise_strength must be ≥ 0")
    return EnhanceOptions(**vars(args))


def main(argv=None) -> int:
    options = parse_args(argv)
    from pan_tf.inference import InferenceError

    try:
        succeeded, _ = run(options)
    except InferenceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0 if succeeded else 1


if __name__ == "__main__":
    sys.exit(main())

"""Side-by-side grid of several exported models on the held-out faces (issue 7).

    python bench/faces_grid.py --hr='../shared/data/faces256/002[5-9][0-9].png' \\
        --models=L1:runs/faces/l1,PAN:runs/faces/pan,PAN+layer:runs/faces/pan/export/pan_ibp \\
        --count=6 --out=docs/faces_grid.png

Columns: LR (nearest) | bicubic | each model | HR, rows = the first ``count``
held-out faces. With ``--faces_per_row=K`` the grid is transposed into a mosaic for
looking at many faces at once (``--count=50`` shows every held-out face): K faces per
row, one row per model and then the HR row, repeated for each group of K faces, no LR
or bicubic rows and no titles. LR is the antialiased bicubic downscale that
``pan_tf.evaluate --degrade=bicubic`` uses, so the grid shows what the table measures.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from pan_tf import inference  # noqa: E402
from pan_tf.evaluate import bicubic_down, prepare_hr, to_uint8  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", required=True,
                        help="NAME:PATH,… where PATH is a training workdir (its export/pan) "
                             "or an exported model's folder (e.g. WORKDIR/export/pan_ibp)")
    parser.add_argument("--label", default="x4")
    parser.add_argument("--hr", required=True, help="held-out HR images: folder or glob")
    parser.add_argument("--count", type=int, default=6)
    parser.add_argument("--zoom", type=int, default=2)
    parser.add_argument("--faces_per_row", type=int, default=0,
                        help="draw a mosaic: this many faces per row, each model's row above "
                             "the HR row (0: the LR | bicubic | models | HR grid)")
    parser.add_argument("--jpeg_quality", type=int, default=90,
                        help="a .jpg mosaic's quality (lower it to keep a 128-px mosaic "
                             "of 50 faces under 500 KB)")
    parser.add_argument("--noise_strength", type=float, default=1.0,
                        help="scales every model's noise inputs (0: draw without noise, "
                             "to see which texture the noise makes)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    models = []
    for item in args.models.split(","):
        name, path = item.split(":", 1)
        if os.path.isdir(os.path.join(path, "export")):
            path = os.path.join(path, "export", "pan")
        models.append((name, inference.load_model(path, args.label)))
    size = models[0][1].info["resolution"]
    scale = models[0][1].info["scale"]
    paths = inference.list_inputs(args.hr)[: args.count]
    hr = np.stack([prepare_hr(inference.read_picture(p).rgb, size) for p in paths])  # [N,R,R,3]
    lr = to_uint8(bicubic_down(hr, size // scale))                          # [N,L,L,3]
    outputs = [model.upscale(lr, noise_strength=args.noise_strength) for _, model in models]
    model_names = [name for name, _ in models]
    if args.faces_per_row:
        save_mosaic(outputs + [hr], model_names + ["HR"],
                    args.faces_per_row, args.zoom, args.out, args.jpeg_quality)
        return
    columns = [tf.image.resize(lr, [size, size], "nearest").numpy(),
               np.clip(np.round(tf.image.resize(lr.astype(np.float32), [size, size],
                                                "bicubic").numpy()), 0, 255)]
    columns += outputs
    columns.append(hr)
    image = zoomed(np.concatenate([np.concatenate(list(c), axis=0) for c in columns], axis=1),
                   args.zoom)
    names = ["LR", "bicubic", *model_names, "HR"]
    header = Image.new("RGB", (image.width, 16), "white")
    draw = ImageDraw.Draw(header)
    for i, name in enumerate(names):                      # column titles
        draw.text((i * size * args.zoom + 4, 2), name, fill="black")
    framed = Image.new("RGB", (image.width, image.height + header.height), "white")
    framed.paste(header, (0, 0))
    framed.paste(image, (0, header.height))
    framed.save(args.out, optimize=True)
    print(f"wrote {args.out} ({os.path.getsize(args.out) // 1024} KB): columns {' | '.join(names)}")


def zoomed(pixels: np.ndarray, zoom: int) -> Image.Image:
    """[H,W,3] → a PIL image ``zoom`` times larger, nearest-neighbour so pixels stay sharp."""
    image = Image.fromarray(pixels.astype(np.uint8))
    return image.resize((image.width * zoom, image.height * zoom), Image.NEAREST)


def save_mosaic(kinds, names, k: int, zoom: int, out: str, quality: int):
    """kinds: [N,R,R,3] arrays named ``names`` (each model, then HR), drawn in groups of
    ``k`` faces with a row per kind; the last group is padded with white."""
    count = len(kinds[0])
    blank = np.full_like(kinds[0][0], 255)
    rows = []
    for start in range(0, count, k):
        for faces in kinds:
            group = list(faces[start:start + k]) + [blank] * max(0, start + k - count)
            rows.append(np.concatenate(group, axis=1))
    zoomed(np.concatenate(rows, axis=0), zoom).save(out, optimize=True,
                                                    quality=quality)   # quality: a .jpg's
    print(f"wrote {out} ({os.path.getsize(out) // 1024} KB): {count} faces, "
          f"{k} per row, rows {' | '.join(names)}")


if __name__ == "__main__":
    main()

"""Are the faces a model fails the ones least like any training face? (issue 7's grid)

    python bench/faces_novelty.py --faces=00278,00282,00284,00285,00288,00296

Each face is centre-cropped and resized as evaluate prepares HR (antialiased bicubic) to
``--size`` px, its mean removed and scaled to unit length; a held-out face's novelty is one
minus its cosine similarity to the nearest training face or its mirror image (training
flips every face with probability 1/2). Crude (pixels, not features), but with no model
in it: it asks whether the data, not the training, sets which faces fail. Prints the
held-out faces from most to least novel, and the ranks of ``--faces`` (1 = most novel)
with the chance that as many faces picked at random rank as high or higher on average (a
permutation test, ``--draws`` random draws). A face that is in both sets (``--hr``
pointing at training faces) is compared with the other training faces only, not with
itself or its own mirror image: how rare it is among the faces trained on.

    python bench/faces_novelty.py --hr='../shared/data/faces256/000[0-4]?.png' \
        --faces=00002,00006

With ``--rarest_dir``, the ``--rarest`` most novel faces of ``--hr`` are linked into that
folder ``--copies`` times each (``00118_a.png``, ``00118_b.png``, ...). Added to a run's
``--data``, the folder makes training draw those faces ``1 + copies`` times as often (the
data pipeline pools distinct paths). Picked from the training faces against each other,
with no held-out face involved (round 35):

    python bench/faces_novelty.py --hr="$TRAIN" --rarest=50 --copies=2 \
        --rarest_dir=runs/faces_v35/rare50x2
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from pan_tf import data, inference  # noqa: E402
from pan_tf.evaluate import prepare_hr  # noqa: E402


def unit_vectors(paths: list[str], size: int, mirrors: bool = False) -> np.ndarray:
    """[N, size*size*3]: each face at ``size`` px, mean removed, unit length; with
    ``mirrors``, [2N, …]: the faces, then their mirror images."""
    faces = np.stack([prepare_hr(inference.read_picture(p).rgb, size) for p in paths])
    if mirrors:
        faces = np.concatenate([faces, faces[:, :, ::-1]])
    x = faces.reshape(len(faces), -1).astype(np.float64)
    x -= x.mean(axis=1, keepdims=True)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def link_rarest(folder: str, paths: list[str], copies: int) -> None:
    """Links each of ``paths`` into ``folder`` ``copies`` times, under distinct names."""
    if os.path.exists(folder) and os.listdir(folder):
        raise SystemExit(f"--rarest_dir={folder}: not empty; pick a new folder")
    os.makedirs(folder, exist_ok=True)
    for path in paths:
        stem, ext = os.path.splitext(os.path.basename(path))
        for c in range(copies):
            os.symlink(os.path.abspath(path), os.path.join(folder, f"{stem}_{chr(97 + c)}{ext}"))
    print(f"linked {len(paths)} faces x {copies} into {folder}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", default="../shared/data/faces256/00[01]*.png,"
                        "../shared/data/faces256/002[0-4]*.png",
                        help="training faces: comma-separated folders or globs")
    parser.add_argument("--hr", default="../shared/data/faces256/002[5-9][0-9].png",
                        help="held-out faces: comma-separated folders or globs")
    parser.add_argument("--faces", default="", help="comma-separated held-out file stems")
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--draws", type=int, default=100000)
    parser.add_argument("--rarest_dir", default="",
                        help="folder to link the --rarest most novel faces into")
    parser.add_argument("--rarest", type=int, default=50)
    parser.add_argument("--copies", type=int, default=2, help="links per face")
    args = parser.parse_args()

    # --data's own listing, so --train names exactly the files a run trains on.
    train, held = data.list_images(args.train), data.list_images(args.hr)
    stems = [os.path.splitext(os.path.basename(p))[0] for p in held]
    similarity = unit_vectors(held, args.size) @ unit_vectors(train, args.size, mirrors=True).T
    index = {os.path.realpath(p): j for j, p in enumerate(train)}
    for i, path in enumerate(held):                      # itself and its mirror do not count
        j = index.get(os.path.realpath(path))
        if j is not None:
            similarity[i, [j, j + len(train)]] = -np.inf
    novelty = 1.0 - similarity.max(axis=1)
    order = np.argsort(-novelty)
    print(f"{len(held)} faces against {len(train)} training faces at {args.size} px; "
          "novelty = 1 - cosine similarity to the nearest training face or mirror, most novel "
          "first:")
    print("  " + " ".join(f"{stems[i]} {novelty[i]:.3f}" for i in order))
    if args.rarest_dir:
        link_rarest(args.rarest_dir, [held[i] for i in order[:args.rarest]], args.copies)
    if not args.faces:
        return
    picked = args.faces.split(",")
    unknown = sorted(set(picked) - set(stems))
    if unknown:
        raise SystemExit(f"--faces: not among the held-out faces: {', '.join(unknown)}")
    rank = {stems[i]: r + 1 for r, i in enumerate(order)}
    ranks = sorted(rank[f] for f in picked)
    rng = np.random.default_rng(0)
    draws = np.array([rng.choice(len(held), len(picked), replace=False).sum()
                      for _ in range(args.draws)]) + len(picked)      # ranks are 1-based
    hits = int(np.sum(draws <= sum(ranks)))
    chance = f"{hits / args.draws:.3f}" if hits else f"< {1 / args.draws:g}"
    print(f"ranks of --faces: {ranks} (mean {np.mean(ranks):.1f}; at random "
          f"{(len(held) + 1) / 2:.1f}); chance of a mean rank this high at random: {chance}")


if __name__ == "__main__":
    main()

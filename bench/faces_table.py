"""Markdown table of the faces experiment (issue 7) from runs/faces/*/eval_*.json.

    python bench/faces_table.py [--runs=runs/faces] [--order=pan,nonprog,l1,l2,...]
    python bench/faces_table.py --order='pan,pan (102 kimg)=runs/faces2/pan'

An --order entry is a run name under --runs, or LABEL=WORKDIR for a run kept elsewhere.

One row per run and per LR source (bicubic, pipeline), plus bicubic itself, with
the wall time of the training run and the images it saw.
"""

from __future__ import annotations

import argparse
import json
import os


def row(name, metrics, wall=None, kimg=None):
    swd = metrics["swd"]["per_level"] + [metrics["swd"]["average"]]
    cells = [name, f"{metrics['psnr_rgb']:.2f}", f"{metrics['psnr_y']:.2f}",
             f"{metrics['ssim_y']:.3f}", f"{metrics['lr_psnr']:.2f}",
             *(f"{v:.1f}" for v in swd),
             "" if wall is None else f"{wall / 60:.1f}", "" if kimg is None else f"{kimg:.0f}"]
    return "| " + " | ".join(cells) + " |"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default="runs/faces")
    parser.add_argument("--order", default="")
    args = parser.parse_args()
    names = [n for n in args.order.split(",") if n] or sorted(os.listdir(args.runs))
    for source in ("bicubic", "pipeline"):
        print(f"\n**LR: {source}** (50 held-out faces, 16 → 64)\n")
        print("| run | PSNR RGB ↑ | PSNR Y ↑ | SSIM Y ↑ | LR-PSNR ↑ | SWD 64 ↓ | SWD 32 ↓ | "
              "SWD 16 ↓ | SWD avg ↓ | train min | kimg |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        baseline = None
        for entry in names:
            name, _, workdir = entry.partition("=")
            workdir = workdir or os.path.join(args.runs, name)
            path = os.path.join(workdir, f"eval_{source}.json")
            if not os.path.exists(path):
                continue
            with open(path) as f:
                report = json.load(f)
            wall_path = os.path.join(workdir, "wall_seconds")
            wall = float(open(wall_path).read()) if os.path.exists(wall_path) else None
            kimg = report["model"]["images_seen"] / 1000
            print(row(name, report["metrics"]["model"], wall, kimg))
            baseline = report["metrics"]["bicubic"]
        if baseline:
            print(row("bicubic", baseline))


if __name__ == "__main__":
    main()

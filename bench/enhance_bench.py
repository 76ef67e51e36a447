"""Inference speed of the paper-size generator through pan_tf.enhance, measured in one run.

    python bench/enhance_bench.py                 # ~10 min on 2 CPU cores
    python bench/enhance_bench.py --big=1024      # a smaller "large" input, faster

The generator is configs/ffhq_x8_1024.flags' (128 → 1024, fmap 16384/512) with
random weights — speed does not depend on the weights — wrapped in the exported
graph (export.ServingModule at stage 6 = ×4, 128 → 512, and stage 7 = ×8,
128 → 1024) without writing a SavedModel, and driven through inference.SRModel
and enhance.enhance_tiled, i.e. exactly what ``python -m pan_tf.enhance`` runs.
Per stage, in two subprocesses (each peak RSS is its own):

A. 1. seconds per 128 px image, batch 1 and batch 4 (median of 5 calls after a
      warm-up); 2. the large input (2048×2048 by default) tiled with the default
      tile and overlap: time and peak RSS.
B. 3. untiled passes at two input sizes (the second is the comparison size), with
      the peak RSS after each: their difference gives bytes per output pixel, which
      extrapolates the untiled peak at the large input; 4. tiled vs untiled at the
      comparison size: time ratio and the largest/mean |difference| 16 LR px away
      from the borders (noise 0); 5. the large input untiled, only when the
      estimated peak fits in 60% of the available memory — else recorded as
      "skipped: would need ~X GB".

Results go to bench/results/enhance_bench.json with the machine's core count.
Timings on a shared CPU move with the load: compare ratios measured in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "bench", "results")
FLAGFILE = "configs/ffhq_x8_1024.flags"
# Untiled input sides: a memory probe, then the tiled-vs-untiled comparison (> 1 tile).
STAGES = {6: {"probe": 512, "compare": 768},      # ×4: 128 → 512, tiles of 512
          7: {"probe": 256, "compare": 384}}      # ×8: 128 → 1024, tiles of 256
MEMORY_SHARE = 0.6                               # untiled runs only below this share of free RAM

from stage_setup import host, load_config  # noqa: E402  (bench/ is on sys.path)


def _peak_rss_gb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _available_gb() -> float:
    with open("/proc/meminfo") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["MemAvailable"].split()[0]) / 2**20


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


# -- worker: one stage ----------------------------------------------------------------------
def run_worker(stage: int, big: int, part: str) -> dict:
    """Part A ("tiled") or B ("untiled") of the module doc for one stage."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np

    from pan_tf import enhance, export, inference
    from pan_tf.generator import Generator

    config = load_config(FLAGFILE)
    keras.utils.set_random_seed(0)
    g_ema = Generator(config.model, name="g_ema")
    model = inference.SRModel(export.ServingModule(g_ema, config, stage),
                              export.stage_info(config, stage, images_seen=0))
    s, size = model.scale, model.input_size
    rng = np.random.default_rng(0)
    image = lambda n: rng.integers(0, 256, (n, n, 3), dtype=np.uint8)   # noqa: E731
    out = {"stage": stage, "label": model.label, "scale": s, "input_size": size,
           "params": int(g_ema.count_params())}

    tiling = enhance.make_tiling(model)
    out["tile"], out["overlap"] = tiling.tile, tiling.overlap
    big_image = image(big)
    model.upscale(image(size)[None])                                        # trace
    if part == "tiled":
        # 1. Per-image speed at the training size; 2. the large input, tiled.
        batch = np.stack([image(size) for _ in range(4)])
        for n in (1, 4):
            times = [_timed(model.upscale, batch[:n])[1] for _ in range(5)]
            out[f"sec_per_image_batch{n}"] = float(np.median(times)) / n
        spans = len(enhance.tile_spans(big, tiling))
        before = _peak_rss_gb()
        _, seconds = _timed(enhance.enhance_tiled, model, big_image, tiling)
        out["big"] = {"input": big, "output": s * big, "tiles": spans * spans,
                      "tiled_s": seconds, "tiled_peak_gb": _peak_rss_gb(),
                      "peak_before_gb": before,
                      "tiled_sec_per_output_mpx": seconds / (s * big) ** 2 * 1e6}
        return out

    # 3.-4. Untiled at two sizes (peak memory per output pixel); tiled vs untiled.
    sizes = STAGES[stage]
    base = _peak_rss_gb()
    _, probe_s = _timed(model.upscale, image(sizes["probe"])[None], None, 0.0)
    probe_peak = _peak_rss_gb()
    compare = image(sizes["compare"])
    whole, whole_s = _timed(model.upscale, compare[None], None, 0.0)
    compare_peak = _peak_rss_gb()
    tiled, tiled_s = _timed(enhance.enhance_tiled, model, compare, tiling, None, 0.0)
    border = 16 * s
    diff = np.abs(tiled.astype(np.float64) - whole[0])[border:-border, border:-border]
    out["compare"] = {"input": sizes["compare"], "untiled_s": whole_s, "tiled_s": tiled_s,
                      "tiled_over_untiled": tiled_s / whole_s,
                      "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean())}
    px = lambda n: (s * n) ** 2                                              # noqa: E731
    per_px = max(compare_peak - probe_peak, 0.0) / (px(sizes["compare"]) - px(sizes["probe"]))
    estimate = compare_peak + per_px * (px(big) - px(sizes["compare"]))      # process peak
    out["memory"] = {"peak_before_gb": base, "probe_input": sizes["probe"],
                     "probe_s": probe_s, "probe_peak_gb": probe_peak,
                     "compare_peak_gb": compare_peak, "bytes_per_output_px": per_px * 2**30,
                     "untiled_big_peak_estimate_gb": estimate,
                     "available_gb": _available_gb()}
    # 5. The large input, untiled, where it fits.
    if estimate < MEMORY_SHARE * _available_gb():
        _, out["big_untiled_s"] = _timed(model.upscale, big_image[None], None, 0.0)
    else:
        out["big_untiled"] = (f"skipped: would need ~{estimate:.0f} GB "
                              f"({_available_gb():.0f} GB available)")
    return out


# -- driver -----------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", type=int, default=2048, help="side of the large input, px")
    parser.add_argument("--stages", default="6,7", help="stages of the paper ladder to time")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)   # STAGE:PART
    args = parser.parse_args()
    if args.worker is not None:
        stage, part = args.worker.split(":")
        print(json.dumps(run_worker(int(stage), args.big, part)))
        return 0

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": REPO}
    started, stages = time.perf_counter(), []
    for stage in (int(s) for s in args.stages.split(",")):
        r = {}
        for part in ("tiled", "untiled"):
            print(f"stage {stage}, {part} …", flush=True)
            proc = subprocess.run([sys.executable, os.path.abspath(__file__),
                                   f"--worker={stage}:{part}", f"--big={args.big}"],
                                  cwd=REPO, env=env, capture_output=True, text=True)
            if proc.returncode:
                print(proc.stderr[-3000:], file=sys.stderr)
                return 1
            r.update(json.loads(proc.stdout.strip().splitlines()[-1]))
        stages.append(r)
        c, b = r["compare"], r["big"]
        print(f"  {r['label']}: {r['sec_per_image_batch1']:.2f} s/image "
              f"({r['input_size']}→{r['input_size'] * r['scale']}), batch 4 "
              f"{r['sec_per_image_batch4']:.2f} s/image", flush=True)
        print(f"  {c['input']}² untiled {c['untiled_s']:.1f} s, tiled {c['tiled_s']:.1f} s "
              f"(×{c['tiled_over_untiled']:.2f}; |diff| max {c['max_abs_diff']:.1f}, "
              f"mean {c['mean_abs_diff']:.3f}); untiled peak "
              f"{r['memory']['bytes_per_output_px']:.0f} B per output px", flush=True)
        untiled = (f"{r['big_untiled_s']:.1f} s" if "big_untiled_s" in r else r["big_untiled"])
        print(f"  {b['input']}² → {b['output']}²: tiled {b['tiled_s']:.1f} s "
              f"({b['tiles']} tiles of {r['tile']}, peak {b['tiled_peak_gb']:.1f} GB); "
              f"untiled {untiled}", flush=True)
    result = {
        "machine": host(),
        "flagfile": FLAGFILE, "weights": "random (seed 0)", "big_input": args.big,
        "total_s": time.perf_counter() - started, "stages": stages,
    }
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, "enhance_bench.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {path} ({result['total_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

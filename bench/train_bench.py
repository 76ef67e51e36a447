"""Training-step throughput, memory and FLOPs, measured in one run.

    python bench/train_bench.py                      # issue-2 table: quickstart + faces configs
    python bench/train_bench.py --paper              # + the paper config, per stage (slow on CPU)
    python bench/train_bench.py --paper --only_paper --paper_stages=0,1,2

Part 1 (configs/quickstart.flags, configs/faces_x4_cpu.flags): images/s of
``train_step`` at every stage (mid-fade, so both fade paths run) for
default-graph, default-eager, default-XLA and mirrored-graph (2 logical CPUs;
on a GPU host, all GPUs) — ratios are printed against default-graph.

Part 2 (configs/ffhq_x8_1024.flags, issue 6): per stage, seconds per kimg,
peak memory, train-step FLOPs per image counted by TensorFlow's profiler on the
traced step graph (forward, backward, R1's double backward and the Adam
updates' elementwise ops are all in it), and the FLOP/s of one large plain
conv2d on the same device as the practical peak; efficiency = model FLOP/s /
conv FLOP/s; projected wall time of the paper's schedule = Σ kimg × s/kimg.

Every measurement runs in its own subprocess (clean peak memory, its own device
setup). Inputs are synthetic tensors, so the data pipeline is not measured here
(see bench/data_bench.py). Results go to bench/results/train_bench*.json with the
machine's core count and device.
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

from stage_setup import host, load_config, stage_model  # noqa: E402  (bench/ is on sys.path)


# -- worker: one measurement ----------------------------------------------------
def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _device_peak_mb(tf) -> float | None:
    if not tf.config.list_physical_devices("GPU"):
        return None
    return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20


def _count_flops(tf, model, lr, hr) -> int:
    """Float ops of one train step, from TF's profiler over the traced graph."""
    step = tf.function(lambda a, b: model.train_step((a, b)))
    graph = step.get_concrete_function(tf.TensorSpec(lr.shape, lr.dtype),
                                       tf.TensorSpec(hr.shape, hr.dtype)).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return int(tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops)


def run_worker(spec: dict) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if spec["strategy"] == "mirrored" and not tf.config.list_physical_devices("GPU"):
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from pan_tf import trainer as trainer_lib

    config = load_config(spec["flagfile"], spec.get("overrides", []))
    strategy = trainer_lib.make_strategy(spec["strategy"])
    stage = spec["stage"]
    model, data, phase, (lr, hr) = stage_model(config, stage, spec["mode"], strategy)
    batch, res, r_in = phase.batch, phase.resolution, phase.input_resolution

    t0 = time.perf_counter()
    model.fit(data, steps_per_epoch=spec["warmup"], epochs=1, verbose=0, shuffle=False)
    warmup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.fit(data, steps_per_epoch=spec["steps"], epochs=1, verbose=0, shuffle=False)
    seconds = time.perf_counter() - t0
    out = {
        **spec, "resolution": res, "input_resolution": r_in, "batch": batch,
        "replicas": strategy.num_replicas_in_sync,
        "images_per_s": spec["steps"] * batch / seconds,
        "sec_per_kimg": seconds / (spec["steps"] * batch) * 1000.0,
        "warmup_s": warmup_s,
        "peak_rss_mb": _peak_rss_mb(),
        "peak_device_mb": _device_peak_mb(tf),
        "stage_kimg": (phase.stage_end - phase.stage_start) / 1000.0,
    }
    if spec.get("flops"):
        out["train_flops_per_image"] = _count_flops(tf, model, lr, hr) / batch
    return out


def conv_peak(seconds: float = 3.0) -> dict:
    """FLOP/s of one large plain conv2d (NHWC, 3×3, 256→256, 64×64, batch 16)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    x = tf.random.normal([16, 64, 64, 256])
    w = tf.random.normal([3, 3, 256, 256])
    conv = tf.function(lambda a: tf.nn.conv2d(a, w, 1, "SAME"))
    conv(x).numpy()
    flops = 2 * 16 * 64 * 64 * 3 * 3 * 256 * 256
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n < 3:
        y = conv(x)
        n += 1
    y.numpy()
    elapsed = time.perf_counter() - t0
    return {"conv_flops": flops, "conv_flop_per_s": flops * n / elapsed}


# -- driver -----------------------------------------------------------------------
def measure(spec: dict, timeout: float) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2"}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**spec, "error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {**spec, "error": tail[:300]}
    return json.loads(lines[-1])


def machine() -> dict:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    details = tf.config.experimental.get_device_details(gpus[0]) if gpus else {}
    return {**host(), "device": details.get("device_name", "CPU"), "tensorflow": tf.__version__}


def part1(args) -> list[dict]:
    rows = []
    configs = {"quickstart": "configs/quickstart.flags", "faces": "configs/faces_x4_cpu.flags"}
    variants = [("default", "graph"), ("default", "eager"), ("default", "xla"), ("mirrored", "graph")]
    for name, flagfile in configs.items():
        config = load_config(flagfile, [])
        for stage in range(config.model.num_stages):
            for strategy, mode in variants:
                steps = max(2, args.steps // (4 if mode == "eager" else 1))
                spec = {"config": name, "flagfile": flagfile, "stage": stage,
                        "strategy": strategy, "mode": mode, "steps": steps, "warmup": 2}
                row = measure(spec, args.timeout)
                rows.append(row)
                _print_row(row)
    return rows


def _print_row(row: dict) -> None:
    if "error" in row:
        print(f"  {row['config']:>10} stage {row['stage']} {row['strategy']}/{row['mode']}: "
              f"ERROR {row['error']}", flush=True)
        return
    print(f"  {row['config']:>10} stage {row['stage']} ({row['input_resolution']}→"
          f"{row['resolution']}, batch {row['batch']}) {row['strategy']:>8}/{row['mode']:<5} "
          f"{row['images_per_s']:9.1f} img/s  {row['sec_per_kimg']:9.1f} s/kimg  "
          f"peak {row['peak_rss_mb']:7.0f} MB", flush=True)


def summarize_part1(rows: list[dict]) -> None:
    print("\nratios vs default/graph (same config, same stage):")
    base = {(r["config"], r["stage"]): r for r in rows
            if r.get("mode") == "graph" and r.get("strategy") == "default" and "error" not in r}
    for r in rows:
        key = (r["config"], r["stage"])
        if "error" in r or key not in base or r is base[key]:
            continue
        ratio = r["images_per_s"] / base[key]["images_per_s"]
        r["ratio_vs_default_graph"] = ratio
        print(f"  {r['config']:>10} stage {r['stage']} {r['strategy']}/{r['mode']}: {ratio:5.2f}×")


def part2(args) -> dict:
    flagfile = "configs/ffhq_x8_1024.flags"
    config = load_config(flagfile, [])
    stages = ([int(s) for s in args.paper_stages.split(",")] if args.paper_stages
              else list(range(config.model.num_stages)))
    peak = conv_peak()
    print(f"plain conv2d peak: {peak['conv_flop_per_s'] / 1e9:.1f} GFLOP/s")
    rows, total_s = [], 0.0
    for stage in stages:
        spec = {"config": "paper", "flagfile": flagfile, "stage": stage, "strategy": "default",
                "mode": args.paper_mode, "steps": args.paper_steps, "warmup": 1, "flops": True,
                "overrides": [f"--mixed_precision={args.mixed_precision}"]}
        row = measure(spec, args.timeout)
        rows.append(row)
        if "error" in row:
            _print_row(row)
            continue
        model_flops = row["train_flops_per_image"] * row["images_per_s"]
        row["model_flop_per_s"] = model_flops
        row["efficiency"] = model_flops / peak["conv_flop_per_s"]
        row["projected_stage_s"] = row["stage_kimg"] * row["sec_per_kimg"]
        total_s += row["projected_stage_s"]
        print(f"  stage {stage} ({row['input_resolution']}→{row['resolution']}, batch "
              f"{row['batch']}): {row['sec_per_kimg']:10.1f} s/kimg, peak "
              f"{row['peak_device_mb'] or row['peak_rss_mb']:8.0f} MB, "
              f"{row['train_flops_per_image'] / 1e9:8.2f} GFLOP/img/step, "
              f"efficiency {row['efficiency']:.2f}, stage {row['stage_kimg']:.0f} kimg → "
              f"{row['projected_stage_s'] / 86400:8.2f} days", flush=True)
    complete = len(rows) == config.model.num_stages and not any("error" in r for r in rows)
    print(f"projected paper schedule on this machine: {total_s / 86400:.1f} days"
          + ("" if complete else " (partial: only the stages measured)"))
    return {"conv_peak": peak, "stages": rows, "projected_total_s": total_s,
            "projected_total_days": total_s / 86400, "complete": complete,
            "mixed_precision": args.mixed_precision, "mode": args.paper_mode}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per measurement")
    parser.add_argument("--paper", action="store_true", help="also measure the paper config")
    parser.add_argument("--only_paper", action="store_true", help="skip the small configs")
    parser.add_argument("--paper_stages", default="", help="comma-separated stage indices")
    parser.add_argument("--paper_steps", type=int, default=2)
    parser.add_argument("--paper_mode", default="graph", choices=["graph", "xla"])
    parser.add_argument("--mixed_precision", default="none", choices=["none", "bf16", "fp16"])
    parser.add_argument("--out", default="", help="result JSON (default bench/results/...)")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_worker(json.loads(args.worker))))
        return
    result = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M")}
    print(f"machine: {result['machine']}")
    if not args.only_paper:
        result["part1"] = part1(args)
        summarize_part1(result["part1"])
    if args.paper or args.only_paper:
        result["paper"] = part2(args)
    os.makedirs(RESULTS, exist_ok=True)
    suffix = "_paper" if args.only_paper else ""
    device = result["machine"]["device"].replace(" ", "_")
    out = args.out or os.path.join(RESULTS, f"train_bench{suffix}_{device}.json")
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

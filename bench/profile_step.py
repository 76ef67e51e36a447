"""Where a train step's time goes: TensorFlow's profiler, summarised per op type.

    python bench/profile_step.py                       # faces config, 64 px stage
    python bench/profile_step.py --flagfile=configs/ffhq_x8_1024.flags --stage=3 --steps=2

Runs ``steps`` steps of ``PAN.train_step`` on synthetic tensors (graph mode, then
XLA unless ``--modes`` says otherwise) under ``tf.profiler``, converts the trace
(the raw XSpace: kernel events of the executor's compute threads), and prints the op types that
take the most device self-time, grouped into convolutions (forward and the two
backward kinds), elementwise/activation ops, data movement, and the rest. It
also times the same steps with and without the Python-side Keras loop (fit() calls of
n and 2n steps, so the per-call setup and the per-step cost separate), which shows how
much per-step Python overhead costs. Writes
bench/results/profile_<config>_stage<k>.json.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import tensorflow as tf  # noqa: E402
from stage_setup import load_config, stage_model  # noqa: E402

GROUPS = {
    "conv forward": ("Conv2D", "_FusedConv2D", "Conv2DWithBias", "DepthwiseConv2dNative"),
    "conv backward (input)": ("Conv2DBackpropInput",),
    "conv backward (filter)": ("Conv2DBackpropFilter", "Conv2DBackpropFilterWithBias"),
    "matmul": ("MatMul", "_FusedMatMul", "BatchMatMulV2"),
    "elementwise / activation": (
        "LeakyRelu", "LeakyReluGrad", "AddV2", "Add", "Mul", "Sub", "RealDiv", "BiasAdd",
        "BiasAddGrad", "Square", "Sqrt", "Softplus", "Sigmoid", "Cast", "Neg", "Maximum",
        "SquaredDifference", "AddN", "ResourceApplyAdam", "AssignVariableOp", "Pow",
        "_MklLeakyRelu", "_FusedBatchNormEx"),
    "reductions": ("Sum", "Mean", "Max", "AvgPool", "AvgPoolGrad"),
    "data movement": ("ConcatV2", "Slice", "StridedSlice", "Tile", "Reshape", "Transpose",
                      "Pad", "GatherV2", "Identity", "StridedSliceGrad", "BroadcastTo",
                      "ResizeNearestNeighbor", "ResizeNearestNeighborGrad", "ZerosLike"),
    "random": ("StatelessRandomNormalV2", "StatelessRandomGetKeyCounter"),
    "XLA fused elementwise": ("XLA fusion",),
}


HLO_NAME = re.compile(r"^([A-Za-z][\w\-]*)\.\d+$")   # an XLA thunk: convolution.20, add_fusion.3


def _hlo_kind(base: str) -> str:
    """An XLA instruction's base name → a TF-like op type that GROUPS knows."""
    if base.startswith("convolution-base-dilated"):
        return "Conv2DBackpropInput"                      # lhs-dilated conv = input gradient
    if base.startswith("convolution-window-dilated"):
        return "Conv2DBackpropFilter"                     # window-dilated conv = filter gradient
    if base.startswith(("convolution", "Conv2D")):
        return "Conv2D"
    if "fusion" in base:
        return "XLA fusion"
    if base.startswith(("dot", "MatMul")):
        return "MatMul"
    if base.startswith("reduce"):
        return "Sum"
    if base.startswith(("copy", "transpose", "concatenate", "slice", "pad", "broadcast")):
        return "Transpose"
    return "XLA " + base


def op_table(logdir: str) -> list[dict]:
    """Per op type: kernel time (µs, summed over threads) and count, from the raw XSpace.

    The pip TF build has no ``tensorflow_stats`` converter, so this reads the trace
    itself: the executor records one event per TF kernel named ``op_name:OpType``,
    and XLA records one per compiled instruction (``convolution.20``,
    ``add_fusion.3``); executor/runtime bookkeeping (``A::B`` names) is skipped.
    """
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    by_type = {}
    for path in glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True):
        space = xplane_pb2.XSpace()
        with open(path, "rb") as f:
            space.ParseFromString(f.read())
        for plane in space.planes:
            names = {k: m.name for k, m in plane.event_metadata.items()}
            for line in plane.lines:
                if line.name == "python" or line.name.startswith("tf_data"):
                    continue
                for event in line.events:
                    name = names.get(event.metadata_id, "")
                    hlo = HLO_NAME.match(name)
                    if hlo:
                        kind = _hlo_kind(hlo.group(1))
                    elif ":" in name and "::" not in name:
                        kind = name.rsplit(":", 1)[1].removeprefix("_Mkl").removeprefix("Native")
                    else:
                        continue
                    entry = by_type.setdefault(kind, {"type": kind, "self_us": 0.0, "count": 0})
                    entry["self_us"] += event.duration_ps / 1e6
                    entry["count"] += 1
    if not by_type:
        raise RuntimeError(f"no kernel events in the trace under {logdir}")
    return sorted(by_type.values(), key=lambda e: -e["self_us"])


def summarize(rows: list[dict]) -> dict:
    total = sum(r["self_us"] for r in rows) or 1.0
    groups = {name: 0.0 for name in GROUPS}
    groups["other"] = 0.0
    for r in rows:
        group = next((g for g, kinds in GROUPS.items() if r["type"] in kinds), "other")
        groups[group] += r["self_us"]
    return {g: t / total for g, t in groups.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flagfile", default="configs/faces_x4_cpu.flags")
    parser.add_argument("--stage", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--modes", default="graph,xla")
    args = parser.parse_args()
    result = {"flagfile": args.flagfile, "stage": args.stage, "modes": {}}
    for mode in args.modes.split(","):
        model, data, phase, _ = stage_model(load_config(args.flagfile), args.stage, mode)
        model.fit(data, steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)   # trace
        fit_time = {}
        for n in (args.steps, 2 * args.steps):  # a fit() call = setup + n × step
            t0 = time.perf_counter()
            model.fit(data, steps_per_epoch=n, epochs=1, verbose=0, shuffle=False)
            fit_time[n] = time.perf_counter() - t0
        fit_s = (fit_time[2 * args.steps] - fit_time[args.steps]) / args.steps
        setup_s = fit_time[args.steps] - args.steps * fit_s
        step_fn, it = model.make_train_function(), iter(data)
        t0 = time.perf_counter()
        for _ in range(args.steps):  # the compiled step alone, no Keras callbacks/progress
            logs = step_fn(it)
        float(logs["g_loss"])
        bare_s = (time.perf_counter() - t0) / args.steps
        logdir = tempfile.mkdtemp(prefix="pan_profile_")
        tf.profiler.experimental.start(logdir)
        for _ in range(args.steps):
            logs = step_fn(it)
        float(logs["g_loss"])
        tf.profiler.experimental.stop()
        rows = op_table(logdir)
        shares = summarize(rows)
        result["modes"][mode] = {"batch": phase.batch, "resolution": phase.resolution,
                                 "sec_per_step_fit": fit_s, "sec_per_step_bare": bare_s,
                                 "fit_call_setup_s": setup_s,
                                 "python_overhead": 1 - bare_s / fit_s,
                                 "shares": shares, "top_ops": rows[:15]}
        print(f"\n{mode}: {fit_s * 1000:.0f} ms/step in fit, {bare_s * 1000:.0f} ms/step bare "
              f"(Keras per-step overhead {100 * (1 - bare_s / fit_s):.1f}%; "
              f"each fit() call also costs {setup_s:.2f} s of setup)")
        for group, share in sorted(shares.items(), key=lambda kv: -kv[1]):
            print(f"  {group:<26} {100 * share:5.1f}%")
        print("  top op types: " + ", ".join(
            f"{r['type']} {100 * r['self_us'] / max(1, sum(x['self_us'] for x in rows)):.0f}%"
            for r in rows[:6]))
    name = os.path.splitext(os.path.basename(args.flagfile))[0]
    out = os.path.join(REPO, "bench", "results", f"profile_{name}_stage{args.stage}.json")
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

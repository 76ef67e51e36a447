"""Data-pipeline throughput against training throughput, measured in one run.

    python bench/data_bench.py [--faces=../shared/data/faces256] [--seconds=6]

For HR 64 (configs/faces_x4_cpu.flags, last stage) and HR 256 / 1024
(configs/ffhq_x8_1024.flags, the stages whose output is 256 and 1024): images/s
of the full pipeline the trainer builds for that stage (decode → flip → degrade
→ downsample → batch, ``data.make_dataset``) for each distinct path:

  cached           prepared HR images in RAM (folder or TFRecord source alike)
  folder_decode    one PNG file read and decoded per example (cache_mb=0)
  tfrecord_stream  TFRecord shards streamed and decoded (cache_mb=0)

and the same run's ``train_step`` images/s at that stage (``PAN.fit`` on
synthetic tensors after a warm-up, the config's batch). Prints pipeline/train
ratios (the target is ≥ 2×, issue 3) and writes bench/results/data_bench.json
with the machine's core count. Inputs: the faces in ``--faces`` resized to the HR
size (PNG files, then ``pan_tf.prepare`` shards) in a temporary folder; the
bench skips cleanly when the folder is absent.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
RESULTS = os.path.join(REPO, "bench", "results", "data_bench.json")
# (HR resolution measured, flagfile, faces used). The paper config's HR is 1024 for both.
CASES = ((64, "configs/faces_x4_cpu.flags", 300),
         (256, "configs/ffhq_x8_1024.flags", 48),
         (1024, "configs/ffhq_x8_1024.flags", 48))

from stage_setup import host, load_config  # noqa: E402  (bench/ is on sys.path)


def write_resized(faces: list[str], folder: str, size: int) -> None:
    """The faces as size×size PNG files (like a dataset stored at the HR size)."""
    import tensorflow as tf

    from pan_tf import data as data_lib

    os.makedirs(folder, exist_ok=True)
    for path in faces:
        hr, _ = data_lib.check_file(path, size, 1)
        tf.io.write_file(os.path.join(folder, os.path.basename(path)), tf.io.encode_png(hr))


def pipeline_rate(dataset, batch: int, seconds: float) -> float:
    """Images/s of a batched dataset after two warm-up batches."""
    iterator = iter(dataset)
    next(iterator), next(iterator)
    start, images = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        next(iterator)
        images += batch
    return images / (time.perf_counter() - start)


def has_python_ops(dataset) -> bool:
    """True if the dataset graph calls back into Python (py_function / numpy_function)."""
    graph = dataset._as_serialized_graph().numpy()  # pylint: disable=protected-access
    return b"PyFunc" in graph


def train_rate(config, stage: int, batch: int, warmup: int, steps: int) -> float:
    """Images/s of PAN.fit at ``stage`` on synthetic tensors."""
    import keras
    import tensorflow as tf

    from pan_tf.gan import PAN
    from pan_tf.trainer import make_optimizers

    keras.utils.set_random_seed(0)
    model = PAN(config)
    res = config.model.stage_resolutions[stage]
    r_in = config.model.input_resolution(stage)
    optimizers = make_optimizers(model, config.train, config.schedule.learning_rate_at(res))
    model.set_stage(stage, batch)
    model.compile(*optimizers, jit_compile=False)
    lr = tf.random.uniform([batch, r_in, r_in, 3], -1, 1)
    hr = tf.random.uniform([batch, res, res, 3], -1, 1)
    data = tf.data.Dataset.from_tensors((lr, hr)).repeat()
    model.fit(data, steps_per_epoch=warmup, epochs=1, verbose=0, shuffle=False)
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    return steps * batch / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", default=os.path.join(REPO, "..", "shared", "data", "faces256"))
    parser.add_argument("--seconds", type=float, default=5.0, help="timing per pipeline path")
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args()
    faces = sorted(glob.glob(os.path.join(args.faces, "*.png")))
    if not faces:
        print(f"skipped: no faces in {args.faces} (see DESIGN §4)")
        return 0

    import tensorflow as tf
    from absl import logging

    from pan_tf import data as data_lib
    from pan_tf import prepare as prepare_lib

    logging.set_verbosity(logging.ERROR)
    results, python_ops = [], False
    with tempfile.TemporaryDirectory() as tmp:
        reports = {}
        for res, flagfile, count in CASES:
            config = load_config(flagfile)
            model, hr_size = config.model, config.model.hr_size
            stage = model.stage_resolutions.index(res)
            batch = config.schedule.batch_at(res)
            r_in = model.input_resolution(stage)
            if hr_size not in reports:                       # shared by the two paper stages
                folder, prefix = os.path.join(tmp, f"png{hr_size}"), os.path.join(tmp, f"rec{hr_size}")
                write_resized(faces[:count], folder, hr_size)
                prepare_lib.prepare(folder, prefix, hr_size, shards=4, progress=False)
                reports[hr_size] = {
                    "cached": data_lib.scan(folder, hr_size, cache_mb=4096),
                    "folder_decode": data_lib.scan(folder, hr_size, cache_mb=0),
                    "tfrecord_stream": data_lib.scan(prefix, hr_size, cache_mb=0),
                }
            rates = {}
            for path, report in reports[hr_size].items():
                ds = data_lib.make_dataset(report, model, config.data, res, r_in, batch,
                                           start_index=0, seed=0)
                python_ops |= has_python_ops(ds)
                rates[path] = pipeline_rate(ds, batch, args.seconds)
                del ds
            steps = {64: (2, 10), 256: (1, 2), 1024: (1, 1)}[res]  # (warm-up, timed)
            train = train_rate(config, stage, batch, *steps)
            row = {"hr": res, "config": flagfile, "hr_size": hr_size, "stage": stage,
                   "input_resolution": r_in, "batch": batch, "images": count,
                   "pipeline_images_per_s": {k: round(v, 2) for k, v in rates.items()},
                   "train_images_per_s": round(train, 3),
                   "ratio": {k: round(v / train, 2) for k, v in rates.items()}}
            results.append(row)
            print(f"HR {res:4d} ({os.path.basename(flagfile)} stage {stage}, {r_in}->{res}, "
                  f"batch {batch}): train {train:7.2f} img/s | "
                  + " | ".join(f"{k} {v:7.1f} img/s = {v / train:6.1f}x" for k, v in rates.items()),
                  flush=True)

    summary = {
        "machine": {**host(), "tensorflow": tf.__version__},
        "python_ops_on_hot_path": python_ops,
        "min_ratio": min(min(r["ratio"].values()) for r in results),
        "results": results,
    }
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(summary, f, indent=2)
    print(f"min pipeline/train ratio {summary['min_ratio']}x (target ≥ 2x); "
          f"py_function on the hot path: {python_ops}; wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

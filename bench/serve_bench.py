"""Serving benchmark: Keras G_ema vs the exported SavedModel (tensor and bytes signatures).

    python bench/serve_bench.py [--flagfile=configs/faces_x4_cpu.flags] [--seconds=60]

One run measures, at batch 1 and 8 and the last stage of the configured ladder
(random weights; speed does not depend on them):

* ``keras``: ``G_ema(x, stage)`` wrapped in ``tf.function``, float32 [-1, 1] in and
  out (the network alone, as a Python user would call it);
* ``keras_eager``: the same call without ``tf.function`` (for reference);
* ``savedmodel_tensor``: ``serving_default`` of the loaded SavedModel, uint8 in/out
  (adds conversion, padding, checks and quantisation);
* ``savedmodel_bytes``: ``enhance_bytes``, PNG in/out (adds decode + encode, one
  image at a time);

and prints images/s, p50/p95 latency and the SavedModel/Keras throughput ratio
(target ≥ 0.9). Timed calls of all variants are interleaved in rounds, so load
from other processes on the machine hits them alike; ratios are more telling
than absolute numbers. It also reports the REST request size for a 128×128
input as JSON ints vs base64 PNG. Results go to bench/results/serve_bench.json.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from pan_tf import export as export_lib  # noqa: E402
from pan_tf import flags as flags_lib  # noqa: E402
from pan_tf.generator import inference_noise, random_generator  # noqa: E402
from serving import client  # noqa: E402
from stage_setup import host  # noqa: E402  (bench/ is on sys.path)

DEFAULT_FLAGFILE = os.path.join(REPO, "configs", "faces_x4_cpu.flags")
FACES = os.path.join(os.path.dirname(REPO), "shared", "data", "faces256")

flags.DEFINE_float("seconds", 60.0, "Timing budget for all variants together, seconds.")
flags.DEFINE_list("batches", ["1", "8"], "Batch sizes to time.")
flags.DEFINE_string("out", os.path.join(REPO, "bench", "results", "serve_bench.json"),
                    "Where the JSON results go ('' = do not write).")
FLAGS = flags.FLAGS


def _photo(size: int) -> tuple[np.ndarray, str]:
    """A real face resized to size×size if ../shared/data/faces256 exists, else a synthetic one."""
    if os.path.isdir(FACES):
        names = sorted(n for n in os.listdir(FACES) if n.lower().endswith((".png", ".jpg")))
        if names:
            data = tf.io.read_file(os.path.join(FACES, names[0]))
            image = tf.io.decode_image(data, channels=3, expand_animations=False)
            image = tf.image.resize(image[None], [size, size], method="area")[0]
            return tf.cast(tf.round(image), tf.uint8).numpy(), f"faces256/{names[0]}"
    rng = np.random.default_rng(0)
    coarse = rng.uniform(0, 255, (4, 4, 3)).astype(np.float32)
    image = tf.image.resize(coarse[None], [size, size], method="bicubic")[0].numpy()
    image += rng.normal(0, 8, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), "synthetic"


def _request_sizes(size: int = 128) -> dict:
    image, source = _photo(size)
    png = tf.io.encode_png(image).numpy()
    jpeg = tf.io.encode_jpeg(image, quality=95).numpy()
    compact = {"separators": (",", ":")}
    return {
        "image": f"{size}x{size} RGB ({source})",
        "json_ints_bytes": len(json.dumps(client.tensor_request([image]))),
        "json_ints_compact_bytes": len(json.dumps(client.tensor_request([image]), **compact)),
        "b64_png_bytes": len(json.dumps(client.bytes_request([png]))),
        "b64_jpeg_q95_bytes": len(json.dumps(client.bytes_request([jpeg]))),
        "png_file_bytes": len(png),
    }


def _stats(latencies: list[float], batch: int) -> dict:
    ms = np.asarray(latencies) * 1000.0
    return {"calls": len(ms), "images_per_s": batch * len(ms) / (ms.sum() / 1000.0),
            "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95))}


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # no SavedModel-writing chatter
    tf.get_logger().setLevel("ERROR")
    config = flags_lib.config_from_flags()
    model = config.model
    stage = model.num_stages - 1
    r_in, scale = model.input_resolution(stage), model.stage_scale(stage)
    print(f"model: lr {r_in} -> {r_in * scale} (x{scale}), fmap_base {model.fmap_base}, "
          f"fmap_max {model.fmap_max}, stage {stage}; random weights")

    g_ema = random_generator(model, seed=0, noise_strength=0.1)
    workdir = tempfile.mkdtemp(prefix="serve_bench-")
    path = export_lib.export_stage(g_ema, config, stage, workdir, images_seen=0)
    loaded = tf.saved_model.load(path)
    serve = loaded.signatures[export_lib.TENSOR_SIGNATURE]
    serve_bytes = loaded.signatures[export_lib.BYTES_SIGNATURE]
    keras_fn = tf.function(lambda x: g_ema(x, stage=stage, noise=inference_noise()))

    rng = np.random.default_rng(0)
    variants = {}
    for batch in (int(b) for b in FLAGS.batches):
        images = np.stack([_photo(r_in)[0]] * batch)
        images[1:] = rng.integers(0, 256, images[1:].shape, dtype=np.uint8)
        floats = tf.constant(images / 255.0 * 2.0 - 1.0, tf.float32)
        uint8 = tf.constant(images)
        pngs = tf.constant([tf.io.encode_png(im).numpy() for im in images])
        variants[("keras", batch)] = lambda x=floats: keras_fn(x).numpy()
        variants[("keras_eager", batch)] = lambda x=floats: g_ema(
            x, stage=stage, noise=inference_noise()).numpy()
        variants[("savedmodel_tensor", batch)] = lambda x=uint8: serve(images=x)[
            "sr_images"].numpy()
        variants[("savedmodel_bytes", batch)] = lambda x=pngs: serve_bytes(image_bytes=x)[
            "sr_image_bytes"].numpy()

    for fn in variants.values():  # trace, and warm up caches and thread pools
        for _ in range(3):
            fn()
    latencies = {key: [] for key in variants}
    deadline = time.perf_counter() + FLAGS.seconds
    rounds = 0
    while rounds < 3 or time.perf_counter() < deadline:
        for key, fn in variants.items():
            for _ in range(5 if key[0] != "keras_eager" else 2):
                start = time.perf_counter()
                fn()
                latencies[key].append(time.perf_counter() - start)
        rounds += 1

    results = {f"{name}/batch{batch}": _stats(times, batch)
               for (name, batch), times in latencies.items()}
    ratios = {}
    for batch in (int(b) for b in FLAGS.batches):
        base = results[f"keras/batch{batch}"]["images_per_s"]
        for name in ("savedmodel_tensor", "savedmodel_bytes", "keras_eager"):
            ratios[f"{name}_over_keras/batch{batch}"] = (
                results[f"{name}/batch{batch}"]["images_per_s"] / base)
    sizes = _request_sizes(128)

    print(f"\n{'variant':28s} {'images/s':>10s} {'p50 ms':>9s} {'p95 ms':>9s} {'calls':>6s}")
    for key, s in results.items():
        print(f"{key:28s} {s['images_per_s']:10.1f} {s['p50_ms']:9.2f} {s['p95_ms']:9.2f} "
              f"{s['calls']:6d}")
    print("\nthroughput ratios (target for savedmodel_tensor: >= 0.90)")
    for key, value in ratios.items():
        print(f"  {key:40s} {value:.3f}")
    print(f"\nREST request for one {sizes['image']}:")
    print(f"  JSON ints {sizes['json_ints_bytes']:,} B "
          f"(compact {sizes['json_ints_compact_bytes']:,} B); "
          f"base64 PNG {sizes['b64_png_bytes']:,} B "
          f"({sizes['json_ints_bytes'] / sizes['b64_png_bytes']:.1f}x smaller); "
          f"base64 JPEG q95 {sizes['b64_jpeg_q95_bytes']:,} B")

    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {**host(), "tensorflow": tf.__version__},     # load average at the end
        "model": {"stage": stage, "input": r_in, "output": r_in * scale, "scale": scale,
                  "fmap_base": model.fmap_base, "fmap_max": model.fmap_max,
                  "weights": "random", "parameters": int(sum(np.prod(w.shape)
                                                             for w in g_ema.weights))},
        "timing": {"seconds_budget": FLAGS.seconds, "rounds": rounds, "interleaved": True},
        "results": results,
        "ratios": ratios,
        "rest_request_128": sizes,
    }
    if FLAGS.out:
        os.makedirs(os.path.dirname(FLAGS.out), exist_ok=True)
        with open(FLAGS.out, "w") as f:
            json.dump(report, f, indent=2)
        print(f"\nwrote {FLAGS.out}")


if __name__ == "__main__":
    flags_lib.define_flags()
    if not any(a.startswith("--flagfile") for a in sys.argv[1:]):
        sys.argv.insert(1, f"--flagfile={DEFAULT_FLAGFILE}")
    app.run(main)

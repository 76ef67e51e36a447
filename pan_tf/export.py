"""Export ``G_ema`` as SavedModels for TF Serving and ``tf.saved_model.load`` (DESIGN §6).

Layout written under ``WORKDIR/export/``::

    models.config                 model_config_list for tensorflow_model_server
    <model_name>/<version>/       one SavedModel per finished stage
        saved_model.pb, variables/
        assets/stage.json         what this version is (resolution, scale, images, config)

Versions and labels. The version is the stage number (0, 1, …): TF Serving reads
every all-digit directory name as an int64 version (0 included) and serves the
highest by default, which is the last stage trained, i.e. the full SR factor.
Each version also gets a label: ``x2``/``x4``/``x8`` for super-resolution stages
(output/input > 1), ``r8``/``r16``/… for restoration stages (r×r → r×r). Labels
are unique because every stage has its own output resolution.

Crash safety. A version is saved to a hidden sibling (``.tmp-<version>-<id>``,
never all digits, so TF Serving ignores it), then renamed into place. Replacing
an existing version renames the old one aside (``.old-<version>-<id>``) first and
puts it back if the second rename fails; a leftover from a killed process is
repaired (or removed) by the next export. ``models.config`` is written to a temp
file and renamed too. On object stores (``gs://``) renames are copies, not
atomic: export locally and copy finished versions instead.

The exported graph (core TF ops only, so tensorflow_model_server runs it):

* ``serving_default``: ``images`` uint8 [N,H,W,3] → ``sr_images`` uint8 [N,sH,sW,3].
* ``enhance_bytes``: ``image_bytes`` string [N] (PNG/JPEG/WebP/BMP/GIF) →
  ``sr_image_bytes`` PNG string [N]. Names end in ``_bytes`` so TF Serving's REST
  API base64-codes them; the graph itself never sees base64. Images in one
  request may differ in size, so each one is decoded, enhanced and encoded on
  its own inside ``tf.map_fn`` (one image in flight: memory stays bounded).
* ``upscale(images, seed, noise_strength)``: a plain ``tf.function`` on the
  loaded object for Python users, with the noise seed and strength as inputs.

Any H, W works: the encoder halves the input log2(r_in / bottleneck) times, so
the graph mirror-pads the bottom/right edges to a multiple of r_in / bottleneck
(reflection; an edge one pixel wide is repeated) and crops the output back to
s·H × s·W. Pixels map to [-1, 1] as in training (``x/255·2 − 1``); outputs are
rounded and clipped to uint8. Noise comes from the fixed inference seed, one
map per layer broadcast over the batch, so an image's output does not depend
on its batch. Empty inputs, undecodable bytes and images over
``run.max_input_pixels`` (per image, H·W, checked after decoding) fail with an
``InvalidArgumentError`` that names the problem. Wrong dtypes are refused by the
signatures themselves; TF Serving checks no shapes, so a wrong rank or channel
count meets an ``EnsureShape`` at the graph's entry.

Keras 3 variables wrap tf.Variables. The SavedModel tracks the wrapped
tf.Variables that the traced functions capture (not the Keras wrappers), so the
restore op that graph-mode loaders run (tensorflow_model_server, TF1 sessions)
initialises exactly the variables the graph reads.

``python -m pan_tf.export --workdir=DIR [--stage=N]`` re-exports ``G_ema`` from the
workdir's latest checkpoint (by default every stage that checkpoint finished).
``--consistency=backproject_smooth --model_name=NAME`` (beyond the paper) exports the
same weights with the back-projection layer in the graph, as ``export/NAME/`` next to
the run's own versions: a model trained without the layer gets it at inference only.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import uuid

import tensorflow as tf

from pan_tf import checkpoint as checkpoint_lib
from pan_tf.config import CONSISTENCY, Config, ConfigError, ModelConfig
from pan_tf.generator import INFERENCE_NOISE_SEED, Generator, NoiseSpec, inference_noise

EXPORT_DIR = "export"                  # under the workdir
MODELS_CONFIG = "models.config"        # under EXPORT_DIR
STAGE_INFO = "stage.json"              # under <version>/assets/
SERVING_ROOT = "/models"               # where the official serving image expects models
TENSOR_SIGNATURE = "serving_default"
BYTES_SIGNATURE = "enhance_bytes"
_TMP, _OLD = ".tmp-", ".old-"          # sibling prefixes; never parse as versions


class ExportError(ValueError):
    """The export cannot run; the message says what to fix (one line)."""


# -- what a stage is ---------------------------------------------------------------
def stage_label(model: ModelConfig, stage: int) -> str:
    """``x<s>`` for a super-resolution stage, ``r<res>`` for a restoration stage."""
    scale = model.stage_scale(stage)
    return f"x{scale}" if scale > 1 else f"r{model.stage_resolutions[stage]}"


def pad_multiple(model: ModelConfig, stage: int) -> int:
    """H and W must be multiples of this: the encoder halves r_in down to the bottleneck."""
    return model.input_resolution(stage) // model.bottleneck_res


def stage_info(config: Config, stage: int, images_seen: int) -> dict:
    """The contents of ``assets/stage.json``."""
    m = config.model
    return {
        "model_name": config.run.model_name,
        "version": stage,
        "stage": stage,
        "label": stage_label(m, stage),
        "task": "super-resolution" if m.stage_scale(stage) > 1 else "restoration",
        "resolution": m.stage_resolutions[stage],   # output side at training, pixels
        "input_size": m.input_resolution(stage),    # LR side at training, pixels
        "scale": m.stage_scale(stage),              # output / input side
        "lr_size": m.lr_size,
        "pad_multiple": pad_multiple(m, stage),
        "max_input_pixels": config.run.max_input_pixels,
        "images_seen": int(images_seen),
        "noise_seed": list(INFERENCE_NOISE_SEED),
        "signatures": {
            TENSOR_SIGNATURE: {"inputs": {"images": "uint8 [N,H,W,3]"},
                               "outputs": {"sr_images": "uint8 [N,H*scale,W*scale,3]"}},
            BYTES_SIGNATURE: {"inputs": {"image_bytes": "string [N] PNG/JPEG/WebP/BMP/GIF"},
                              "outputs": {"sr_image_bytes": "string [N] PNG"}},
        },
        "tensorflow_version": tf.__version__,
        "config": config.to_dict(),
    }


# -- the serving graph -------------------------------------------------------------
def _mirror_indices(n, pad):
    """Row (or column) indices 0 … n+pad-1 into an axis of length n.

    Past the far edge the axis is reflected (…, n-2, n-1, n-2, …) as often as
    needed, so any pad works; a 1-pixel axis is repeated. Equal to
    ``np.pad(mode="reflect")`` on the far side.
    """
    i = tf.range(n + pad)
    period = tf.maximum(2 * n - 2, 1)
    i = tf.math.floormod(i, period)
    return tf.minimum(tf.where(i < n, i, period - i), n - 1)


def _image_checks(images, max_pixels: int, what: str) -> list:
    """Asserts for a uint8 [N,H,W,3] batch: non-empty and within the pixel limit."""
    shape = tf.shape(images, out_type=tf.int64)
    return [
        tf.debugging.assert_positive(
            shape[0], message=f"{what}: the batch is empty (N = 0); send at least one image"),
        tf.debugging.assert_positive(
            tf.minimum(shape[1], shape[2]),
            message=f"{what}: an image has zero height or width; send at least 1×1 pixel"),
        tf.debugging.assert_less_equal(
            shape[1] * shape[2], tf.constant(max_pixels, tf.int64),
            message=f"{what}: an image has more than max_input_pixels={max_pixels} pixels "
                    f"(H·W); downscale or tile it, or re-export with a larger --max_input_pixels"),
    ]


def _image_format_checks(data):
    """Asserts that a string scalar is non-empty and starts like PNG/JPEG/WebP/BMP/GIF."""
    head = tf.strings.substr(data, 0, 12) + b"\0" * 12   # ≥ 12 bytes, safe to slice
    is_image = tf.reduce_any(tf.stack([
        tf.equal(tf.strings.substr(head, 0, 8), b"\x89PNG\r\n\x1a\n"),
        tf.equal(tf.strings.substr(head, 0, 3), b"\xff\xd8\xff"),           # JPEG
        tf.logical_and(tf.equal(tf.strings.substr(head, 0, 4), b"RIFF"),
                       tf.equal(tf.strings.substr(head, 8, 4), b"WEBP")),
        tf.equal(tf.strings.substr(head, 0, 2), b"BM"),                      # BMP
        tf.equal(tf.strings.substr(head, 0, 4), b"GIF8"),
    ]))
    return [
        tf.debugging.assert_positive(
            tf.strings.length(data), message="image_bytes: an element is empty (0 bytes)"),
        # Raw bytes in an error message break UTF-8 (and TF Serving's JSON): quote the
        # first bytes base64-coded (web-safe alphabet) instead.
        tf.debugging.Assert(is_image, [
            "image_bytes: an element is not a PNG, JPEG, WebP, BMP or GIF image; size in "
            "bytes and first 9 bytes (base64):", tf.strings.length(data),
            tf.io.encode_base64(tf.strings.substr(data, 0, 9))]),
    ]


class ServingModule(tf.Module):
    """G_ema at one stage (α = 1) behind uint8 and encoded-image entry points.

    Usable directly (``ServingModule(g_ema, config, stage).upscale(...)``) or saved
    with :func:`export_stage`. ``signatures`` maps signature names to functions.
    """

    def __init__(
        self,
        g_ema: Generator,   # the EMA generator (any stage's blocks; float32)
        config: Config,     # its run config: model ladder and run.max_input_pixels
        stage: int,         # stage to serve, 0 … num_stages-1 (α = 1)
    ):
        super().__init__(name="pan_serving")
        # Held without tracking: the SavedModel keeps only the tf.Variables the traced
        # functions capture (see track_captured_variables), not Keras' wrappers too.
        object.__setattr__(self, "g_ema", g_ema)
        self._stage = stage
        self._scale = config.model.stage_scale(stage)
        self._multiple = pad_multiple(config.model, stage)
        self._max_pixels = config.run.max_input_pixels

    # The computation: uint8 [N,H,W,3] → uint8 [N,sH,sW,3], checks included.
    def _enhance(self, images, noise: NoiseSpec, what: str):
        # TF Serving feeds whatever shape a request has (signatures check dtypes only):
        # EnsureShape turns a wrong rank or channel count into a clear error.
        images = tf.ensure_shape(images, [None, None, None, 3], name=what)
        with tf.control_dependencies(_image_checks(images, self._max_pixels, what)):
            shape = tf.shape(images)
        h, w, m, s = shape[1], shape[2], self._multiple, self._scale
        x = tf.cast(images, tf.float32) / 255.0 * 2.0 - 1.0                  # [N,H,W,3] in [-1,1]
        x = tf.gather(x, _mirror_indices(h, tf.math.floormod(-h, m)), axis=1)
        x = tf.gather(x, _mirror_indices(w, tf.math.floormod(-w, m)), axis=2)  # [N,H',W',3]
        y = self.g_ema(x, stage=self._stage, noise=noise)                      # [N,sH',sW',3]
        y = y[:, :h * s, :w * s, :]
        return tf.cast(tf.round(tf.clip_by_value((y + 1.0) * 127.5, 0.0, 255.0)), tf.uint8)

    @tf.function(input_signature=[
        tf.TensorSpec([None, None, None, 3], tf.uint8, name="images"),
        tf.TensorSpec([2], tf.int32, name="seed"),
        tf.TensorSpec([], tf.float32, name="noise_strength"),
    ])
    def upscale(self, images, seed, noise_strength):
        """uint8 [N,H,W,3] → uint8 [N,sH,sW,3] with noise from ``seed`` × ``noise_strength``."""
        return self._enhance(images, NoiseSpec(seed, strength=noise_strength), "images")

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")])
    def serve_images(self, images):
        """serving_default: deterministic (fixed seed, strength 1)."""
        return {"sr_images": self._enhance(images, inference_noise(), "images")}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve_bytes(self, image_bytes):
        """enhance_bytes: each encoded image on its own → PNG bytes."""
        n = tf.size(image_bytes)
        with tf.control_dependencies([tf.debugging.assert_positive(
                n, message="image_bytes: the batch is empty (N = 0); send at least one image")]):
            image_bytes = tf.identity(image_bytes)

        def one(data):
            with tf.control_dependencies(_image_format_checks(data)):
                image = tf.io.decode_image(data, channels=3, dtype=tf.uint8,
                                           expand_animations=False)         # [H,W,3]
            image.set_shape([None, None, 3])
            sr = self._enhance(image[None], inference_noise(), "image_bytes")[0]
            return tf.io.encode_png(sr)

        png = tf.map_fn(one, image_bytes, fn_output_signature=tf.TensorSpec([], tf.string),
                        parallel_iterations=1)
        return {"sr_image_bytes": png}

    @property
    def signatures(self) -> dict:
        return {TENSOR_SIGNATURE: self.serve_images, BYTES_SIGNATURE: self.serve_bytes}

    def track_captured_variables(self) -> None:
        """Tracks the tf.Variables that the traced functions read, for saving.

        A Keras 3 variable wraps a tf.Variable; saved through the Keras wrapper, the
        checkpoint's restore op fills a copy that the functions never read, so a
        graph-mode loader (tensorflow_model_server) would run on uninitialised
        variables. Tracking the captured tf.Variables themselves makes the restore
        op write exactly what the functions read.
        """
        functions = [self.upscale, self.serve_images, self.serve_bytes]
        captured = {}
        for fn in functions:
            for v in fn.get_concrete_function().variables:
                captured[id(v)] = v
        self.variables_for_serving = list(captured.values())


# -- writing versions --------------------------------------------------------------
def export_stage(g_ema: Generator, config: Config, stage: int, workdir: str,
                 images_seen: int) -> str:
    """Saves G_ema at ``stage`` as version ``stage``; rewrites models.config. Returns the path."""
    if not 0 <= stage < config.model.num_stages:
        raise ExportError(f"stage {stage} is out of range: this model has stages "
                          f"0-{config.model.num_stages - 1}")
    export_root = os.path.join(workdir, EXPORT_DIR)
    model_dir = os.path.join(export_root, config.run.model_name)
    final = os.path.join(model_dir, str(stage))
    tf.io.gfile.makedirs(model_dir)
    _repair(model_dir)
    tmp = os.path.join(model_dir, f"{_TMP}{stage}-{uuid.uuid4().hex[:8]}")
    try:
        module = ServingModule(g_ema, config, stage)
        module.track_captured_variables()
        tf.saved_model.save(module, tmp, signatures=module.signatures)
        assets = os.path.join(tmp, "assets")
        tf.io.gfile.makedirs(assets)
        with tf.io.gfile.GFile(os.path.join(assets, STAGE_INFO), "w") as f:
            f.write(json.dumps(stage_info(config, stage, images_seen), indent=2, sort_keys=True))
        _move_into_place(tmp, final)
    finally:
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.rmtree(tmp)
    write_models_config(export_root)
    return final


def _move_into_place(tmp: str, final: str) -> None:
    """Renames tmp → final; an existing final is set aside and restored on failure."""
    old = None
    if tf.io.gfile.exists(final):
        old = os.path.join(os.path.dirname(final),
                           f"{_OLD}{os.path.basename(final)}-{uuid.uuid4().hex[:8]}")
        tf.io.gfile.rename(final, old)
    try:
        tf.io.gfile.rename(tmp, final)
    except BaseException:
        if old is not None:
            tf.io.gfile.rename(old, final)
        raise
    if old is not None:
        tf.io.gfile.rmtree(old)


def _repair(model_dir: str) -> None:
    """Clears what a killed export left: temp dirs go, a set-aside version comes back."""
    for name in sorted(tf.io.gfile.listdir(model_dir)):
        name = name.rstrip("/")
        path = os.path.join(model_dir, name)
        if name.startswith(_OLD):
            version = name[len(_OLD):].split("-")[0]
            target = os.path.join(model_dir, version)
            if version.isdigit() and not tf.io.gfile.exists(target):
                tf.io.gfile.rename(path, target)
            else:
                tf.io.gfile.rmtree(path)
        elif name.startswith(_TMP):
            tf.io.gfile.rmtree(path)


def exported_versions(model_dir: str) -> dict[int, dict]:
    """{version: stage.json contents} for every complete version under ``model_dir``."""
    versions = {}
    if not tf.io.gfile.isdir(model_dir):
        return versions
    for name in tf.io.gfile.listdir(model_dir):
        name = name.rstrip("/")
        info = os.path.join(model_dir, name, "assets", STAGE_INFO)
        if name.isdigit() and tf.io.gfile.exists(info):
            with tf.io.gfile.GFile(info) as f:
                versions[int(name)] = json.load(f)
    return dict(sorted(versions.items()))


def models_config_text(export_root: str, serving_root: str = SERVING_ROOT) -> str:
    """A model_config_list with every model under ``export_root``, its versions and labels.

    ``base_path`` is ``serving_root/<model_name>``: ``/models`` is where the
    official image (and serving/docker-compose.yml) mounts the export directory.
    """
    lines = ["# Written by pan_tf.export after every export; see serving/README.md.",
             "# Versions are stages; labels: xS = super-resolution ×S, rN = restoration at N×N.",
             "model_config_list {"]
    names = sorted(n.rstrip("/") for n in tf.io.gfile.listdir(export_root)
                   if tf.io.gfile.isdir(os.path.join(export_root, n.rstrip("/"))))
    for name in names:
        versions = exported_versions(os.path.join(export_root, name))
        if not versions:
            continue
        lines += ["  config {",
                  f'    name: "{name}"',
                  f'    base_path: "{serving_root.rstrip("/")}/{name}"',
                  '    model_platform: "tensorflow"',
                  "    model_version_policy {",
                  "      specific {"]
        lines += [f"        versions: {v}" for v in versions]
        lines += ["      }", "    }"]
        for version, info in versions.items():
            lines += ["    version_labels {",
                      f'      key: "{info["label"]}"',
                      f"      value: {version}",
                      "    }"]
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_models_config(export_root: str, serving_root: str = SERVING_ROOT,
                        path: str | None = None) -> str:
    """Writes :func:`models_config_text` (atomically) to ``path`` or export_root/models.config."""
    path = path or os.path.join(export_root, MODELS_CONFIG)
    tmp = f"{path}{_TMP}{uuid.uuid4().hex[:8]}"
    try:
        with tf.io.gfile.GFile(tmp, "w") as f:
            f.write(models_config_text(export_root, serving_root))
        tf.io.gfile.rename(tmp, path, overwrite=True)
    finally:
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.remove(tmp)
    return path


# -- re-export from a workdir ------------------------------------------------------
def load_workdir(workdir: str, consistency: str | None = None,
                 model_name: str | None = None) -> tuple[Config, Generator, int, int]:
    """(config, G_ema restored from the latest checkpoint, images_seen, the stage trained
    last) of a training workdir; that stage is -1 where the checkpoint does not say.

    ``consistency`` / ``model_name`` replace the run's own in the returned config: the
    back-projection layer has no weights, so one checkpoint serves any choice of it.
    """
    if not tf.io.gfile.isdir(workdir):
        raise ExportError(f"--workdir={workdir} does not exist")
    config_path = os.path.join(workdir, "config.json")
    if not tf.io.gfile.exists(config_path):
        raise ExportError(f"--workdir={workdir} has no config.json; is it a pan_tf.train workdir?")
    with tf.io.gfile.GFile(config_path) as f:
        config = Config.from_dict(json.load(f))
    config = _override(config, consistency, model_name)
    checkpoint = tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))
    if checkpoint is None:
        raise ExportError(f"--workdir={workdir} has no checkpoint in checkpoints/; "
                          f"train first (python -m pan_tf.train)")
    g_ema = Generator(config.model, name="g_ema", dtype="float32")
    tf.train.Checkpoint(g_ema=g_ema).restore(checkpoint).expect_partial() \
        .assert_existing_objects_matched()
    reader = tf.train.load_checkpoint(checkpoint)
    images_seen = int(reader.get_tensor("images_seen/.ATTRIBUTES/VARIABLE_VALUE"))
    return config, g_ema, images_seen, checkpoint_lib.trained_stage(reader)


def _override(config: Config, consistency: str | None, model_name: str | None) -> Config:
    model, run = config.model, config.run
    if consistency is not None:
        model = dataclasses.replace(model, consistency=consistency)
    if model_name is not None:
        run = dataclasses.replace(run, model_name=model_name)
    try:
        return dataclasses.replace(config, model=model, run=run).validate()
    except ConfigError as e:
        raise ExportError(str(e)) from None


def finished_stages(config: Config, images_seen: int, trained_stage: int = -1) -> list[int]:
    """Stages the schedule trains whose end is ≤ images_seen, and the stage a spent
    ``--stop_kimg`` budget ended in: the trainer exports that one too (e.g. a
    ``--progressive=false`` run stopped before its schedule's end).

    ``trained_stage``: the stage the checkpoint's last step trained (its ``opt_stage``),
    the one the trainer decides with. A last batch that ran past a stage's end counts
    for that stage, not the next one; -1 (unknown) falls back to the schedule's phase
    at the last image, which is the same stage unless the batch overran."""
    from pan_tf.schedule import Schedule

    schedule = Schedule(config.model, config.schedule)
    done = [s for s in schedule.stages if schedule.stage_done(s, images_seen)]
    last = trained_stage if trained_stage >= 0 else schedule.phase_at(images_seen - 1).stage
    if images_seen > 0 and schedule.stage_done(last, images_seen, config.run.stop_images):
        done.append(last)
    return sorted(set(done))


def export_workdir(workdir: str, stage: int | None = None, consistency: str | None = None,
                   model_name: str | None = None) -> list[str]:
    """Re-exports G_ema of the latest checkpoint at ``stage`` (default: every finished stage),
    optionally with another consistency layer and under another model name."""
    config, g_ema, images_seen, trained_stage = load_workdir(workdir, consistency, model_name)
    done = finished_stages(config, images_seen, trained_stage)
    if stage is None:
        if not done:
            raise ExportError(f"no stage is finished yet at {images_seen} images; "
                              f"nothing to export")
        stages = done
    else:
        if not 0 <= stage < config.model.num_stages:
            raise ExportError(f"--stage={stage} is out of range: this model has stages "
                              f"0-{config.model.num_stages - 1}")
        if stage not in done:
            raise ExportError(f"--stage={stage} is not finished at {images_seen} images "
                              f"(finished: {done or 'none'})")
        stages = [stage]
    return [export_stage(g_ema, config, s, workdir, images_seen) for s in stages]


def main(argv=None) -> int:
    """CLI: ``python -m pan_tf.export --workdir=DIR [--stage=N] [--serving_root=/models]
    [--consistency=MODE] [--model_name=NAME]``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m pan_tf.export",
        description="Re-export G_ema from a training workdir's latest checkpoint.")
    parser.add_argument("--workdir", required=True, help="training workdir (has config.json)")
    parser.add_argument("--stage", type=int, default=None,
                        help="stage to export; default: every stage the checkpoint finished")
    parser.add_argument("--serving_root", default=SERVING_ROOT,
                        help="base_path prefix written into models.config (default /models, "
                             "the serving image's mount point)")
    parser.add_argument("--models_config_only", action="store_true",
                        help="only rewrite export/models.config")
    parser.add_argument("--consistency", choices=CONSISTENCY, default=None,
                        help="beyond the paper: the back-projection layer the exported SR "
                             "stages apply, whatever the run trained with (default: the run's "
                             "--consistency). Export it under another --model_name to keep "
                             "the run's own versions")
    parser.add_argument("--model_name", default=None,
                        help="export/<model_name>/ to write (default: the run's --model_name)")
    args = parser.parse_args(argv)
    try:
        export_root = os.path.join(args.workdir, EXPORT_DIR)
        if not args.models_config_only:
            for path in export_workdir(args.workdir, args.stage, args.consistency,
                                       args.model_name):
                print(f"exported {path}")
        elif not tf.io.gfile.isdir(export_root):
            raise ExportError(f"{export_root} does not exist; nothing exported yet")
        print(f"wrote {write_models_config(export_root, args.serving_root)}")
    except (ExportError, tf.errors.OpError) as e:
        message = e.message if isinstance(e, tf.errors.OpError) else str(e)
        print(f"error: {message.splitlines()[0] if message else type(e).__name__}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

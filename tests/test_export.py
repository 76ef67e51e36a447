"""Export: train → export every stage → reload elsewhere → same pixels as Keras.

The tiny ladder here has three stages (lr 8, ×4): 8×8 restoration (version 0,
label r8), ×2 (version 1, x2) and ×4 (version 2, x4). Training exports each
stage as it ends; every check below reads those SavedModels.
"""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from conftest import REPO, tiny_config
from pan_tf import export as export_lib
from pan_tf import trainer as train_lib
from pan_tf.generator import Generator, random_generator

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
BIN = os.path.dirname(sys.executable)


def _config(data):
    return tiny_config(data, model={"scale": 4},
                       train={"ema_kimg": 0.01},           # G_ema follows G within 80 images
                       run={"export": True, "checkpoint_kimg": 1.0, "sample_kimg": 1.0,
                            "keep_checkpoints": 5})    # checkpoints only at the 3 stage ends


@pytest.fixture(scope="module")
def trained(tmp_path_factory, image_folder):
    workdir = tmp_path_factory.mktemp("trained")
    config = _config(str(image_folder))
    train_lib.train(config, str(workdir))
    return workdir, config


def _strong_noise_export(workdir, config):
    """A random G_ema with noise scales 0.5 (a trained-for-80-images one has ~0), exported
    at every stage, plus a checkpoint of its weights. It uses StyleGAN's resampling filter,
    so the exported graph is checked with the blur too (the trained run has none)."""
    config = dataclasses.replace(
        config, model=dataclasses.replace(config.model, resample_filter="binomial"))
    g_ema = random_generator(config.model, seed=3, noise_strength=0.5)
    for stage in range(config.model.num_stages):
        export_lib.export_stage(g_ema, config, stage, str(workdir), images_seen=7)
    return tf.train.Checkpoint(g_ema=g_ema).write(str(workdir / "weights"))


# Runs in a fresh interpreter: nothing of the exporting process (traced functions,
# Keras objects, variables) can leak into the loaded SavedModels.
COMPARE = textwrap.dedent("""
    import json, sys
    import numpy as np, tensorflow as tf
    from pan_tf.config import Config
    from pan_tf.export import pad_multiple
    from pan_tf.generator import INFERENCE_NOISE_SEED, Generator, inference_noise

    def reference(g, stage, images, multiple, scale):
        # Independent of export.py: numpy reflect-pad, Keras G_ema, crop, quantise.
        n, h, w, _ = images.shape
        x = np.pad(images, [(0, 0), (0, -h % multiple), (0, -w % multiple), (0, 0)], "reflect")
        y = g(tf.constant(x / 255.0 * 2.0 - 1.0, tf.float32), stage=stage,
              noise=inference_noise()).numpy()[:, :h * scale, :w * scale]
        return np.round(np.clip((y + 1.0) * 127.5, 0, 255)).astype(np.uint8)

    results = []
    rng = np.random.default_rng(0)
    for model_dir, checkpoint_of in json.loads(sys.argv[1]):
        for version in sorted(int(v) for v in __import__("os").listdir(model_dir) if v.isdigit()):
            path = f"{model_dir}/{version}"
            info = json.load(open(f"{path}/assets/stage.json"))
            config, stage, scale = Config.from_dict(info["config"]), info["stage"], info["scale"]
            g = Generator(config.model, name="g_ema")
            ckpt = checkpoint_of.format(images=info["images_seen"])
            status = tf.train.Checkpoint(g_ema=g).read(ckpt).expect_partial()
            status.assert_existing_objects_matched()
            loaded = tf.saved_model.load(path)
            serve = loaded.signatures["serving_default"]
            r = info["input_size"]
            for shape in [(1, r, r), (2, 37, 53), (1, 1, 3), (1, 5, 8)]:
                images = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
                want = reference(g, stage, images, pad_multiple(config.model, stage), scale)
                got = serve(images=tf.constant(images))["sr_images"].numpy()
                again = serve(images=tf.constant(images))["sr_images"].numpy()
                up = loaded.upscale(images, INFERENCE_NOISE_SEED, 1.0).numpy()
                pngs = loaded.signatures["enhance_bytes"](
                    image_bytes=[tf.io.encode_png(im) for im in images])["sr_image_bytes"]
                via_bytes = np.stack([tf.io.decode_png(p).numpy() for p in pngs])
                diff = np.abs(got.astype(int) - want)
                results.append({
                    "version": version, "stage": stage, "shape": list(shape),
                    "out_shape": list(got.shape), "want_shape": list(want.shape),
                    "max_diff": int(diff.max()), "n_diff": int((diff > 0).sum()), "size": diff.size,
                    "deterministic": bool((got == again).all()),
                    "upscale_diff": int(np.abs(up.astype(int) - got).max()),
                    "bytes_diff": int(np.abs(via_bytes.astype(int) - got).max()),
                    "seed_matters": bool(
                        (loaded.upscale(images, [1, 2], 1.0).numpy() != got).any()),
                })
    print(json.dumps(results))
""")


def test_every_version_matches_keras_g_ema_in_a_fresh_process(trained, tmp_path):
    workdir, config = trained
    noisy = tmp_path / "noisy"
    weights = _strong_noise_export(noisy, config)
    jobs = [(str(workdir / "export" / "pan"), str(workdir / "checkpoints" / "ckpt-{images}")),
            (str(noisy / "export" / "pan"), weights)]
    result = subprocess.run([sys.executable, "-c", COMPARE, json.dumps(jobs)], cwd=REPO, env=ENV,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(rows) == 2 * 3 * 4
    for row in rows:
        # Same float32 ops on the same weights and noise; only kernel choice (oneDNN
        # blocking, thread split) reorders sums, ~1e-6 relative. That moves round()
        # across a .5 boundary for a rare pixel: at most 1 level, on well under 1%.
        assert row["out_shape"] == row["want_shape"], row
        assert row["max_diff"] <= 1 and row["n_diff"] <= max(2, row["size"] // 100), row
        assert row["deterministic"] and row["upscale_diff"] == 0, row
        assert row["bytes_diff"] <= 1, row     # one image at a time vs the batch
    # Noise is in the graph: another seed changes the strong-noise model's output.
    assert all(r["seed_matters"] for r in rows[12:] if r["stage"] > 0)


def test_training_exports_every_stage_with_labels_and_stage_json(trained):
    workdir, config = trained
    export_root = workdir / "export"
    assert sorted(os.listdir(export_root)) == ["models.config", "pan"]
    assert sorted(os.listdir(export_root / "pan")) == ["0", "1", "2"]  # no temp dirs left
    expected = {0: ("r8", 8, 8, 1, 16), 1: ("x2", 16, 8, 2, 48), 2: ("x4", 32, 8, 4, 80)}
    for version, (label, res, size, scale, images) in expected.items():
        info = json.loads(
            (export_root / "pan" / str(version) / "assets" / "stage.json").read_text())
        assert (info["label"], info["resolution"], info["input_size"], info["scale"],
                info["images_seen"], info["stage"], info["model_name"]) == (
                    label, res, size, scale, images, version, "pan")
        assert info["config"] == json.loads(json.dumps(config.to_dict()))
    text = (export_root / "models.config").read_text()
    assert 'name: "pan"' in text and 'base_path: "/models/pan"' in text
    assert 'model_platform: "tensorflow"' in text
    assert [int(v) for v in _all(r"versions: (\d+)", text)] == [0, 1, 2]
    assert _all(r'key: "(\w+)"\s+value: (\d+)', text) == [("r8", "0"), ("x2", "1"), ("x4", "2")]
    assert text.count("{") == text.count("}")


def _all(pattern, text):
    import re

    return re.findall(pattern, text)


def test_saved_model_cli_shows_both_signatures(trained):
    workdir, _ = trained
    result = subprocess.run(
        [os.path.join(BIN, "saved_model_cli"), "show", "--all",
         "--dir", str(workdir / "export" / "pan" / "2")],
        env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    sections = {name: out.split(f"signature_def['{name}']:")[1].split("signature_def[")[0]
                for name in ("serving_default", "enhance_bytes")}
    tensor, encoded = sections["serving_default"], sections["enhance_bytes"]
    flat = lambda s: " ".join(s.split())  # noqa: E731
    image_batch = "dtype: DT_UINT8 shape: (-1, -1, -1, 3)"
    assert f"inputs['images'] tensor_info: {image_batch}" in flat(tensor)
    assert f"outputs['sr_images'] tensor_info: {image_batch}" in flat(tensor)
    assert "inputs['image_bytes'] tensor_info: dtype: DT_STRING shape: (-1)" in flat(encoded)
    assert "outputs['sr_image_bytes'] tensor_info: dtype: DT_STRING shape: (-1)" in flat(encoded)
    assert "Method name is: tensorflow/serving/predict" in tensor


def test_graph_has_only_core_tensorflow_ops(trained):
    workdir, _ = trained
    for version in ("0", "2"):
        path = workdir / "export" / "pan" / version
        saved = saved_model_pb2.SavedModel()
        saved.ParseFromString((path / "saved_model.pb").read_bytes())
        assert len(saved.meta_graphs) == 1
        graph = saved.meta_graphs[0].graph_def
        functions = {f.signature.name for f in graph.library.function}
        ops = {n.op for n in graph.node}
        for f in graph.library.function:
            ops |= {n.op for n in f.node_def}
        ops -= functions                               # calls of library functions by name
        assert ops, "no ops found"
        assert not [op for op in ops if not hasattr(tf.raw_ops, op)], ops
        assert not ops & {"PyFunc", "PyFuncStateless", "EagerPyFunc"}
        assert {"DecodeImage", "EncodePng", "Conv2D", "EnsureShape", "Assert"} <= ops
        # No custom-op libraries: nothing but the SavedModel's own files.
        files = [f for _, _, fs in os.walk(path) for f in fs]
        assert not [f for f in files if f.endswith((".so", ".dylib", ".dll"))], files
        stripped = saved.meta_graphs[0].meta_info_def.stripped_op_list.op
        assert all(hasattr(tf.raw_ops, op.name) for op in stripped)


def test_bad_inputs_give_clear_errors_from_the_loaded_model(trained):
    workdir, config = trained
    loaded = tf.saved_model.load(str(workdir / "export" / "pan" / "1"))
    serve, encoded = loaded.signatures["serving_default"], loaded.signatures["enhance_bytes"]
    limit = config.run.max_input_pixels
    cases = [
        (lambda: serve(images=tf.zeros([0, 8, 8, 3], tf.uint8)), "the batch is empty"),
        (lambda: serve(images=tf.zeros([1, 0, 8, 3], tf.uint8)), "zero height or width"),
        (lambda: serve(images=tf.zeros([1, 8, 8, 3], tf.float32)), "expected to be a uint8"),
        (lambda: encoded(image_bytes=tf.constant([b"nope"])), "not a PNG, JPEG, WebP, BMP or GIF"),
        (lambda: encoded(image_bytes=tf.constant([b""])), "empty (0 bytes)"),
        (lambda: encoded(image_bytes=tf.zeros([0], tf.string)), "the batch is empty"),
    ]
    for call, message in cases:
        with pytest.raises(tf.errors.InvalidArgumentError, match=message.replace("(", r"\(")
                           .replace(")", r"\)")):
            call()
    # Over the pixel limit: checked before any convolution runs.
    side = int(limit ** 0.5) + 1
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"max_input_pixels={limit}"):
        loaded.upscale(tf.zeros([1, side, side, 3], tf.uint8), [0, 0], 1.0)
    # Rank and channels are checked by the signature (Python) and by EnsureShape (servers).
    with pytest.raises((TypeError, ValueError), match="uint8"):
        serve(images=np.zeros([8, 8, 3], np.uint8))
    with pytest.raises(tf.errors.InvalidArgumentError, match="not compatible with expected shape"):
        serve(images=tf.zeros([1, 8, 8, 4], tf.uint8))
    # Still serving after all that.
    assert serve(images=tf.zeros([1, 3, 5, 3], tf.uint8))["sr_images"].shape == (1, 6, 10, 3)


@pytest.mark.parametrize("crash_in", ["save", "rename"])
def test_a_crash_mid_export_leaves_previous_versions_intact(tmp_path, image_folder, monkeypatch,
                                                            crash_in):
    config = _config(str(image_folder))
    g_ema = Generator(config.model, name="g_ema")
    for stage in (0, 1):
        export_lib.export_stage(g_ema, config, stage, str(tmp_path), images_seen=stage)
    model_dir = tmp_path / "export" / "pan"
    before = {v: (model_dir / v / "saved_model.pb").read_bytes() for v in ("0", "1")}
    models_config = (tmp_path / "export" / "models.config").read_text()

    class Killed(Exception):
        pass

    if crash_in == "save":  # the SavedModel is fully written, then the process "dies"
        real_save = tf.saved_model.save

        def save(obj, path, **kwargs):
            real_save(obj, path, **kwargs)
            raise Killed()
        monkeypatch.setattr(tf.saved_model, "save", save)
    else:                   # the old version is set aside, then moving the new one fails
        real_rename = tf.io.gfile.rename

        def rename(src, dst, overwrite=False):
            if os.path.basename(src).startswith(".tmp-"):
                raise Killed()
            return real_rename(src, dst, overwrite)
        monkeypatch.setattr(tf.io.gfile, "rename", rename)

    for stage in (0, 2):  # replace an existing version; add a new one
        with pytest.raises(Killed):
            export_lib.export_stage(g_ema, config, stage, str(tmp_path), images_seen=99)
    monkeypatch.undo()

    # TF Serving sees exactly the old versions: no half version, no temp dirs.
    assert sorted(os.listdir(model_dir)) == ["0", "1"]
    assert {v: (model_dir / v / "saved_model.pb").read_bytes() for v in ("0", "1")} == before
    assert (tmp_path / "export" / "models.config").read_text() == models_config
    assert json.loads((model_dir / "0" / "assets" / "stage.json").read_text())["images_seen"] == 0
    assert tf.saved_model.load(str(model_dir / "0")).signatures["serving_default"](
        images=tf.zeros([1, 8, 8, 3], tf.uint8))["sr_images"].shape == (1, 8, 8, 3)


def test_leftovers_of_a_killed_export_are_repaired(tmp_path, image_folder):
    config = _config(str(image_folder))
    g_ema = Generator(config.model, name="g_ema")
    export_lib.export_stage(g_ema, config, 0, str(tmp_path), images_seen=0)
    model_dir = tmp_path / "export" / "pan"
    # SIGKILL right after setting version 0 aside, while another version was half written.
    os.rename(model_dir / "0", model_dir / ".old-0-deadbeef")
    (model_dir / ".tmp-2-cafecafe" / "variables").mkdir(parents=True)
    assert not any(name.isdigit() for name in os.listdir(model_dir))  # names TF Serving skips
    export_lib.export_stage(g_ema, config, 1, str(tmp_path), images_seen=1)
    assert sorted(os.listdir(model_dir)) == ["0", "1"]
    assert "versions: 0" in (tmp_path / "export" / "models.config").read_text()


def test_reexport_from_a_workdir(trained, tmp_path, capsys):
    workdir = tmp_path / "copy"
    shutil.copytree(trained[0], workdir)
    shutil.rmtree(workdir / "export")

    # Default: every stage the latest checkpoint (80 images, all three) finished.
    assert export_lib.main([f"--workdir={workdir}"]) == 0
    assert sorted(os.listdir(workdir / "export" / "pan")) == ["0", "1", "2"]
    for v in ("0", "1", "2"):
        info = json.loads((workdir / "export" / "pan" / v / "assets" / "stage.json").read_text())
        assert info["images_seen"] == 80
    capsys.readouterr()

    # The command line, one stage.
    result = subprocess.run([sys.executable, "-m", "pan_tf.export", f"--workdir={workdir}",
                             "--stage=1"], cwd=REPO, env=ENV, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "export/pan/1" in result.stdout and "models.config" in result.stdout

    # One-line errors.
    early = tmp_path / "early"
    shutil.copytree(workdir, early)
    tf.compat.v1.train.update_checkpoint_state(str(early / "checkpoints"),
                                               str(early / "checkpoints" / "ckpt-16"))
    no_config = tmp_path / "no_config"
    no_config.mkdir()
    cases = [
        ([f"--workdir={tmp_path / 'missing'}"], "does not exist"),
        ([f"--workdir={no_config}"], "has no config.json"),
        ([f"--workdir={workdir}", "--stage=7"], "--stage=7 is out of range"),
        ([f"--workdir={early}", "--stage=1"], "--stage=1 is not finished at 16 images"),
    ]
    for args, message in cases:
        assert export_lib.main(args) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    (no_config / "config.json").write_text((workdir / "config.json").read_text())
    assert export_lib.main([f"--workdir={no_config}"]) == 1
    assert "no checkpoint" in capsys.readouterr().err


def test_reexport_with_a_consistency_layer_beside_the_runs_own(trained, tmp_path, capsys):
    workdir = tmp_path / "copy"
    shutil.copytree(trained[0], workdir)
    own = (workdir / "export" / "pan" / "2" / "saved_model.pb").read_bytes()
    assert export_lib.main([f"--workdir={workdir}", "--stage=2", "--model_name=pan_bp",
                            "--consistency=backproject_smooth"]) == 0
    assert (workdir / "export" / "pan" / "2" / "saved_model.pb").read_bytes() == own
    info = json.loads((workdir / "export" / "pan_bp" / "2" / "assets" / "stage.json").read_text())
    assert info["model_name"] == "pan_bp" and info["config"]["model"]["consistency"] == \
        "backproject_smooth" and info["images_seen"] == 80
    text = (workdir / "export" / "models.config").read_text()
    assert 'name: "pan"' in text and 'name: "pan_bp"' in text

    # A smooth input (2×2 colours, bilinearly up to 8 px), so little of the residual sits
    # near the LR Nyquist frequency, which the layer removes slowest: with it the 4×4 box
    # averages meet the input; the same weights without it are far off.
    lr = tf.image.resize(tf.random.stateless_uniform([2, 2, 2, 3], [6, 6], 0, 255), [8, 8])
    lr = tf.cast(tf.round(lr), tf.uint8)

    def box_error(model):
        sr = tf.saved_model.load(str(workdir / "export" / model / "2")) \
            .signatures["serving_default"](images=lr)["sr_images"]
        down = tf.nn.avg_pool2d(tf.cast(sr, tf.float32), 4, 4, "VALID")
        return float(tf.reduce_max(tf.abs(down - tf.cast(lr, tf.float32))))

    # Measured 1.7 and 142 (an 80-image G is far from its input): the six passes leave
    # about 1% of the worst box's residual; the bound 3 leaves it 75% room.
    assert box_error("pan_bp") < 3.0 and box_error("pan") > 30.0

    capsys.readouterr()
    assert export_lib.main([f"--workdir={workdir}", "--model_name=a/b"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--model_name" in err[0], err


def test_a_spent_stop_kimg_budget_counts_as_finished_like_the_trainer_exports_it(image_folder):
    # Stages end at 16, 48 and 80 images. The trainer exports the stage that a spent
    # --stop_kimg budget ends in; re-exporting from that checkpoint must be allowed too.
    config = _config(str(image_folder))
    assert export_lib.finished_stages(config, 24) == [0]
    stopped = dataclasses.replace(config, run=dataclasses.replace(config.run, stop_kimg=0.024))
    assert export_lib.finished_stages(stopped, 20) == [0]
    assert export_lib.finished_stages(stopped, 24) == [0, 1]
    nonprog = dataclasses.replace(stopped, schedule=dataclasses.replace(
        stopped.schedule, progressive=False))
    assert export_lib.finished_stages(nonprog, 24) == [2]


def test_reexport_takes_the_stage_a_batch_overran_from_the_checkpoint(tmp_path, image_folder):
    # Batch 6: stage 0 (16 images) takes 3 steps and ends at 18, two images past its end,
    # and the --stop_kimg budget (17) is spent by that same batch. The trainer exports
    # stage 0 only. The schedule's phase at image 17 is stage 1, which no step trained:
    # re-exporting must follow the checkpoint's stage and write stage 0 alone.
    config = _config(str(image_folder))
    config = dataclasses.replace(
        config, schedule=dataclasses.replace(config.schedule, batch_size=6),
        run=dataclasses.replace(config.run, stop_kimg=0.017))
    train_lib.train(config, str(tmp_path))
    model_dir = tmp_path / export_lib.EXPORT_DIR / config.run.model_name
    trained = export_lib.exported_versions(str(model_dir))
    assert sorted(trained) == [0] and trained[0]["images_seen"] == 18

    _, _, images, stage = export_lib.load_workdir(str(tmp_path))
    assert (images, stage) == (18, 0)
    assert export_lib.finished_stages(config, 18) == [0, 1]     # the schedule alone
    paths = export_lib.export_workdir(str(tmp_path))
    assert [os.path.basename(p) for p in paths] == ["0"]
    assert sorted(export_lib.exported_versions(str(model_dir))) == [0]

"""Tests for pan_tf.data and pan_tf.prepare: formats, bad files, TFRecords, the stream, preview."""

import dataclasses
import io
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import REPO, smooth_image, tiny_config, write_images
from pan_tf import data as D
from pan_tf import prepare as prepare_lib
from pan_tf import trainer as trainer_lib
from pan_tf.config import ConfigError, DataConfig, ModelConfig
from pan_tf.degrade import DegradeConfig

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
MODEL = ModelConfig(lr_size=8, scale=2, start_res=8)            # HR 16
CLEAN = DataConfig(degrade=DegradeConfig(enabled=False))
DEGRADED = DataConfig()                                          # the default degradations


def _encode(array, fmt, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt, **options)
    return buffer.getvalue()


def _animated(frames, fmt, **options) -> bytes:
    buffer = io.BytesIO()
    images = [Image.fromarray(f) for f in frames]
    images[0].save(buffer, fmt, save_all=True, append_images=images[1:], **options)
    return buffer.getvalue()


def _pil_decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _photo(height=40, width=48, seed=0):
    return smooth_image(np.random.default_rng(seed), height, width)


# ----------------------------------------------------------------------------- decoding

def _format_cases():
    rgb = _photo()
    gray = rgb[..., 0]
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 77, np.uint8)])
    flat = np.zeros((40, 48, 3), np.uint8)                       # 4 colours: exact in a GIF palette
    flat[:20, :24], flat[20:, 24:], flat[:20, 24:] = (200, 30, 10), (10, 220, 40), (0, 0, 255)
    deep = np.random.default_rng(1).integers(0, 65536, (40, 48, 3)).astype(np.uint16)
    rgb3 = np.repeat(gray[..., None], 3, axis=-1)
    # name: (bytes, expected float image in [0,1], max error); lossy: as PIL decodes them
    jpeg, webp = _encode(rgb, "JPEG", quality=95), _encode(rgb, "WEBP", quality=90)
    return {
        "jpeg": (jpeg, _pil_decode(jpeg) / 255, 8 / 255),    # TF: faster IDCT, chroma upsampling
        "png_rgb": (_encode(rgb, "PNG"), rgb / 255, 1e-6),
        "png_gray": (_encode(gray, "PNG"), rgb3 / 255, 1e-6),
        "png_gray_alpha": (_encode(np.dstack([gray, gray]), "PNG"), rgb3 / 255, 1e-6),
        "png_rgba": (_encode(rgba, "PNG"), rgb / 255, 1e-6),
        "png_16bit": (tf.io.encode_png(deep).numpy(), deep / 65535, 1e-6),
        "png_16bit_gray": (_encode(deep[..., 0], "PNG"),
                           np.repeat(deep[..., :1], 3, axis=-1) / 65535, 1e-6),
        "webp_lossless": (_encode(rgb, "WEBP", lossless=True), rgb / 255, 1e-6),
        "webp_rgba": (_encode(rgba, "WEBP", lossless=True), rgb / 255, 1e-6),
        "webp_lossy": (webp, _pil_decode(webp) / 255, 3 / 255),
        "bmp": (_encode(rgb, "BMP"), rgb / 255, 1e-6),
        "bmp_gray": (_encode(gray, "BMP"), rgb3 / 255, 1e-6),
        "gif_first_frame": (_animated([flat, 255 - flat, flat // 2], "GIF"), flat / 255, 1e-6),
    }


FORMATS = _format_cases()


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_format_decodes_eagerly_and_in_tf_data(name):
    data, expected, tolerance = FORMATS[name]
    eager = D.decode_image(data).numpy()
    assert eager.shape == expected.shape and eager.dtype == np.float32
    assert np.abs(eager - expected).max() <= tolerance, np.abs(eager - expected).max()
    in_data = next(iter(tf.data.Dataset.from_tensors(data).map(D.decode_image))).numpy()
    np.testing.assert_array_equal(in_data, eager)


def test_animated_webp_is_refused_not_crashing():
    # TF's WebP decoder corrupts the heap on RGB animations; decode_image refuses them first.
    frames = [_photo(seed=i) for i in range(3)]
    hr, reason = D.check_image(_animated(frames, "WEBP", lossless=True), 16, 8)
    assert hr is None and "animated WebP" in reason


def test_center_square_crops_the_middle_and_keeps_exact_sizes():
    wide = np.zeros((20, 60, 3), np.float32)
    wide[:, 20:40] = 1.0                                         # the centre square is white
    np.testing.assert_allclose(D.center_square(wide, 10).numpy(), 1.0, atol=1e-6)
    image = np.random.default_rng(0).uniform(size=(16, 16, 3)).astype(np.float32)
    np.testing.assert_array_equal(D.center_square(image, 16).numpy(), image)


# ----------------------------------------------------------------------------- bad inputs

BAD = {"truncated.jpg", "empty.png", "text.png", "tiny.png", "animated.webp"}


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory):
    """Good images of every kind plus bad files; min_image_size=32 makes 20×20 too small."""
    folder = tmp_path_factory.mktemp("mixed")
    (folder / "sub").mkdir()
    rgb = _photo()
    files = {
        "a.jpg": _encode(rgb, "JPEG"),
        "b.png": _encode(_photo(seed=1), "PNG"),
        "sub/c.webp": _encode(_photo(seed=2), "WEBP", lossless=True),
        "sub/d.bmp": _encode(_photo(seed=3), "BMP"),
        "e.gif": _animated([_photo(seed=4), _photo(seed=5)], "GIF"),
        "deep16.png": tf.io.encode_png((_photo(seed=6).astype(np.uint16) * 257)).numpy(),
        "gray.png": _encode(_photo(seed=7)[..., 0], "PNG"),
        "rgba.png": _encode(np.dstack([_photo(seed=8), _photo(seed=8)[..., :1]]), "PNG"),
        "panorama.jpg": _encode(_photo(40, 900, seed=9), "JPEG"),  # aspect ratio 22:1
        "truncated.jpg": _encode(_photo(seed=10), "JPEG")[:300],
        "empty.png": b"",
        "text.png": b"this is not an image\n",
        "tiny.png": _encode(_photo(20, 20, seed=11), "PNG"),
        "animated.webp": _animated([_photo(seed=12), _photo(seed=13)], "WEBP", lossless=True),
        "notes.txt": b"not an image extension: never listed",
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def _config(folder, **data):
    return DataConfig(source=str(folder), min_image_size=32, degrade=DegradeConfig(enabled=False),
                      **data)


def _hr_pass(report, data, count, seed=0, start=0):
    """HR outputs (at hr_size, in [0,255]) of examples start … start+count-1."""
    ds = D.make_dataset(report, MODEL, data, MODEL.hr_size, MODEL.lr_size, count, start, seed)
    return np.round((next(iter(ds))[1].numpy() + 1.0) * 127.5).astype(np.uint8)


def _which_images(outputs, images):
    """For each output, the index of the cached image it shows (flipped or not)."""
    found = []
    for out in outputs:
        hits = [k for k, im in enumerate(images)
                if np.array_equal(out, im) or np.array_equal(out, im[:, ::-1])]
        assert len(hits) == 1
        found.append(hits[0])
    return found


def test_bad_inputs_are_skipped_named_counted_and_every_good_one_is_used(mixed_folder, caplog):
    with caplog.at_level(logging.WARNING):
        report = D.scan(str(mixed_folder), MODEL.hr_size, 32, cache_mb=16)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == len(BAD)
    for name in BAD:
        assert sum(str(mixed_folder / name) in w for w in warnings) == 1, (name, warnings)
    assert {os.path.basename(p) for p, _ in report.skipped} == BAD
    reasons = dict((os.path.basename(p), r) for p, r in report.skipped)
    assert reasons["empty.png"] == "empty file" and reasons["tiny.png"].startswith("too small")
    assert reasons["animated.webp"] == ("not a decodable image: animated WebP is not supported; "
                                        "convert it to a still image")
    assert reasons["text.png"].startswith("not a decodable image: Unknown image file format")
    assert "9 usable images" in report.summary() and "5 skipped" in report.summary()
    good = {os.path.relpath(p, mixed_folder) for p in report.paths}
    assert good == {"a.jpg", "b.png", "sub/c.webp", "sub/d.bmp", "e.gif", "deep16.png",
                    "gray.png", "rgba.png", "panorama.jpg"}
    # One pass of the stream shows every usable image exactly once, cached or read from files.
    n = len(report.paths)
    for data in (_config(mixed_folder), _config(mixed_folder, cache_mb=0)):
        source = report if data.cache_mb else D.scan(str(mixed_folder), MODEL.hr_size, 32, 0)
        assert (source.images is None) == (data.cache_mb == 0)
        assert sorted(_which_images(_hr_pass(source, data, n), report.images)) == list(range(n))


def test_training_on_the_mixed_folder_runs(mixed_folder, tmp_path):
    config = tiny_config(str(mixed_folder),
                         schedule={"progressive": False, "fade_kimg": 0, "stable_kimg": 0.016},
                         run={"stop_kimg": 0.012})
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, min_image_size=32))
    trainer = trainer_lib.train(config, str(tmp_path / "run"))
    assert int(trainer.model.images_seen.numpy()) == 12
    assert len(trainer.report.skipped) == len(BAD)


def test_a_source_without_usable_images_fails_at_start(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.jpg").write_bytes(b"")
    (bad / "text.png").write_text("hello")
    with pytest.raises(D.DataError, match="no usable image"):
        D.scan(str(bad), 16)
    with pytest.raises(D.DataError, match="no such folder"):
        D.scan(str(tmp_path / "missing"), 16)
    result = subprocess.run(
        [sys.executable, "-m", "pan_tf.train", f"--data={bad}", "--lr_size=8", "--scale=2",
         "--fmap_base=64", "--fmap_max=8", f"--workdir={tmp_path / 'w'}", "--noexport"],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no usable image" in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr


# ----------------------------------------------------------------------------- TFRecords

@pytest.fixture(scope="module")
def shards(tmp_path_factory, image_folder):
    """image_folder (12 photos) plus one bad file, prepared as 3 shards of 16×16 PNGs."""
    folder = tmp_path_factory.mktemp("with_bad")
    for path in image_folder.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    prefix = str(tmp_path_factory.mktemp("records") / "faces")
    report = prepare_lib.prepare(str(folder), prefix, MODEL.hr_size, shards=3, progress=False)
    return folder, prefix, report


def test_prepare_writes_shards_and_records_match_the_folder(shards):
    folder, prefix, written = shards
    assert written.written == 12 and [os.path.basename(p) for p, _ in written.skipped] == ["broken.png"]
    assert written.shards == [f"{prefix}-{i:05d}-of-00003.tfrecord" for i in range(3)]
    from_folder = D.scan(str(folder), MODEL.hr_size, cache_mb=16)
    for source in (prefix, f"{prefix}-*.tfrecord", os.path.dirname(prefix)):
        records = D.scan(source, MODEL.hr_size, cache_mb=16)
        assert records.records is not None and sorted(records.paths) == sorted(
            os.path.basename(p) for p in from_folder.paths)
        by_name = dict(zip(records.paths, records.images))
        for path, image in zip(from_folder.paths, from_folder.images):
            np.testing.assert_array_equal(by_name[os.path.basename(path)], image)  # PNG is exact
    # Stored at 16, read at 8: resized like any other image.
    assert D.scan(prefix, 8, cache_mb=16).images.shape == (12, 8, 8, 3)


def test_streamed_records_cover_every_image_once_per_pass_and_resume_exactly(shards):
    _, prefix, _ = shards
    cached = D.scan(prefix, MODEL.hr_size, cache_mb=16)
    streamed = D.scan(prefix, MODEL.hr_size, cache_mb=0)
    assert streamed.images is None and "streamed from TFRecords" in streamed.summary()
    outputs = _hr_pass(streamed, CLEAN, 24)                      # two passes
    for one_pass in (outputs[:12], outputs[12:]):
        assert sorted(_which_images(one_pass, cached.images)) == list(range(12))
    assert _which_images(outputs[:12], cached.images) != _which_images(outputs[12:], cached.images)
    try:  # Keras sets a global seed; the stream must not depend on it (Dataset.shuffle would)
        tf.random.set_seed(1234)
        np.testing.assert_array_equal(_hr_pass(streamed, CLEAN, 24), outputs)
    finally:
        tf.random.set_seed(None)
    _assert_resumes(streamed, DEGRADED, starts=(5, 11))


def test_a_damaged_shard_is_read_up_to_the_damage(shards, tmp_path):
    _, prefix, _ = shards
    for i, name in enumerate(tf.io.gfile.glob(prefix + "-*.tfrecord")):
        data = open(name, "rb").read()
        (tmp_path / os.path.basename(name)).write_bytes(data[:len(data) * 2 // 3] if i == 0 else data)
    report = D.scan(str(tmp_path / "faces"), MODEL.hr_size, cache_mb=0)
    damaged = [r for _, r in report.skipped if r.startswith("damaged shard")]
    assert len(damaged) == 1 and 8 <= len(report.paths) < 12
    assert _hr_pass(report, CLEAN, 2 * len(report.paths)).shape[0] == 2 * len(report.paths)


# ----------------------------------------------------------------------------- the stream

def _assert_resumes(report, data, starts):
    """A stream started at k yields exactly examples k, k+1, … of the stream started at 0."""
    batch = 4
    dataset = D.make_dataset(report, MODEL, data, 8, 8, batch, 0, seed=5)
    assert b"PyFunc" not in dataset._as_serialized_graph().numpy()   # no Python on the hot path
    whole = [[t.numpy() for t in pair] for pair in dataset.take(5)]
    lr, hr = (np.concatenate([b[j] for b in whole]) for j in (0, 1))
    for k in starts:
        part = next(iter(D.make_dataset(report, MODEL, data, 8, 8, batch, k, seed=5)))
        np.testing.assert_array_equal(part[0].numpy(), lr[k:k + batch])
        np.testing.assert_array_equal(part[1].numpy(), hr[k:k + batch])
    other = next(iter(D.make_dataset(report, MODEL, data, 8, 8, batch, 0, seed=6)))
    assert not np.array_equal(other[0].numpy(), lr[:batch])


@pytest.mark.parametrize("cache_mb", [16, 0])
def test_the_stream_is_a_pure_function_of_seed_and_index(image_folder, cache_mb):
    report = D.scan(str(image_folder), MODEL.hr_size, cache_mb=cache_mb)
    _assert_resumes(report, DEGRADED, starts=(3, 10))           # 10: across a pass boundary


def test_degrade_prob_map_sets_each_stages_dose_and_nothing_else(image_folder):
    # MODEL's ladder: stage 8 restores 8 px, stage 16 super-resolves 8 -> 16. With every
    # input degraded except at 16, stage 16 streams exactly what --degrade_prob=0 gives
    # (same seeds: the gate has its own) and stage 8 exactly what the global 1.0 gives.
    report = D.scan(str(image_folder), MODEL.hr_size, cache_mb=16)

    def batch(data, res):
        lr, hr = next(iter(D.make_dataset(report, MODEL, data, res, 8, 8, 3, seed=5)))
        return lr.numpy(), hr.numpy()

    def at(prob, **fields):
        return dataclasses.replace(DEGRADED, degrade=dataclasses.replace(
            DEGRADED.degrade, degrade_prob=prob), **fields)

    mapped = at(1.0, degrade_prob_map=((16, 0.0),))
    for res, same, other in ((16, at(0.0), at(1.0)), (8, at(1.0), at(0.0))):
        lr, hr = batch(mapped, res)
        np.testing.assert_array_equal(lr, batch(same, res)[0])
        assert not np.array_equal(lr, batch(other, res)[0])
        np.testing.assert_array_equal(hr, batch(other, res)[1])   # the dose moves only LR
    assert mapped.degrade_at(16).degrade_prob == 0.0 and mapped.degrade_at(8) == mapped.degrade


@pytest.mark.parametrize("fields, message", [
    ({"degrade_prob_map": ((16, 1.5),)}, r"--degrade_prob_map: fraction at resolution 16"),
    ({"degrade_prob_map": ((16, 0.5),), "degrade": DegradeConfig(enabled=False)},
     "--degrade_prob_map needs --degrade"),
])
def test_bad_degrade_prob_map_is_refused_naming_the_flag(fields, message):
    with pytest.raises(ConfigError, match=message):
        dataclasses.replace(DEGRADED, **fields).validate()


# ----------------------------------------------------------------------------- zoom (--hr_zoom)

def _ramps(side):
    """Float image whose channels 0 and 1 are x and y, linear across the image, in [0,1]."""
    x = np.linspace(0.0, 1.0, side, dtype=np.float32)
    return np.stack([np.tile(x, (side, 1)), np.tile(x[:, None], (1, side)),
                     np.full((side, side), 0.5, np.float32)], axis=-1)


def test_zoom_crop_zooms_in_by_at_most_one_plus_zoom_and_stays_inside():
    side, size, zoom = 64, 16, 0.5
    image = _ramps(side)
    whole = D.zoom_crop(image, size, 0.0, tf.constant([1, 2], tf.int64)).numpy()
    full_span = whole[:, -1, 0].mean() - whole[:, 0, 0].mean()
    spans, lefts, tops = [], [], []
    for k in range(40):
        out = D.zoom_crop(image, size, zoom, tf.constant([7, k], tf.int64)).numpy()
        assert out.shape == (size, size, 3) and out.dtype == np.float32
        # Horizontal and vertical spans agree: the crop is square, its scale is 1/z for both.
        span_x = (out[:, -1, 0].mean() - out[:, 0, 0].mean()) / full_span
        span_y = (out[-1, :, 1].mean() - out[0, :, 1].mean()) / full_span
        assert abs(span_x - span_y) < 1e-3
        spans.append(span_x)
        lefts.append(out[:, 0, 0].mean())
        tops.append(out[0, :, 1].mean())
        # Inside the image: every value is one the ramps have (no padding, no extrapolation).
        assert out.min() >= 0.0 and out.max() <= 1.0
    spans = np.array(spans)
    # The crop's side is round(64 / z), z in [1, 1.5]: 43..64 pixels, so the span is
    # 42/63..1 of the whole ramp (the ramp runs over side - 1 steps); 1e-3 for resampling.
    assert spans.min() >= 42 / 63 - 1e-3 and spans.max() <= 1 + 1e-3
    assert spans.min() < 0.8 and spans.max() > 0.9            # it really draws zooms
    assert np.ptp(lefts) > 0.05 and np.ptp(tops) > 0.05         # and places
    # A given seed always gives the same crop.
    again = D.zoom_crop(image, size, zoom, tf.constant([7, 3], tf.int64)).numpy()
    np.testing.assert_array_equal(
        again, D.zoom_crop(image, size, zoom, tf.constant([7, 3], tf.int64)).numpy())


def test_zoomed_training_data_is_prepared_at_twice_the_size_and_resumes_exactly(image_folder):
    data = dataclasses.replace(DEGRADED, source=str(image_folder), cache_mb=16, hr_zoom=0.2)
    assert D.source_size(MODEL, data) == 2 * MODEL.hr_size
    report = D.scan_training_data(MODEL, data)
    assert report.images.shape[1:] == (32, 32, 3)
    _assert_resumes(report, data, starts=(3, 10))
    lr, hr = next(iter(D.make_dataset(report, MODEL, data, 16, 8, 4, 0, seed=5)))
    assert lr.shape == (4, 8, 8, 3) and hr.shape == (4, 16, 16, 3)
    plain = dataclasses.replace(data, hr_zoom=0.0)
    _, hr_plain = next(iter(D.make_dataset(D.scan_training_data(MODEL, plain), MODEL, plain,
                                           16, 8, 4, 0, seed=5)))
    assert not np.allclose(hr.numpy(), hr_plain.numpy(), atol=0.05)
    # The folder read without a cache gives the same examples as the cached one, up to the
    # cache's uint8 rounding: half a step is 1/255 in [-1, 1], and bicubic's negative lobes
    # (absolute weights sum to about 1.3) can add a third to it, so 2/255.
    uncached = D.scan_training_data(MODEL, dataclasses.replace(data, cache_mb=0))
    assert uncached.images is None
    _, hr_files = next(iter(D.make_dataset(uncached, MODEL, data, 16, 8, 4, 0, seed=5)))
    np.testing.assert_allclose(hr_files.numpy(), hr.numpy(), atol=2 / 255)


def test_zoom_keeps_the_minimum_image_size_of_the_hr_size(tmp_path):
    write_images(tmp_path / "f", 2, size=(12, 12))               # ≥ hr_size // 2 = 8, < 32
    data = DataConfig(source=str(tmp_path / "f"), hr_zoom=0.1)
    assert len(D.scan_training_data(MODEL, data).paths) == 2


@pytest.mark.parametrize("zoom", [-0.1, 1.5])
def test_zoom_out_of_range_is_refused_naming_the_flag(zoom):
    with pytest.raises(ConfigError, match=r"--hr_zoom must be in \[0, 1\]"):
        DataConfig(hr_zoom=zoom).validate()


def test_fixed_batch_is_deterministic_and_stage_shaped(image_folder):
    report = D.scan(str(image_folder), MODEL.hr_size, cache_mb=16)
    a = D.fixed_batch(report, MODEL, DEGRADED, 16, 8, 3, seed=2)
    b = D.fixed_batch(report, MODEL, DEGRADED, 16, 8, 3, seed=2)
    assert a[0].shape == (3, 8, 8, 3) and a[1].shape == (3, 16, 16, 3)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.numpy(), y.numpy())


def test_preview_command_writes_a_grid(image_folder, tmp_path):
    out = tmp_path / "preview.png"
    result = subprocess.run(
        [sys.executable, "-m", "pan_tf.data", f"--data={image_folder}", "--lr_size=8",
         "--scale=2", f"--preview={out}", "--preview_count=3"],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    grid = tf.io.decode_png(out.read_bytes()).numpy()
    assert grid.shape == (16, 3 * 2 * 16, 3)                     # one row of 3 HR | LR pairs
    assert "3 HR 16px | LR 8px pairs" in result.stdout


def test_prepare_command_line(image_folder, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pan_tf.prepare", f"--input={image_folder}",
         f"--output={tmp_path / 'x'}", "--size=16", "--shards=2", "--format=jpeg"],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "wrote 12 images to 2 shards; skipped 0" in result.stdout
    assert "prepare: 12/12 files" in result.stderr
    report = D.scan(str(tmp_path / "x"), 16, cache_mb=1)
    assert len(report.paths) == 12 and report.images.shape == (12, 16, 16, 3)


def test_comma_separated_sources_are_pooled(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    first = write_images(a, 3, size=(40, 40), seed=1)
    second = write_images(b, 2, size=(40, 40), seed=2)
    pooled = D.list_images(f"{a},{b / 'img00[0]*.png'}")
    assert pooled == sorted(first + second[:1])
    report = D.scan(f"{a}, {b}", hr_size=16)
    assert len(report.paths) == 5

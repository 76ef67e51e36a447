"""pan_tf.evaluate: how it uses the metrics (crop, Y, LR-consistency, pooling) and one
end-to-end run per LR source on the tiny export of test_enhance.

The metrics themselves are tested in test_metrics.py; nothing here repeats that.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import skimage.color
import skimage.data
import skimage.metrics
from PIL import Image

from conftest import smooth_image
from pan_tf import evaluate
from pan_tf.config import Config
from pan_tf.metrics import fid as fid_lib

FACES_DIR = Path(__file__).resolve().parents[2] / "shared/data/faces256"
ROUNDING_PSNR = 10 * np.log10(255.0 ** 2 * 12)    # uniform rounding error: var 1/12 → 58.92 dB


def _faces(n: int) -> list[np.ndarray]:
    if not FACES_DIR.is_dir():
        pytest.skip(f"{FACES_DIR} not found")
    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(FACES_DIR.glob("*.png"))[:n]]


def _reference(output, hr, crop):
    """PSNR/SSIM on RGB and Y by skimage alone (its own BT.601 Y)."""
    c = slice(crop, -crop) if crop else slice(None)
    out, ref = output[c, c].astype(np.float64), hr[c, c].astype(np.float64)
    y_out = skimage.color.rgb2ycbcr(out / 255.0)[..., 0]
    y_ref = skimage.color.rgb2ycbcr(ref / 255.0)[..., 0]
    ssim = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
    return {"psnr_rgb": skimage.metrics.peak_signal_noise_ratio(ref, out, data_range=255),
            "psnr_y": skimage.metrics.peak_signal_noise_ratio(y_ref, y_out, data_range=255),
            "ssim_rgb": skimage.metrics.structural_similarity(ref, out, channel_axis=-1, **ssim),
            "ssim_y": skimage.metrics.structural_similarity(y_ref, y_out, **ssim)}


def _assert_matches_skimage(output, hr, lr, crop):
    ours = evaluate.image_metrics(output, hr, lr, crop)
    for key, value in _reference(output, hr, crop).items():
        assert ours[key] == pytest.approx(value, abs=1e-3), key


@pytest.mark.parametrize("crop", [0, 4])
def test_psnr_ssim_match_skimage_on_faces(crop):
    for hr in _faces(3):                                    # a real ×4 bicubic SR result
        lr = evaluate.to_uint8(evaluate.bicubic_down(hr, 64))
        _assert_matches_skimage(evaluate.upscale_baseline(lr, 256, "bicubic"), hr, lr, crop)


@pytest.mark.parametrize("crop", [0, 3])
def test_psnr_ssim_match_skimage_on_generated_images(crop):
    rng = np.random.default_rng(3)
    hr = smooth_image(rng, 96, 96)
    noisy = np.clip(hr + rng.normal(0, 10, hr.shape), 0, 255).astype(np.uint8)
    _assert_matches_skimage(noisy, hr, evaluate.to_uint8(evaluate.bicubic_down(hr, 24)), crop)


def test_lr_consistency_of_hr_is_the_rounding_limit():
    # HR itself: only LR's uint8 rounding separates them → the rounding PSNR (no clipping
    # on this image, so the error is uniform on [-0.5, 0.5]).
    hr = evaluate.to_uint8(smooth_image(np.random.default_rng(4), 256, 256) * 0.8 + 20)
    lr = evaluate.to_uint8(evaluate.bicubic_down(hr, 64))
    assert evaluate.lr_consistency(hr, lr) == pytest.approx(ROUNDING_PSNR, abs=0.1)


def test_lr_consistency_of_bicubic_upscaling_matches_pillow():
    # Bicubic up then antialiased-bicubic down is a mild blur of LR: the same value as
    # Pillow's independent bicubic (Keys a = -0.5, antialiased) gives (measured: within
    # 0.07 dB, 35.7–39.4 dB on faces), and high.
    for hr in _faces(2):
        lr = evaluate.to_uint8(evaluate.bicubic_down(hr, 64))
        ours = evaluate.lr_consistency(evaluate.upscale_baseline(lr, 256, "bicubic"), lr)
        up = Image.fromarray(lr).resize((256, 256), Image.BICUBIC)
        pillow = evaluate.psnr(np.asarray(up.resize((64, 64), Image.BICUBIC)), lr)
        assert ours == pytest.approx(pillow, abs=0.2) and ours > 33.0


def test_average_pool_is_the_paper_x4_step():
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)
    pooled = evaluate.average_pool(image, 2)
    assert pooled.shape == (32, 24, 3)
    np.testing.assert_array_equal(pooled, np.round(image.reshape(32, 2, 24, 2, 3).mean((1, 3))))
    assert evaluate.average_pool(image, 1) is image


# -- end to end ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hr_dir(tmp_path_factory) -> Path:
    """4 HR faces (or synthetic photos) plus one corrupt file, which is skipped."""
    folder = tmp_path_factory.mktemp("hr")
    rng = np.random.default_rng(6)
    if FACES_DIR.is_dir():
        images = [np.asarray(Image.open(p).convert("RGB"))
                  for p in sorted(FACES_DIR.glob("*.png"))[:4]]
    else:
        images = [smooth_image(rng, 160, 200) for _ in range(4)]
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"face{i}.png")
    (folder / "broken.png").write_bytes(b"nope")
    return folder


class _ColourStats:
    """Stands in for InceptionFeatures: 2 features (mean, std), so FID of 4 images is
    well-conditioned and instant (2048-d covariances of 4 images are neither; the real
    loader is tested in test_metrics.py)."""

    def __init__(self, path):
        assert Path(path).is_file()

    def __call__(self, images):
        x = np.asarray(images, np.float64).reshape(len(images), -1)
        return np.stack([x.mean(1), x.std(1)], axis=1)


def test_end_to_end_writes_json_markdown_and_grid(model_dir, hr_dir, tmp_path, capsys,
                                                   monkeypatch):
    inception = tmp_path / "classify_image_graph_def.pb"
    inception.write_bytes(b"stand-in")
    monkeypatch.setattr(fid_lib, "InceptionFeatures", _ColourStats)
    out = tmp_path / "report"
    code = evaluate.main([f"--model={model_dir}", f"--hr_dir={hr_dir}", "--scale=4",
                          "--baselines=bicubic,lanczos3", f"--inception={inception}",
                          f"--report={out}"])
    assert code == 0
    assert "broken.png" in capsys.readouterr().err
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report) == {"model", "settings", "num_images", "images", "methods", "metrics",
                           "per_image", "notes"}
    assert report["num_images"] == 4 and report["methods"] == ["model", "bicubic", "lanczos3"]
    assert report["model"]["label"] == "x4" and report["settings"]["eval_size"] == 128
    assert report["settings"]["crop_border"] == 4
    for method in report["methods"]:
        metrics = report["metrics"][method]
        assert set(metrics) == {"psnr_rgb", "psnr_y", "ssim_rgb", "ssim_y", "niqe", "lr_psnr",
                                "swd", "fid"}
        assert metrics["swd"]["levels"] == [128, 64, 32, 16]
        assert len(metrics["swd"]["per_level"]) == 4
        assert all(metrics[k] is not None for k in ("niqe", "fid", "psnr_y"))   # 120 px ≥ 96
    assert set(report["metrics"]["hr"]) == {"niqe", "lr_psnr"}
    assert report["metrics"]["hr"]["lr_psnr"] > 55                   # the ceiling (rounding)
    bicubic = report["metrics"]["bicubic"]
    assert bicubic["psnr_y"] > report["metrics"]["model"]["psnr_y"]  # random weights lose
    assert len(report["per_image"]) == 4 and set(report["per_image"][0]) == {
        "name", "hr", "model", "bicubic", "lanczos3"}
    table = (tmp_path / "report.md").read_text()
    assert "| model |" in table and "| bicubic |" in table and "SWD 128" in table
    with Image.open(tmp_path / "report.png") as grid:      # 4 rows × 4 columns of 128 px
        assert grid.size == (4 * 128, 16 + 4 * 128)


def test_pool2_protocol_with_the_training_degradation(model_dir, hr_dir, tmp_path):
    out = tmp_path / "pooled"
    args = [f"--model={model_dir}", f"--hr_dir={hr_dir}", "--scale=4", "--pool=2",
            "--degrade=pipeline", "--max_images=2", "--baselines=none", f"--report={out}"]
    assert evaluate.main(args) == 0
    report = json.loads((tmp_path / "pooled.json").read_text())
    s = report["settings"]
    assert (s["eval_scale"], s["eval_size"], s["lr_size"], s["crop_border"]) == (2, 64, 32, 2)
    assert report["methods"] == ["model"] and report["num_images"] == 2
    assert report["metrics"]["model"]["swd"]["levels"] == [64, 32, 16]
    assert report["metrics"]["model"]["niqe"] is None                 # 60 px < 96
    assert any("NIQE is null" in n for n in report["notes"])
    assert any("FID skipped" in n for n in report["notes"])
    # Fixed per-image seeds: the same LR, hence the same numbers, on a second run.
    assert evaluate.main([*args[:-1], f"--report={tmp_path / 'again'}"]) == 0
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["metrics"] == report["metrics"]


def test_pipeline_protocol_degrades_every_image(model_dir):
    # Training keeps a fraction of inputs clean; the pipeline protocol must not.
    info = json.loads((Path(model_dir) / "4" / "assets" / "stage.json").read_text())
    assert Config.from_dict(info["config"]).data.degrade.degrade_prob < 1.0
    config = evaluate.pipeline_degradation(info)
    assert config.degrade_prob == 1.0
    hr = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((64, 64)))
    clean = evaluate.to_uint8(evaluate.degrade_lib.area_downsample(hr / 255.0, 4).numpy() * 255)
    # With every step forced on, no image comes out a plain downsample.
    forced = dataclasses.replace(config, enabled=True, blur_prob=1.0, noise_prob=1.0,
                                 jpeg_prob=1.0)
    for i in range(8):
        lr = evaluate.degrade_pipeline(hr, 4, forced, (0, i))
        assert np.abs(lr.astype(int) - clean).mean() > 1.0


def test_lr_dir_inputs_and_bad_flags(model_dir, hr_dir, tmp_path, capsys):
    lr_dir = tmp_path / "lr"
    lr_dir.mkdir()
    for name in ("face0", "face1"):                 # face2/face3 have no LR: skipped
        hr = evaluate.prepare_hr(np.asarray(Image.open(hr_dir / f"{name}.png")), 64)
        lr = evaluate.to_uint8(evaluate.bicubic_down(hr, 32))
        Image.fromarray(lr).save(lr_dir / f"{name}.png")
    out = tmp_path / "lr_report"
    assert evaluate.main([f"--model={model_dir}", f"--hr_dir={hr_dir}", "--scale=2",
                          f"--lr_dir={lr_dir}", f"--report={out}"]) == 0
    report = json.loads((tmp_path / "lr_report.json").read_text())
    assert report["images"] == ["face0.png", "face1.png"]
    assert report["model"]["label"] == "x2" and report["settings"]["lr_source"].startswith("lr_dir")
    assert capsys.readouterr().err.count("no LR file") == 2
    # A scale the export does not have fails with one line.
    assert evaluate.main([f"--model={model_dir}", f"--hr_dir={hr_dir}", "--scale=8",
                          f"--report={out}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --scale=8: --label=x8 is not exported")

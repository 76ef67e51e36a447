"""pan_tf.enhance: files in, files out; tiling equals the whole-image pass and shows no seam.

The model (conftest's model_dir) is the real export of a small random-weight
generator: lr_size 32, ×4 ladder (stages 8 … 128; version 3 = x2, 4 = x4), so the
encoder halves 32 → 4 and the pad multiple is 8, like the paper's network in
miniature. Noise scales are set to 0.05 so that the noise path does something.
Exporting takes ~3 s; no training is needed to test inference.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import smooth_image
from pan_tf import enhance, inference

FACES_DIR = Path(__file__).resolve().parents[2] / "shared/data/faces256"
@pytest.fixture(scope="module")
def x2(model_dir) -> inference.SRModel:
    return inference.load_model(model_dir, "x2")


def photo(height: int, width: int) -> np.ndarray:
    """A mosaic of real faces (texture at native resolution), or a synthetic photo."""
    if not FACES_DIR.is_dir():
        return smooth_image(np.random.default_rng(0), height, width)
    files = sorted(FACES_DIR.glob("*.png"))
    n_rows, n_cols = -(-height // 256), -(-width // 256)
    faces = [np.asarray(Image.open(files[i % len(files)]).convert("RGB"))
             for i in range(n_rows * n_cols)]
    rows = [np.concatenate(faces[r * n_cols:(r + 1) * n_cols], axis=1) for r in range(n_rows)]
    return np.ascontiguousarray(np.concatenate(rows, axis=0)[:height, :width])


# -- models ---------------------------------------------------------------------------
def test_version_resolution(model_dir):
    assert inference.resolve_version(model_dir).endswith("/4")                # highest
    assert inference.resolve_version(model_dir, "x2").endswith("/3")
    version = os.path.join(model_dir, "3")
    assert inference.resolve_version(version) == version
    with pytest.raises(inference.InferenceError, match=r"x8 .* x2 \(version 3\), x4"):
        inference.resolve_version(model_dir, "x8")
    with pytest.raises(inference.InferenceError, match="not --label=x4"):
        inference.resolve_version(version, "x4")
    with pytest.raises(inference.InferenceError, match="neither"):
        inference.resolve_version(os.path.dirname(model_dir))


# -- tile geometry --------------------------------------------------------------------
@pytest.mark.parametrize("length, tile, overlap", [(1000, 128, 16), (700, 128, 32),
                                                   (129, 128, 16), (300, 64, 0), (57, 24, 12),
                                                   (100, 16, 5)])
def test_tiles_are_aligned_and_weights_sum_to_one(x2, length, tile, overlap):
    tiling = enhance.make_tiling(x2, tile, overlap)
    spans = enhance.tile_spans(length, tiling)
    assert spans[0][0] == 0 and spans[-1][1] == length
    assert all(start % x2.pad_multiple == 0 for start, _ in spans)         # the stride grid
    assert all(stop - start > tiling.overlap for start, stop in spans)
    total = np.zeros(x2.scale * length)
    for start, stop in spans:
        total[x2.scale * start:x2.scale * stop] += enhance.span_weights(
            start, stop, length, tiling, x2.scale)
    np.testing.assert_allclose(total, 1.0, atol=1e-12)


def test_bad_tiles_are_refused(x2):
    with pytest.raises(inference.InferenceError, match="pad multiple 8"):
        enhance.make_tiling(x2, 4, 0)
    with pytest.raises(inference.InferenceError, match="half the tile"):
        enhance.make_tiling(x2, 64, 40)
    with pytest.raises(inference.InferenceError, match="no step"):
        enhance.make_tiling(x2, 8, 4)
    assert enhance.make_tiling(x2, 100, 10).tile == 96       # rounded to the pad multiple
    assert enhance.make_tiling(x2).tile == 128 and enhance.make_tiling(x2).overlap == 16


# -- tiled vs whole-image ----------------------------------------------------------------
def _boundary_lines(length: int, tiling, scale: int) -> list[int]:
    """Output rows/columns where a tile starts or stops inside the image."""
    spans = enhance.tile_spans(length, tiling)
    return sorted({scale * a for a, _ in spans[1:]} | {scale * b for _, b in spans[:-1]})


def _seam_ratio(diff: np.ndarray, tiling, scale: int, border: int) -> float:
    """Mean |diff| within ±scale px of tile boundary lines over mean |diff| elsewhere.

    Computed on the column profile and the row profile (means along the other axis,
    image borders excluded); the larger ratio of the two is returned.
    """
    ratios = []
    for axis in (0, 1):
        inner = diff[border:-border] if axis == 1 else diff[:, border:-border]
        profile = inner.mean(axis=1 - axis)                             # per column / row
        near = np.zeros(len(profile), bool)
        for line in _boundary_lines(len(profile) // scale, tiling, scale):
            near[max(line - scale, 0):line + scale] = True
        near[:border] = near[-border:] = False
        far = ~near
        far[:border] = far[-border:] = False
        ratios.append(profile[near].mean() / profile[far].mean())
    return max(ratios)


@pytest.fixture(scope="module")
def big_outputs(x2):
    """The 1000×700 photo through x2: whole, tiled (defaults but 128 px tiles), hard-cut.

    Noise off: the deterministic part of tiling is what can match; the noise fields
    of tiles differ by design (see test_tiled_noise_changes_no_more_than_reseeding).
    """
    image = photo(700, 1000)
    whole = x2.upscale(image[None], None, 0.0)[0].astype(np.float64)
    blended = enhance.make_tiling(x2, 128)                                # overlap 16
    hard = enhance.Tiling(tile=128, step=128)                            # no overlap, no blend
    return {"image": image, "whole": whole, "tilings": {"blended": blended, "hard": hard},
            "blended": enhance.enhance_tiled(x2, image, blended, None, 0.0).astype(np.float64),
            "hard": enhance.enhance_tiled(x2, image, hard, None, 0.0).astype(np.float64)}


def test_tiled_equals_untiled_away_from_borders(big_outputs, x2):
    # Tolerances, measured on this model and photo (blended / hard-cut tiles):
    #   mean |diff| 0.69 / 1.77, 99th percentile 5.3 / 16.3, 99.9th 9.7 / 31, max 24 / 66
    # grey levels (outputs are uint8, each rounded: ±1 is rounding alone). The bounds
    # sit between the two, so they pass blended tiles and fail naive ones. (Before the
    # resampling convs became ProGAN's fused ones the old 3×3 stride-2 transposed conv
    # passed ~¼ of the variance of a He-scaled conv, so the bottleneck's whole-tile
    # context reached the output weaker: 0.12 / 0.77 mean, 7 / 53 max; the paper-size
    # generator, random weights, ×4, 512 px tiles, overlap 64, gave max 1, mean 0.01.)
    border = 16 * x2.scale                                           # 16 LR px
    bounds = {"mean": 1.0, "p99": 9.0, "p999": 16.0, "max": 40.0}

    def stats(name):
        diff = np.abs(big_outputs[name] - big_outputs["whole"]).mean(-1)[border:-border,
                                                                          border:-border]
        return {"mean": diff.mean(), "p99": np.percentile(diff, 99),
                "p999": np.percentile(diff, 99.9), "max": diff.max()}

    blended, hard = stats("blended"), stats("hard")
    assert all(blended[k] <= bounds[k] for k in bounds), blended
    assert all(hard[k] > bounds[k] for k in bounds), hard              # the bounds bite


def test_no_seam_in_the_difference_image(big_outputs, x2):
    # All tiling error lives near tile boundaries; what makes a seam visible is a line
    # of error that stands out. Measured ratio (near-boundary / elsewhere) of mean
    # |diff|: blended 1.7–1.9, hard cuts 9–12. Factor 3 separates them with room.
    border = 16 * x2.scale
    tilings = big_outputs["tilings"]
    ratios = {name: _seam_ratio(np.abs(big_outputs[name] - big_outputs["whole"]).mean(-1),
                                tilings[name], x2.scale, border) for name in tilings}
    assert ratios["blended"] < 3.0, ratios
    assert ratios["hard"] > 3.0 * 2, ratios


def test_tiled_noise_changes_no_more_than_reseeding(x2):
    # With noise, tiles draw their own noise fields: the tiled output may differ from
    # the whole-image one only as much as two whole-image passes with two seeds do
    # (measured: 5.23 vs 5.27 grey levels, noise scale 0.05 on random weights).
    image = photo(300, 400)
    whole = x2.upscale(image[None], None, 1.0)[0].astype(np.float64)
    reseeded = x2.upscale(image[None], (5, 5), 1.0)[0].astype(np.float64)
    tiled = enhance.enhance_tiled(x2, image, enhance.make_tiling(x2, 128), None, 1.0)
    reseed_diff = np.abs(reseeded - whole).mean()
    assert reseed_diff > 1.0                                         # the noise does something
    assert np.abs(tiled - whole).mean() < 1.1 * reseed_diff


# -- the command --------------------------------------------------------------------------
def _save(path: Path, array: np.ndarray, **kwargs) -> None:
    Image.fromarray(array).save(path, **kwargs)


def test_folder_with_corrupt_gray_rgba_and_large_image(model_dir, tmp_path, capsys, monkeypatch):
    inputs, out = tmp_path / "in", tmp_path / "out"
    (inputs / "sub").mkdir(parents=True)
    rng = np.random.default_rng(1)
    big = photo(700, 1000)                                                   # 1000 wide
    _save(inputs / "big.png", big)
    _save(inputs / "gray.png", smooth_image(rng, 50, 60)[..., 0])
    rgba = np.concatenate([smooth_image(rng, 36, 36), np.full((36, 36, 1), 100, np.uint8)], -1)
    _save(inputs / "rgba.png", rgba)
    _save(inputs / "sub" / "a.jpg", smooth_image(rng, 40, 40), quality=90)   # same size as b
    _save(inputs / "b.png", smooth_image(rng, 40, 40))
    (inputs / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 50)
    jpeg = (inputs / "sub" / "a.jpg").read_bytes()
    (inputs / "truncated.jpg").write_bytes(jpeg[:len(jpeg) // 3])
    (inputs / "notes.txt").write_text("not an image, not an input")

    tiled_calls, model_calls = [], []
    real_tiled = enhance.enhance_tiled
    monkeypatch.setattr(enhance, "enhance_tiled",
                        lambda model, rgb, *a, **k: tiled_calls.append(rgb.shape)
                        or real_tiled(model, rgb, *a, **k))
    real_upscale = inference.SRModel.upscale
    monkeypatch.setattr(inference.SRModel, "upscale",
                        lambda self, images, *a, **k: model_calls.append(images.shape)
                        or real_upscale(self, images, *a, **k))

    code = enhance.main([f"--model={model_dir}", "--label=x2", f"--input={inputs}",
                         f"--output_dir={out}", "--tile=128"])
    err = capsys.readouterr().err
    assert code == 0
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2
    assert any("corrupt.png" in w for w in warnings) and any("truncated.jpg" in w for w in warnings)

    assert tiled_calls == [(700, 1000, 3)]                    # only the large one is tiled
    assert (2, 40, 40, 3) in model_calls                      # a.jpg and b.png share a batch
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["b.png", "big.png", "gray.png", "rgba.png", "sub/a.png"]
    with Image.open(out / "big.png") as im:
        assert im.size == (2000, 1400) and im.mode == "RGB"
    with Image.open(out / "gray.png") as im:
        assert im.size == (120, 100) and im.mode == "L"
    with Image.open(out / "rgba.png") as im:
        assert im.mode == "RGBA" and im.size == (72, 72)
        assert np.all(np.abs(np.asarray(im)[..., 3].astype(int) - 100) <= 1)


def test_only_corrupt_files_exit_nonzero(model_dir, tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.png").write_bytes(b"")
    (inputs / "b.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    code = enhance.main([f"--model={model_dir}", f"--input={inputs}",
                         f"--output_dir={tmp_path / 'out'}"])
    assert code != 0
    assert capsys.readouterr().err.count("warning: skipping") == 2
    # Flags and paths that cannot work fail with one line, not a traceback.
    code = enhance.main([f"--model={model_dir}", f"--input={tmp_path / 'missing'}",
                         f"--output_dir={tmp_path / 'out'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no such file" in err[0]


def test_format_seed_and_noise_strength(model_dir, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    _save(inputs / "x.jpg", smooth_image(np.random.default_rng(2), 48, 40), quality=95)
    args = [f"--model={model_dir}", "--label=x2", f"--input={inputs / 'x.jpg'}"]

    def run(name, *extra):
        assert enhance.main([*args, f"--output_dir={tmp_path / name}", *extra]) == 0
        files = list((tmp_path / name).iterdir())
        assert len(files) == 1
        with Image.open(files[0]) as im:
            return files[0].name, im.format, np.asarray(im.convert("RGB")).astype(int)

    name, fmt, default = run("default")
    assert (name, fmt, default.shape) == ("x.png", "PNG", (96, 80, 3))
    assert run("same", "--format=same")[:2] == ("x.jpg", "JPEG")
    # The default seed is the export's own: the output equals serving_default's.
    served = inference.load_model(model_dir, "x2").module.signatures["serving_default"](
        images=tf.constant(np.asarray(Image.open(inputs / "x.jpg"))[None]))["sr_images"]
    np.testing.assert_array_equal(default, served.numpy()[0])
    reseeded = run("seed", "--seed=7")[2]
    assert np.abs(reseeded - default).mean() > 1.0
    silent_a = run("silent_a", "--noise_strength=0", "--seed=7")[2]
    silent_b = run("silent_b", "--noise_strength=0", "--seed=8,1")[2]
    np.testing.assert_array_equal(silent_a, silent_b)                 # no noise, no seed effect

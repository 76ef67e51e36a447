"""Tests for pan_tf.metrics: PSNR/SSIM against skimage, NIQE, SWD and FID."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import scipy.ndimage
import skimage.data
import skimage.metrics
from PIL import Image

from pan_tf.metrics.fid import (InceptionFeatures, compute_statistics, fid_from_features,
                                frechet_distance)
from pan_tf.metrics.niqe import fit_aggd, imresize, mscn, niqe, niqe_features
from pan_tf.metrics.psnr_ssim import psnr, rgb_to_y, ssim
from pan_tf.metrics.swd import laplacian_pyramid, sliced_wasserstein, swd

FACES_DIR = Path(__file__).resolve().parents[2] / 'shared/data/faces256'

# NIQE of skimage.data.astronaut() (512×512, BT.601 Y, float), pinned from this
# implementation; in the usual range for a clean photograph.
ASTRONAUT_NIQE = 3.0800464412523536


def _smooth_rgb(rng, size=64):
    """A random smooth RGB image in [0, 255], float64 [size,size,3]."""
    noise = rng.normal(size=(size, size, 3))
    img = scipy.ndimage.gaussian_filter(noise, sigma=(2, 2, 0))
    img = (img - img.min()) / (img.max() - img.min())
    return 255 * img


def _skimage_ssim(a, b, channel_axis=-1):
    return skimage.metrics.structural_similarity(
        np.asarray(a, np.float64), np.asarray(b, np.float64), gaussian_weights=True,
        sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=channel_axis)


def _skimage_psnr(a, b):
    return skimage.metrics.peak_signal_noise_ratio(
        np.asarray(a, np.float64), np.asarray(b, np.float64), data_range=255)


def _load_faces(n, start=0):
    if not FACES_DIR.is_dir():
        pytest.skip(f'{FACES_DIR} not found')
    files = sorted(FACES_DIR.glob('*.png'))[start:start + n]
    return [np.asarray(Image.open(f).convert('RGB')) for f in files]


# ----------------------------------------------------------------------------------------
# PSNR / SSIM

def test_rgb_to_y_matches_bt601_definition():
    img = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0]]], np.uint8)   # [1,3,3]
    y = rgb_to_y(img)
    np.testing.assert_allclose(y, [[16.0, 235.0, 16 + 65.481]], atol=1e-9)


@pytest.mark.parametrize('crop_border', [0, 4])
def test_psnr_ssim_match_skimage_on_generated_images(crop_border):
    rng = np.random.default_rng(0)
    a = _smooth_rgb(rng)
    b = np.clip(a + rng.normal(0, 12, a.shape), 0, 255)
    c = slice(crop_border, -crop_border) if crop_border else slice(None)
    assert psnr(a, b, crop_border) == pytest.approx(_skimage_psnr(a[c, c], b[c, c]), abs=1e-3)
    assert ssim(a, b, crop_border) == pytest.approx(_skimage_ssim(a[c, c], b[c, c]), abs=1e-3)
    ya, yb = rgb_to_y(a[c, c]), rgb_to_y(b[c, c])
    assert psnr(a, b, crop_border, y_channel=True) == pytest.approx(
        _skimage_psnr(ya, yb), abs=1e-3)
    assert ssim(a, b, crop_border, y_channel=True) == pytest.approx(
        _skimage_ssim(ya, yb, channel_axis=None), abs=1e-3)


def test_psnr_ssim_match_skimage_on_faces():
    face, = _load_faces(1)
    rng = np.random.default_rng(1)
    blurred = scipy.ndimage.gaussian_filter(face.astype(np.float64), sigma=(1.5, 1.5, 0))
    noisy = np.clip(blurred + rng.normal(0, 5, face.shape), 0, 255).round().astype(np.uint8)
    assert psnr(face, noisy) == pytest.approx(_skimage_psnr(face, noisy), abs=1e-3)
    assert ssim(face, noisy) == pytest.approx(_skimage_ssim(face, noisy), abs=1e-3)
    yf, yn = rgb_to_y(face[8:-8, 8:-8]), rgb_to_y(noisy[8:-8, 8:-8])
    assert psnr(face, noisy, crop_border=8, y_channel=True) == pytest.approx(
        _skimage_psnr(yf, yn), abs=1e-3)
    assert ssim(face, noisy, crop_border=8, y_channel=True) == pytest.approx(
        _skimage_ssim(yf, yn, channel_axis=None), abs=1e-3)


def test_psnr_ssim_identical_and_errors():
    img = _smooth_rgb(np.random.default_rng(2), 32)
    assert psnr(img, img) == float('inf')
    assert ssim(img, img) == pytest.approx(1.0)
    with pytest.raises(ValueError, match='same shape'):
        psnr(img, img[:-1])
    with pytest.raises(ValueError, match='at least 11'):
        ssim(img[:8, :8], img[:8, :8])


# ----------------------------------------------------------------------------------------
# NIQE

def test_aggd_fit_recovers_laplace_and_gaussian():
    rng = np.random.default_rng(3)
    samples = np.stack([rng.laplace(0, 2.0, 200_000), rng.normal(0, 1.5, 200_000)])
    alpha, beta_l, beta_r = fit_aggd(samples)
    # GGD exp(-(|x|/β)^α): Laplace(b) has α = 1, β = b; N(0, σ²) has α = 2, β = √2 σ.
    np.testing.assert_allclose(alpha, [1.0, 2.0], rtol=0.03)
    np.testing.assert_allclose(beta_l, [2.0, 1.5 * np.sqrt(2)], rtol=0.03)
    np.testing.assert_allclose(beta_r, [2.0, 1.5 * np.sqrt(2)], rtol=0.03)


def test_imresize_half_matches_matlab_geometry_and_pil_interior():
    ramp = np.tile(np.arange(40, dtype=np.float64), (40, 1))               # [40,40]
    half = imresize(ramp, 0.5)
    assert half.shape == (20, 20)
    # The cubic kernel reproduces linear functions: interior = mean of pixel pairs.
    np.testing.assert_allclose(half[:, 4:-4], (ramp[:20, 8:-8:2] + ramp[:20, 9:-8:2]) / 2,
                               atol=1e-9)
    np.testing.assert_allclose(imresize(np.full((12, 18), 7.5), 0.5), 7.5, atol=1e-12)
    # PIL's bicubic has the same antialiased kernel; only its border handling differs.
    img = rgb_to_y(skimage.data.astronaut())[:96, :96]
    pil = np.asarray(Image.fromarray(img.astype(np.float32), 'F').resize((48, 48),
                                                                          Image.BICUBIC))
    np.testing.assert_allclose(imresize(img, 0.5)[4:-4, 4:-4], pil[4:-4, 4:-4], atol=1e-3)


def test_niqe_features_invariant_to_constant_shift():
    # A textured image without flat areas: in exactly flat areas MSCN values are
    # rounding noise (~1e-12) and the AGGD fit of such blocks depends on its signs.
    rng = np.random.default_rng(4)
    luma = 40 + 150 * rgb_to_y(_smooth_rgb(rng, 192)) / 255                # [192,192]
    np.testing.assert_allclose(mscn(luma + 30.0), mscn(luma), atol=1e-9)
    feats = niqe_features(luma)
    assert feats.shape == (4, 36)
    np.testing.assert_allclose(niqe_features(luma + 30.0), feats, atol=1e-6)


def test_niqe_pinned_value_on_astronaut():
    value = niqe(skimage.data.astronaut())
    print(f'NIQE(astronaut) = {value!r}')
    assert 2.5 < value < 5.5
    assert value == pytest.approx(ASTRONAUT_NIQE, rel=1e-6)
    # Same image passed as luma; cropping one border pixel keeps 5×5 blocks.
    assert niqe(rgb_to_y(skimage.data.astronaut())) == pytest.approx(ASTRONAUT_NIQE, rel=1e-9)
    assert np.isfinite(niqe(skimage.data.astronaut(), crop_border=1))


def test_niqe_increases_with_noise():
    img = skimage.data.astronaut().astype(np.float64)
    rng = np.random.default_rng(5)
    scores = [niqe(np.clip(img + rng.normal(0, s, img.shape), 0, 255)) if s else niqe(img)
              for s in (0, 5, 10, 20)]
    assert all(a < b for a, b in zip(scores, scores[1:])), scores


def test_niqe_rejects_small_images():
    with pytest.raises(ValueError, match='at least 96'):
        niqe(np.zeros((64, 200, 3)))


# ----------------------------------------------------------------------------------------
# SWD

@pytest.fixture(scope='module')
def crops64():
    """24 RGB crops [24,64,64,3] of astronaut at half resolution, float64."""
    img = skimage.data.astronaut().astype(np.float64)
    img = img.reshape(256, 2, 256, 2, 3).mean(axis=(1, 3))                 # [256,256,3]
    rng = np.random.default_rng(6)
    corners = rng.integers(0, 256 - 64, size=(24, 2))
    return np.stack([img[y:y + 64, x:x + 64] for y, x in corners])


def test_laplacian_pyramid_levels_and_reconstruction(crops64):
    pyramid = laplacian_pyramid(crops64[:4])
    assert [p.shape for p in pyramid] == [(4, 64, 64, 3), (4, 32, 32, 3), (4, 16, 16, 3)]
    # Collapsing the pyramid (upsample + add the band) gives back the image.
    from pan_tf.metrics.swd import _pyr_up
    recon = pyramid[-1]
    for band in pyramid[-2::-1]:
        recon = band + _pyr_up(recon)
    np.testing.assert_allclose(recon, crops64[:4], atol=1e-3)


def test_swd_identical_sets_is_zero_and_shapes(crops64):
    result = swd(crops64, crops64, seed=0)
    assert result['levels'] == [64, 32, 16]
    assert len(result['per_level']) == 3
    assert result['per_level'] == [0.0, 0.0, 0.0] and result['average'] == 0.0


@pytest.mark.parametrize('kind', ['noise', 'blur'])
def test_swd_grows_with_degradation(crops64, kind):
    rng = np.random.default_rng(7)
    def degrade(strength):
        if kind == 'noise':
            return np.clip(crops64 + rng.normal(0, strength, crops64.shape), 0, 255)
        return scipy.ndimage.gaussian_filter(crops64, sigma=(0, strength, strength, 0))
    strengths = (4, 12, 36) if kind == 'noise' else (0.6, 1.2, 2.4)
    results = [swd(crops64, degrade(s), seed=0) for s in strengths]
    averages = [r['average'] for r in results]
    finest = [r['per_level'][0] for r in results]
    assert 0 < averages[0] < averages[1] < averages[2], averages
    assert 0 < finest[0] < finest[1] < finest[2], finest


def test_swd_order_symmetry_and_batching(crops64):
    rng = np.random.default_rng(8)
    noisy = np.clip(crops64 + rng.normal(0, 12, crops64.shape), 0, 255)
    base = swd(crops64, noisy, seed=0)
    # Reordering the images (pairs kept) moves the sampling positions: equal up to
    # sampling noise (about 5% with 24 images), not bit for bit.
    perm = rng.permutation(len(crops64))
    reordered = swd(crops64[perm], noisy[perm], seed=0)
    np.testing.assert_allclose(reordered['per_level'], base['per_level'], rtol=0.15)
    # Symmetric, and independent of how images are batched.
    np.testing.assert_allclose(swd(noisy, crops64, seed=0)['per_level'], base['per_level'],
                               rtol=1e-9)
    np.testing.assert_allclose(swd(crops64, noisy, seed=0, batch_size=5)['per_level'],
                               base['per_level'], rtol=1e-9)


def test_sliced_wasserstein_invariant_to_descriptor_order():
    rng = np.random.default_rng(9)
    a, b = rng.normal(size=(500, 20)), rng.normal(0.3, 1.0, size=(500, 20))
    d = sliced_wasserstein(a, b, np.random.default_rng(0))
    d_perm = sliced_wasserstein(a[rng.permutation(500)], b[rng.permutation(500)],
                                np.random.default_rng(0))
    assert d == pytest.approx(d_perm, rel=1e-12)
    assert sliced_wasserstein(a, a, np.random.default_rng(0)) == 0.0


# ----------------------------------------------------------------------------------------
# FID

def _direct_fid(mu1, s1, mu2, s2):
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean)


def test_frechet_distance_matches_direct_formula():
    rng = np.random.default_rng(10)
    x = rng.normal(size=(400, 16)) @ rng.normal(size=(16, 16))
    y = rng.normal(0.5, 1.0, size=(300, 16)) @ rng.normal(size=(16, 16))
    mu1, s1 = compute_statistics(x)
    mu2, s2 = compute_statistics(y)
    np.testing.assert_allclose(mu1, x.mean(0))
    np.testing.assert_allclose(s1, np.cov(x, rowvar=False))
    expected = _direct_fid(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)
    assert fid_from_features(x, y) == pytest.approx(expected, rel=1e-8)
    assert abs(frechet_distance(mu1, s1, mu1, s1)) < 1e-6


def test_frechet_distance_singular_covariance_is_finite():
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=(5, 32)), rng.normal(size=(5, 32))    # rank-4 covariances
    assert np.isfinite(fid_from_features(x, y))


def _write_fake_inception(path, weights, output_name='pool_3'):
    """A tiny GraphDef with the FID tensor names: pool_3 = mean colour @ weights."""
    import tensorflow as tf
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, None, None, 3], name='ExpandDims')
        # float64 mean: a float32 one is off by ~1e-3 relative over 299×299 pixels.
        mean = tf.cast(tf.reduce_mean(tf.cast(x, tf.float64), axis=[1, 2]), tf.float32)
        feats = tf.matmul(mean, tf.constant(weights))                             # [N,2048]
        tf.reshape(feats, [-1, 1, 1, weights.shape[1]], name=output_name)
    path.write_bytes(graph.as_graph_def().SerializeToString())


def test_inception_features_loads_graphdef(tmp_path):
    rng = np.random.default_rng(12)
    weights = rng.normal(size=(3, 2048)).astype(np.float32)
    path = tmp_path / 'classify_image_graph_def.pb'
    _write_fake_inception(path, weights)
    inception = InceptionFeatures(path, batch_size=3)
    # 299×299 input: the resize is the identity.
    images = rng.uniform(0, 255, size=(5, 299, 299, 3)).astype(np.float32)
    feats = inception(images)
    assert feats.shape == (5, 2048) and feats.dtype == np.float64
    expected = images.astype(np.float64).mean(axis=(1, 2)) @ weights
    np.testing.assert_allclose(feats, expected, rtol=1e-4, atol=1e-2)
    # Other sizes are resized to 299×299 first; a constant colour survives any resize.
    colours = rng.integers(0, 256, size=(4, 3)).astype(np.uint8)
    flat = np.broadcast_to(colours[:, None, None, :], (4, 64, 48, 3))
    np.testing.assert_allclose(inception(flat), colours.astype(np.float32) @ weights,
                               rtol=1e-4, atol=1e-2)


def test_inception_features_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='inception-2015-12-05'):
        InceptionFeatures(tmp_path / 'missing.pb')
    path = tmp_path / 'wrong.pb'
    _write_fake_inception(path, np.ones((3, 2048), np.float32), output_name='logits')
    with pytest.raises(ValueError, match='pool_3'):
        InceptionFeatures(path)

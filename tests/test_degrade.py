"""Tests for pan_tf.degrade: every op eagerly and inside tf.data, kernels, noise, JPEG."""

import dataclasses

import numpy as np
import pytest
import scipy.ndimage
import scipy.signal
import skimage.data
import tensorflow as tf

from pan_tf import degrade as D

CFG = D.DegradeConfig()
ALL_ON = dataclasses.replace(CFG, blur_prob=1.0, motion_prob=1.0, noise_prob=1.0,
                             poisson_prob=1.0, jpeg_prob=1.0, degrade_prob=1.0)
HALF_CLEAN = dataclasses.replace(ALL_ON, degrade_prob=0.5)


def _seed(a, b=7, dtype=tf.int32):
    return tf.constant([a, b], dtype)


def _random_image(size, seed=0):
    return tf.random.stateless_uniform([size, size, 3], _seed(seed, 99))


@pytest.fixture(scope="module")
def astronaut():
    """A real 128×128 photo in [0, 1] (skimage's astronaut, box-downsampled 4×)."""
    image = skimage.data.astronaut().astype(np.float32) / 255.0
    return D.area_downsample(image, 4).numpy()


# Each op as f(image [32,32,3], seed [2]) -> tensor, so one harness runs them all. The
# kernels' parameters come from the seed so that different seeds must differ.
OPS = {
    "gaussian_kernel": lambda x, s: D.gaussian_kernel(
        2 * tf.random.stateless_uniform([], s, 1, 10, tf.int32) + 1,
        tf.random.stateless_uniform([], s, 0.5, 4.0), 2.0, 0.3, max_size=21),
    "random_aperture_kernel": lambda x, s: D.random_aperture_kernel(s, CFG),
    "motion_kernel": lambda x, s: D.motion_kernel(s, 9.0, 23, 24),
    "random_motion_kernel": lambda x, s: D.random_motion_kernel(s, CFG),
    "convolve_kernels": lambda x, s: D.convolve_kernels(
        D.random_aperture_kernel(s, CFG), D.random_motion_kernel(s, CFG)),
    "blur": lambda x, s: D.blur(x, D.random_motion_kernel(s, CFG)),
    "downsample_area": lambda x, s: D.area_downsample(x, 4),
    "downsample_bilinear": lambda x, s: D.downsample(x, 4, "bilinear"),
    "downsample_bicubic": lambda x, s: D.downsample(x, 4, "bicubic"),
    "random_downsample": lambda x, s: D.random_downsample(x, s, 2),
    "gaussian_noise": lambda x, s: D.add_gaussian_noise(x, s, 0.05),
    "gaussian_noise_gray": lambda x, s: D.add_gaussian_noise(x, s, 0.05, gray=True),
    "poisson_noise": lambda x, s: D.add_poisson_noise(x, s, 100.0),
    "jpeg": lambda x, s: D.jpeg_compress(x, tf.random.stateless_uniform([], s, 10, 90, tf.int32)),
    "degrade": lambda x, s: D.degrade(x, s, 4, ALL_ON),
    "degrade_default": lambda x, s: D.degrade(x, s, 2, CFG),
    "degrade_half_clean": lambda x, s: D.degrade(x, s, 2, HALF_CLEAN),
}
DETERMINISTIC = {"downsample_area", "downsample_bilinear", "downsample_bicubic"}
# Few outcomes, so two seeds may agree: tested separately below.
DISCRETE = {"random_downsample", "degrade_half_clean"}


# Eager ops and a graph may run a convolution through different CPU kernels that sum in
# another order. On the earlier CI host they agreed bit for bit; on an AVX2-only EPYC the
# blurs differed by up to 2.4e-7 (values in [0, 1]) and the kernel convolutions by
# 9.3e-10, float32 rounding. Other draws differ by over 100× that (asserted below; the
# closest, two Gaussian kernels, by 7.4e-4), so 1e-6 still tells same draws from other.
SAME_DRAWS_ATOL = 1e-6


@pytest.mark.parametrize("name", sorted(OPS))
def test_eager_equals_tf_data_and_tf_function(name):
    # Same kernels, same inputs, same stateless draws: equal up to float32 rounding.
    op, image = OPS[name], _random_image(32)
    seeds = [_seed(i) for i in range(3)]
    eager = [op(image, s).numpy() for s in seeds]
    ds = tf.data.Dataset.from_tensor_slices(tf.stack(seeds)).map(
        lambda s: op(image, s), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    for expected, got in zip(eager, ds):
        assert got.shape == expected.shape
        np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=SAME_DRAWS_ATOL)
    graph = tf.function(op)                                   # full grappler, unlike tf.data's
    for seed, expected in zip(seeds, eager):
        np.testing.assert_allclose(graph(image, seed).numpy(), expected, rtol=0,
                                   atol=SAME_DRAWS_ATOL)
    np.testing.assert_array_equal(op(image, seeds[0]).numpy(), eager[0])  # same seed, same bytes
    if name not in DETERMINISTIC | DISCRETE:
        for a, b in ((eager[0], eager[1]), (eager[1], eager[2])):
            assert a.shape != b.shape or np.max(np.abs(a - b)) > 100 * SAME_DRAWS_ATOL


def test_degrade_int64_seed_and_dynamic_shape():
    image, seed = _random_image(32), _seed(3)
    expected = D.degrade(image, seed, 4, ALL_ON).numpy()
    np.testing.assert_array_equal(D.degrade(image, tf.cast(seed, tf.int64), 4, ALL_ON).numpy(),
                                  D.degrade(image, tf.cast(seed, tf.int64), 4, ALL_ON).numpy())
    dynamic = tf.function(lambda x, s: D.degrade(x, s, 4, ALL_ON), input_signature=[
        tf.TensorSpec([None, None, 3]), tf.TensorSpec([2], tf.int32)])
    np.testing.assert_array_equal(dynamic(image, seed).numpy(), expected)


# ----------------------------------------------------------------------------- kernels

def _centroid(k):
    ys, xs = np.indices(k.shape)
    return np.array([(ys * k).sum(), (xs * k).sum()]) / k.sum()


def _check_kernel(k):
    assert k.dtype == np.float32 and k.ndim == 2 and k.shape[0] == k.shape[1] and k.shape[0] % 2
    assert k.min() >= 0.0
    assert abs(k.sum() - 1.0) < 1e-5


@pytest.mark.parametrize("size,sx,sy,theta", [
    (5, 1.0, 1.0, 0.0), (21, 4.0, 1.0, 0.7), (41, 10.0, 0.1, 2.0), (3, 0.1, 0.1, 0.0)])
def test_gaussian_kernel(size, sx, sy, theta):
    k = D.gaussian_kernel(size, sx, sy, theta).numpy()
    _check_kernel(k)
    np.testing.assert_allclose(_centroid(k), [size // 2] * 2, atol=1e-4)
    np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-7)


def test_gaussian_kernel_embedded_and_rotated():
    k = D.gaussian_kernel(tf.constant(7), 3.0, 3.0, 0.0, max_size=21).numpy()
    assert k.shape == (21, 21) and k[:7].sum() == 0 and k[:, 14:].sum() == 0
    small = D.gaussian_kernel(7, 3.0, 3.0, 0.0).numpy()
    np.testing.assert_allclose(k[7:14, 7:14], small, atol=1e-7)
    wide_x = D.gaussian_kernel(21, 4.0, 1.0, 0.0).numpy()       # spread along x (columns)
    wide_y = D.gaussian_kernel(21, 4.0, 1.0, np.pi / 2).numpy()
    np.testing.assert_allclose(wide_y, wide_x.T, atol=1e-6)
    assert wide_x[10, 14] > 10 * wide_x[14, 10]


def test_random_aperture_kernels():
    sizes, aniso = set(), 0
    for i in range(30):
        k = D.random_aperture_kernel(_seed(i), CFG).numpy()
        _check_kernel(k)
        assert k.shape == (41, 41)
        np.testing.assert_allclose(_centroid(k), [20, 20], atol=1e-3)
        support = np.nonzero(k.sum(0) > 0)[0]
        sizes.add(support[-1] - support[0] + 1)
        aniso += not np.allclose(k, k.T, atol=1e-6)
    # Small σ underflows to exact zeros near the window's edge, so a support can be narrower
    # than its drawn size; it is still odd (symmetric) and never wider than 41.
    assert sizes <= set(range(1, 42, 2)) and len(sizes) > 3
    assert 0 < aniso < 30


def _high_frequency_energy(image):
    """Fraction of spectral energy above a quarter of the Nyquist radius (gray image)."""
    spectrum = np.abs(np.fft.fft2(image - image.mean())) ** 2
    fy, fx = np.meshgrid(*(np.fft.fftfreq(n) for n in image.shape), indexing="ij")
    return spectrum[np.hypot(fy, fx) > 0.125].sum() / spectrum.sum()


def test_larger_sigma_blurs_more(astronaut):
    energies = []
    for sigma in (0.1, 0.5, 1.0, 2.0, 4.0):
        blurred = D.blur(astronaut, D.gaussian_kernel(21, sigma, sigma, 0.0)).numpy()
        energies.append(_high_frequency_energy(blurred.mean(-1)))
    assert all(a > b for a, b in zip(energies, energies[1:])), energies


@pytest.mark.parametrize("length", [0.0, 1.5, 8.0, 20.0])
def test_motion_kernels_are_centred_connected_paths(length):
    size = D.DegradeConfig(motion_length=(0.0, 20.0)).motion_kernel_size
    for i in range(8):
        k = D.motion_kernel(_seed(i, 3), length, size, 32).numpy()
        _check_kernel(k)
        np.testing.assert_allclose(_centroid(k), [size // 2] * 2, atol=2e-3)
        # Threshold 0 is exact here: splat weights are products of non-negative tent values and
        # every sample gives its floor pixel a weight > 0, so no round-off creates or hides support.
        _, components = scipy.ndimage.label(k > 0, structure=np.ones((3, 3)))
        assert components == 1
        rows, cols = np.nonzero(k > 0)
        extent = max(np.ptp(rows), np.ptp(cols))
        assert length - 1 <= extent <= length + 2             # splats reach one pixel past the path


# ----------------------------------------------------------------------------- blur, downsampling

@pytest.mark.parametrize("size,ksize", [(32, 21), (16, 41), (24, 5)])
def test_blur_matches_reference_convolution(size, ksize):
    image = _random_image(size).numpy()
    kernel = D.motion_kernel(_seed(1), (ksize - 3) / 2, ksize, 16).numpy()  # asymmetric: flips show
    pad = ksize // 2
    padded = np.pad(image, [(pad, pad), (pad, pad), (0, 0)], mode="symmetric")
    expected = np.stack([scipy.signal.convolve(padded[..., c], kernel, "valid", method="direct")
                         for c in range(3)], -1)
    np.testing.assert_allclose(D.blur(image, kernel).numpy(), expected, atol=1e-5)
    batched = D.blur(np.stack([image, image]), kernel).numpy()
    np.testing.assert_allclose(batched[1], expected, atol=1e-5)


def test_combined_kernel_equals_blurring_twice():
    a, b = D.random_aperture_kernel(_seed(1), CFG), D.random_motion_kernel(_seed(2), CFG)
    image = _random_image(48)
    c = D.convolve_kernels(a, b)
    _check_kernel(c.numpy())
    # Interior pixels only: the mirrored border of the second blur differs from the combined one.
    np.testing.assert_allclose(D.blur(image, c).numpy()[20:28, 20:28],
                               D.blur(D.blur(image, a), b).numpy()[20:28, 20:28], atol=1e-5)


@pytest.mark.parametrize("method", D.DOWN_METHODS)
@pytest.mark.parametrize("scale", [1, 2, 4, 8])
def test_downsample_shapes(method, scale):
    image = _random_image(64)
    out = D.downsample(image, scale, method)
    assert out.shape == (64 // scale, 64 // scale, 3)
    batched = D.downsample(image[None, :, :48], scale, method)
    assert batched.shape == (1, 64 // scale, 48 // scale, 3)


def test_random_downsample_draws_every_method():
    image = _random_image(32)
    outputs = {D.random_downsample(image, _seed(i), 4).numpy().tobytes() for i in range(16)}
    expected = {D.downsample(image, 4, m).numpy().tobytes() for m in D.DOWN_METHODS}
    assert outputs == expected


def test_area_downsample_is_box_mean():
    image = np.random.default_rng(0).random((2, 24, 36, 3)).astype(np.float32)
    expected = image.astype(np.float64).reshape(2, 8, 3, 12, 3, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(D.area_downsample(image, 3).numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(D.area_downsample(image[0], 3).numpy(), expected[0], atol=1e-6)
    with pytest.raises(ValueError, match="multiple"):
        D.area_downsample(image, 5)


def test_downsample_rejects_unknown_method():
    with pytest.raises(ValueError, match="lanczos"):
        D.downsample(_random_image(8), 2, "lanczos")


# ----------------------------------------------------------------------------- noise and JPEG

@pytest.mark.parametrize("gray", [False, True])
def test_gaussian_noise_std(gray):
    sigma = 10.0 / 255.0                                      # mid-gray ± 5σ never clips
    flat = tf.fill([128, 128, 3], 0.5)
    noisy = D.add_gaussian_noise(flat, _seed(5), sigma, gray=gray).numpy()
    assert abs(noisy.std() - sigma) < 0.1 * sigma
    assert abs(noisy.mean() - 0.5) < 0.1 * sigma
    same = [np.array_equal(noisy[..., 0], noisy[..., c]) for c in (1, 2)]
    assert same == [gray, gray]


def test_poisson_noise_std():
    flat = tf.fill([128, 128, 3], 0.5)
    noisy = D.add_poisson_noise(flat, _seed(6), 1000.0).numpy()
    expected_std = np.sqrt(0.5 / 1000.0)                      # √(x / photons per unit)
    assert abs(noisy.std() - expected_std) < 0.1 * expected_std
    assert abs(noisy.mean() - 0.5) < 0.1 * expected_std
    assert noisy.min() >= 0.0 and noisy.max() <= 1.0


def test_jpeg_error_falls_with_quality(astronaut):
    errors = [np.abs(D.jpeg_compress(astronaut, q).numpy() - astronaut).mean()
              for q in (20, 50, 90)]
    assert errors[0] > errors[1] > errors[2] > 0, errors
    out = D.jpeg_compress(astronaut, 90).numpy()
    assert out.dtype == np.float32 and out.shape == astronaut.shape


# ----------------------------------------------------------------------------- degrade

def test_disabled_is_area_downsample():
    image = _random_image(64)
    expected = D.area_downsample(image, 4).numpy()
    off = dataclasses.replace(CFG, enabled=False)
    np.testing.assert_array_equal(D.degrade(image, _seed(1), 4, off).numpy(), expected)
    zero = dataclasses.replace(CFG, blur_prob=0.0, motion_prob=0.0, noise_prob=0.0,
                               poisson_prob=0.0, jpeg_prob=0.0, down_methods=("area",))
    np.testing.assert_array_equal(D.degrade(image, _seed(1), 4, zero).numpy(), expected)
    never = dataclasses.replace(ALL_ON, degrade_prob=0.0, down_methods=("area",))
    np.testing.assert_array_equal(D.degrade(image, _seed(1), 4, never).numpy(), expected)


def test_degrade_prob_degrades_an_example_fully_or_not_at_all():
    # The gate has its own seed, so a degraded example is byte-identical to the same seed
    # at degrade_prob 1, and a clean one to degrade_prob 0 (random downsampling only).
    image = _random_image(32)
    clean_cfg = dataclasses.replace(ALL_ON, degrade_prob=0.0)
    degraded = 0
    for i in range(32):
        out = D.degrade(image, _seed(i), 2, HALF_CLEAN).numpy()
        full = D.degrade(image, _seed(i), 2, ALL_ON).numpy()
        clean = D.degrade(image, _seed(i), 2, clean_cfg).numpy()
        assert not np.array_equal(full, clean)
        if np.array_equal(out, full):
            degraded += 1
        else:
            np.testing.assert_array_equal(out, clean)
    # Binomial(32, ½): 8…24 holds with probability 0.998, and the seeds are fixed.
    assert 8 <= degraded <= 24


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_degrade_range_and_static_shape(scale):
    image = _random_image(32)
    ds = tf.data.Dataset.range(4).map(
        lambda i: D.degrade(image, tf.stack([i, i + 1]), scale, ALL_ON))
    assert ds.element_spec.shape == (32 // scale, 32 // scale, 3)
    for out in ds:
        out = out.numpy()
        assert out.min() >= 0.0 and out.max() <= 1.0
        assert not np.array_equal(out, D.area_downsample(image, scale).numpy())


BAD_FIELDS = {
    "degrade_prob": 1.2, "blur_prob": 1.5, "aniso_prob": -0.1, "motion_prob": 2.0,
    "noise_prob": -1.0, "gray_noise_prob": 1.01, "poisson_prob": -0.5, "jpeg_prob": 3.0,
    "blur_sigma": (5.0, 1.0), "blur_kernel_size": (21, 40), "motion_length": (-1.0, 5.0),
    "motion_points": 1, "down_methods": ("area", "nearest"), "noise_sigma": (0.1, 0.0),
    "poisson_scale": (0.0, 10.0), "jpeg_quality": (60, 101),
}


@pytest.mark.parametrize("field", sorted(BAD_FIELDS))
def test_validate_rejects_bad_field(field):
    CFG.validate()
    bad = dataclasses.replace(CFG, **{field: BAD_FIELDS[field]})
    with pytest.raises(ValueError, match=field):
        bad.validate()
    with pytest.raises(ValueError, match=field):
        D.degrade(_random_image(8), _seed(0), 2, bad)


def test_blur_sizes_follow_the_sr_factor():
    # Sizes are given for the paper's ×8; a ×4 model gets half (same blur in LR pixels).
    config = D.DegradeConfig()
    x4 = config.for_scale(4)
    assert x4.blur_sigma == pytest.approx((0.05, 5.0))
    assert x4.blur_kernel_size == (11, 21)
    assert x4.motion_length == pytest.approx((1.0, 10.0))
    assert config.for_scale(8) is config
    assert D.DegradeConfig(blur_reference_scale=0).for_scale(4).blur_sigma == (0.1, 10.0)
    x4.validate()
    config.for_scale(1).validate()  # kernels never shrink below 3×3

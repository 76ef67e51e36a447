"""PSNR and SSIM as the super-resolution literature computes them.

Both work on numpy images, uint8 or float in [0, 255], shaped [H,W,3] (RGB) or [H,W]
(one channel). All arithmetic is float64.

* ``rgb_to_y`` is ITU-R BT.601 luma as MATLAB's ``rgb2ycbcr`` defines it (studio range,
  Y in [16, 235]). Unlike MATLAB on uint8 input we do not round Y to integers.
* ``psnr`` is 10·log10(data_range² / MSE); it equals
  ``skimage.metrics.peak_signal_noise_ratio``.
* ``ssim`` is Wang et al. 2004: 11×11 Gaussian window with σ = 1.5, K1 = 0.01, K2 = 0.03,
  population (biased) local variances, local means taken only where the window fits
  inside the image ("valid" filtering, as the authors' MATLAB ``ssim_index``), averaged
  over the map and then over channels. It equals
  ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=255, channel_axis=-1)``.
"""

from __future__ import annotations

import numpy as np

# MATLAB rgb2ycbcr (BT.601, studio range): Y = 16 + (65.481 R + 128.553 G + 24.966 B)
# for R, G, B in [0, 1]; divided by 255 here because our inputs are in [0, 255].
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966]) / 255.0
_Y_OFFSET = 16.0

_SSIM_SIGMA = 1.5      # Gaussian window standard deviation, pixels
_SSIM_RADIUS = 5       # 11×11 window
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """BT.601 luma of an RGB image, the Y channel used for SR metrics.

    Args:
        img: RGB image(s), uint8 or float in [0, 255], shape [..., 3].

    Returns:
        float64 array of shape [...] with values in [16, 235].
    """
    img = np.asarray(img, dtype=np.float64)
    if img.shape[-1] != 3:
        raise ValueError(f'rgb_to_y expects a last axis of 3 (RGB), got shape {img.shape}.')
    return img @ _Y_WEIGHTS + _Y_OFFSET


def _prepare(a, b, crop_border, y_channel):
    """Checks shapes, crops borders, optionally converts to Y; returns float64 pair."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f'Images must have the same shape, got {a.shape} and {b.shape}.')
    if a.ndim not in (2, 3):
        raise ValueError(f'Expected an [H,W,3] or [H,W] image, got shape {a.shape}.')
    if crop_border < 0:
        raise ValueError(f'crop_border must be >= 0, got {crop_border}.')
    if crop_border:
        a = a[crop_border:-crop_border, crop_border:-crop_border]
        b = b[crop_border:-crop_border, crop_border:-crop_border]
        if a.size == 0:
            raise ValueError(f'crop_border={crop_border} removes the whole image.')
    if y_channel:
        if a.ndim != 3:
            raise ValueError('y_channel=True needs [H,W,3] RGB images.')
        return rgb_to_y(a), rgb_to_y(b)                                   # [H,W]
    return a.astype(np.float64), b.astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray, crop_border: int = 0, y_channel: bool = False,
         data_range: float = 255.) -> float:
    """Peak signal-to-noise ratio in dB.

    Args:
        a: image, uint8 or float in [0, 255], [H,W,3] or [H,W].
        b: image of the same shape.
        crop_border: pixels removed from each of the four borders first (SR convention:
            the scale factor).
        y_channel: compare the BT.601 Y channel (``rgb_to_y``) instead of RGB.
        data_range: peak signal value.

    Returns:
        PSNR as a float; ``inf`` for identical images.
    """
    a, b = _prepare(a, b, crop_border, y_channel)
    mse = np.mean((a - b) ** 2)
    if mse == 0:
        return float('inf')
    return float(10.0 * np.log10(data_range ** 2 / mse))


def _gaussian_kernel_1d(sigma=_SSIM_SIGMA, radius=_SSIM_RADIUS):
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()                                                  # [2r+1]


def _filter_valid(x, k):
    """Separable 2-D correlation of x [H,W] with k⊗k, keeping only full windows."""
    n = len(k)
    x = np.lib.stride_tricks.sliding_window_view(x, n, axis=0) @ k      # [H-n+1,W]
    return np.lib.stride_tricks.sliding_window_view(x, n, axis=1) @ k   # [H-n+1,W-n+1]


def _ssim_single_channel(a, b, data_range):
    """Mean SSIM of two float64 [H,W] arrays."""
    k = _gaussian_kernel_1d()
    if min(a.shape) < len(k):
        raise ValueError(f'SSIM needs images of at least {len(k)}×{len(k)}, got {a.shape}.')
    c1 = (_SSIM_K1 * data_range) ** 2
    c2 = (_SSIM_K2 * data_range) ** 2
    mu_a = _filter_valid(a, k)
    mu_b = _filter_valid(b, k)
    var_a = _filter_valid(a * a, k) - mu_a ** 2     # population (biased) local variances
    var_b = _filter_valid(b * b, k) - mu_b ** 2
    cov_ab = _filter_valid(a * b, k) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov_ab + c2) /
                ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2)))
    return float(ssim_map.mean())


def ssim(a: np.ndarray, b: np.ndarray, crop_border: int = 0, y_channel: bool = False,
         data_range: float = 255.) -> float:
    """Structural similarity (Wang et al. 2004), mean over the map and over channels.

    Args:
        a: image, uint8 or float in [0, 255], [H,W,3] or [H,W]; at least 11×11 after
            cropping.
        b: image of the same shape.
        crop_border: pixels removed from each of the four borders first.
        y_channel: compare the BT.601 Y channel (``rgb_to_y``) instead of RGB.
        data_range: dynamic range of the pixel values (sets C1 and C2).

    Returns:
        SSIM as a float in [-1, 1].
    """
    a, b = _prepare(a, b, crop_border, y_channel)
    if a.ndim == 2:
        return _ssim_single_channel(a, b, data_range)
    return float(np.mean([_ssim_single_channel(a[..., c], b[..., c], data_range)
                          for c in range(a.shape[-1])]))

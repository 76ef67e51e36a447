"""NIQE, the Natural Image Quality Evaluator (Mittal, Soundararajan and Bovik, IEEE SPL 2013).

NIQE fits a multivariate Gaussian (MVG) to natural-scene-statistics features of an image's
96×96 blocks and reports its distance to an MVG fitted once on pristine photographs
(``data/niqe_pris_params.npz``). Lower is more natural. The steps, following the authors'
MATLAB release (``computequality.m``, ``computefeature.m``, ``estimateaggdparam.m``):

1. Luma: BT.601 Y (``rgb_to_y``), float64, not rounded. The MATLAB release calls
   ``rgb2gray`` and the SR literature (e.g. BasicSR) uses Y rounded to integers; both
   change the score in the second decimal (astronaut: 3.080 with float Y, 3.100 with
   rounded Y). Pass an [H,W] array to use any other luma.
2. Crop to whole 96×96 blocks (bottom/right remainder dropped), no overlap.
3. Two scales: the image, then ``imresize(im, 0.5)``. We reimplement MATLAB's
   ``imresize`` (bicubic, a = -0.5, antialiasing kernel widened by 1/scale, symmetric
   border padding) in numpy, so the half scale follows the reference up to float
   rounding. PIL's ``Image.resize(BICUBIC)`` uses the same kernel and antialiasing but
   renormalises the kernel at the border instead of mirroring and computes in float32:
   it differs in the outermost 4 pixels of each side (interior agrees to ~2e-5) and
   moves NIQE by ~1e-3 on 512×512 photographs and up to ~3e-2 on 256×256 faces, whose
   score rests on only 4 blocks.
4. MSCN coefficients (im - μ) / (σ + 1), with μ and σ from the 7×7 Gaussian window
   (σ = 7/6) in the npz and replicate borders (``imfilter(..., 'replicate')``), computed
   on the whole image of each scale before it is cut into blocks (48×48 at the half scale).
5. 18 features per block and scale: the AGGD fit (shape α, mean of left/right scales) of
   the MSCN values, and for each of the horizontal, vertical, main- and anti-diagonal
   neighbour products (``circshift`` inside the block, so the products wrap around) the
   AGGD shape, mean, left and right scales. 36 features per block.
6. AGGD shape by grid search over α ∈ {0.2, 0.201, …, 10}, as in ``estimateaggdparam.m``.
7. Zero-sharpness blocks: the sharpness threshold of the paper only selects blocks when
   the *pristine* model is fitted (``estimatemodelparam.m``); scoring uses every block.
   A block without negative (or positive) MSCN values, e.g. all zeros, has an undefined
   side scale (NaN); as in MATLAB, an undefined moment ratio gives α = 0.2 (the first
   grid point, like ``min`` over NaNs). ``nanmean`` then ignores NaN entries per feature
   and ``nancov`` drops blocks with any NaN, exactly as ``computequality.m`` does. Note
   that in exactly flat areas (e.g. saturated pixels) the MSCN values are rounding noise
   (~1e-12) rather than zeros, in the reference too, so such blocks get arbitrary
   features; natural face crops rarely contain them.
8. Score sqrt((μp - μd)ᵀ pinv((Σp + Σd) / 2) (μp - μd)). With a single valid block the
   covariance is zero, following MATLAB's ``cov`` of one observation.
"""

from __future__ import annotations

import functools
import importlib.resources

import numpy as np
import scipy.ndimage
import scipy.special

from pan_tf.metrics.psnr_ssim import rgb_to_y

BLOCK_SIZE = 96                     # block side at full scale, pixels
NUM_SCALES = 2                      # full and half resolution
FEATURES_PER_SCALE = 18
_PARAMS_FILE = 'niqe_pris_params.npz'
_ALPHA_GRID = np.linspace(0.2, 10.0, 9801)   # MATLAB 0.2:0.001:10
# Same order as circshift shifts [0 1; 1 0; 1 1; -1 1] in computefeature.m:
# horizontal, vertical, main diagonal, anti-diagonal neighbour.
_PAIR_SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))


@functools.lru_cache(maxsize=1)
def load_pristine_params() -> dict[str, np.ndarray]:
    """The published pristine model: ``mu_pris_param`` [1,36], ``cov_pris_param``
    [36,36] and the MSCN ``gaussian_window`` [7,7] (float64)."""
    resource = importlib.resources.files(__package__) / 'data' / _PARAMS_FILE
    with importlib.resources.as_file(resource) as path, np.load(path) as data:
        return {key: np.array(data[key], dtype=np.float64) for key in data.files}


# ----------------------------------------------------------------------------------------
# MATLAB-compatible bicubic resize.

def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys cubic convolution kernel with a = -0.5 (MATLAB ``imresize`` 'bicubic')."""
    ax = np.abs(x)
    ax2, ax3 = ax ** 2, ax ** 3
    return ((1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1) +
            (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2)))


def _resize_matrix(in_size: int, out_size: int, scale: float) -> np.ndarray:
    """[out_size, in_size] weights of MATLAB's 1-D bicubic resize with antialiasing."""
    kernel_width = 4.0
    if scale < 1:                    # antialias: stretch the kernel by 1 / scale
        kernel = lambda x: scale * _cubic(scale * x)
        kernel_width /= scale
    else:
        kernel = _cubic
    x = np.arange(1, out_size + 1, dtype=np.float64)         # 1-based output coordinates
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)                # matching input coordinates
    left = np.floor(u - kernel_width / 2.0)
    taps = int(np.ceil(kernel_width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]           # [out, taps], 1-based
    weights = kernel(u[:, None] - idx)
    weights /= weights.sum(axis=1, keepdims=True)
    # Symmetric padding: index -k (0-based) reads k - 1, index n + k reads n - 1 - k.
    mirror = np.concatenate([np.arange(in_size), np.arange(in_size)[::-1]])
    idx0 = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_size)]
    matrix = np.zeros((out_size, in_size))
    np.add.at(matrix, (np.repeat(np.arange(out_size), taps), idx0.ravel()), weights.ravel())
    return matrix


def imresize(img: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB ``imresize(img, scale)`` with the default bicubic kernel and antialiasing.

    Args:
        img: float array [H,W].
        scale: resize factor; the output is [ceil(H·scale), ceil(W·scale)].

    Returns:
        float64 array [ceil(H·scale), ceil(W·scale)].
    """
    img = np.asarray(img, dtype=np.float64)
    h, w = img.shape
    rows = _resize_matrix(h, int(np.ceil(h * scale)), scale)   # [H',H]
    cols = _resize_matrix(w, int(np.ceil(w * scale)), scale)   # [W',W]
    return rows @ img @ cols.T


# ----------------------------------------------------------------------------------------
# Features.

def mscn(img: np.ndarray, window: np.ndarray | None = None) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients (im - μ) / (σ + 1).

    Args:
        img: luma [H,W], float in [0, 255].
        window: normalised Gaussian window; defaults to the 7×7, σ = 7/6 one of the model.

    Returns:
        float64 [H,W].
    """
    if window is None:
        window = load_pristine_params()['gaussian_window']
    img = np.asarray(img, dtype=np.float64)
    mu = scipy.ndimage.correlate(img, window, mode='nearest')          # 'replicate'
    sigma = np.sqrt(np.abs(scipy.ndimage.correlate(img * img, window, mode='nearest')
                           - mu * mu))
    return (img - mu) / (sigma + 1.0)


def fit_aggd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moment-matching fit of an asymmetric generalised Gaussian, one per row.

    Args:
        x: samples [B, M] (one row per block).

    Returns:
        (alpha, beta_left, beta_right), each [B]: shape and left/right scale parameters.
        A side without samples has NaN scale; then alpha is 0.2 (see module docstring).
    """
    x = np.asarray(x, dtype=np.float64)
    neg, pos = x < 0, x > 0
    n_neg, n_pos = neg.sum(axis=1), pos.sum(axis=1)
    with np.errstate(invalid='ignore', divide='ignore'):
        left_std = np.sqrt(np.sum(np.where(neg, x * x, 0.0), axis=1) / n_neg)   # NaN if 0/0
        right_std = np.sqrt(np.sum(np.where(pos, x * x, 0.0), axis=1) / n_pos)
        gamma_hat = left_std / right_std
        r_hat = np.mean(np.abs(x), axis=1) ** 2 / np.mean(x * x, axis=1)
        r_hat_norm = (r_hat * (gamma_hat ** 3 + 1) * (gamma_hat + 1) /
                      (gamma_hat ** 2 + 1) ** 2)
    g = _ALPHA_GRID
    r_grid = np.exp(2 * scipy.special.gammaln(2 / g) - scipy.special.gammaln(1 / g)
                    - scipy.special.gammaln(3 / g))                     # [G]
    err = (r_grid[None, :] - r_hat_norm[:, None]) ** 2                  # [B,G]
    alpha = g[np.argmin(np.nan_to_num(err, nan=np.inf), axis=1)]       # all-NaN → g[0]
    ratio = np.sqrt(np.exp(scipy.special.gammaln(1 / alpha) - scipy.special.gammaln(3 / alpha)))
    return alpha, left_std * ratio, right_std * ratio


def block_features(blocks: np.ndarray) -> np.ndarray:
    """The 18 NIQE features of MSCN blocks (``computefeature.m``).

    Args:
        blocks: MSCN coefficients [B, S, S].

    Returns:
        float64 [B, 18]: α and (β_l + β_r) / 2 of the MSCN values, then for each of the
        H, V, D1, D2 neighbour products α, mean, β_l, β_r.
    """
    b = blocks.shape[0]
    alpha, beta_l, beta_r = fit_aggd(blocks.reshape(b, -1))
    feats = [alpha, (beta_l + beta_r) / 2]
    for shift in _PAIR_SHIFTS:
        pair = blocks * np.roll(blocks, shift, axis=(1, 2))               # [B,S,S]
        alpha, beta_l, beta_r = fit_aggd(pair.reshape(b, -1))
        ratio = np.exp(scipy.special.gammaln(2 / alpha) - scipy.special.gammaln(1 / alpha))
        feats += [alpha, (beta_r - beta_l) * ratio, beta_l, beta_r]
    return np.stack(feats, axis=1)


def _to_blocks(img: np.ndarray, size: int) -> np.ndarray:
    """[H,W] with H, W multiples of size → [B, size, size], row-major block order."""
    h, w = img.shape
    blocks = img.reshape(h // size, size, w // size, size).transpose(0, 2, 1, 3)
    return blocks.reshape(-1, size, size)


def niqe_features(luma: np.ndarray) -> np.ndarray:
    """Per-block NIQE features of a luma image.

    Args:
        luma: [H,W] float in [0, 255], H and W at least 96 (cropped to multiples of 96).

    Returns:
        float64 [B, 36] with B = ⌊H/96⌋·⌊W/96⌋: 18 full-scale then 18 half-scale features.
    """
    img = np.asarray(luma, dtype=np.float64)
    h, w = (s // BLOCK_SIZE * BLOCK_SIZE for s in img.shape)
    if h == 0 or w == 0:
        raise ValueError(f'NIQE needs images of at least {BLOCK_SIZE}×{BLOCK_SIZE} pixels '
                         f'(after crop_border), got {img.shape[0]}×{img.shape[1]}.')
    img = img[:h, :w]
    window = load_pristine_params()['gaussian_window']
    feats = []
    for scale in range(NUM_SCALES):
        size = BLOCK_SIZE >> scale
        feats.append(block_features(_to_blocks(mscn(img, window), size)))
        img = imresize(img, 0.5)
    return np.concatenate(feats, axis=1)                                 # [B,36]


def niqe(img: np.ndarray, crop_border: int = 0) -> float:
    """NIQE score of one image (lower is more natural).

    Args:
        img: RGB [H,W,3] (scored on BT.601 Y) or luma [H,W], uint8 or float in [0, 255].
          At least 96×96 after cropping; the score uses whole 96×96 blocks only.
        crop_border: pixels removed from each border first.

    Returns:
        The NIQE score as a float.
    """
    img = np.asarray(img)
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
    if img.ndim == 3:
        img = rgb_to_y(img)
    elif img.ndim != 2:
        raise ValueError(f'Expected an [H,W,3] or [H,W] image, got shape {img.shape}.')
    feats = niqe_features(img)                                           # [B,36]
    params = load_pristine_params()
    mu_pris = params['mu_pris_param'][0]
    cov_pris = params['cov_pris_param']

    finite_rows = np.all(np.isfinite(feats), axis=1)
    if not finite_rows.any():
        raise ValueError('NIQE is undefined: every block is flat (no valid features).')
    mu_dist = np.nanmean(feats, axis=0)                                  # nanmean
    valid = feats[finite_rows]                                           # nancov
    if len(valid) > 1:
        cov_dist = np.cov(valid, rowvar=False)
    else:
        cov_dist = np.zeros_like(cov_pris)
    diff = mu_pris - mu_dist
    inv_cov = np.linalg.pinv((cov_pris + cov_dist) / 2)
    return float(np.sqrt(diff @ inv_cov @ diff))

"""Sliced Wasserstein distance between two image sets (Karras et al. 2018, ProGAN, app. D).

Each image is decomposed into a Laplacian pyramid from its resolution down to 16×16.
At every level, 128 neighbourhoods of 7×7×3 pixels are taken per image at uniformly
random positions (whole neighbourhoods only), giving 147-d descriptors. The descriptors
of one level and one set are normalised per colour channel (mean and standard deviation
over all descriptors and their 49 pixels), and the two sets are compared with the sliced
Wasserstein distance: 4 repeats × 128 random unit directions, projections sorted, mean
absolute difference of the sorted projections, averaged over directions and repeats.

Reporting: like the paper (Tables 1–2, "SWD × 10³"), ``swd`` returns every level's
distance multiplied by 10³, together with their average. Lower is better; identical
sets give 0.

Randomness is explicit: ``seed`` fixes the neighbourhood positions and the directions
(numpy ``Generator``). Both sets draw positions from the same stream, so image i of
either set is sampled at the same places — identical sets score exactly 0, and SR vs
ground-truth comparisons become paired, which lowers the variance. Positions depend on
an image's index, so reordering a set changes the value slightly (within sampling noise).
Positions do not depend on the batch sizes used to feed ``DescriptorCollector``.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage

MIN_RESOLUTION = 16            # coarsest pyramid level, pixels
NHOOD_SIZE = 7                 # descriptor side, pixels
NHOODS_PER_IMAGE = 128         # descriptors per image and level
DIR_REPEATS = 4                # independent sets of random directions
DIRS_PER_REPEAT = 128          # directions per set
REPORT_SCALE = 1e3             # the paper reports SWD × 10³

# Binomial 5-tap filter; its outer product is the 5×5 Gaussian of cv2.pyrDown/pyrUp.
_BINOMIAL = np.array([1., 4., 6., 4., 1.]) / 16.


def _blur(images: np.ndarray, gain: float = 1.0) -> np.ndarray:
    """Separable 5×5 binomial blur of [N,H,W,C], mirrored borders (cv2 BORDER_REFLECT_101)."""
    k = _BINOMIAL * gain
    out = scipy.ndimage.correlate1d(images, k, axis=1, mode='mirror')
    return scipy.ndimage.correlate1d(out, k, axis=2, mode='mirror')


def _pyr_down(images: np.ndarray) -> np.ndarray:
    return _blur(images)[:, ::2, ::2]                                   # [N,H/2,W/2,C]


def _pyr_up(images: np.ndarray) -> np.ndarray:
    n, h, w, c = images.shape
    up = np.zeros((n, 2 * h, 2 * w, c), images.dtype)
    up[:, ::2, ::2] = images
    return _blur(up, gain=2.0)          # ×4 in 2-D compensates for the inserted zeros


def pyramid_resolutions(resolution: int) -> list[int]:
    """Level resolutions of the pyramid for square images of side ``resolution``."""
    if resolution < MIN_RESOLUTION or resolution & (resolution - 1):
        raise ValueError(f'SWD needs square images whose side is a power of two >= '
                         f'{MIN_RESOLUTION}, got {resolution}.')
    levels = []
    while resolution >= MIN_RESOLUTION:
        levels.append(resolution)
        resolution //= 2
    return levels


def laplacian_pyramid(images: np.ndarray) -> list[np.ndarray]:
    """Laplacian pyramid of a batch down to 16×16.

    Args:
        images: [N,R,R,3], R a power of two >= 16, values in [0, 255].

    Returns:
        float32 arrays [N,r,r,3] for r = R, R/2, …, 16: band-pass levels, then the
        16×16 low-pass residual as the last level.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[1] != images.shape[2]:
        raise ValueError(f'Expected square images [N,R,R,C], got shape {images.shape}.')
    num_levels = len(pyramid_resolutions(images.shape[1]))
    pyramid = [images]
    for _ in range(num_levels - 1):
        low = _pyr_down(pyramid[-1])
        pyramid[-1] = pyramid[-1] - _pyr_up(low)
        pyramid.append(low)
    return pyramid


class DescriptorCollector:
    """Streams image batches into per-level 7×7×3 descriptors.

    Example:
        collector = DescriptorCollector(resolution=256, seed=0)
        for batch in batches:                     # [n,256,256,3] each
            collector.add(batch)
        descs = collector.descriptors()           # per level: [N·128, 147]
    """

    def __init__(self,
                 resolution: int,                          # image side, pixels
                 seed: int = 0,                            # fixes the sampling positions
                 nhood_size: int = NHOOD_SIZE,             # descriptor side, pixels
                 nhoods_per_image: int = NHOODS_PER_IMAGE):  # descriptors per image, level
        self.resolutions = pyramid_resolutions(resolution)
        self.nhood_size = nhood_size
        self.nhoods_per_image = nhoods_per_image
        if nhood_size > MIN_RESOLUTION or nhood_size % 2 == 0:
            raise ValueError(f'nhood_size must be odd and <= {MIN_RESOLUTION}, got {nhood_size}.')
        # One independent position stream per level (SeedSequence children 0..L-1 of the
        # first child of `seed`; the second child is kept for the directions).
        position_seq = np.random.SeedSequence(seed).spawn(2)[0]
        self._rngs = [np.random.default_rng(s) for s in position_seq.spawn(len(self.resolutions))]
        self._descs = [[] for _ in self.resolutions]
        self.num_images = 0

    def add(self, images: np.ndarray) -> None:
        """Adds a batch [n,R,R,3] of images in [0, 255]."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[1:] != (self.resolutions[0],) * 2 + (3,):
            raise ValueError(f'Expected images [n,{self.resolutions[0]},{self.resolutions[0]},3], '
                             f'got shape {images.shape}.')
        n = images.shape[0]
        half = self.nhood_size // 2
        offsets = np.arange(-half, half + 1)                                  # [S]
        for level, rng, descs in zip(laplacian_pyramid(images), self._rngs, self._descs):
            size = level.shape[1]
            # Centres uniform in [half, size - half). Floats rather than rng.integers so
            # the stream does not depend on how the images are split into batches.
            u = rng.random((n, self.nhoods_per_image, 2))
            centres = half + np.floor(u * (size - 2 * half)).astype(np.int64)  # [n,P,2]
            rows = centres[..., 0, None] + offsets                            # [n,P,S]
            cols = centres[..., 1, None] + offsets                            # [n,P,S]
            img = np.arange(n)[:, None, None, None]
            patches = level[img, rows[..., :, None], cols[..., None, :]]      # [n,P,S,S,3]
            descs.append(patches.reshape(-1, self.nhood_size, self.nhood_size, 3))
        self.num_images += n

    def descriptors(self) -> list[np.ndarray]:
        """Per-level normalised descriptors, each float64 [num_images · 128, 147]."""
        if self.num_images == 0:
            raise ValueError('No images were added.')
        out = []
        for descs in self._descs:
            d = np.concatenate(descs, axis=0).astype(np.float64)              # [M,S,S,3]
            d -= d.mean(axis=(0, 1, 2), keepdims=True)                        # per channel
            std = d.std(axis=(0, 1, 2), keepdims=True)
            d /= np.where(std > 0, std, 1.0)          # a constant channel stays at zero
            out.append(d.reshape(d.shape[0], -1))
        return out


def sliced_wasserstein(desc_a: np.ndarray,
                       desc_b: np.ndarray,
                       rng: np.random.Generator,
                       dir_repeats: int = DIR_REPEATS,
                       dirs_per_repeat: int = DIRS_PER_REPEAT) -> float:
    """Sliced Wasserstein-1 distance between two equally sized point sets.

    Args:
        desc_a: [M,D] points.
        desc_b: [M,D] points.
        rng: source of the random directions.
        dir_repeats: number of direction sets.
        dirs_per_repeat: unit directions per set.

    Returns:
        Mean over directions of the 1-D Wasserstein-1 distance of the projections (not
        scaled by 10³).
    """
    if desc_a.shape != desc_b.shape:
        raise ValueError(f'Descriptor sets must have the same shape, got {desc_a.shape} '
                         f'and {desc_b.shape} (use the same number of images in both sets).')
    dists = []
    for _ in range(dir_repeats):
        dirs = rng.standard_normal((desc_a.shape[1], dirs_per_repeat))       # [D,K]
        dirs /= np.linalg.norm(dirs, axis=0, keepdims=True)
        proj_a = np.sort(desc_a @ dirs, axis=0)                               # [M,K]
        proj_b = np.sort(desc_b @ dirs, axis=0)
        dists.append(np.mean(np.abs(proj_a - proj_b)))
    return float(np.mean(dists))


def swd_from_collectors(a: DescriptorCollector, b: DescriptorCollector,
                        seed: int = 0) -> dict:
    """SWD × 10³ per level between two filled collectors (see ``swd``)."""
    if a.resolutions != b.resolutions:
        raise ValueError(f'Collectors have different pyramids: {a.resolutions} vs {b.resolutions}.')
    direction_seq = np.random.SeedSequence(seed).spawn(2)[1]
    rngs = [np.random.default_rng(s) for s in direction_seq.spawn(len(a.resolutions))]
    per_level = [REPORT_SCALE * sliced_wasserstein(da, db, rng)
                 for da, db, rng in zip(a.descriptors(), b.descriptors(), rngs)]
    return dict(levels=list(a.resolutions), per_level=per_level,
                average=float(np.mean(per_level)))


def swd(images_a: np.ndarray, images_b: np.ndarray, seed: int = 0,
        batch_size: int = 16) -> dict:
    """Sliced Wasserstein distance between two image sets, per pyramid level.

    Args:
        images_a: [N,R,R,3], uint8 or float in [0, 255], R a power of two >= 16.
        images_b: [N,R,R,3], same N and R.
        seed: fixes the sampling positions and the projection directions.
        batch_size: images per pyramid computation (memory only; the result is the same).

    Returns:
        dict(levels=[R, R/2, …, 16], per_level=[SWD × 10³ per level],
        average=mean of per_level).
    """
    images_a, images_b = np.asarray(images_a), np.asarray(images_b)
    if images_a.shape != images_b.shape:
        raise ValueError(f'Image sets must have the same shape, got {images_a.shape} '
                         f'and {images_b.shape}.')
    if images_a.ndim != 4:
        raise ValueError(f'Expected images [N,R,R,3], got shape {images_a.shape}.')
    collectors = []
    for images in (images_a, images_b):
        collector = DescriptorCollector(images.shape[1], seed=seed)
        for start in range(0, len(images), batch_size):
            collector.add(images[start:start + batch_size])
        collectors.append(collector)
    return swd_from_collectors(*collectors, seed=seed)

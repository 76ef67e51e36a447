"""Image quality metrics used in the paper's evaluation (section 5).

Pixel metrics against ground truth (``psnr``, ``ssim``), no-reference naturalness
(``niqe``), and distribution distances between image sets (``swd``, FID via
``InceptionFeatures`` + ``fid_from_features``). Everything but the Inception feature
extractor is numpy/scipy (TensorFlow is imported only when ``InceptionFeatures`` is
built); images are uint8 or float in [0, 255], [H,W,3] RGB.

The package attributes ``niqe`` and ``swd`` are the functions, not the submodules: import
helpers from the modules explicitly (``from pan_tf.metrics.swd import DescriptorCollector``).
"""

from pan_tf.metrics.fid import (InceptionFeatures, compute_statistics, fid_from_features,
                                frechet_distance)
from pan_tf.metrics.niqe import niqe, niqe_features
from pan_tf.metrics.psnr_ssim import psnr, rgb_to_y, ssim
from pan_tf.metrics.swd import (DescriptorCollector, laplacian_pyramid, sliced_wasserstein, swd,
                                swd_from_collectors)

__all__ = [
    'DescriptorCollector',
    'InceptionFeatures',
    'compute_statistics',
    'fid_from_features',
    'frechet_distance',
    'laplacian_pyramid',
    'niqe',
    'niqe_features',
    'psnr',
    'rgb_to_y',
    'sliced_wasserstein',
    'ssim',
    'swd',
    'swd_from_collectors',
]

"""Fréchet Inception Distance (Heusel et al. 2017) with the classic TF Inception-v3.

FID = ‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^½), where (μ, Σ) are the mean and the
covariance of 2048-d Inception pool features of each image set.

Features come from the frozen graph the FID reference implementation (TTUR) uses,
``classify_image_graph_def.pb`` from
http://download.tensorflow.org/models/image/imagenet/inception-2015-12-05.tgz, which the
user supplies (we neither download nor ship it). Like the reference we feed float RGB in
[0, 255] to ``ExpandDims:0`` (the graph normalises to [-1, 1] itself) and read
``pool_3:0``. We replace ``ExpandDims:0`` by an input with a dynamic batch dimension, so
no shape patching is needed, and resize the images to 299×299 with the same op the graph
uses internally (``ResizeBilinear``, align_corners=False, half_pixel_centers=False); the
graph's own resize then keeps 299×299 unchanged, so features equal the reference's for
any input size. Only core TF is used (``GraphDef`` + ``import_graph_def`` inside
``tf.compat.v1.wrap_function``).
"""

from __future__ import annotations

import pathlib
import warnings

import numpy as np
import scipy.linalg

INPUT_TENSOR = 'ExpandDims:0'  # [N,H,W,3] float RGB in [0, 255]
OUTPUT_TENSOR = 'pool_3:0'     # [N,1,1,2048] average-pooled features
INPUT_SIZE = 299               # Inception-v3 input side, pixels
FEATURE_DIM = 2048
GRAPH_URL = 'http://download.tensorflow.org/models/image/imagenet/inception-2015-12-05.tgz'


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray, eps: float = 1e-6) -> float:
    """Fréchet distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2).

    Args:
        mu1: mean [D].
        sigma1: covariance [D,D].
        mu2: mean [D].
        sigma2: covariance [D,D].
        eps: if Σ1 Σ2 is singular (its square root not finite), eps·I is added to both
          covariances and the square root retried.

    Returns:
        The distance as a float (float64 arithmetic).

    Raises:
        ValueError: on mismatched shapes, or if the square root has a significant
          imaginary part (numerical trouble rather than rounding).
    """
    mu1 = np.atleast_1d(np.asarray(mu1, np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(f'Shapes do not match: mu {mu1.shape}, {mu2.shape}; '
                         f'sigma {sigma1.shape}, {sigma2.shape}.')
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', scipy.linalg.LinAlgWarning)   # checked below
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            offset = np.eye(sigma1.shape[0]) * eps
            covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        # Rounding makes tiny imaginary parts; anything larger means a broken estimate.
        max_imag = np.max(np.abs(np.diagonal(covmean).imag))
        if max_imag > 1e-3:
            raise ValueError(f'sqrtm(sigma1 @ sigma2) has imaginary diagonal entries up to '
                             f'{max_imag:.3g}; the covariances are ill-conditioned '
                             f'(use more samples).')
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def compute_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and unbiased covariance [D,D] (float64) of features [N,D], N >= 2."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f'Need features [N,D] with N >= 2, got shape {features.shape}.')
    return features.mean(axis=0), np.cov(features, rowvar=False)


def fid_from_features(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """FID between two sets of Inception features [N_a,D] and [N_b,D]."""
    return frechet_distance(*compute_statistics(feats_a), *compute_statistics(feats_b))


class InceptionFeatures:
    """2048-d ``pool_3`` features of the classic TF Inception-v3 graph.

    Example:
        inception = InceptionFeatures('/data/inception/classify_image_graph_def.pb')
        fid = fid_from_features(inception(sr_images), inception(hr_images))
    """

    def __init__(self,
                 path: str | pathlib.Path,  # classify_image_graph_def.pb
                 batch_size: int = 50):     # images per graph call
        import tensorflow as tf   # only FID needs TF; keep the other metrics light

        path = pathlib.Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f'Inception graph not found at {path}. Download {GRAPH_URL}, extract '
                f'classify_image_graph_def.pb and pass its path.')
        graph_def = tf.compat.v1.GraphDef()
        try:
            graph_def.ParseFromString(path.read_bytes())
        except Exception as e:  # protobuf raises its own DecodeError
            raise ValueError(f'{path} is not a serialised TF GraphDef: {e}') from e
        node_names = {node.name for node in graph_def.node}
        missing = [t for t in (INPUT_TENSOR, OUTPUT_TENSOR) if t.split(':')[0] not in node_names]
        if missing:
            raise ValueError(f'{path} lacks the tensor(s) {missing}; expected the Inception-v3 '
                             f'classify_image_graph_def.pb with input {INPUT_TENSOR!r} and '
                             f'output {OUTPUT_TENSOR!r}.')

        def features(images):                                    # [N,H,W,3] float32
            # The op and settings of the graph's own resize, so its resize is a no-op.
            resized = tf.raw_ops.ResizeBilinear(images=images, size=[INPUT_SIZE, INPUT_SIZE],
                                                align_corners=False, half_pixel_centers=False)
            pool, = tf.graph_util.import_graph_def(
                graph_def, input_map={INPUT_TENSOR: resized},
                return_elements=[OUTPUT_TENSOR], name='inception')
            return tf.reshape(pool, [tf.shape(images)[0], -1])  # [N,2048]

        self._fn = tf.compat.v1.wrap_function(
            features, [tf.TensorSpec([None, None, None, 3], tf.float32)])
        self._tf = tf
        self.batch_size = batch_size

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Features of images [N,H,W,3], uint8 or float in [0, 255]; returns float64 [N,2048]."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or len(images) == 0:
            raise ValueError(f'Expected images [N,H,W,3], got shape {images.shape}.')
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = self._tf.constant(images[start:start + self.batch_size], self._tf.float32)
            out.append(self._fn(batch).numpy())
        feats = np.concatenate(out, axis=0).astype(np.float64)
        if feats.shape[1] != FEATURE_DIM:
            raise ValueError(f'{OUTPUT_TENSOR} gave {feats.shape[1]} features per image, '
                             f'expected {FEATURE_DIM}.')
        return feats

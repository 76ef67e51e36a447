"""Differentiable augmentation of what D sees (``--d_augment``; beyond the paper).

With few training images (250 faces here, against the paper's 70,000) D learns the
training set instead of what faces look like. DiffAugment (Zhao et al., 2020) applies
the same random, differentiable transforms to every image D judges, real and fake, in
D's step and in G's, so D never sees a training image as it is and G still gets
gradients through the transforms. These are DiffAugment's transforms for images in
[-1, 1], each applied to each image with probability p: fixed (``--d_augment_p``;
DiffAugment: 1), or adapted as training goes (``--d_augment_target``, StyleGAN2-ADA's
rule, :func:`ada_adjust`: p starts at 0 and rises while D grows too sure of the
training images, up to ``--d_augment_p``):

- ``color``: per image, brightness + U(-½, ½), saturation × U(0, 2) around the pixel's
  channel mean, contrast × U(½, 3/2) around the image mean;
- ``translation``: per image, an integer shift of up to ⅛ of the side in each axis,
  zero-filled;
- ``cutout``: per image, a square of half the side, centred anywhere, set to zero.

Draws are stateless, from a seed the caller derives from (seed, images shown), so a
resumed run augments exactly as an uninterrupted one; with ``batch=(global_batch,
offset)`` each replica takes its images' slice of the global batch's draws, so replicas
augment as one device would. (XLA's kernels draw other numbers
from the same seed than the graph ones do; a run keeps one mode unless told otherwise.)
"""

from __future__ import annotations

import tensorflow as tf

from pan_tf.config import D_AUGMENT  # the transforms' names, in the order applied

TRANSLATION_RATIO = 1 / 8   # largest shift, as a fraction of the side
CUTOUT_RATIO = 1 / 2        # side of the cut square, as a fraction of the image side
ADA_INTERVAL = 4            # adaptive p (--d_augment_target) moves once per this many steps


def _draw(seed, n, batch, tail, low, high, dtype=tf.float32) -> tf.Tensor:
    """Uniform draws [n, *tail], one row per image. ``batch=(global_batch, offset)``:
    rows offset … offset+n of the global batch's draws, so a replica's images get what
    they would get on one device."""
    if batch is None:
        return tf.random.stateless_uniform([n, *tail], seed, low, high, dtype=dtype)
    total, offset = batch
    return tf.random.stateless_uniform([total, *tail], seed, low, high, dtype=dtype)[offset:offset + n]


def _uniform(seed, n, batch, low, high, dtype):
    """One float per image, shaped [n,1,1,1] to scale or shift it."""
    return tf.cast(_draw(seed, n, batch, [1, 1, 1], low, high), dtype)


def _applied(seed, n, batch, tail, p) -> tf.Tensor:
    """bool [n, *tail]: which images this transform touches, each with probability p
    (a float, or a scalar tensor when p adapts)."""
    if isinstance(p, (int, float)) and p >= 1:
        return tf.ones([n, *tail], tf.bool)
    return _draw(tf.random.experimental.stateless_fold_in(seed, 99), n, batch, tail, 0.0, 1.0) < p


def _where(applied, value, identity):
    """``value`` for the images a transform touches, ``identity`` (no change) elsewhere."""
    return tf.where(applied, value, tf.cast(identity, value.dtype))


def color(images: tf.Tensor, seed, p: float = 1.0, batch=None) -> tf.Tensor:
    """Brightness, saturation and contrast, one draw each per image. [N,H,W,C]."""
    n, dt = tf.shape(images)[0], images.dtype
    s = [tf.random.experimental.stateless_fold_in(seed, i) for i in range(3)]
    on = [_applied(s[i], n, batch, [1, 1, 1], p) for i in range(3)]
    x = images + _where(on[0], _uniform(s[0], n, batch, -0.5, 0.5, dt), 0.0)
    mean = tf.reduce_mean(x, axis=3, keepdims=True)
    x = (x - mean) * _where(on[1], _uniform(s[1], n, batch, 0.0, 2.0, dt), 1.0) + mean
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    return (x - mean) * _where(on[2], _uniform(s[2], n, batch, 0.5, 1.5, dt), 1.0) + mean


def translation(images: tf.Tensor, seed, p: float = 1.0, batch=None,
                ratio: float = TRANSLATION_RATIO) -> tf.Tensor:
    """Each image shifted by integers (dy, dx) ∈ [-m, m]², m = round(ratio·side); zeros
    come in at the edges. A gather, so gradients reach the pixels that stay."""
    h, w = images.shape[1], images.shape[2]
    my, mx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    n = tf.shape(images)[0]
    sy, sx = (tf.random.experimental.stateless_fold_in(seed, i) for i in range(2))
    dy = _draw(sy, n, batch, [1], -my, my + 1, tf.int32)
    dx = _draw(sx, n, batch, [1], -mx, mx + 1, tf.int32)
    on = _applied(seed, n, batch, [1], p)
    dy, dx = tf.where(on, dy, 0), tf.where(on, dx, 0)
    padded = tf.pad(images, [[0, 0], [my, my], [mx, mx], [0, 0]])
    rows = tf.range(h)[None, :] + my - dy                    # out[y] = in[y - dy]
    cols = tf.range(w)[None, :] + mx - dx
    x = tf.gather(padded, rows, axis=1, batch_dims=1)        # [N,H,W+2mx,C]
    return tf.gather(x, cols, axis=2, batch_dims=1)          # [N,H,W,C]


def cutout(images: tf.Tensor, seed, p: float = 1.0, batch=None,
           ratio: float = CUTOUT_RATIO) -> tf.Tensor:
    """Each image with a (ratio·side)² square set to zero, its centre anywhere in the
    image (so near an edge less of it falls inside)."""
    h, w = images.shape[1], images.shape[2]
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    n = tf.shape(images)[0]
    sy, sx = (tf.random.experimental.stateless_fold_in(seed, i) for i in range(2))
    top = _draw(sy, n, batch, [1], 0, h + 1 - ch % 2, tf.int32) - ch // 2
    left = _draw(sx, n, batch, [1], 0, w + 1 - cw % 2, tf.int32) - cw // 2
    y, x = tf.range(h)[None, :], tf.range(w)[None, :]
    inside_y = (y >= top) & (y < top + ch)                   # [N,H]
    inside_x = (x >= left) & (x < left + cw)                 # [N,W]
    cut = inside_y[:, :, None] & inside_x[:, None, :]        # [N,H,W]
    cut &= _applied(seed, n, batch, [1, 1], p)
    return images * tf.cast(~cut, images.dtype)[..., None]


TRANSFORMS = {"color": color, "translation": translation, "cutout": cutout}
if tuple(TRANSFORMS) != D_AUGMENT:   # the flag's names (config) and the code must agree
    raise ImportError(f"augment.TRANSFORMS {tuple(TRANSFORMS)} != config.D_AUGMENT {D_AUGMENT}")


def augment(images: tf.Tensor, policy: tuple[str, ...], seed, p=1.0,
            batch=None) -> tf.Tensor:
    """``images`` [N,H,W,C] through each transform of ``policy`` (names from
    ``D_AUGMENT``, e.g. ``TrainConfig.d_augment_policy``) in order, each transform
    applied to each image with probability ``p`` (a float, or a scalar tensor under
    adaptive p); seed: int32 [2]. ``batch``:
    (global batch, offset of these images in it) under tf.distribute, else None."""
    for i, name in enumerate(policy):
        images = TRANSFORMS[name](images, tf.random.experimental.stateless_fold_in(seed, i),
                                  p, batch)
    return images


def ada_adjust(p, signs, target: float, speed_kimg: float, cap: float, interval_images: int):
    """StyleGAN2-ADA's adaptive p, one step: returns the new (p, signs).

    ``signs`` = [Σ sign(D(x)) over the reals D judged (augmented), how many], summed
    since p last moved; r_t = Σ/count is how sure D is of the training images (1: all
    judged real, the sign of memorising them; ADA's target 0.6). Once ``interval_images``
    have been counted, p moves by count / (speed_kimg · 1000) up if r_t > target, down if
    below (so p can cross 0 → 1 in ``speed_kimg`` kimg), is clipped to [0, cap], and the
    sums restart. Before that, p stays and the sums carry on.
    """
    p, signs = tf.convert_to_tensor(p, tf.float32), tf.convert_to_tensor(signs, tf.float32)
    due = signs[1] >= interval_images
    r_t = signs[0] / tf.maximum(signs[1], 1.0)
    step = tf.sign(r_t - target) * signs[1] / (speed_kimg * 1000.0)
    moved = tf.clip_by_value(p + step, 0.0, cap)
    return tf.where(due, moved, p), tf.where(due, tf.zeros_like(signs), signs)

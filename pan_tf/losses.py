"""PAN's objectives (paper §4.2), all per example so replicas can average them.

D: ``L_d = softplus(D(x̂)) + softplus(-D(x)) + γ·‖∇ₓD(x)‖²``   (Eq. 3)
G: ``L_g = softplus(-D(x̂))``                                    (Eq. 4)

``softplus(-t) = -log σ(t)``, so these are the non-saturating logistic losses
written on logits. The L1/L2 losses exist only for the paper's Table 2 ablation.
"""

from __future__ import annotations

import tensorflow as tf


def discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    """-log D(x) - log(1 - D(x̂)) per example: [N]."""
    return tf.nn.softplus(fake_logits) + tf.nn.softplus(-real_logits)


def generator_loss(fake_logits: tf.Tensor) -> tf.Tensor:
    """Non-saturating -log D(x̂) per example: [N]."""
    return tf.nn.softplus(-fake_logits)


def r1_penalty(discriminator_fn, reals: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """‖∇ₓD(x)‖² per example, and D(x) itself.

    The logits are summed *inside* the inner tape: each example's gradient
    depends only on its own logit, so the gradient of the sum is the stack of
    per-example gradients (and it stays correct under tf.distribute, where a
    reduction outside the tape would not be recorded).

    Returns: (penalty [N] float32, real_logits [N] float32).
    """
    with tf.GradientTape() as tape:
        tape.watch(reals)
        real_logits = discriminator_fn(reals)
        total = tf.reduce_sum(real_logits)
    grads = tf.cast(tape.gradient(total, reals), tf.float32)       # [N,H,W,3]
    return tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]), real_logits


def lazy_r1_weight(gamma: float, interval: int, step) -> tf.Tensor:
    """Weight of the R1 term at D step ``step`` (StyleGAN2's lazy regularisation).

    The penalty is applied on every ``interval``-th step only, scaled by
    ``interval`` so that its weight averaged over steps stays ``gamma``.
    """
    if interval <= 1:
        return tf.constant(gamma, tf.float32)
    due = tf.equal(tf.math.floormod(tf.cast(step, tf.int64), interval), 0)
    return tf.where(due, tf.constant(gamma * interval, tf.float32), 0.0)


def pixel_loss(fake: tf.Tensor, target: tf.Tensor, kind: str) -> tf.Tensor:
    """Mean |x̂ - x| (``l1``) or (x̂ - x)² (``l2``) per example: [N]."""
    diff = tf.cast(fake, tf.float32) - tf.cast(target, tf.float32)
    if kind == "l1":
        return tf.reduce_mean(tf.abs(diff), axis=[1, 2, 3])
    if kind == "l2":
        return tf.reduce_mean(tf.square(diff), axis=[1, 2, 3])
    raise ValueError(f"pixel loss must be 'l1' or 'l2', got {kind!r}")


def ema_beta(batch: int, half_life_kimg: float, rampup: float = 0.0, images_seen=None):
    """Per-step EMA decay so the average halves every ``half_life_kimg`` images (StyleGAN).

    With ``rampup`` > 0 the half-life is also capped at ``rampup · images_seen``
    (StyleGAN2-ADA), so short runs get a useful G_ema early on.
    """
    half_life = half_life_kimg * 1000.0
    if rampup > 0 and images_seen is not None:
        half_life = tf.minimum(half_life, tf.cast(images_seen, tf.float32) * rampup)
    elif half_life <= 0:
        return 0.0
    return tf.pow(0.5, batch / tf.maximum(tf.cast(half_life, tf.float32), 1e-8))

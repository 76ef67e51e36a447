"""PAN's discriminator: ProGAN's, grown alongside the generator (paper Fig. 3a, 3d).

``fromRGB[r] → B[r] → … → B[2b] → minibatch-stddev → conv3×3 → dense → dense(1)``
where a block B[r] is conv3×3 → lrelu → [blur] → stride-2 conv → lrelu, the same
shape as the generator's encoder blocks (the blur only with
``--resample_filter=binomial``). It is unconditional, as in the paper: it judges
whether an image looks like a real face, never whether it matches the LR input.
During a fade-in the input is blended like ProGAN:
``lerp(fromRGB[r/2](down(x)), B[r](fromRGB[r](x)), α)``.

All blocks are built at construction; ``stage`` selects the path. The final
logits are float32 whatever the dtype policy (R1 and the losses need them).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from pan_tf.config import ModelConfig
from pan_tf.generator import EncoderBlock
from pan_tf.layers import (
    EqualizedConv2D,
    EqualizedDense,
    MinibatchStddev,
    downsample2x,
    lerp,
    lrelu,
)


class Discriminator(keras.Model):
    """Unconditional progressive discriminator; returns logits [N]."""

    def __init__(self, config: ModelConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        c, b, nf = config, config.bottleneck_res, config.nf
        # Plain attributes named by resolution: tf.train.Checkpoint follows attributes.
        dt = self.dtype_policy  # float32, or mixed_* for training
        filtered = c.resample_filter == "binomial"
        for r in c.stage_resolutions:
            setattr(self, f"from_rgb_{r}", EqualizedConv2D(nf(r), 1, name=f"from_rgb_{r}", dtype=dt))
        for r in c.block_resolutions:
            setattr(self, f"block_{r}", EncoderBlock(nf(r), nf(r // 2), filtered,
                                                     name=f"block_{r}", dtype=dt))
        self.mbstd = MinibatchStddev(c.mbstd_group, name="mbstd", dtype=dt)
        self.conv = EqualizedConv2D(nf(b), 3, name="conv", dtype=dt)
        self.dense = EqualizedDense(nf(b), name="dense", dtype=dt)
        # Logits (and hence the losses and R1) stay float32 under mixed precision.
        self.logits = EqualizedDense(1, gain=1.0, name="logits", dtype="float32")
        self._build_all()

    def _build_all(self):
        c, b = self.config, self.config.bottleneck_res
        channels = 6 if c.conditional_d else 3  # conditional: image ‖ upsampled LR
        for r in c.stage_resolutions:
            self.from_rgb(r).build((None, r, r, channels))
        for r in c.block_resolutions:
            self.block(r).build((None, r, r, c.nf(r)))
        self.conv.build((None, b, b, c.nf(b) + 1))
        self.dense.build((None, b * b * c.nf(b)))
        self.logits.build((None, c.nf(b)))
        self.built = True

    def from_rgb(self, res: int) -> EqualizedConv2D:
        return getattr(self, f"from_rgb_{res}")

    def block(self, res: int) -> EncoderBlock:
        return getattr(self, f"block_{res}")

    def call(self, images, stage: int, alpha=1.0, condition=None):
        """images: [N, r, r, 3] with r = stage_resolutions[stage] → logits [N] float32.

        ``condition`` (the generator's LR input, only with ``conditional_d``) is
        resized to r and concatenated to the images as three more channels.
        """
        c, b = self.config, self.config.bottleneck_res
        res = c.stage_resolutions[stage]
        fading = stage > 0 and not (isinstance(alpha, (int, float)) and alpha >= 1.0)
        if c.conditional_d:
            if condition is None:
                raise ValueError("this discriminator is conditional: pass condition=LR")
            up = tf.image.resize(tf.cast(condition, tf.float32), [res, res], method="bilinear")
            images = tf.concat([tf.cast(images, tf.float32), up], axis=-1)  # [N,r,r,6]
        h = lrelu(self.from_rgb(res)(images))        # [N,r,r,nf(r)]
        h, _ = self.block(res)(h)                   # [N,r/2,r/2,nf(r/2)]
        if fading:
            old = lrelu(self.from_rgb(res // 2)(downsample2x(images)))
            h = lerp(tf.cast(old, h.dtype), h, alpha)
        r = res // 2
        while r > b:
            h, _ = self.block(r)(h)
            r //= 2
        h = self.mbstd(h)                                 # [N,b,b,nf(b)+1]
        h = lrelu(self.conv(h))                           # [N,b,b,nf(b)]
        h = tf.reshape(h, [tf.shape(h)[0], b * b * h.shape[-1]])
        h = lrelu(self.dense(h))                          # [N,nf(b)]
        return tf.squeeze(self.logits(tf.cast(h, tf.float32)), axis=-1)  # [N]

"""PAN's generator: a progressively grown partial U-Net (paper §4.1, Fig. 2-3).

Layout for lr_size L, output r (DESIGN §3)::

    input (r_in = min(r, L)) ─ fromRGB ─ E[r_in] ─ … ─ E[2b] ─ bottleneck (b×b)
                                  │skip                 │skip
    output r ─ toRGB ─ D[r] ─ … ─ D[L] ─ … ─ D[2b] ───────┘

* Encoder block E[r] (Fig. 3a): conv3×3 → lrelu (the skip feature at r) →
  stride-2 conv → lrelu (to r/2).
* Decoder block D[r] (Fig. 3b): stride-2 transposed conv (to r) → noise →
  lrelu → [concat E[r]'s skip if r ≤ L] → conv3×3 → noise → lrelu.
  With ``--resample_filter=binomial`` (StyleGAN) a [1,2,1] low-pass follows every
  transposed conv and precedes every stride-2 conv; the default is ProGAN's, none.
* Restoration stages (r ≤ L) grow the U-Net at both ends: a new fromRGB + E[r]
  at the input and a new D[r] + toRGB at the output. SR stages (r > L) only add
  decoder blocks, which have no skip and rely on noise for detail.
* During a fade-in the new blocks are blended with the old path by α on both
  ends (Fig. 3c): input ``lerp(fromRGB[r/2](down(x)), E[r](fromRGB[r](x)), α)``,
  output ``lerp(up(toRGB[r/2](h)), toRGB[r](D[r](h)), α)``.

Every block of every stage is built once in ``build``; the ``stage`` argument
(a Python int) selects the active path, so checkpoints always hold the same
variables. Images are NHWC in [-1, 1].

Noise: each noise layer draws ε from a stateless seed folded with the layer's
index. Training passes a fresh seed per step and the global batch (so replicas
slice one global noise tensor and agree with a single device); inference uses a
fixed seed and one noise map broadcast over the batch, so an image's output
does not depend on the batch it came in.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from pan_tf.config import ModelConfig
from pan_tf.layers import (
    LRELU_SLOPE,
    EqualizedConv2D,
    EqualizedConv2DTranspose,
    NoiseInjection,
    binomial_blur,
    box_downsample,
    downsample2x,
    lerp,
    lrelu,
    nearest_upsample,
    upsample2x,
)

INFERENCE_NOISE_SEED = (20200101, 8)  # fixed seed: exported models are deterministic


class NoiseSpec:
    """Where a forward pass takes its noise from.

    Args:
      seed: int32 [2] stateless seed.
      global_batch: None for inference (one map per layer, broadcast over the
        batch); else the global batch size, and this replica's images are rows
        ``offset … offset + local batch`` of one global noise tensor.
      offset: first global row of this replica's batch (int or scalar tensor).
      strength: multiplies every noise map (1 = as trained, 0 = no noise).
    """

    def __init__(self, seed, global_batch=None, offset=0, strength=1.0):
        self.seed = tf.cast(seed, tf.int32)
        self.global_batch = global_batch
        self.offset = offset
        self.strength = strength

    def sample(self, layer_id: int, x: tf.Tensor) -> tf.Tensor:
        """ε for the noise layer ``layer_id`` applied to x: [N|1, H, W, 1]."""
        seed = tf.random.experimental.stateless_fold_in(self.seed, layer_id)
        shape = tf.shape(x)
        if self.global_batch is None:
            eps = tf.random.stateless_normal([1, shape[1], shape[2], 1], seed)
        else:
            eps = tf.random.stateless_normal([self.global_batch, shape[1], shape[2], 1], seed)
            eps = eps[self.offset:self.offset + shape[0]]
        return eps * tf.cast(self.strength, eps.dtype)


def inference_noise(strength=1.0, seed=INFERENCE_NOISE_SEED) -> NoiseSpec:
    return NoiseSpec(tf.constant(seed, tf.int32), strength=strength)


# Passes of the smooth back-projection. Each shrinks a residual component by 1 − (its
# gain through bilinear-up then box-down): smooth ones vanish in a pass or two, the LR
# Nyquist checkerboard keeps 0.75 per pass (18% after 6). Faces carry little there: on
# the held-out faces 6 passes reach the nearest version's consistency to uint8 precision.
BACKPROJECT_SMOOTH_ITERATIONS = 6


def back_project(sr: tf.Tensor, lr: tf.Tensor, scale: int, smooth: bool = False) -> tf.Tensor:
    """Makes SR's scale×scale box averages equal LR. An option beyond the paper (--consistency).

    ``smooth=False`` ('backproject'): SR + nearest_up(LR − area_down(SR)), the closest
    image (in L2) with exactly those box averages; the correction is constant on each
    box, so a large residual shows as a grid of scale×scale blocks.
    ``smooth=True`` ('backproject_smooth'): iterative back-projection (Irani & Peleg
    1991) with the residual upsampled bilinearly, repeated
    ``BACKPROJECT_SMOOTH_ITERATIONS`` times: the correction is smooth, and the box
    averages converge to LR (every frequency of the residual shrinks at each pass).
    Bilinear, not bicubic: XLA has no bicubic resize, and the train step is compiled.

    ``scale`` is a Python int (the stage's res // r_in): exported graphs have no
    static height or width to derive it from.
    """
    if not smooth:
        residual = lr - box_downsample(sr, scale)                      # [N,r_in,r_in,3]
        return sr + nearest_upsample(residual, scale)
    size = tf.shape(lr)[1:3] * scale
    for _ in range(BACKPROJECT_SMOOTH_ITERATIONS):
        residual = lr - box_downsample(sr, scale)
        sr = sr + tf.image.resize(residual, size, method="bilinear")
    return sr


class EncoderBlock(keras.layers.Layer):
    """conv3×3 → lrelu → [blur] → stride-2 conv → lrelu: (features at r/2, skip at r).

    ``filtered``: StyleGAN's low-pass before the downscaling conv (``--resample_filter``).
    """

    def __init__(self, channels: int, out_channels: int, filtered: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.filtered = filtered
        dt = self.dtype_policy
        self.conv = EqualizedConv2D(channels, 3, name="conv", dtype=dt)
        self.down = EqualizedConv2D(out_channels, 3, strides=2, name="down", dtype=dt)
        self.channels, self.out_channels = channels, out_channels

    def build(self, input_shape):
        self.conv.build(input_shape)
        self.down.build((*input_shape[:-1], self.channels))

    def call(self, x):
        skip = lrelu(self.conv(x))        # [N,r,r,nf(r)]
        h = binomial_blur(skip) if self.filtered else skip
        return lrelu(self.down(h)), skip  # [N,r/2,r/2,nf(r/2)]


class DecoderBlock(keras.layers.Layer):
    """Transposed conv ↑2 → [blur] → noise → lrelu → [concat skip] → conv3×3 → noise →
    lrelu.

    ``filtered``: StyleGAN's low-pass after the upscaling conv (``--resample_filter``).
    """

    def __init__(self, channels: int, skip_channels: int, use_noise: bool,
                 filtered: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.filtered = filtered
        dt = self.dtype_policy
        self.up = EqualizedConv2DTranspose(channels, 3, name="up", dtype=dt)
        self.conv = EqualizedConv2D(channels, 3, name="conv", dtype=dt)
        # Plain attributes (not a list): tf.train.Checkpoint only follows attributes.
        self.noise0 = NoiseInjection(name="noise0", dtype=dt) if use_noise else None
        self.noise1 = NoiseInjection(name="noise1", dtype=dt) if use_noise else None
        self.channels, self.skip_channels = channels, skip_channels

    def build(self, input_shape):
        n, h, w = input_shape[0], input_shape[1], input_shape[2]
        up_shape = (n, None if h is None else 2 * h, None if w is None else 2 * w, self.channels)
        self.up.build(input_shape)
        self.conv.build((*up_shape[:-1], self.channels + self.skip_channels))
        for layer in (self.noise0, self.noise1):
            if layer is not None:
                layer.build(up_shape)

    def call(self, x, skip, noise: NoiseSpec | None, noise_id: int):
        x = self.up(x)                                   # [N,r,r,nf(r)]
        if self.filtered:
            x = binomial_blur(x)
        if self.noise0 is not None and noise is not None:
            x = self.noise0(x, noise.sample(noise_id, x))
        x = lrelu(x)
        if skip is not None:
            x = tf.concat([x, tf.cast(skip, x.dtype)], axis=-1)  # [N,r,r,nf(r)+nf(r)]
        x = self.conv(x)
        if self.noise1 is not None and noise is not None:
            x = self.noise1(x, noise.sample(noise_id + 1, x))
        return lrelu(x)


class Generator(keras.Model):
    """Partial U-Net generator; every stage's blocks are built at construction."""

    def __init__(self, config: ModelConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        c, b = config, config.bottleneck_res
        nf = c.nf
        # Blocks are plain attributes named by resolution (tf.train.Checkpoint
        # follows attributes, not Keras' tracked dicts); look them up by method.
        # Sublayers share this model's dtype policy (float32, or mixed_* for training).
        dt = self.dtype_policy
        filtered = c.resample_filter == "binomial"
        for r in c.stage_resolutions:
            if r <= c.lr_size:
                setattr(self, f"from_rgb_{r}",
                        EqualizedConv2D(nf(r), 1, name=f"from_rgb_{r}", dtype=dt))
            setattr(self, f"to_rgb_{r}",
                    EqualizedConv2D(3, 1, gain=1.0, name=f"to_rgb_{r}", dtype=dt))
        for r in c.block_resolutions:
            if r <= c.lr_size:
                setattr(self, f"enc_{r}", EncoderBlock(nf(r), nf(r // 2), filtered,
                                                       name=f"enc_{r}", dtype=dt))
            skip_channels = nf(r) if r in c.skip_resolutions else 0
            setattr(self, f"dec_{r}", DecoderBlock(nf(r), skip_channels, c.noise, filtered,
                                                   name=f"dec_{r}", dtype=dt))
        self.bottleneck = EqualizedConv2D(nf(b), 3, name=f"bottleneck_{b}", dtype=dt)
        self._build_all()

    def _build_all(self):
        """Create every variable now, so one checkpoint layout serves all stages."""
        c, b = self.config, self.config.bottleneck_res
        for r in c.stage_resolutions:
            if r <= c.lr_size:
                self.from_rgb(r).build((None, r, r, 3))
            self.to_rgb(r).build((None, r, r, c.nf(r)))
        for r in c.block_resolutions:
            if r <= c.lr_size:
                self.encoder(r).build((None, r, r, c.nf(r)))
            self.decoder(r).build((None, r // 2, r // 2, c.nf(r // 2)))
        self.bottleneck.build((None, b, b, c.nf(b)))
        self.built = True

    def from_rgb(self, res: int) -> EqualizedConv2D:
        return getattr(self, f"from_rgb_{res}")

    def to_rgb(self, res: int) -> EqualizedConv2D:
        return getattr(self, f"to_rgb_{res}")

    def encoder(self, res: int) -> EncoderBlock:
        return getattr(self, f"enc_{res}")

    def decoder(self, res: int) -> DecoderBlock:
        return getattr(self, f"dec_{res}")

    def set_noise_strength(self, value: float) -> None:
        """Sets every noise layer's per-channel strength ``w`` (Eq. 5) to ``value``."""
        for r in self.config.block_resolutions:
            block = self.decoder(r)
            for layer in (block.noise0, block.noise1):
                if layer is not None:
                    layer.strength.assign(tf.fill(layer.strength.shape, float(value)))

    def trainable_at(self, stage: int, sr_freeze: str = "none") -> list:
        """The weights a step of ``stage`` updates (``--sr_freeze``, a reading of Eq. 2).

        'none' (ProGAN): every weight; blocks the stage does not use get no gradient.
        At SR stages (output above lr_size), 'unet' keeps the restoration U-Net as the
        earlier stages trained it and updates the SR decoder blocks and their toRGBs;
        'previous' updates the stage's new decoder block and toRGB only. Restoration
        stages always train every weight.
        """
        c = self.config
        res = c.stage_resolutions[stage]
        if sr_freeze == "none" or res <= c.lr_size:
            return self.trainable_variables
        lowest = res if sr_freeze == "previous" else 2 * c.lr_size
        return [v for r in c.stage_resolutions if lowest <= r <= res
                for v in (*self.decoder(r).trainable_variables, *self.to_rgb(r).trainable_variables)]

    def init_grown_block(self, res: int) -> None:
        """Beyond the paper (``--grow_init=identity``): SR block ``res`` starts as the old path.

        Sets D[res] and toRGB[res] so that ``toRGB[res](D[res](h))`` equals
        ``upsample2x(toRGB[res/2](h))`` exactly: the block's first six channels carry
        the old RGB output c as +c and −c (the transposed conv is nearest ×2 → conv, so
        its centre tap is a 1×1 map after a nearest upsample), and since
        ``lrelu(c) − lrelu(−c) = 1.2·c`` the conv3×3 and toRGB undo each lrelu with
        centre taps of ±1/1.2. The other channels keep their random init, and toRGB
        reads them at weight 0, so they still get gradients. Growing then no longer moves
        the output, where a ProGAN block starts random and its fade-in blends towards
        that. The noise strengths stay at 0. Weights are stored divided by each layer's
        He constant (equalized lr).
        """
        c = self.config
        if res <= c.lr_size or res not in c.stage_resolutions[1:]:
            raise ValueError(f"init_grown_block needs an SR stage above {c.lr_size} px, got {res}")
        old, block, new = self.to_rgb(res // 2), self.decoder(res), self.to_rgb(res)
        w_old = old.kernel.numpy()[0, 0] * old.scale                  # [nf(res/2), 3]
        b_old = old.bias.numpy()                                      # [3]
        inv = 1.0 / (1.0 + LRELU_SLOPE)

        k_up, b_up = block.up.kernel.numpy(), block.up.bias.numpy()   # [3,3,nf(res/2),nf(res)]
        k_up[:, :, :, :6] = 0.0
        k_up[1, 1, :, :6] = np.concatenate([w_old, -w_old], axis=1) / block.up.scale
        b_up[:6] = np.concatenate([b_old, -b_old])
        k_conv, b_conv = block.conv.kernel.numpy(), block.conv.bias.numpy()  # [3,3,nf,nf]
        k_conv[:, :, :, :6] = 0.0
        undo = inv * np.kron(np.array([[1.0, -1.0], [-1.0, 1.0]], np.float32), np.eye(3))
        k_conv[1, 1, :6, :6] = undo / block.conv.scale                # ±(a − n)/1.2 = ±c
        b_conv[:6] = 0.0
        k_rgb = np.zeros(new.kernel.shape, np.float32)               # [1,1,nf(res),3]
        k_rgb[0, 0, :6] = inv * np.kron([[1.0], [-1.0]], np.eye(3)) / new.scale  # (a − n)/1.2 = c
        for var, value in ((block.up.kernel, k_up), (block.up.bias, b_up),
                           (block.conv.kernel, k_conv), (block.conv.bias, b_conv),
                           (new.kernel, k_rgb), (new.bias, np.zeros(3, np.float32))):
            var.assign(value)
        for layer in (block.noise0, block.noise1):
            if layer is not None:
                strength = layer.strength.numpy()
                strength[:6] = 0.0
                layer.strength.assign(strength)

    def call(self, lr, stage: int, alpha=1.0, noise: NoiseSpec | None = None):
        """lr: [N, r_in, r_in, 3] → [N, r, r, 3] with r = stage_resolutions[stage].

        ``alpha`` may be a Python float or a scalar tensor/variable; a Python
        1.0 (or stage 0) skips the old path entirely.
        """
        c, b = self.config, self.config.bottleneck_res
        res = c.stage_resolutions[stage]
        r_in = c.input_resolution(stage)
        fading = stage > 0 and not (isinstance(alpha, (int, float)) and alpha >= 1.0)
        if noise is None:
            noise = inference_noise()

        # Encoder: grows at the input side while the output is ≤ lr_size.
        h = lrelu(self.from_rgb(r_in)(lr))          # [N,r_in,r_in,nf]
        skips = {}
        r = r_in
        h, skips[r] = self.encoder(r)(h)
        if fading and res <= c.lr_size:                   # input-side fade-in (Fig. 3c)
            old = lrelu(self.from_rgb(r // 2)(downsample2x(lr)))
            h = lerp(tf.cast(old, h.dtype), h, alpha)
        r //= 2
        while r > b:
            h, skips[r] = self.encoder(r)(h)
            r //= 2
        h = lrelu(self.bottleneck(h))                     # [N,b,b,nf(b)]

        # Decoder: up to the stage's resolution, skips at r ≤ lr_size.
        r = 2 * b
        while True:
            skip = skips.get(r) if r in c.skip_resolutions else None
            out = self.decoder(r)(h, skip=skip, noise=noise, noise_id=2 * r.bit_length())
            if r == res:
                break
            h, r = out, 2 * r
        rgb = self.to_rgb(res)(out)                  # [N,r,r,3]
        if fading:                                        # output-side fade-in (Fig. 3c)
            old = upsample2x(self.to_rgb(res // 2)(h))
            rgb = lerp(old, rgb, alpha)
        rgb = tf.cast(rgb, tf.float32)  # images leave the network in float32 whatever the policy
        if c.consistency != "none" and res > r_in:
            rgb = back_project(rgb, tf.cast(lr, tf.float32), res // r_in,
                               smooth=c.consistency == "backproject_smooth")
        return rgb


def random_generator(config: ModelConfig, seed: int, noise_strength: float = 0.0,
                     name: str = "g_ema") -> Generator:
    """An untrained Generator for benchmarks and tests: Keras is seeded with ``seed``
    before the weights are drawn (the same seed gives the same weights), and the noise
    strengths, 0 at init, are set to ``noise_strength`` so that the noise path reaches
    the output."""
    keras.utils.set_random_seed(seed)
    generator = Generator(config, name=name)
    generator.set_noise_strength(noise_strength)
    return generator

"""Building blocks shared by the generator and the discriminator.

Everything here follows ProGAN/StyleGAN conventions (DESIGN §3):

* **Equalized learning rate.** Weights are drawn from N(0, 1) and scaled at run
  time by ``gain / sqrt(fan_in)`` (He's constant), so Adam sees every layer at
  the same dynamic range.
* LeakyReLU with slope 0.2.
* Resampling by exactly 2: 2×2 average pooling down, nearest neighbour up
  (ProGAN's fade-in paths).
* **Resampling convolutions without checkerboards.** The paper's
  ``conv2D_downscale`` (stride-2 conv) and ``conv2D_upscale`` (stride-2
  transposed conv) are built the way ProGAN fuses them: the learned 3×3 kernel is
  padded to 4×4 and summed over its four 2×2 shifts, so the stride-2 conv equals
  conv3×3 → 2×2 average pool and the transposed conv equals nearest ×2 →
  conv3×3. A plain 3×3 kernel at stride 2 covers the pixels unevenly (Odena et
  al., 2016: the transposed conv paints a 2-px checkerboard, the strided conv
  samples odd pixels twice and shifts by half a pixel), which a GAN-only model
  is never paid to undo.
* **StyleGAN's resampling filter** (optional, ``--resample_filter=binomial``): a
  [1,2,1]⊗[1,2,1]/16 low-pass after every upscaling conv and before every
  downscaling one, so nearest ×2 becomes bilinear ×2 and 2×2 pooling sees a
  band-limited input (StyleGAN's Table 1 config B, after Zhang 2019). ProGAN,
  the default, has none.
* **Noise injection** (paper Eq. 5, StyleGAN): ``y_i ← y_i + w_i·ε`` with one
  N(0, 1) map ε per layer shared by all channels and a learned per-channel
  scale ``w`` initialised to 0.
* **Minibatch standard deviation** (ProGAN) in the discriminator.

All layers are NHWC, respect the Keras dtype policy (weights stay float32 and
are cast to the compute dtype), and use only core TensorFlow ops so that the
exported SavedModels run in TF Serving.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

LRELU_SLOPE = 0.2
RELU_GAIN = math.sqrt(2.0)


def lrelu(x: tf.Tensor) -> tf.Tensor:
    """LeakyReLU(0.2), the activation of every hidden layer."""
    return tf.nn.leaky_relu(x, alpha=LRELU_SLOPE)


def box_downsample(x: tf.Tensor, factor: int) -> tf.Tensor:
    """[N,H,W,C] -> [N,H/f,W/f,C] by f×f box averaging."""
    return tf.nn.avg_pool2d(x, ksize=factor, strides=factor, padding="VALID")


def nearest_upsample(x: tf.Tensor, factor: int) -> tf.Tensor:
    """[N,H,W,C] -> [N,fH,fW,C] by nearest-neighbour repetition."""
    return tf.repeat(tf.repeat(x, factor, axis=1), factor, axis=2)


def downsample2x(x: tf.Tensor) -> tf.Tensor:
    return box_downsample(x, 2)


def upsample2x(x: tf.Tensor) -> tf.Tensor:
    return nearest_upsample(x, 2)


def binomial_blur(x: tf.Tensor) -> tf.Tensor:
    """[N,H,W,C] low-passed by [1,2,1]⊗[1,2,1]/16 (StyleGAN's resampling filter).

    Edges are mirrored (symmetric padding), so a flat map stays flat up to the border
    and ``binomial_blur(nearest_upsample(x, 2))`` is exactly bilinear ×2 with half-pixel
    centres, edges included. Shifted sums rather than a depthwise conv: XLA fuses them.
    """
    x = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
    x = (x[:, :-2] + 2.0 * x[:, 1:-1] + x[:, 2:]) * 0.25
    return (x[:, :, :-2] + 2.0 * x[:, :, 1:-1] + x[:, :, 2:]) * 0.25


def resampling_kernel(w: tf.Tensor) -> tf.Tensor:
    """[k,k,I,O] → [k+1,k+1,I,O]: w padded by one and summed over its four 2×2 shifts.

    At stride 2 this kernel covers every input pixel equally: conv2d with it (and
    a factor ¼) is conv k×k followed by 2×2 average pooling; conv2d_transpose with
    it, spatially flipped, is nearest ×2 followed by conv k×k.
    """
    w = tf.pad(w, [[1, 1], [1, 1], [0, 0], [0, 0]])
    return w[1:, 1:] + w[:-1, 1:] + w[1:, :-1] + w[:-1, :-1]


def lerp(a: tf.Tensor, b: tf.Tensor, t) -> tf.Tensor:
    """a + (b - a)·t: t = 0 gives a (the old path), t = 1 gives b (the new one)."""
    t = tf.cast(t, a.dtype)
    return a + (b - a) * t


class EqualizedConv2D(keras.layers.Layer):
    """Conv2D with runtime He scaling, 'SAME' padding, NHWC.

    ``strides=2`` is the paper's ``conv2D_downscale``: one stride-2 conv whose
    kernel is ``resampling_kernel(w)/4``, i.e. exactly conv k×k → 2×2 average pool
    (ProGAN's fused downscale), at 4/9 of that pair's cost.
    """

    def __init__(
        self,
        filters: int,          # output channels
        kernel_size: int,      # square kernel side, in pixels
        strides: int = 1,      # 1, or 2 to halve the resolution (conv → 2×2 average pool)
        gain: float = RELU_GAIN,  # sqrt(2) before LeakyReLU, 1 for linear outputs (toRGB)
        use_bias: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.gain = gain
        self.use_bias = use_bias
        if strides not in (1, 2):
            raise ValueError(f"EqualizedConv2D strides must be 1 or 2, got {strides}")

    def build(self, input_shape):
        in_channels = int(input_shape[-1])
        k = self.kernel_size
        self.kernel = self.add_weight(
            name="kernel", shape=(k, k, in_channels, self.filters),
            initializer=keras.initializers.RandomNormal(0.0, 1.0))
        self.bias = self.add_weight(
            name="bias", shape=(self.filters,), initializer="zeros") if self.use_bias else None
        self.scale = self.gain / math.sqrt(k * k * in_channels)

    def call(self, x):
        w = tf.cast(self.kernel, x.dtype) * tf.cast(self.scale, x.dtype)
        if self.strides == 2:
            w = resampling_kernel(w) * tf.cast(0.25, x.dtype)
        y = tf.nn.conv2d(x, w, strides=self.strides, padding="SAME")
        if self.bias is not None:
            y = tf.nn.bias_add(y, tf.cast(self.bias, x.dtype))
        return y

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "gain": self.gain, "use_bias": self.use_bias}


class EqualizedConv2DTranspose(keras.layers.Layer):
    """Stride-2 transposed convolution ("conv2D_upscale" of the paper's Fig. 3b).

    Its kernel is ``resampling_kernel(w)`` flipped, so the layer computes exactly
    nearest ×2 → conv k×k with the stored ``[k,k,in,out]`` kernel (ProGAN's fused
    upscale) in one op at 4/9 of that pair's cost, and every output pixel sees the
    same number of taps (no checkerboard). He's constant uses ``k·k·in_channels``.
    """

    def __init__(
        self,
        filters: int,          # output channels
        kernel_size: int = 3,  # square kernel side, in pixels
        gain: float = RELU_GAIN,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.gain = gain

    def build(self, input_shape):
        in_channels = int(input_shape[-1])
        k = self.kernel_size
        # Stored like a conv kernel, [k,k,in,out]; call() turns it into the
        # [k+1,k+1,out,in] kernel conv2d_transpose wants.
        self.kernel = self.add_weight(
            name="kernel", shape=(k, k, in_channels, self.filters),
            initializer=keras.initializers.RandomNormal(0.0, 1.0))
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
        self.scale = self.gain / math.sqrt(k * k * in_channels)

    def call(self, x):
        w = tf.cast(self.kernel, x.dtype) * tf.cast(self.scale, x.dtype)
        w = tf.transpose(resampling_kernel(w)[::-1, ::-1], [0, 1, 3, 2])  # [k+1,k+1,out,in]
        shape = tf.shape(x)
        out_shape = tf.stack([shape[0], shape[1] * 2, shape[2] * 2, self.filters])
        y = tf.nn.conv2d_transpose(x, w, out_shape, strides=2, padding="SAME")
        return tf.nn.bias_add(y, tf.cast(self.bias, x.dtype))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "gain": self.gain}


class EqualizedDense(keras.layers.Layer):
    """Fully connected layer with runtime He scaling."""

    def __init__(self, units: int, gain: float = RELU_GAIN, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.gain = gain

    def build(self, input_shape):
        fan_in = int(input_shape[-1])
        self.kernel = self.add_weight(
            name="kernel", shape=(fan_in, self.units),
            initializer=keras.initializers.RandomNormal(0.0, 1.0))
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
        self.scale = self.gain / math.sqrt(fan_in)

    def call(self, x):
        w = tf.cast(self.kernel, x.dtype) * tf.cast(self.scale, x.dtype)
        return tf.matmul(x, w) + tf.cast(self.bias, x.dtype)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "gain": self.gain}


class NoiseInjection(keras.layers.Layer):
    """Adds ``w_i·ε`` to channel i (paper Eq. 5); ``w`` starts at 0 (StyleGAN)."""

    def build(self, input_shape):
        self.strength = self.add_weight(
            name="strength", shape=(int(input_shape[-1]),), initializer="zeros")

    def call(self, x, noise):
        # x: [N,H,W,C]; noise: [N,H,W,1] or [1,H,W,1] (broadcast over the batch).
        return x + tf.cast(noise, x.dtype) * tf.cast(self.strength, x.dtype)


class MinibatchStddev(keras.layers.Layer):
    """Appends one feature map: the mean feature stddev within groups of images.

    Groups are *contiguous* runs of the batch (images 0..G-1, G..2G-1, …), unlike
    ProGAN's strided grouping, so that splitting a global batch over replicas
    keeps every group intact and two replicas compute exactly what one would.
    The group size is the largest divisor of the per-replica batch ≤ group_size.
    """

    def __init__(self, group_size: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.group_size = group_size

    def call(self, x):
        n = x.shape[0]
        if n is None:
            raise ValueError("MinibatchStddev needs a static batch size.")
        g = max(d for d in range(1, min(self.group_size, n) + 1) if n % d == 0)
        y = tf.reshape(tf.cast(x, tf.float32), [n // g, g, -1])                      # [M,G,H·W·C]
        y = y - tf.reduce_mean(y, axis=1, keepdims=True)
        y = tf.sqrt(tf.reduce_mean(tf.square(y), axis=1) + 1e-8)                   # [M,H·W·C]
        y = tf.reduce_mean(y, axis=1)                                               # [M]
        y = tf.reshape(tf.broadcast_to(y[:, None], [n // g, g]), [n, 1, 1, 1])      # [N,1,1,1]
        # Broadcast against x's first channel: no dynamic shapes (XLA-friendly).
        y = tf.zeros_like(x[..., :1]) + tf.cast(y, x.dtype)                         # [N,H,W,1]
        return tf.concat([x, y], axis=-1)

    def get_config(self):
        return {**super().get_config(), "group_size": self.group_size}

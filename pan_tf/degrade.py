"""Online degradation of training inputs: x̃ = J((x ⊗ k ⊗ b)↓s + n)  (paper §5.7).

The paper degrades every HR training face x into a realistic LR input x̃ with an
aperture blur k, a handshake (motion) blur b, downsampling ↓s by the exact scale,
additive noise n and JPEG compression J. This module applies them per example, in
that order, on float32 [H,W,3] images in [0, 1]:

  1. blur      k ⊗ b: a random isotropic or anisotropic (rotated) Gaussian and a random
               camera-shake trajectory, combined into one kernel first (two small FFTs)
               and applied to the HR image with a single FFT convolution.
  2. ↓s        exact integer-factor downsampling with a random method
               (area = box average, or antialiased bilinear / bicubic).
  3. + n       Poisson (shot) noise, then Gaussian (read) noise, colour or gray.
  4. J         JPEG at a random quality.

Each step fires with its own probability (``DegradeConfig``), and an example goes
through them at all with probability ``degrade_prob`` (else it is only downsampled, by
the random method of step 2: a clean input). Every draw comes from
``tf.random.stateless_*`` with a sub-seed of the example's ``seed`` (one fixed sub-seed
per step, so switching one step off never changes the draws of the others): the same
seed gives identical bytes eagerly and inside ``tf.data.Dataset.map``. Everything is
core TF ops (no py_function); JPEG makes the ops 3-D only and not XLA-compilable, so
degradation runs in the input pipeline before batching.

Bit-exactness between eager and graph mode needs two habits below: divide by a
reciprocal op, never by a constant, and never write ``(x - m) + constant`` chains —
grappler rewrites both, and the rewritten float arithmetic differs in the last bit.
"""

from __future__ import annotations

import math

import tensorflow as tf

from pan_tf.config import DOWN_METHODS, DegradeConfig  # noqa: F401  (re-exported)


# ----------------------------------------------------------------------------- random draws

def _split(seed, n):
    """n independent sub-seeds of a [2] seed."""
    return tf.unstack(tf.random.experimental.stateless_split(seed, n))


def _inverse(x):
    """1/x as an op: multiply by it instead of dividing (graph mode rewrites x / constant)."""
    return tf.math.reciprocal(tf.cast(x, tf.float32))


def _uniform(seed, lo, hi):
    """A float32 scalar drawn uniformly from [lo, hi)."""
    return tf.random.stateless_uniform([], seed, minval=lo, maxval=hi)


def _randint(seed, lo, hi):
    """An int32 scalar drawn uniformly from {lo, …, hi} (inclusive)."""
    return tf.random.stateless_uniform([], seed, minval=lo, maxval=hi + 1, dtype=tf.int32)


def _coin(seed, p):
    """A bool scalar that is True with probability p."""
    return _uniform(seed, 0.0, 1.0) < p


def _maybe_branch(p, seed, yes, no):
    """yes() with probability p (decided from ``seed``), else no(). p = 0 or 1 builds no draw."""
    if p >= 1.0:
        return yes()
    if p <= 0.0:
        return no()
    return tf.cond(_coin(seed, p), yes, no)


def _maybe(p, seed, fn, x):
    """fn(x) with probability p (decided from ``seed``), else x."""
    return _maybe_branch(p, seed, lambda: fn(x), lambda: x)


# ----------------------------------------------------------------------------- kernels

def delta_kernel(size: int) -> tf.Tensor:
    """The identity kernel: [size, size] float32, 1 at the centre pixel."""
    return tf.reshape(tf.one_hot(size * size // 2, size * size), [size, size])


def gaussian_kernel(size, sigma_x, sigma_y, theta, max_size: int | None = None) -> tf.Tensor:
    """A normalised, centred 2-D Gaussian, optionally anisotropic and rotated.

    Args:
      size: odd kernel side (int or int32 scalar tensor); values outside the central
        size×size window are zero.
      sigma_x, sigma_y: standard deviations along the rotated axes, pixels.
      theta: rotation of the x axis, radians.
      max_size: static odd canvas side ≥ size, so a per-image ``size`` keeps graph shapes
        static; None means ``size`` (then it must be a Python int).

    Returns:
      [max_size, max_size] float32, non-negative, sums to 1. The kernel is point-symmetric,
      so its centroid is exactly the middle pixel.
    """
    canvas = size if max_size is None else max_size
    r = tf.range(canvas, dtype=tf.float32) - float(canvas // 2)
    x, y = r[None, :], r[:, None]
    cos, sin = tf.cos(theta), tf.sin(theta)
    u = cos * x + sin * y                                      # along the rotated x axis
    v = cos * y - sin * x                                      # along the rotated y axis
    k = tf.exp(-0.5 * (tf.square(u * _inverse(sigma_x)) + tf.square(v * _inverse(sigma_y))))
    half = tf.cast(size // 2, tf.float32)
    k = tf.where((tf.abs(x) <= half) & (tf.abs(y) <= half), k, 0.0)
    return k * _inverse(tf.reduce_sum(k))                      # centre is 1, so the sum is ≥ 1


def random_aperture_kernel(seed, config: DegradeConfig) -> tf.Tensor:
    """Aperture blur k: size, σ's and angle drawn from ``config``; [kmax, kmax] float32.

    The side is drawn uniformly from the odd sizes in ``config.blur_kernel_size`` and
    embedded in a zero canvas of the largest size. With probability ``aniso_prob`` the
    kernel is anisotropic (independent σx, σy, angle θ ∈ [0, π)), else isotropic.
    """
    s_size, s_aniso, s_sx, s_sy, s_theta = _split(seed, 5)
    kmin, kmax = config.blur_kernel_size
    size = kmin + 2 * _randint(s_size, 0, (kmax - kmin) // 2)
    aniso = _coin(s_aniso, config.aniso_prob)
    sigma_x = _uniform(s_sx, *config.blur_sigma)
    sigma_y = tf.where(aniso, _uniform(s_sy, *config.blur_sigma), sigma_x)
    theta = tf.where(aniso, _uniform(s_theta, 0.0, math.pi), 0.0)
    return gaussian_kernel(size, sigma_x, sigma_y, theta, max_size=kmax)


def camera_shake_trajectory(seed, length, points: int) -> tf.Tensor:
    """A random camera-shake path: [points, 2] float32 (y, x), bounding-box side = length.

    The velocity is a unit drift in a random direction plus an integrated random walk
    whose strength is drawn per path from [0, 2), so paths range from straight strokes
    to curly shakes; positions are the cumulative sum of the velocity.
    """
    s_dir, s_curl, s_walk = _split(seed, 3)
    angle = _uniform(s_dir, 0.0, 2.0 * math.pi)
    drift = tf.stack([tf.sin(angle), tf.cos(angle)])           # [2]
    curl = _uniform(s_curl, 0.0, 2.0)
    accel = tf.random.stateless_normal([points - 1, 2], s_walk) * (1.0 / math.sqrt(points - 1))
    velocity = drift + curl * tf.cumsum(accel, axis=0)         # [points-1, 2]
    path = tf.concat([tf.zeros([1, 2]), tf.cumsum(velocity, axis=0)], axis=0)
    extent = tf.reduce_max(tf.reduce_max(path, axis=0) - tf.reduce_min(path, axis=0))
    return path * (tf.cast(length, tf.float32) * _inverse(tf.maximum(extent, 1e-6)))


def _dense_samples(path, steps: int):
    """``steps`` equally spaced points per segment of a [P, 2] path, plus its end point."""
    t = tf.range(steps, dtype=tf.float32)[None, :, None] * (1.0 / steps)   # [1, steps, 1]
    samples = path[:-1, None, :] + t * (path[1:, None, :] - path[:-1, None, :])
    return tf.concat([tf.reshape(samples, [-1, 2]), path[-1:]], axis=0)  # [(P-1)·steps+1, 2]


def motion_kernel(seed, length, size: int, points: int) -> tf.Tensor:
    """Handshake blur b: a rasterised random trajectory; [size, size] float32.

    The path (``camera_shake_trajectory``) is sampled densely with equal time per
    segment (so slow parts of the shake are brighter, like a real exposure), spacing
    < 1 px, and each sample is splatted bilinearly. Bilinear splatting gives every
    sample's floor pixel a positive weight and consecutive floor pixels are 8-neighbours,
    so the support is one 8-connected path. The kernel is centred by its centroid
    (bilinear splatting preserves the mean position exactly), so the blur does not
    shift the image on average and LR stays aligned with HR. ``length`` is clipped to
    (size - 3) / 2 so the centred path always fits the canvas.

    Args:
      seed: int [2] stateless seed.
      length: trajectory extent (bounding-box side), pixels; float or float32 scalar.
      size: static odd canvas side, e.g. ``DegradeConfig.motion_kernel_size``.
      points: random-walk points (a few dozen).
    """
    length = tf.minimum(tf.cast(length, tf.float32), (size - 3) / 2.0)
    path = camera_shake_trajectory(seed, length, points)       # [points, 2]
    steps = 2 * size                    # per segment: spacing ≤ √2·length / steps < 1 px
    # Centre by shifting the path, not the samples (see the module note on grappler).
    path += float(size // 2) - tf.reduce_mean(_dense_samples(path, steps), axis=0)
    samples = _dense_samples(path, steps)                      # [N, 2]
    # Bilinear splatting as a sum of tent products: K = Σ_n tent(y - y_n) · tent(x - x_n).
    grid = tf.range(size, dtype=tf.float32)
    tent = tf.nn.relu(1.0 - tf.abs(grid[None, :, None] - samples[:, None, :]))  # [N, size, 2]
    k = tf.matmul(tent[:, :, 0], tent[:, :, 1], transpose_a=True)              # [size, size]
    return k * _inverse(tf.reduce_sum(k))


def random_motion_kernel(seed, config: DegradeConfig) -> tf.Tensor:
    """Handshake blur b with length drawn from ``config.motion_length``; [m, m] float32."""
    s_length, s_path = _split(seed, 2)
    length = _uniform(s_length, *config.motion_length)
    return motion_kernel(s_path, length, config.motion_kernel_size, config.motion_points)


def convolve_kernels(a, b) -> tf.Tensor:
    """Full 2-D convolution a ⊗ b of two odd square kernels; [Ka+Kb-1]² float32, sums to 1.

    Blurring with a ⊗ b equals blurring with a then b, at the cost of one image
    convolution. Computed exactly (no wrap-around) with FFTs of size Ka+Kb-1; FFT
    round-off (~1e-8) is clipped to keep the kernel non-negative.
    """
    n = a.shape[0] + b.shape[0] - 1
    spectrum = tf.signal.rfft2d(a, fft_length=[n, n]) * tf.signal.rfft2d(b, fft_length=[n, n])
    k = tf.nn.relu(tf.signal.irfft2d(spectrum, fft_length=[n, n]))
    return k * _inverse(tf.reduce_sum(k))


# ----------------------------------------------------------------------------- image ops

def _symmetric_indices(n, before, total):
    """Indices into [0, n) that pad by mirroring (edge repeated, like np.pad 'symmetric').

    Unlike tf.pad(mode="SYMMETRIC") it works for any pad width, even one larger than
    the image (the mirror repeats with period 2n), so small images take big kernels.
    """
    i = tf.math.floormod(tf.range(total) - before, 2 * n)
    return tf.where(i >= n, 2 * n - 1 - i, i)


def _down_shape(shape, scale):
    """Static shape of ``shape`` downsampled by ``scale`` (unknown sides stay unknown)."""
    dims = shape.as_list()
    for axis in (-3, -2):
        dims[axis] = None if dims[axis] is None else dims[axis] // scale
    return tf.TensorShape(dims)


def _dims(image):
    """(H, W) of a [..., H, W, C] image: Python ints when static, else scalar tensors."""
    dynamic = tf.shape(image)
    h, w = image.shape[-3], image.shape[-2]
    return (dynamic[-3] if h is None else h), (dynamic[-2] if w is None else w)


def _fft_size(n):
    """Smallest 2^a·3^b·5^c·7^d ≥ n for a static n (fast FFT lengths), else n itself."""
    if not isinstance(n, int):
        return n
    m = n
    while True:
        r = m
        for p in (2, 3, 5, 7):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def blur(image, kernel) -> tf.Tensor:
    """True 2-D convolution image ⊗ kernel per channel, mirrored borders, same size.

    Args:
      image: [H, W, C] or [N, H, W, C] float32.
      kernel: [Kh, Kw] float32 with odd static sides.

    Uses FFTs (tf.signal.rfft2d) on the symmetric-padded image, padded to at least
    (H+Kh-1)×(W+Kw-1) and up to the next 7-smooth length (1106 → 1120 halves the FFT
    time); the valid part of the circular convolution is the linear one, so there is
    no wrap-around. Measured on this project's 2-core CPU (shared, so ±30%), ms per
    [H,H,3] image with a K×K kernel, FFT vs tf.nn.depthwise_conv2d:
      H=64:   K=41  0.6 vs 2.5;   K=83  0.9 vs 9.4
      H=256:  K=41  2.2 vs 35;    K=83  2.6 vs 142
      H=1024: K=41  19–32 vs 536; K=83  19–34 vs 1126
    so FFT is used at every size (its cost hardly depends on K).
    """
    image = tf.convert_to_tensor(image, tf.float32)
    kernel = tf.convert_to_tensor(kernel, tf.float32)
    kh, kw = kernel.shape
    h, w = _dims(image)
    ph, pw = _fft_size(h + kh - 1), _fft_size(w + kw - 1)
    x = tf.gather(image, _symmetric_indices(h, kh // 2, ph), axis=-3)
    x = tf.gather(x, _symmetric_indices(w, kw // 2, pw), axis=-2)  # [..., ph, pw, C]
    rank = len(image.shape)
    to_planes = list(range(rank - 3)) + [rank - 1, rank - 3, rank - 2]  # [..., C, ph, pw]
    fft_length = tf.stack([ph, pw])
    spectrum = tf.signal.rfft2d(tf.transpose(x, to_planes), fft_length=fft_length)
    spectrum *= tf.signal.rfft2d(kernel, fft_length=fft_length)
    y = tf.signal.irfft2d(spectrum, fft_length=fft_length)
    y = y[..., kh - 1:kh - 1 + h, kw - 1:kw - 1 + w]           # the valid, wrap-free part
    y = tf.transpose(y, list(range(rank - 3)) + [rank - 2, rank - 1, rank - 3])
    return tf.ensure_shape(y, image.shape)


def area_downsample(image, scale: int) -> tf.Tensor:
    """Exact box average over scale×scale blocks; [H,W,C] → [H/s,W/s,C] (or 4-D batched).

    H and W must be multiples of ``scale``.
    """
    image = tf.convert_to_tensor(image, tf.float32)
    for dim in image.shape[-3:-1]:
        if dim is not None and dim % scale:
            raise ValueError(f"image side {dim} is not a multiple of scale {scale}")
    if scale == 1:
        return image
    batched = image if image.shape.rank == 4 else image[None]
    out = tf.nn.avg_pool2d(batched, scale, scale, "VALID")
    return out if image.shape.rank == 4 else out[0]


def downsample(image, scale: int, method: str) -> tf.Tensor:
    """Downsample by the exact integer ``scale`` with ``method`` in DOWN_METHODS.

    "area" is the exact box average; "bilinear" and "bicubic" use tf.image.resize with
    antialias=True (the kernel is stretched by ``scale``, so no aliasing).
    """
    if method == "area":
        return area_downsample(image, scale)
    if method not in DOWN_METHODS:
        raise ValueError(f"unknown downsampling method {method!r}; use one of {DOWN_METHODS}")
    image = tf.convert_to_tensor(image, tf.float32)
    h, w = _dims(image)
    out = tf.image.resize(image, tf.stack([h // scale, w // scale]), method, antialias=True)
    return tf.ensure_shape(out, _down_shape(image.shape, scale))


def random_downsample(image, seed, scale: int, methods=DOWN_METHODS) -> tf.Tensor:
    """Downsample with a method drawn uniformly from ``methods`` (tf.switch_case)."""
    if len(methods) == 1:
        return downsample(image, scale, methods[0])
    index = _randint(seed, 0, len(methods) - 1)
    branches = [lambda m=m: downsample(image, scale, m) for m in methods]
    return tf.switch_case(index, branches)


def add_gaussian_noise(image, seed, sigma, gray=False) -> tf.Tensor:
    """image + σ·N(0, 1), clipped to [0, 1].

    ``gray`` (bool or bool tensor) uses one noise plane for all channels (luminance
    noise), else channels get independent (colour) noise.
    """
    noise = tf.random.stateless_normal(tf.shape(image), seed)
    noise = tf.where(gray, noise[..., :1], noise)              # gray: first plane everywhere
    return tf.clip_by_value(image + sigma * noise, 0.0, 1.0)


def add_poisson_noise(image, seed, scale) -> tf.Tensor:
    """Shot noise: Poisson(scale · x) / scale, clipped to [0, 1].

    ``scale`` is the photon count of a white pixel (photons per unit intensity): the
    noise std at intensity x is √(x / scale), so smaller scale = noisier (50 → σ≈25/255
    at mid-gray, 5000 → σ≈2.5/255). Channels are independent.
    """
    lam = tf.clip_by_value(image, 0.0, 1.0) * scale
    counts = tf.random.stateless_poisson(tf.shape(image), seed, lam, dtype=tf.float32)
    return tf.clip_by_value(counts * _inverse(scale), 0.0, 1.0)


def jpeg_compress(image, quality) -> tf.Tensor:
    """JPEG encode + decode a [H,W,3] float image at ``quality`` (int or int32 scalar, 0–100).

    The image is rounded to 8 bits first (like saving a photo) and decoded with the
    accurate integer IDCT (libjpeg's default); output is float32 in [0, 1], same shape.
    """
    image = tf.convert_to_tensor(image, tf.float32)
    pixels = tf.cast(tf.round(tf.clip_by_value(image, 0.0, 1.0) * 255.0), tf.uint8)
    decoded = tf.image.adjust_jpeg_quality(pixels, quality, dct_method="INTEGER_ACCURATE")
    return tf.ensure_shape(tf.cast(decoded, tf.float32) * (1.0 / 255.0), image.shape)


# ----------------------------------------------------------------------------- the pipeline

def _random_blur(hr, seed, config: DegradeConfig):
    """x ⊗ k ⊗ b, each kernel present with its own probability; no convolution if neither."""
    use_k, use_b = config.blur_prob > 0, config.motion_prob > 0
    if not (use_k or use_b):
        return hr
    k_gate, k_seed, b_gate, b_seed = _split(seed, 4)
    apply, kernel = tf.constant(False), None
    if use_k:
        apply_k = _coin(k_gate, config.blur_prob)
        k_size = config.blur_kernel_size[1]
        kernel = tf.cond(apply_k, lambda: random_aperture_kernel(k_seed, config),
                         lambda: delta_kernel(k_size))
        apply = apply | apply_k
    if use_b:
        apply_b = _coin(b_gate, config.motion_prob)
        b_size = config.motion_kernel_size
        b = tf.cond(apply_b, lambda: random_motion_kernel(b_seed, config),
                    lambda: delta_kernel(b_size))
        kernel = b if kernel is None else convolve_kernels(kernel, b)
        apply = apply | apply_b
    return tf.cond(apply, lambda: blur(hr, kernel), lambda: hr)


DEGRADE_GATE_SALT = 7919  # any constant: derives the seed of the degrade-at-all gate


def degrade(hr, seed, scale: int, config: DegradeConfig) -> tf.Tensor:
    """x̃ = J((x ⊗ k ⊗ b)↓s + n) for one example.

    Args:
      hr: float32 [H, W, 3] in [0, 1], H and W multiples of ``scale``.
      seed: int32/int64 [2] stateless seed; the same seed gives the same bytes.
      scale: integer downsampling factor s.
      config: the degradation distribution.

    Returns:
      float32 [H/s, W/s, 3] in [0, 1] (static shape when ``hr``'s is). With
      ``config.enabled`` False, or every probability 0 and down_methods ("area",),
      exactly ``area_downsample(hr, scale)``.
    """
    config.validate()
    hr = tf.convert_to_tensor(hr, tf.float32)
    if not config.enabled:
        return area_downsample(hr, scale)
    # Blur sizes are given for the paper's ×8 (plain Python: keep AutoGraph out of it).
    config = tf.autograph.experimental.do_not_convert(config.for_scale)(scale)
    s_blur, s_down, s_shot, s_read, s_jpeg = _split(seed, 5)

    def degraded():
        return _degrade_steps(hr, s_blur, s_down, s_shot, s_read, s_jpeg, scale, config)

    # The gate has a seed of its own (folded in, not split off), so the steps' draws are
    # the same whatever degrade_prob is: a degraded example is degraded identically.
    gate = tf.random.experimental.stateless_fold_in(seed, DEGRADE_GATE_SALT)
    x = _maybe_branch(config.degrade_prob, gate, degraded,
                      lambda: _downsample_step(hr, s_down, scale, config))
    return tf.ensure_shape(x, _down_shape(hr.shape, scale))


def _downsample_step(x, seed, scale: int, config: DegradeConfig):
    """Step 2, the one a clean input also takes: ↓s by the random method, clipped."""
    x = random_downsample(x, seed, scale, config.down_methods)
    return tf.clip_by_value(x, 0.0, 1.0)                       # bicubic overshoots


def _degrade_steps(hr, s_blur, s_down, s_shot, s_read, s_jpeg, scale, config):
    """Steps 1–4 (module docstring), each behind its own probability."""
    x = _random_blur(hr, s_blur, config)                       # [H, W, 3]
    x = _downsample_step(x, s_down, scale, config)             # [H/s, W/s, 3]

    shot_gate, shot_scale, shot_seed = _split(s_shot, 3)
    lo, hi = (math.log(v) for v in config.poisson_scale)
    photons = tf.exp(_uniform(shot_scale, lo, hi))             # log-uniform
    x = _maybe(config.poisson_prob, shot_gate,
               lambda y: add_poisson_noise(y, shot_seed, photons), x)

    read_gate, read_sigma, read_gray, read_seed = _split(s_read, 4)
    sigma = _uniform(read_sigma, *config.noise_sigma)
    gray = _coin(read_gray, config.gray_noise_prob)
    x = _maybe(config.noise_prob, read_gate,
               lambda y: add_gaussian_noise(y, read_seed, sigma, gray), x)

    jpeg_gate, jpeg_seed = _split(s_jpeg, 2)
    quality = _randint(jpeg_seed, *config.jpeg_quality)
    return _maybe(config.jpeg_prob, jpeg_gate, lambda y: jpeg_compress(y, quality), x)

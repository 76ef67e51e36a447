"""Generator / discriminator: shapes per stage, fade-in continuity, pinned sizes, R1."""

import numpy as np
import pytest
import tensorflow as tf

from pan_tf import losses
from pan_tf.config import ConfigError, ModelConfig, ScheduleConfig, TrainConfig
from pan_tf.discriminator import Discriminator
from pan_tf.gan import fade_targets
from pan_tf.generator import (
    Generator,
    NoiseSpec,
    back_project,
    inference_noise,
    random_generator,
)
from pan_tf.layers import (
    EqualizedConv2D,
    EqualizedConv2DTranspose,
    binomial_blur,
    downsample2x,
    upsample2x,
)

# 8→32 (×4) with start 8: stages 8, 16 (restoration), 32 (SR ×2), 64 (SR ×4)... here
# lr_size 16: stages 8 and 16 restore, 32 and 64 super-resolve.
LADDER = ModelConfig(lr_size=16, scale=4, start_res=8, fmap_base=256, fmap_max=32)


@pytest.fixture(scope="module")
def nets():
    return Generator(LADDER), Discriminator(LADDER)


def _input(stage, n=4, seed=0):
    r = LADDER.input_resolution(stage)
    return tf.random.stateless_uniform([n, r, r, 3], [seed, 1], -1, 1)


def test_shapes_at_every_stage(nets):
    G, D = nets
    expected = {0: (8, 8), 1: (16, 16), 2: (16, 32), 3: (16, 64)}  # (input, output)
    for stage, (r_in, r_out) in expected.items():
        for alpha in (0.3, 1.0):
            out = G(_input(stage), stage=stage, alpha=alpha)
            assert _input(stage).shape[1] == r_in
            assert out.shape == (4, r_out, r_out, 3)
            logits = D(out, stage=stage, alpha=alpha)
            assert logits.shape == (4,) and logits.dtype == tf.float32


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_generator_alpha_zero_equals_previous_stage(nets, stage):
    G, _ = nets
    x = _input(stage)
    faded = G(x, stage=stage, alpha=tf.constant(0.0))
    prev_input = downsample2x(x) if LADDER.stage_resolutions[stage] <= LADDER.lr_size else x
    previous = upsample2x(G(prev_input, stage=stage - 1))
    # Same ops on the same values; only float summation order could differ.
    np.testing.assert_allclose(faded.numpy(), previous.numpy(), atol=1e-5)


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_discriminator_alpha_zero_equals_previous_stage(nets, stage):
    _, D = nets
    r = LADDER.stage_resolutions[stage]
    x = tf.random.stateless_uniform([4, r, r, 3], [stage, 2], -1, 1)
    faded = D(x, stage=stage, alpha=tf.constant(0.0))
    previous = D(downsample2x(x), stage=stage - 1)
    np.testing.assert_allclose(faded.numpy(), previous.numpy(), atol=1e-5)


def test_alpha_blends_between_old_and_new(nets):
    G, _ = nets
    x = _input(2)
    old = G(x, stage=2, alpha=tf.constant(0.0)).numpy()
    new = G(x, stage=2, alpha=tf.constant(1.0)).numpy()
    half = G(x, stage=2, alpha=tf.constant(0.5)).numpy()
    np.testing.assert_allclose(half, (old + new) / 2, atol=1e-5)
    assert np.abs(old - new).max() > 1e-3


def test_faded_targets_follow_progan():
    hr = tf.random.stateless_uniform([2, 8, 8, 3], [3, 3])
    np.testing.assert_allclose(fade_targets(hr, 1.0).numpy(), hr.numpy(), atol=1e-6)
    blocky = upsample2x(downsample2x(hr)).numpy()
    np.testing.assert_allclose(fade_targets(hr, 0.0).numpy(), blocky, atol=1e-6)


def test_every_block_is_built_once():
    # All variables exist before any call, and no call creates new ones.
    G = Generator(LADDER)
    before = len(G.weights)
    for stage in range(LADDER.num_stages):
        G(_input(stage), stage=stage, alpha=0.5)
    assert len(G.weights) == before


def test_inference_noise_is_deterministic_and_batch_independent(nets):
    G, _ = nets
    G.set_noise_strength(0.5)  # a visible effect (the learned strengths start at 0)
    x = _input(3, n=3)
    a, b = G(x, stage=3).numpy(), G(x, stage=3).numpy()
    np.testing.assert_array_equal(a, b)
    alone = G(x[1:2], stage=3).numpy()
    np.testing.assert_allclose(alone[0], a[1], atol=1e-5)
    quiet = G(x, stage=3, noise=inference_noise(strength=0.0)).numpy()
    other = G(x, stage=3, noise=inference_noise(seed=(1, 2))).numpy()
    assert np.abs(quiet - a).max() > 1e-3 and np.abs(other - a).max() > 1e-3
    G.set_noise_strength(0.0)


def test_random_generator_is_seeded_and_sets_every_noise_strength():
    a, b = random_generator(LADDER, seed=5, noise_strength=0.25), random_generator(LADDER, seed=5)
    c = random_generator(LADDER, seed=6)
    strengths = [w for w in a.weights if w.path.endswith("strength")]
    assert strengths and all(np.all(w.numpy() == 0.25) for w in strengths)
    assert all(np.all(w.numpy() == 0.0) for w in b.weights if w.path.endswith("strength"))
    kernels = [(x.numpy(), y.numpy(), z.numpy())
               for x, y, z in zip(a.weights, b.weights, c.weights) if x.path.endswith("kernel")]
    assert all(np.array_equal(x, y) for x, y, _ in kernels)
    assert not any(np.array_equal(x, z) for x, _, z in kernels)


def test_training_noise_splits_one_global_tensor():
    spec = NoiseSpec(tf.constant([5, 6]), global_batch=4, offset=0)
    x = tf.zeros([4, 8, 8, 2])
    full = spec.sample(3, x).numpy()
    part = NoiseSpec(tf.constant([5, 6]), global_batch=4, offset=2).sample(3, x[:2]).numpy()
    np.testing.assert_array_equal(full[2:], part)


def test_ablation_switches_change_the_network():
    full = Generator(LADDER).count_params()
    no_noise = Generator(ModelConfig(**{**LADDER.__dict__, "noise": False})).count_params()
    no_skips = Generator(ModelConfig(**{**LADDER.__dict__, "skip_levels": 0})).count_params()
    one_skip = Generator(ModelConfig(**{**LADDER.__dict__, "skip_levels": 1})).count_params()
    assert no_noise < full and no_skips < one_skip < full
    assert ModelConfig(**{**LADDER.__dict__, "skip_levels": 1}).skip_resolutions == (8,)


def test_fmap_map_widens_only_its_level():
    # LADDER: nf = 32 at 8 px, 16 at 16, 8 at 32, 4 at 64 (fmap_base 256, cap 32).
    wide_top = ModelConfig(**{**LADDER.__dict__, "fmap_map": ((64, 16),)})
    assert [wide_top.nf(r) for r in (4, 8, 16, 32, 64)] == [32, 32, 16, 8, 16]
    g_base, g_wide = Generator(LADDER), Generator(wide_top)
    d_base, d_wide = Discriminator(LADDER), Discriminator(wide_top)
    assert g_wide.count_params() > g_base.count_params()
    assert d_wide.count_params() > d_base.count_params()
    # Only the 64-px layers change shape; every coarser weight is as before.
    base_shapes = {v.path: v.shape for v in g_base.weights + d_base.weights}
    changed = sorted({p.split("/")[0] for p, shape in
                      ((v.path, v.shape) for v in g_wide.weights + d_wide.weights)
                      if base_shapes.get(p) != shape})
    assert changed and all("64" in name for name in changed), changed
    assert g_wide(tf.zeros([1, 16, 16, 3]), stage=3).shape == (1, 64, 64, 3)
    with pytest.raises(ConfigError, match="--fmap_map has resolution 128"):
        ModelConfig(**{**LADDER.__dict__, "fmap_map": ((128, 8),)}).validate()
    with pytest.raises(ConfigError, match="--fmap_map: channels at resolution 32"):
        ModelConfig(**{**LADDER.__dict__, "fmap_map": ((32, 0),)}).validate()


def test_paper_config_parameter_count_is_pinned():
    # 128→1024 ×8, fmap 16384/512: catches any silent change to the architecture.
    paper = ModelConfig(lr_size=128, scale=8, start_res=8, fmap_base=16384, fmap_max=512)
    assert paper.stage_resolutions == (8, 16, 32, 64, 128, 256, 512, 1024)
    assert Generator(paper).count_params() == 43_081_512
    assert Discriminator(paper).count_params() == 23_085_201


def test_r1_matches_the_analytic_gradient():
    # D(x) = Σ w·x² per image → ∇D = 2·w·x, so R1 = Σ (2·w·x)².
    w = tf.random.stateless_uniform([1, 4, 4, 3], [7, 7])
    x = tf.random.stateless_normal([3, 4, 4, 3], [8, 8])
    penalty, logits = losses.r1_penalty(lambda im: tf.reduce_sum(w * im**2, axis=[1, 2, 3]), x)
    expected = tf.reduce_sum(tf.square(2 * w * x), axis=[1, 2, 3])
    np.testing.assert_allclose(penalty.numpy(), expected.numpy(), rtol=1e-5)
    np.testing.assert_allclose(logits.numpy(), tf.reduce_sum(w * x**2, axis=[1, 2, 3]).numpy(),
                               rtol=1e-6)


def test_logistic_losses_on_logits():
    real, fake = tf.constant([2.0, -1.0]), tf.constant([0.5, 3.0])
    sig = tf.sigmoid
    np.testing.assert_allclose(losses.discriminator_loss(real, fake).numpy(),
                               (-tf.math.log(sig(real)) - tf.math.log(1 - sig(fake))).numpy(),
                               rtol=1e-5)
    np.testing.assert_allclose(losses.generator_loss(fake).numpy(),
                               (-tf.math.log(sig(fake))).numpy(), rtol=1e-5)


def test_ema_beta_half_life():
    # β is float32 (it lives in the graph): 1e-5 relative covers its rounding raised to ^100.
    beta = float(losses.ema_beta(batch=10, half_life_kimg=1.0))
    assert beta ** 100 == pytest.approx(0.5, rel=1e-5)   # 100 steps × 10 images = 1 kimg
    ramped = float(losses.ema_beta(10, 10.0, rampup=0.05, images_seen=2000))
    assert ramped ** 10 == pytest.approx(0.5, rel=1e-5)  # half-life capped at 0.05 × 2000


def test_backproject_option_makes_sr_outputs_consistent_with_their_input():
    config = ModelConfig(**{**LADDER.__dict__, "consistency": "backproject"})
    G = Generator(config)
    for stage in (2, 3):                       # SR stages ×2 and ×4
        x = _input(stage)
        out = G(x, stage=stage, alpha=tf.constant(0.5))
        scale = out.shape[1] // x.shape[1]
        down = tf.nn.avg_pool2d(out, scale, scale, "VALID")
        np.testing.assert_allclose(down.numpy(), x.numpy(), atol=1e-5)
    # The same holds in a graph with unknown height and width, as in an exported SavedModel.
    traced = tf.function(lambda lr: G(lr, stage=3),
                         input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    x = tf.random.stateless_uniform([1, 12, 20, 3], [4, 4], -1, 1)   # not square
    out = traced(x)
    assert out.shape == (1, 48, 80, 3)
    np.testing.assert_allclose(tf.nn.avg_pool2d(out, 4, 4, "VALID").numpy(), x.numpy(), atol=1e-5)
    # Restoration stages are left alone (their output would otherwise be the input).
    plain = Generator(LADDER)
    plain.set_weights(G.get_weights())
    np.testing.assert_allclose(G(_input(1), stage=1).numpy(), plain(_input(1), stage=1).numpy())


def test_smooth_backproject_converges_without_a_block_grid():
    config = ModelConfig(**{**LADDER.__dict__, "consistency": "backproject_smooth"})
    G = Generator(config)
    # A smooth input (random 4×4 colours, bilinearly up to 16 px), as faces mostly are.
    lr = tf.image.resize(tf.random.stateless_uniform([2, 4, 4, 3], [3, 1], -1, 1), [16, 16])
    out = G(lr, stage=3)                       # SR ×4, random weights: a large residual
    assert out.shape[1] == 4 * lr.shape[1]
    err = np.abs(tf.nn.avg_pool2d(out, 4, 4, "VALID").numpy() - lr.numpy())
    # Smooth residual components vanish in the first passes; what is left is the slow
    # near-Nyquist part (0.75 per pass) of G's random output. Measured: mean 0.0013, max
    # 0.0097; without back-projection 0.54 and 3.3. The bounds sit ~4× above the former.
    assert err.mean() < 0.005 and err.max() < 0.04, (err.mean(), err.max())
    # A linear ramp onto a flat image: the nearest version makes a 4-px staircase, the
    # smooth one a ramp (equal steps), both with the ramp's box averages.
    ramp = tf.tile(tf.reshape(tf.linspace(-0.8, 0.8, 16), [1, 1, 16, 1]), [1, 16, 1, 3])
    flat = tf.zeros([1, 64, 64, 3])
    stair, smooth = back_project(flat, ramp, 4), back_project(flat, ramp, 4, smooth=True)
    step = 1.6 / 15 / 4                                    # the ramp per HR pixel
    interior = (0, slice(8, -8), slice(8, -8), 0)
    assert np.diff(stair.numpy()[interior], axis=1).max() == pytest.approx(4 * step, rel=1e-4)
    np.testing.assert_allclose(np.diff(smooth.numpy()[interior], axis=1), step, rtol=0.05)
    for image in (stair, smooth):
        np.testing.assert_allclose(tf.nn.avg_pool2d(image, 4, 4, "VALID").numpy(), ramp.numpy(),
                                   atol=1e-4)


def test_conditional_discriminator_sees_the_lr_input():
    config = ModelConfig(**{**LADDER.__dict__, "conditional_d": True})
    D = Discriminator(config)
    images = tf.random.stateless_uniform([4, 32, 32, 3], [1, 1], -1, 1)
    lr_a = tf.random.stateless_uniform([4, 16, 16, 3], [2, 2], -1, 1)
    lr_b = tf.random.stateless_uniform([4, 16, 16, 3], [3, 3], -1, 1)
    a = D(images, stage=2, alpha=tf.constant(0.5), condition=lr_a).numpy()
    b = D(images, stage=2, alpha=tf.constant(0.5), condition=lr_b).numpy()
    assert a.shape == (4,) and np.abs(a - b).max() > 1e-4
    with pytest.raises(ValueError, match="condition"):
        D(images, stage=2)
    assert Discriminator(config).count_params() > Discriminator(LADDER).count_params()


def test_r1_gamma_is_the_papers_at_1024_and_scales_with_pixel_count():
    t = TrainConfig()
    assert t.r1_gamma_at(1024) == 5.0
    assert t.r1_gamma_at(64) == pytest.approx(5.0 / 256)
    assert TrainConfig(r1_reference_res=0).r1_gamma_at(8) == 5.0   # literal γ everywhere


def _conv3x3(x, w):
    return tf.nn.conv2d(x, w, strides=1, padding="SAME")


def test_upscale_conv_is_nearest_upsample_then_conv3x3():
    # The paper's conv2D_upscale, built like ProGAN's fused upscale: one transposed conv
    # that equals nearest ×2 followed by the layer's own 3×3 kernel.
    layer = EqualizedConv2DTranspose(5, 3)
    x = tf.random.stateless_normal([2, 6, 6, 4], seed=[1, 2])
    y = layer(x)
    w = layer.kernel * layer.scale
    np.testing.assert_allclose(y.numpy(), _conv3x3(upsample2x(x), w).numpy() + layer.bias.numpy(),
                               atol=1e-5)  # float32 sums of ~40 terms of size ~1


def test_downscale_conv_is_conv3x3_then_average_pool():
    layer = EqualizedConv2D(5, 3, strides=2)
    x = tf.random.stateless_normal([2, 8, 8, 4], seed=[3, 4])
    y = layer(x)
    w = layer.kernel * layer.scale
    np.testing.assert_allclose(y.numpy(), downsample2x(_conv3x3(x, w)).numpy() + layer.bias.numpy(),
                               atol=1e-5)


def test_resampling_convs_paint_no_checkerboard():
    # A plain 3×3 kernel at stride 2 gives the pixels of each 2×2 output cell 4, 2, 2
    # and 1 taps: a flat input comes out as a checkerboard. The fused kernels give
    # every output pixel the same taps, so a flat input stays flat (away from the
    # zero-padded border).
    up = EqualizedConv2DTranspose(3, 3)
    y = up(tf.ones([1, 6, 6, 4]))[0, 2:-2, 2:-2]
    np.testing.assert_allclose(y.numpy(), np.broadcast_to(y[0, 0].numpy(), y.shape), atol=1e-5)
    down = EqualizedConv2D(3, 3, strides=2)
    z = down(tf.ones([1, 12, 12, 4]))[0, 1:-1, 1:-1]
    np.testing.assert_allclose(z.numpy(), np.broadcast_to(z[0, 0].numpy(), z.shape), atol=1e-5)


def test_identity_grow_init_starts_a_new_sr_block_at_the_old_output():
    config = ModelConfig(**{**LADDER.__dict__, "fmap_base": 512, "grow_init": "identity"})
    config.validate()
    G = Generator(config)
    for r in (16, 32):  # a bias the ±copies must carry too
        G.to_rgb(r).bias.assign([0.1, -0.2, 0.3])
    lr = _input(2)
    for stage, res in ((2, 32), (3, 64)):
        old = upsample2x(G(lr, stage=stage - 1))
        assert np.abs(G(lr, stage=stage).numpy() - old.numpy()).max() > 0.1  # random block
        G.init_grown_block(res)
        for alpha in (0.0, 0.5, 1.0):
            out = G(lr, stage=stage, alpha=alpha).numpy()
            np.testing.assert_allclose(out, old.numpy(), atol=1e-5)  # float32 round-off
        # The new channels, read at weight 0, still learn: toRGB's kernel gets gradients there.
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(G(lr, stage=stage, noise=NoiseSpec([1, 2], global_batch=4)) ** 2)
        grad = tape.gradient(loss, G.to_rgb(res).kernel).numpy()
        assert np.abs(grad[0, 0, 6:]).max() > 1e-3
    with pytest.raises(ValueError, match="SR stage"):
        G.init_grown_block(16)


def test_identity_grow_init_is_refused_where_it_cannot_work():
    with pytest.raises(ConfigError, match="--fmap_base"):
        ModelConfig(**{**LADDER.__dict__, "grow_init": "identity"}).validate()  # nf(64) = 4
    config = ModelConfig(**{**LADDER.__dict__, "fmap_base": 512, "grow_init": "identity"})
    with pytest.raises(ConfigError, match="--progressive=true"):
        ScheduleConfig(progressive=False).validate(config)
    with pytest.raises(ConfigError, match="--grow_init"):
        ModelConfig(**{**LADDER.__dict__, "grow_init": "zeros"}).validate()


def _names(variables):
    return {v.path.split("/")[0] for v in variables}


def test_sr_freeze_selects_the_weights_an_sr_stage_trains(nets):
    G, _ = nets
    every = G.trainable_variables
    for mode in ("none", "unet", "previous"):
        for stage in (0, 1):                     # restoration stages train everything
            assert G.trainable_at(stage, mode) == every
    assert G.trainable_at(3, "none") == every
    assert _names(G.trainable_at(2, "unet")) == _names(G.trainable_at(2, "previous")) \
        == {"dec_32", "to_rgb_32"}
    assert _names(G.trainable_at(3, "unet")) == {"dec_32", "to_rgb_32", "dec_64", "to_rgb_64"}
    assert _names(G.trainable_at(3, "previous")) == {"dec_64", "to_rgb_64"}
    # A decoder block brings its noise strengths: they are part of what the stage learns.
    assert len(G.trainable_at(3, "previous")) == len(G.decoder(64).trainable_variables) + 2


def test_sr_freeze_needs_a_progressive_run():
    with pytest.raises(ConfigError, match="--progressive=true"):
        ScheduleConfig(progressive=False, sr_freeze="unet").validate(LADDER)
    with pytest.raises(ConfigError, match="--sr_freeze"):
        ScheduleConfig(sr_freeze="all").validate(LADDER)


def test_binomial_blur_after_nearest_upsample_is_bilinear_and_keeps_flat_maps_flat():
    # StyleGAN's resampling filter: nearest ×2 then [1,2,1]² must be bilinear ×2 with
    # half-pixel centres, edges included (mirrored padding), or the option does not
    # do what --resample_filter says.
    x = tf.random.stateless_normal([2, 5, 7, 3], seed=[5, 6])
    bilinear = tf.image.resize(x, [10, 14], method="bilinear")
    np.testing.assert_allclose(binomial_blur(upsample2x(x)).numpy(), bilinear.numpy(),
                               atol=1e-6)  # float32 round-off of 3/4·a + 1/4·b
    np.testing.assert_allclose(binomial_blur(tf.fill([1, 6, 6, 2], 0.7)).numpy(), 0.7, atol=1e-7)


def test_binomial_resample_filter_changes_the_path_not_the_weights():
    filtered = ModelConfig(**{**LADDER.__dict__, "resample_filter": "binomial"})
    filtered.validate()
    G, D = Generator(LADDER), Discriminator(LADDER)
    Gf, Df = Generator(filtered), Discriminator(filtered)
    # Same variables, so checkpoints move between the two; copy them over.
    assert [v.path for v in Gf.weights] == [v.path for v in G.weights]
    assert [v.path for v in Df.weights] == [v.path for v in D.weights]
    for src, dst in ((G, Gf), (D, Df)):
        for a, b in zip(src.weights, dst.weights):
            b.assign(a)
    for stage in range(LADDER.num_stages):
        lr = _input(stage)
        out, out_f = G(lr, stage=stage, alpha=0.5), Gf(lr, stage=stage, alpha=0.5)
        assert out_f.shape == out.shape
        assert np.abs(out_f.numpy() - out.numpy()).max() > 1e-3  # the blur is in the path
        assert np.abs(Df(out, stage=stage).numpy() - D(out, stage=stage).numpy()).max() > 1e-4
    # It compiles under XLA, as the train step does.
    xla = tf.function(lambda x: Gf(x, stage=3), jit_compile=True)
    np.testing.assert_allclose(xla(_input(3)).numpy(), Gf(_input(3), stage=3).numpy(), atol=1e-4)


def test_resample_filter_is_checked():
    with pytest.raises(ConfigError, match="--resample_filter"):
        ModelConfig(**{**LADDER.__dict__, "resample_filter": "lanczos"}).validate()
    with pytest.raises(ConfigError, match="--resample_filter=none"):
        ModelConfig(**{**LADDER.__dict__, "fmap_base": 512, "grow_init": "identity",
                       "resample_filter": "binomial"}).validate()

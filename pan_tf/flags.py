"""Command-line flags and their conversion into one validated :class:`Config`.

Only entry points import this module. ``config_from_flags`` is the single place
where flag values become configuration; it raises :class:`ConfigError` with a
one-line message naming the flag to fix. Nothing here imports TensorFlow, so
bad flags are reported at once.
"""

from __future__ import annotations

from absl import flags

from pan_tf.config import (
    Config,
    ConfigError,
    DataConfig,
    DegradeConfig,
    ModelConfig,
    RunConfig,
    ScheduleConfig,
    TrainConfig,
)

_M, _S, _T, _D, _R = ModelConfig(), ScheduleConfig(), TrainConfig(), DataConfig(), RunConfig()
_G = DegradeConfig()


def _range(value: tuple) -> str:
    return ",".join(str(v) for v in value)


def define_flags() -> None:
    """Defines every training flag (idempotent)."""
    if "lr_size" in flags.FLAGS:
        return
    d = flags
    # Networks.
    d.DEFINE_integer("lr_size", _M.lr_size, "LR input side at the SR stages, pixels (paper: 128).")
    d.DEFINE_integer("scale", _M.scale, "Super-resolution factor: 1, 2, 4, 8 or 16 (paper: 8).")
    d.DEFINE_integer("start_res", _M.start_res, "Resolution of the first stage, pixels (paper: 8).")
    d.DEFINE_integer("bottleneck_res", _M.bottleneck_res, "Encoder bottleneck resolution, pixels.")
    d.DEFINE_integer("fmap_base", _M.fmap_base, "Channels at resolution r: min(fmap_base // r, fmap_max).")
    d.DEFINE_integer("fmap_max", _M.fmap_max, "Channel cap.")
    d.DEFINE_string("fmap_map", "", "Per-resolution channels overriding the formula, e.g. '128:32'.")
    d.DEFINE_boolean("noise", _M.noise, "StyleGAN noise injection in the decoder (paper §4.3).")
    d.DEFINE_integer("skip_levels", _M.skip_levels,
                     "U-Net skips kept at the K coarsest levels; -1 = all (paper), 0 = none.")
    d.DEFINE_integer("mbstd_group", _M.mbstd_group, "Minibatch-stddev group size, images.")
    d.DEFINE_string("resample_filter", _M.resample_filter,
                    "Around every resampling conv: 'none' (ProGAN: nearest up, box down) or "
                    "'binomial' (StyleGAN: a [1,2,1] low-pass after up, before down).")
    d.DEFINE_boolean("conditional_d", _M.conditional_d,
                     "Beyond the paper: D also sees the LR input, upsampled (pix2pix-style).")
    d.DEFINE_string("consistency", _M.consistency,
                    "Beyond the paper: 'backproject' adds up(LR - down(SR)) to the output of "
                    "SR stages, so it area-downsamples exactly to its input; "
                    "'backproject_smooth' iterates it with a bilinear up (no block grid); "
                    "'none' (paper).")
    d.DEFINE_string("grow_init", _M.grow_init,
                    "Beyond the paper: 'identity' starts each new SR decoder block and toRGB as "
                    "an exact copy of the upsampled old output (new channels added at zero "
                    "weight), so growing does not move the output; 'random' (paper, ProGAN).")
    # Schedule.
    d.DEFINE_boolean("progressive", _S.progressive,
                     "Grow from --start_res; false trains the last stage only for the same images.")
    d.DEFINE_float("fade_kimg", _S.fade_kimg, "Fade-in length per stage, thousands of images.")
    d.DEFINE_float("stable_kimg", _S.stable_kimg, "Stable length per stage, thousands of images.")
    d.DEFINE_float("last_stable_kimg", _S.last_stable_kimg,
                   "Stable length of the last stage, kimg; 0 = --stable_kimg.")
    d.DEFINE_string("fade_kimg_map", "", "Per-resolution fade-in lengths, kimg, e.g. '16:20'.")
    d.DEFINE_string("stable_kimg_map", "",
                    "Per-resolution stable lengths, kimg, e.g. '8:40' (overrides --last_stable_kimg too).")
    d.DEFINE_string("sr_freeze", _S.sr_freeze,
                    "A reading of the paper's Eq. 2 (chi_j learned on the pretrained chi_i): at "
                    "SR stages, 'unet' holds the restoration U-Net (every block at <= --lr_size) "
                    "and trains the SR decoder blocks; 'previous' trains only the stage's new "
                    "decoder block and toRGB; 'none' (ProGAN, the default) trains every block.")
    d.DEFINE_float("learning_rate", _S.learning_rate, "Adam step size where --lr_map has no entry.")
    d.DEFINE_string("lr_map", "", "Per-resolution step sizes, e.g. '128:0.0015,256:0.002'.")
    d.DEFINE_integer("batch_size", _S.batch_size, "Global batch where --batch_map has no entry.")
    d.DEFINE_string("batch_map", "", "Per-resolution global batch, e.g. '8:64,16:32'.")
    # Objective and optimisation.
    d.DEFINE_string("loss", _T.loss, "gan (paper), or l1 / l2 pixel loss only (Table 2 ablation).")
    d.DEFINE_float("r1_gamma", _T.r1_gamma, "γ of Eq. 3: weight of E‖∇D(x)‖² (paper: 5).")
    d.DEFINE_integer("r1_reference_res", _T.r1_reference_res,
                     "--r1_gamma holds at this image side; at side r the weight is "
                     "γ·(r/this)² (StyleGAN2-ADA's γ ∝ r²); 0 = --r1_gamma at every stage.")
    d.DEFINE_integer("r1_interval", _T.r1_interval,
                     "Lazy R1: penalise every N D steps with γ·N (StyleGAN2); 1 = every step.")
    d.DEFINE_float("adam_beta1", _T.adam_beta1, "Adam β1 (paper: 0).")
    d.DEFINE_float("adam_beta2", _T.adam_beta2, "Adam β2 (paper: 0.99).")
    d.DEFINE_float("adam_epsilon", _T.adam_epsilon, "Adam ε (paper: 1e-8).")
    d.DEFINE_float("ema_kimg", _T.ema_kimg, "G_ema half-life, thousands of images.")
    d.DEFINE_float("ema_rampup", _T.ema_rampup,
                   "Cap the G_ema half-life at this × images shown (StyleGAN2-ADA: 0.05); 0 = off.")
    d.DEFINE_boolean("ema_stage_rampup", _T.ema_stage_rampup,
                     "Beyond StyleGAN: count --ema_rampup's images from the end of the current "
                     "stage's fade-in, not from the start of training. G_ema equals G until "
                     "α reaches 1, so an exported stage averages no weights from its fade.")
    d.DEFINE_string("mixed_precision", _T.mixed_precision, "none | bf16 | fp16.")
    d.DEFINE_string("jit_compile", _T.jit_compile, "XLA for the train step: auto | true | false.")
    d.DEFINE_string("d_augment", _T.d_augment,
                    "Beyond the paper: differentiable augmentation of every image D sees "
                    "(DiffAugment), a comma-separated subset of color,translation,cutout; "
                    "'' = off, as in the paper.")
    d.DEFINE_float("d_augment_p", _T.d_augment_p,
                   "Probability that each --d_augment transform touches an image "
                   "(DiffAugment: 1); with --d_augment_target, the most p may reach.")
    d.DEFINE_float("d_augment_target", _T.d_augment_target,
                   "Adapt p as StyleGAN2-ADA does: from 0, up while r_t = E[sign D(real)] is "
                   "above this target, down while below (ADA: 0.6); 0 = p fixed at --d_augment_p.")
    d.DEFINE_float("d_augment_kimg", _T.d_augment_kimg,
                   "Adaptive p's speed: thousands of images for p to move from 0 to 1 (ADA: 500).")
    d.DEFINE_integer("seed", _T.seed, "Seeds data order, degradations and training noise.")
    # Data.
    d.DEFINE_string("data", _D.source,
                    "Image folder (recursive), glob, TFRecord prefix, or builtin:skimage.")
    d.DEFINE_integer("min_image_size", _D.min_image_size,
                     "Skip images whose shorter side is below this; 0 = hr_size // 2.")
    d.DEFINE_integer("cache_mb", _D.cache_mb, "Keep decoded HR images in RAM when they fit, MiB.")
    d.DEFINE_float("hr_zoom", _D.hr_zoom,
                   "Beyond the paper: crop each HR at a random zoom in [1, 1 + this] and place, "
                   "resized back (new framings of the same faces); 0 = off.")
    # Degradation x̃ = JPEG((x ⊗ k ⊗ b)↓s + n) (paper §5.7, degrade.py).
    d.DEFINE_boolean("degrade", _G.enabled, "Online degradation; false = plain area downsampling.")
    d.DEFINE_float("degrade_prob", _G.degrade_prob,
                   "Fraction of inputs degraded at all; the rest are only downsampled (clean).")
    d.DEFINE_string("degrade_prob_map", "",
                    "Per-resolution --degrade_prob, by a stage's output size, e.g. '32:0.25'.")
    d.DEFINE_float("blur_prob", _G.blur_prob, "Probability of an aperture (Gaussian) blur k.")
    d.DEFINE_string("blur_sigma", _range(_G.blur_sigma), "Gaussian σ range 'lo,hi', HR pixels.")
    d.DEFINE_string("blur_kernel_size", _range(_G.blur_kernel_size),
                    "Odd Gaussian kernel side range 'lo,hi', HR pixels.")
    d.DEFINE_float("aniso_prob", _G.aniso_prob, "Fraction of blurs that are anisotropic, rotated.")
    d.DEFINE_float("motion_prob", _G.motion_prob, "Probability of a handshake (motion) blur b.")
    d.DEFINE_string("motion_length", _range(_G.motion_length),
                    "Motion trajectory extent range 'lo,hi', HR pixels.")
    d.DEFINE_integer("motion_points", _G.motion_points, "Points of the random-walk trajectory.")
    d.DEFINE_integer("blur_reference_scale", _G.blur_reference_scale,
                     "SR factor the blur sizes refer to; at factor s they scale by s/this "
                     "(same blur in LR pixels at every scale); 0 = use them as given.")
    d.DEFINE_string("down_methods", _range(_G.down_methods),
                    "Downsampling kernels drawn per image, from area,bilinear,bicubic.")
    d.DEFINE_float("noise_prob", _G.noise_prob, "Probability of Gaussian noise n.")
    d.DEFINE_string("noise_sigma", _range(_G.noise_sigma),
                    "Gaussian noise σ range 'lo,hi', intensity in [0,1].")
    d.DEFINE_float("gray_noise_prob", _G.gray_noise_prob, "Fraction of Gaussian noise that is gray.")
    d.DEFINE_float("poisson_prob", _G.poisson_prob, "Probability of Poisson (shot) noise.")
    d.DEFINE_string("poisson_scale", _range(_G.poisson_scale),
                    "Poisson photons per unit intensity range 'lo,hi' (log-uniform).")
    d.DEFINE_float("jpeg_prob", _G.jpeg_prob, "Probability of JPEG compression J.")
    d.DEFINE_string("jpeg_quality", _range(_G.jpeg_quality), "JPEG quality range 'lo,hi', 0-100.")
    # Run.
    d.DEFINE_string("workdir", None, "Run directory: config, checkpoints, samples, exports.")
    d.DEFINE_boolean("dry_run", False, "Print the resolved config and exit.")
    d.DEFINE_string("strategy", _R.strategy,
                    "default | mirrored (all local GPUs, or --logical_cpus) | multi_worker (TF_CONFIG).")
    d.DEFINE_integer("logical_cpus", 0, "Split the CPU into N logical devices (tests, CPU mirrored).")
    d.DEFINE_string("model_name", _R.model_name, "Export name: export/<model_name>/<stage>.")
    d.DEFINE_float("tick_kimg", _R.tick_kimg, "Progress/TensorBoard interval, kimg.")
    d.DEFINE_float("sample_kimg", _R.sample_kimg, "LR | output | HR sample grid interval, kimg.")
    d.DEFINE_float("checkpoint_kimg", _R.checkpoint_kimg, "Checkpoint interval, kimg.")
    d.DEFINE_float("stop_kimg", _R.stop_kimg,
                   "Checkpoint, export the stage in progress and stop once this many kimg are "
                   "shown; 0 = whole schedule.")
    d.DEFINE_integer("keep_checkpoints", _R.keep_checkpoints, "Checkpoints kept on disk.")
    d.DEFINE_integer("num_samples", _R.num_samples, "Images in the sample grid.")
    d.DEFINE_boolean("export", _R.export, "Export G_ema as a SavedModel after every stage.")
    d.DEFINE_integer("max_input_pixels", _R.max_input_pixels,
                     "Exported models reject inputs with more pixels than this.")
    d.DEFINE_integer("verbose", _R.verbose, "Keras progress: 0 silent, 1 bar, 2 a line per tick.")


def parse_map(name: str, text: str, cast) -> tuple:
    """'8:64,16:32' → ((8, 64), (16, 32)); ConfigError names the flag."""
    pairs = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, value = item.partition(":")
        try:
            if not sep:
                raise ValueError
            pairs.append((int(key), cast(value)))
        except ValueError:
            raise ConfigError(f"--{name}: expected 'resolution:value,…', got {item!r}") from None
    return tuple(sorted(pairs))


def parse_range(name: str, text: str, cast) -> tuple:
    """'0.1,10' → (0.1, 10.0); ConfigError names the flag."""
    try:
        lo, hi = (cast(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"--{name}: expected 'lo,hi', got {text!r}") from None
    return lo, hi


def config_from_flags(f=flags.FLAGS) -> Config:
    """Flags → validated, frozen Config."""
    degrade = DegradeConfig(
        enabled=f.degrade,
        degrade_prob=f.degrade_prob,
        blur_prob=f.blur_prob,
        blur_sigma=parse_range("blur_sigma", f.blur_sigma, float),
        blur_kernel_size=parse_range("blur_kernel_size", f.blur_kernel_size, int),
        aniso_prob=f.aniso_prob,
        motion_prob=f.motion_prob,
        motion_length=parse_range("motion_length", f.motion_length, float),
        motion_points=f.motion_points,
        blur_reference_scale=f.blur_reference_scale,
        down_methods=tuple(m.strip() for m in f.down_methods.split(",") if m.strip()),
        noise_prob=f.noise_prob,
        noise_sigma=parse_range("noise_sigma", f.noise_sigma, float),
        gray_noise_prob=f.gray_noise_prob,
        poisson_prob=f.poisson_prob,
        poisson_scale=parse_range("poisson_scale", f.poisson_scale, float),
        jpeg_prob=f.jpeg_prob,
        jpeg_quality=parse_range("jpeg_quality", f.jpeg_quality, int),
    )
    config = Config(
        model=ModelConfig(
            lr_size=f.lr_size, scale=f.scale, start_res=f.start_res,
            bottleneck_res=f.bottleneck_res, fmap_base=f.fmap_base, fmap_max=f.fmap_max,
            fmap_map=parse_map("fmap_map", f.fmap_map, int),
            noise=f.noise, skip_levels=f.skip_levels, mbstd_group=f.mbstd_group,
            resample_filter=f.resample_filter,
            conditional_d=f.conditional_d, consistency=f.consistency,
            grow_init=f.grow_init),
        schedule=ScheduleConfig(
            progressive=f.progressive, fade_kimg=f.fade_kimg, stable_kimg=f.stable_kimg,
            last_stable_kimg=f.last_stable_kimg,
            fade_kimg_map=parse_map("fade_kimg_map", f.fade_kimg_map, float),
            stable_kimg_map=parse_map("stable_kimg_map", f.stable_kimg_map, float),
            learning_rate=f.learning_rate, lr_map=parse_map("lr_map", f.lr_map, float),
            batch_size=f.batch_size, batch_map=parse_map("batch_map", f.batch_map, int),
            sr_freeze=f.sr_freeze),
        train=TrainConfig(
            loss=f.loss, r1_gamma=f.r1_gamma, r1_reference_res=f.r1_reference_res,
            r1_interval=f.r1_interval,
            adam_beta1=f.adam_beta1, adam_beta2=f.adam_beta2, adam_epsilon=f.adam_epsilon,
            ema_kimg=f.ema_kimg, ema_rampup=f.ema_rampup, ema_stage_rampup=f.ema_stage_rampup,
            mixed_precision=f.mixed_precision, jit_compile=f.jit_compile,
            d_augment=f.d_augment, d_augment_p=f.d_augment_p,
            d_augment_target=f.d_augment_target, d_augment_kimg=f.d_augment_kimg, seed=f.seed),
        data=DataConfig(source=f.data, min_image_size=f.min_image_size, cache_mb=f.cache_mb,
                        hr_zoom=f.hr_zoom, degrade=degrade,
                        degrade_prob_map=parse_map("degrade_prob_map", f.degrade_prob_map,
                                                   float)),
        run=RunConfig(
            strategy=f.strategy, model_name=f.model_name, tick_kimg=f.tick_kimg,
            sample_kimg=f.sample_kimg, checkpoint_kimg=f.checkpoint_kimg, stop_kimg=f.stop_kimg,
            keep_checkpoints=f.keep_checkpoints, num_samples=f.num_samples, export=f.export,
            max_input_pixels=f.max_input_pixels, verbose=f.verbose,
            logical_cpus=f.logical_cpus),
    )
    return config.validate()

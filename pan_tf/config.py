"""The run's configuration: one frozen, validated dataclass tree.

Flags are parsed once into a :class:`Config` at the program's edge
(``flags.py``); library modules receive the sections they need and never read
``FLAGS``. ``Config.to_dict``/``Config.from_dict`` round-trip through JSON so a
workdir, a checkpoint and an export all describe themselves.

The stage ladder (DESIGN §2): with ``lr_size`` L, ``scale`` S and
``start_res`` R0 there is one stage per output resolution r = R0, 2R0, …, L·S.
Stages with r ≤ L restore an r×r input (the U-Net grows at both ends); stages
with r > L super-resolve the L×L input by r/L (the decoder grows alone).
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

SCALES = (1, 2, 4, 8, 16)
LOSSES = ("gan", "l1", "l2")
STRATEGIES = ("default", "mirrored", "multi_worker")
MIXED_PRECISION = ("none", "bf16", "fp16")
JIT_COMPILE = ("auto", "true", "false")
DOWN_METHODS = ("area", "bilinear", "bicubic")
CONSISTENCY = ("none", "backproject", "backproject_smooth")
GROW_INIT = ("random", "identity")
RESAMPLE_FILTERS = ("none", "binomial")  # ProGAN | StyleGAN's [1,2,1] low-pass around resampling
SR_FREEZE = ("none", "unet", "previous")
D_AUGMENT = ("color", "translation", "cutout")  # DiffAugment's transforms, in the order applied


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the flag to fix."""


def is_power_of_two(n: int) -> bool:
    return isinstance(n, int) and n > 0 and (n & (n - 1)) == 0


@dataclasses.dataclass(frozen=True)
class DegradeConfig:
    """Random degradation parameters (DESIGN §4); sizes in HR pixels, intensities in [0, 1].

    Ranges are closed intervals (lo, hi) sampled uniformly unless noted. Defaults follow
    GFPGAN's face degradation (blur σ, kernel 41, noise σ, JPEG 60–100) and Real-ESRGAN's
    noise mix (gray / Poisson), each step made optional so that clean inputs stay in the
    training distribution (PAN is also evaluated on clean downsampled faces).
    """

    enabled: bool = True                                # False: plain area downsampling only
    # Fraction of examples degraded at all; the rest are only downsampled (random method),
    # i.e. clean. The paper degrades inputs "randomly" and evaluates on clean downsampled
    # faces too (Table 1). With every example degraded (the steps' own probabilities leave
    # under 1% clean), G learns that every input is blurred and noisy and "restores" clean
    # ones away from themselves: at the faces config's 16-px stage, LR-consistency on clean
    # faces is 25.5 dB at 1.0, 28.7 at 0.5, 31.2 at 0.25, 33.6 with no degradation.
    degrade_prob: float = 0.5
    # Aperture blur k. GFPGAN blurs every image; we keep 20% sharp so clean inputs (PAN's
    # own ×8 evaluation) stay in the training distribution.
    blur_prob: float = 0.8                              # probability of an aperture blur
    blur_sigma: tuple[float, float] = (0.1, 10.0)       # Gaussian σ range, HR px at ×8 (GFPGAN)
    blur_kernel_size: tuple[int, int] = (21, 41)        # odd kernel side range, HR px at ×8
    aniso_prob: float = 0.5                             # fraction of blurs aniso + rotated (GFPGAN)
    # Handshake blur b. Shake is rarer than defocus in face photos: a minority of images,
    # up to 20 HR px (2.5 LR px at the paper's ×8), on top of k when both fire.
    motion_prob: float = 0.2                            # probability of a motion-blur trajectory
    motion_length: tuple[float, float] = (2.0, 20.0)    # trajectory extent, HR px at ×8
    motion_points: int = 32                             # random-walk points per trajectory
    # The blur sizes above are HR pixels at this SR factor (the paper's ×8). At factor s
    # they are multiplied by s / blur_reference_scale, so the blur measured in *LR*
    # pixels, which is what the network sees, is the same at every scale; without it a
    # ×4 model on 64 px faces would get σ = 10 px blobs. 0 = use them as given.
    blur_reference_scale: int = 8                       # SR factor the blur sizes refer to
    # Downsampling ↓s by the exact scale, method drawn uniformly per image (DESIGN §4).
    down_methods: tuple[str, ...] = DOWN_METHODS        # subset of area, bilinear, bicubic
    # Noise n at LR. GFPGAN adds Gaussian noise always (σ from 0); 30% stay noise-free.
    # Real-ESRGAN makes 40% of it gray and also uses Poisson noise; here Poisson is an
    # independent, rarer step (shot + read noise, like a sensor; faces are mostly well lit).
    noise_prob: float = 0.7                             # probability of Gaussian (read) noise
    noise_sigma: tuple[float, float] = (0.0, 20 / 255)  # Gaussian σ range, intensity (GFPGAN)
    gray_noise_prob: float = 0.4                        # fraction of Gaussian noise that is gray
    poisson_prob: float = 0.2                           # probability of Poisson (shot) noise
    poisson_scale: tuple[float, float] = (50.0, 5000.0)  # photons per unit intensity, log-uniform
    # JPEG J. GFPGAN compresses always at 60–100; 20% skip it (q≈100 is near-lossless anyway).
    jpeg_prob: float = 0.8                              # probability of JPEG compression
    jpeg_quality: tuple[int, int] = (60, 100)           # integer quality range, 0–100

    # What a saved config that predates a field meant by it (Config.from_dict): configs
    # written before degrade_prob existed degraded every example.
    LEGACY_DEFAULTS = {"degrade_prob": 1.0}

    def for_scale(self, scale: int) -> "DegradeConfig":
        """This distribution with blur sizes converted to a model of SR factor ``scale``."""
        if not self.blur_reference_scale or scale == self.blur_reference_scale:
            return self
        f = scale / self.blur_reference_scale

        def odd(k):  # nearest-ish odd kernel side, at least 3
            return max(3, int(round(k * f)) | 1)

        return dataclasses.replace(
            self,
            blur_sigma=(self.blur_sigma[0] * f, self.blur_sigma[1] * f),
            blur_kernel_size=(odd(self.blur_kernel_size[0]), odd(self.blur_kernel_size[1])),
            motion_length=(self.motion_length[0] * f, self.motion_length[1] * f),
            blur_reference_scale=0)

    @property
    def motion_kernel_size(self) -> int:
        """Side of the motion kernel canvas: fits a centroid-centred trajectory of max length."""
        return 2 * math.ceil(self.motion_length[1]) + 3

    def validate(self) -> None:
        """Raises ValueError naming the first bad field."""
        def fail(field, what):
            raise ValueError(f"DegradeConfig.{field} {what}, got {getattr(self, field)!r}")

        for field in ("degrade_prob", "blur_prob", "aniso_prob", "motion_prob", "noise_prob",
                      "gray_noise_prob", "poisson_prob", "jpeg_prob"):
            if not 0.0 <= getattr(self, field) <= 1.0:
                fail(field, "must be a probability in [0, 1]")
        for field, lowest in (("blur_sigma", 1e-6), ("blur_kernel_size", 1),
                              ("motion_length", 0.0), ("noise_sigma", 0.0),
                              ("poisson_scale", 1e-6), ("jpeg_quality", 0)):
            value = getattr(self, field)
            if (not isinstance(value, (tuple, list)) or len(value) != 2
                    or not lowest <= value[0] <= value[1]):
                fail(field, f"must be a range (lo, hi) with {lowest} <= lo <= hi")
        if any(int(s) != s or s % 2 == 0 for s in self.blur_kernel_size):
            fail("blur_kernel_size", "must hold odd integers")
        if self.jpeg_quality[1] > 100 or any(int(q) != q for q in self.jpeg_quality):
            fail("jpeg_quality", "must hold integers in [0, 100]")
        if self.motion_points < 2:
            fail("motion_points", "must be at least 2")
        if self.blur_reference_scale < 0:
            fail("blur_reference_scale", "must be ≥ 0")
        if not self.down_methods or any(m not in DOWN_METHODS for m in self.down_methods):
            fail("down_methods", f"must be a non-empty subset of {DOWN_METHODS}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Shape of the networks (DESIGN §3)."""

    lr_size: int = 16          # generator input side at SR stages, pixels (paper: 128)
    scale: int = 4             # SR factor; the last stage outputs lr_size·scale (paper: 8)
    start_res: int = 8         # resolution of the first stage, pixels (paper: 8)
    bottleneck_res: int = 4    # resolution where the encoder bottoms out, pixels
    fmap_base: int = 16384     # channels at resolution r: min(fmap_base // r, fmap_max)
    fmap_max: int = 512        # channel cap (paper size: 16384 / 512)
    # Per-resolution channel overrides, e.g. ((128, 32),): widen one level without the
    # others (not in the paper, whose nf(r) is the formula above; empty = the formula).
    fmap_map: tuple[tuple[int, int], ...] = ()
    noise: bool = True         # StyleGAN noise injection in every decoder block
    skip_levels: int = -1      # U-Net skips kept at the K coarsest levels; -1 = all, 0 = none
    mbstd_group: int = 4       # discriminator minibatch-stddev group size, images
    # The paper builds on StyleGAN but does not say how it resamples: 'none' is ProGAN's
    # nearest / box (the default, and every run before round 13), 'binomial' StyleGAN's.
    resample_filter: str = "none"
    # Options beyond the paper (off by default; docs/results.md reports them separately):
    conditional_d: bool = False  # D also sees the LR input, upsampled (pix2pix-style)
    consistency: str = "none"    # none | backproject[_smooth]: SR += up(LR - down(SR)) at SR stages
    grow_init: str = "random"    # random | identity: a new SR block starts as the old output

    @property
    def hr_size(self) -> int:
        return self.lr_size * self.scale

    @property
    def stage_resolutions(self) -> tuple[int, ...]:
        """Output resolution of each stage: R0, 2R0, …, hr_size."""
        return _doublings(self.start_res, self.hr_size)

    @property
    def num_stages(self) -> int:
        return len(self.stage_resolutions)

    @property
    def block_resolutions(self) -> tuple[int, ...]:
        """Resolutions that own an encoder/decoder/discriminator block: 2·bottleneck … hr_size."""
        return _doublings(2 * self.bottleneck_res, self.hr_size)

    @property
    def skip_resolutions(self) -> tuple[int, ...]:
        """Resolutions ≤ lr_size whose encoder features are concatenated into the decoder."""
        levels = _doublings(2 * self.bottleneck_res, self.lr_size)
        return levels if self.skip_levels < 0 else levels[: self.skip_levels]

    def nf(self, res: int) -> int:
        """Feature maps at resolution ``res``: its --fmap_map entry, else the formula."""
        return dict(self.fmap_map).get(res, max(1, min(self.fmap_base // res, self.fmap_max)))

    def input_resolution(self, stage: int) -> int:
        """Side of the generator's input at ``stage``: the stage's r, capped at lr_size."""
        return min(self.stage_resolutions[stage], self.lr_size)

    def stage_scale(self, stage: int) -> int:
        """Upscaling factor of ``stage`` (1 for restoration stages)."""
        return self.stage_resolutions[stage] // self.input_resolution(stage)

    def validate(self) -> None:
        if not is_power_of_two(self.lr_size):
            raise ConfigError(f"--lr_size must be a power of two, got {self.lr_size}")
        if self.scale not in SCALES:
            raise ConfigError(f"--scale must be one of {SCALES}, got {self.scale}")
        if not is_power_of_two(self.bottleneck_res):
            raise ConfigError(f"--bottleneck_res must be a power of two, got {self.bottleneck_res}")
        if not is_power_of_two(self.start_res) or self.start_res <= self.bottleneck_res:
            raise ConfigError(
                f"--start_res must be a power of two above --bottleneck_res={self.bottleneck_res}, "
                f"got {self.start_res}")
        if self.start_res > self.lr_size:
            raise ConfigError(
                f"--start_res={self.start_res} must not exceed --lr_size={self.lr_size}")
        if self.fmap_base < 1 or self.fmap_max < 1:
            raise ConfigError("--fmap_base and --fmap_max must be positive")
        levels = (self.bottleneck_res, *self.block_resolutions)
        for res, channels in self.fmap_map:
            if res not in levels:
                raise ConfigError(f"--fmap_map has resolution {res}, which is not a level of this "
                                  f"network {list(levels)}")
            if channels < 1:
                raise ConfigError(f"--fmap_map: channels at resolution {res} must be ≥ 1")
        if self.skip_levels < -1:
            raise ConfigError(f"--skip_levels must be -1 (all) or ≥ 0, got {self.skip_levels}")
        if self.mbstd_group < 1:
            raise ConfigError(f"--mbstd_group must be ≥ 1, got {self.mbstd_group}")
        if self.consistency not in CONSISTENCY:
            raise ConfigError(f"--consistency must be one of {CONSISTENCY}, got {self.consistency!r}")
        if self.grow_init not in GROW_INIT:
            raise ConfigError(f"--grow_init must be one of {GROW_INIT}, got {self.grow_init!r}")
        if self.resample_filter not in RESAMPLE_FILTERS:
            raise ConfigError(f"--resample_filter must be one of {RESAMPLE_FILTERS}, "
                              f"got {self.resample_filter!r}")
        if self.grow_init == "identity" and self.resample_filter != "none":
            raise ConfigError("--grow_init=identity copies the old output through a nearest "
                              "×2 upscale: use it with --resample_filter=none")
        if self.grow_init == "identity" and self.nf(self.hr_size) < 6:
            raise ConfigError(
                f"--grow_init=identity needs ≥ 6 feature maps at {self.hr_size} px (it carries "
                f"the old RGB output as ±copies), got {self.nf(self.hr_size)}: raise --fmap_base")


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    """Progressive schedule (DESIGN §2); lengths in thousands of images shown."""

    progressive: bool = True             # False: train the last stage only, same total images
    fade_kimg: float = 600.0             # fade-in length of every stage but the first, kimg
    stable_kimg: float = 600.0           # stable length of every stage, kimg
    last_stable_kimg: float = 0.0        # stable length of the last stage, kimg; 0 = stable_kimg
    fade_kimg_map: tuple[tuple[int, float], ...] = ()    # per-resolution fade-in length overrides
    stable_kimg_map: tuple[tuple[int, float], ...] = ()  # per-resolution stable length overrides
    learning_rate: float = 1e-3          # Adam step size where lr_map has no entry
    lr_map: tuple[tuple[int, float], ...] = ()   # per-resolution step size overrides
    batch_size: int = 4                  # global batch where batch_map has no entry, images
    batch_map: tuple[tuple[int, int], ...] = ()  # per-resolution global batch overrides
    sr_freeze: str = "none"              # none | unet | previous: G weights held at SR stages

    def learning_rate_at(self, res: int) -> float:
        return dict(self.lr_map).get(res, self.learning_rate)

    def batch_at(self, res: int) -> int:
        return dict(self.batch_map).get(res, self.batch_size)

    def fade_kimg_at(self, res: int) -> float:
        return dict(self.fade_kimg_map).get(res, self.fade_kimg)

    def stable_kimg_at(self, res: int, last: bool = False) -> float:
        """Stable length at ``res``: its map entry, else last_stable_kimg for the last
        stage (when set), else stable_kimg."""
        default = self.last_stable_kimg if last and self.last_stable_kimg else self.stable_kimg
        return dict(self.stable_kimg_map).get(res, default)

    def validate(self, model: ModelConfig) -> None:
        ladder = model.stage_resolutions
        for name, mapping in (("--lr_map", self.lr_map), ("--batch_map", self.batch_map),
                              ("--fade_kimg_map", self.fade_kimg_map),
                              ("--stable_kimg_map", self.stable_kimg_map)):
            _require_stages(name, mapping, ladder)
        if self.fade_kimg < 0 or self.stable_kimg <= 0 or self.last_stable_kimg < 0:
            raise ConfigError("--fade_kimg and --last_stable_kimg must be ≥ 0, --stable_kimg > 0")
        for res, kimg in self.fade_kimg_map:
            if res == ladder[0]:
                raise ConfigError(f"--fade_kimg_map has resolution {res}, the first stage, "
                                  "which has no fade-in")
            if kimg < 0:
                raise ConfigError(f"--fade_kimg_map: fade length at resolution {res} must be ≥ 0")
        for res, kimg in self.stable_kimg_map:
            if kimg <= 0:
                raise ConfigError(f"--stable_kimg_map: stable length at resolution {res} must be > 0")
        if self.sr_freeze not in SR_FREEZE:
            raise ConfigError(f"--sr_freeze must be one of {SR_FREEZE}, got {self.sr_freeze!r}")
        if self.sr_freeze != "none" and not self.progressive:
            raise ConfigError("--sr_freeze holds blocks that earlier stages trained; "
                              "it needs --progressive=true")
        if model.grow_init == "identity" and not self.progressive:
            raise ConfigError("--grow_init=identity initialises the blocks a progressive run adds; "
                              "it needs --progressive=true")
        for res in ladder:
            if self.learning_rate_at(res) <= 0:
                raise ConfigError(f"learning rate at resolution {res} must be positive")
            if self.batch_at(res) < 1:
                raise ConfigError(f"batch size at resolution {res} must be ≥ 1")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Objective and optimisation (paper §4.2, §5.1)."""

    loss: str = "gan"              # gan: Eq. 3-4 only; l1 / l2: pixel loss only (Table 2 ablation)
    r1_gamma: float = 5.0          # γ of Eq. 3: γ·E‖∇D(x)‖² (= StyleGAN's γ/2 with γ=10)
    r1_reference_res: int = 1024   # γ holds at this side; at side r it is γ·(r/ref)²; 0 = γ everywhere
    r1_interval: int = 1           # lazy R1 every N D steps, scaled by N (StyleGAN2); 1 = paper
    adam_beta1: float = 0.0
    adam_beta2: float = 0.99
    adam_epsilon: float = 1e-8
    ema_kimg: float = 10.0         # G_ema half-life, kimg (StyleGAN)
    ema_rampup: float = 0.0        # cap the half-life at this × images shown (StyleGAN2-ADA: 0.05); 0 = off
    ema_stage_rampup: bool = False # beyond StyleGAN: count the ramp-up from each stage's fade end
    mixed_precision: str = "none"  # none | bf16 | fp16 Keras dtype policy
    jit_compile: str = "auto"      # XLA for the train step: auto | true | false
    d_augment: str = ""            # DiffAugment transforms of D's inputs (beyond the paper); "" = off
    d_augment_p: float = 1.0       # probability of each transform per image (DiffAugment 1); cap of an adaptive p
    d_augment_target: float = 0.0  # adaptive p (StyleGAN2-ADA): target of r_t = E[sign D(real)] (ADA 0.6); 0 = fixed p
    d_augment_kimg: float = 500.0  # adaptive p: kimg for p to move from 0 to 1 (ADA 500)
    seed: int = 0                  # seeds data order, degradations and training noise

    def r1_gamma_at(self, res: int) -> float:
        """γ at resolution ``res``: the paper's γ at r1_reference_res, scaled by pixel count.

        StyleGAN2-ADA's heuristic γ ∝ r², anchored so the paper's γ = 5 holds at its
        1024 px. Measured here: the literal γ = 5 at 8-64 px flattens D (its loss sits
        at log 4 from the first kimg) and G never leaves its random init.
        """
        if not self.r1_reference_res:
            return self.r1_gamma
        return self.r1_gamma * (res / self.r1_reference_res) ** 2

    def _d_augment_names(self) -> list[str]:
        """--d_augment's names as written, blanks dropped ('cutout, color' → cutout, color)."""
        return [name.strip() for name in self.d_augment.split(",") if name.strip()]

    @property
    def d_augment_policy(self) -> tuple[str, ...]:
        """--d_augment's transforms in the order applied ('cutout,color' → color, cutout)."""
        names = self._d_augment_names()
        return tuple(name for name in D_AUGMENT if name in names)

    def validate(self) -> None:
        if self.loss not in LOSSES:
            raise ConfigError(f"--loss must be one of {LOSSES}, got {self.loss!r}")
        if self.r1_gamma < 0:
            raise ConfigError(f"--r1_gamma must be ≥ 0, got {self.r1_gamma}")
        if self.r1_reference_res < 0:
            raise ConfigError(f"--r1_reference_res must be ≥ 0, got {self.r1_reference_res}")
        if self.r1_interval < 1:
            raise ConfigError(f"--r1_interval must be ≥ 1, got {self.r1_interval}")
        if not 0 <= self.adam_beta1 < 1 or not 0 <= self.adam_beta2 < 1:
            raise ConfigError("--adam_beta1 and --adam_beta2 must be in [0, 1)")
        if self.ema_kimg < 0 or self.ema_rampup < 0:
            raise ConfigError("--ema_kimg and --ema_rampup must be ≥ 0")
        if self.ema_stage_rampup and not self.ema_rampup:
            raise ConfigError("--ema_stage_rampup needs --ema_rampup > 0 (the ramp it restarts)")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ConfigError(
                f"--mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}")
        if self.jit_compile not in JIT_COMPILE:
            raise ConfigError(
                f"--jit_compile must be one of {JIT_COMPILE}, got {self.jit_compile!r}")
        names = self._d_augment_names()
        unknown = [name for name in names if name not in D_AUGMENT]
        if unknown or len(set(names)) != len(names):
            raise ConfigError(f"--d_augment must be a comma-separated subset of "
                              f"{','.join(D_AUGMENT)} (each at most once), got {self.d_augment!r}")
        if not 0 < self.d_augment_p <= 1:
            raise ConfigError(f"--d_augment_p must be in (0, 1], got {self.d_augment_p}")
        if names and self.loss != "gan":
            raise ConfigError(f"--d_augment augments D's inputs; --loss={self.loss} has no D")
        if not 0 <= self.d_augment_target < 1:
            raise ConfigError(f"--d_augment_target must be in [0, 1) (0 = fixed p; ADA: 0.6), "
                              f"got {self.d_augment_target}")
        if self.d_augment_target and not names:
            raise ConfigError("--d_augment_target adapts the probability of --d_augment's "
                              "transforms; name them with --d_augment")
        if self.d_augment_kimg <= 0:
            raise ConfigError(f"--d_augment_kimg must be > 0, got {self.d_augment_kimg}")

    @property
    def adaptive_augment(self) -> bool:
        """Whether p adapts (StyleGAN2-ADA) rather than staying at --d_augment_p."""
        return bool(self.d_augment_policy) and self.d_augment_target > 0


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where training images come from and how LR inputs are made (DESIGN §4)."""

    source: str = "builtin:skimage"   # image folder, glob, TFRecord prefix or builtin:skimage
    min_image_size: int = 0           # shorter side below this is skipped; 0 = hr_size // 2
    cache_mb: int = 1024              # keep decoded HR images in RAM when they fit, MiB
    hr_zoom: float = 0.0              # random HR zoom-in crops, up to 1 + this (beyond the paper)
    degrade: DegradeConfig = DegradeConfig()
    # Per-resolution --degrade_prob overrides, keyed by a stage's output resolution like
    # --lr_map: '32:0.25,64:0.25' degrades a quarter of the SR stages' inputs at 16 -> 64
    # and keeps --degrade_prob at the restoration stages (docs/results.md, rounds 45-48).
    degrade_prob_map: tuple[tuple[int, float], ...] = ()

    def degrade_at(self, res: int) -> DegradeConfig:
        """The degradation a stage of output resolution ``res`` trains on."""
        prob = dict(self.degrade_prob_map).get(res)
        return self.degrade if prob is None else dataclasses.replace(self.degrade,
                                                                     degrade_prob=prob)

    def validate(self) -> None:
        if not self.source:
            raise ConfigError("--data must name an image folder, glob, TFRecord prefix "
                              "or builtin:skimage")
        if self.min_image_size < 0 or self.cache_mb < 0:
            raise ConfigError("--min_image_size and --cache_mb must be ≥ 0")
        if not 0.0 <= self.hr_zoom <= 1.0:
            raise ConfigError(f"--hr_zoom must be in [0, 1] (a zoom of at most 2x), "
                              f"got {self.hr_zoom}")
        try:
            self.degrade.validate()
        except ValueError as e:  # name the flag: fields are flags (enabled is --degrade)
            raise ConfigError(str(e).replace("DegradeConfig.", "--")) from None
        for res, prob in self.degrade_prob_map:
            if not 0.0 <= prob <= 1.0:
                raise ConfigError(f"--degrade_prob_map: fraction at resolution {res} must be in "
                                  f"[0, 1], got {prob}")
        if self.degrade_prob_map and not self.degrade.enabled:
            raise ConfigError("--degrade_prob_map needs --degrade: with --nodegrade no input "
                              "is degraded at any stage")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Operational settings; these may change when a run is resumed."""

    strategy: str = "default"     # default | mirrored | multi_worker (TF_CONFIG)
    model_name: str = "pan"       # export/<model_name>/<version>
    tick_kimg: float = 4.0        # progress-bar epoch and TensorBoard scalar interval, kimg
    sample_kimg: float = 20.0     # LR | output | HR grid interval, kimg
    checkpoint_kimg: float = 20.0 # checkpoint interval, kimg (also at stage ends and on exit)
    stop_kimg: float = 0.0        # checkpoint, export and stop once this many kimg are shown; 0 = never
    logical_cpus: int = 0         # split the CPU into N logical devices (mirrored on CPU); 0 = off
    keep_checkpoints: int = 3     # checkpoints kept on disk
    num_samples: int = 8          # images in the sample grid
    export: bool = True           # export G_ema as a SavedModel at the end of every stage
    max_input_pixels: int = 4096 * 4096  # exported graphs reject larger inputs
    verbose: int = 1              # Keras progress bar: 0 silent, 1 bar, 2 one line per tick

    @property
    def stop_images(self) -> int:
        """``stop_kimg`` in images; 0 = no budget (train to the schedule's end)."""
        return int(self.stop_kimg * 1000)

    def validate(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"--strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if min(self.tick_kimg, self.sample_kimg, self.checkpoint_kimg) <= 0:
            raise ConfigError("--tick_kimg, --sample_kimg and --checkpoint_kimg must be positive")
        if self.keep_checkpoints < 1 or self.num_samples < 1:
            raise ConfigError("--keep_checkpoints and --num_samples must be ≥ 1")
        if not self.model_name or "/" in self.model_name:
            raise ConfigError(f"--model_name must be a plain name, got {self.model_name!r}")
        if self.max_input_pixels < 1:
            raise ConfigError("--max_input_pixels must be positive")
        if self.stop_kimg < 0 or self.logical_cpus < 0:
            raise ConfigError("--stop_kimg and --logical_cpus must be ≥ 0")


# Keys that may differ between a workdir's saved config and a resumed run.
RESUMABLE_CHANGES = ("run.", "data.source", "data.cache_mb", "train.jit_compile")


@dataclasses.dataclass(frozen=True)
class Config:
    model: ModelConfig = ModelConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    train: TrainConfig = TrainConfig()
    data: DataConfig = DataConfig()
    run: RunConfig = RunConfig()

    def validate(self) -> "Config":
        self.model.validate()
        self.schedule.validate(self.model)
        self.train.validate()
        if self.train.d_augment_policy and self.model.conditional_d:
            raise ConfigError("--d_augment does not combine with --conditional_d: the "
                              "transforms would move the image but not its LR condition")
        self.data.validate()
        _require_stages("--degrade_prob_map", self.data.degrade_prob_map,
                        self.model.stage_resolutions)
        self.run.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        return _to_jsonable(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Config":
        return _from_jsonable(cls, d)

    def conflicts_with(self, other: "Config") -> list[str]:
        """Dotted keys whose values differ and may not change on resume."""
        mine, theirs = _flatten(self.to_dict()), _flatten(other.to_dict())
        keys = sorted(set(mine) | set(theirs))
        return [k for k in keys if mine.get(k) != theirs.get(k)
                and not k.startswith(RESUMABLE_CHANGES)]


def _require_stages(name: str, mapping: tuple, ladder: tuple[int, ...]) -> None:
    """ConfigError naming flag ``name`` if a per-resolution map keys a non-stage."""
    for res, _ in mapping:
        if res not in ladder:
            raise ConfigError(f"{name} has resolution {res}, which is not a stage of this "
                              f"ladder {list(ladder)}")


def _doublings(lo: int, hi: int) -> tuple[int, ...]:
    n = int(round(math.log2(hi / lo))) + 1 if hi >= lo else 0
    return tuple(lo * 2**i for i in range(n))


def _to_jsonable(x):
    if dataclasses.is_dataclass(x):
        return {f.name: _to_jsonable(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, tuple) and x and all(isinstance(p, tuple) and len(p) == 2 for p in x):
        return {str(k): v for k, v in x}  # resolution maps
    if isinstance(x, tuple):
        return list(x)
    return x


def _from_jsonable(cls, d):
    kwargs = {}
    legacy = getattr(cls, "LEGACY_DEFAULTS", {})
    for f in dataclasses.fields(cls):
        if f.name not in d:
            if f.name in legacy:  # saved before the field existed: keep its old behaviour
                kwargs[f.name] = legacy[f.name]
            continue
        value, default = d[f.name], getattr(cls(), f.name) if _has_defaults(cls) else None
        if dataclasses.is_dataclass(default):
            value = _from_jsonable(type(default), value)
        elif isinstance(value, dict):  # resolution map
            cast = float if "float" in str(f.type) else int  # the field's annotated value type
            value = tuple(sorted((int(k), cast(v)) for k, v in value.items()))
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)


def _has_defaults(cls) -> bool:
    return all(f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
               for f in dataclasses.fields(cls))


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and not all(s.isdigit() for s in v):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out

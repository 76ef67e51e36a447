"""What the benches share: a config from a flagfile, PAN compiled at one stage, the host.

Imported from scripts in bench/ (their directory is on sys.path); TensorFlow is
imported inside the functions so a caller can set up devices first.
"""

from __future__ import annotations

import os
import platform
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)


def host() -> dict:
    """The machine a bench ran on, for its JSON: timings depend on the CPU's vector units.

    Round 9 of issue 7 met an AVX2-only EPYC 2.5-4.5x slower than the AVX-512 one before
    it, with the same core count, so the model name and its AVX flags are recorded.
    """
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:      # not Linux: the model from platform, no flags
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"cpu_model": model, "cpu_count": os.cpu_count(), "cpus_usable": usable,
            "cpu_avx": sorted(f for f in flags if f.startswith(("avx", "amx"))),
            "load_avg_1m": os.getloadavg()[0], "platform": platform.platform(),
            "python": platform.python_version()}


def load_config(flagfile: str, overrides=()):
    """The Config that ``python -m pan_tf.train --flagfile=FLAGFILE OVERRIDES…`` would use.

    Safe to call for several flagfiles in one process: absl keeps the values of flags
    the new flagfile does not name, so earlier ones are reset first.
    """
    from absl import flags

    from pan_tf import flags as flags_lib

    flags_lib.define_flags()
    flags.FLAGS.unparse_flags()
    flags.FLAGS([sys.argv[0], f"--flagfile={os.path.join(REPO, flagfile)}", *overrides])
    return flags_lib.config_from_flags()


def stage_model(config, stage: int, mode: str = "graph", strategy=None):
    """PAN at ``stage``, mid-fade (α = ½, so both fade paths run; stage 0 at α = 1),
    compiled for ``mode`` (graph | xla | eager) with the trainer's optimizers and the
    stage's last batch size and learning rate, plus one synthetic batch repeated.

    Returns (model, dataset, phase, (lr, hr)).
    """
    import keras
    import tensorflow as tf

    from pan_tf.gan import PAN
    from pan_tf.schedule import Schedule
    from pan_tf.trainer import make_optimizers

    schedule = Schedule(config.model, config.schedule)
    phase = schedule.phase_at(schedule.stage_end(stage) - 1)   # inside the stage
    keras.utils.set_random_seed(0)
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = PAN(config)
        opts = make_optimizers(model, config.train, phase.learning_rate)
    model.set_stage(stage, phase.batch)
    model.alpha.assign(0.5 if stage > 0 else 1.0)
    model.compile(*opts, jit_compile=mode == "xla", run_eagerly=mode == "eager")
    r, r_in = phase.resolution, phase.input_resolution
    lr = tf.random.uniform([phase.batch, r_in, r_in, 3], -1, 1)
    hr = tf.random.uniform([phase.batch, r, r, 3], -1, 1)
    return model, tf.data.Dataset.from_tensors((lr, hr)).repeat(), phase, (lr, hr)

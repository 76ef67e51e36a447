"""The training loop behind ``python -m pan_tf.train`` (see train.py).

One stage at a time (DESIGN §2, §5): compute the phase from ``images_seen``,
build that stage's optimizers, ask data.py for the stage's stream (starting at
``images_seen``) and ``fit`` until the stage ends; then checkpoint and export
``G_ema``. Killing the run at any point loses at most ``checkpoint_kimg``;
SIGTERM/SIGINT checkpoint first and exit 0. Re-running the same command resumes.

Workdir layout::

    config.json        the resolved config (a resume must match it)
    checkpoints/       tf.train checkpoints, numbered by images shown
    samples/           LR | G_ema(LR) | HR grids as PNG
    tensorboard/       scalars and sample grids
    export/            SavedModels, one version per finished stage (export.py)
"""

from __future__ import annotations

import json
import math
import os
import signal
import time

import keras
import tensorflow as tf
from absl import logging

from pan_tf import data as data_lib
from pan_tf import export as export_lib
from pan_tf.checkpoint import Checkpointer
from pan_tf.config import Config, ConfigError, TrainConfig
from pan_tf.gan import PAN
from pan_tf.schedule import Phase, Schedule


# -- setup ----------------------------------------------------------------------
def make_strategy(name: str, logical_cpus: int = 0) -> tf.distribute.Strategy:
    """default | mirrored | multi_worker (MultiWorkerMirroredStrategy from TF_CONFIG)."""
    if logical_cpus > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * logical_cpus)
        except RuntimeError:  # devices already initialised (e.g. inside tests)
            pass
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if tf.config.list_physical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        return tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ConfigError("--strategy=multi_worker needs the TF_CONFIG environment variable")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ConfigError(f"unknown --strategy={name!r}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "chief" or (
        not has_chief and resolver.task_type == "worker" and resolver.task_id == 0)


def worker_dir(workdir: str, strategy: tf.distribute.Strategy) -> str:
    """Where this process writes: the workdir for the chief, a private dir for others."""
    if is_chief(strategy):
        return workdir
    resolver = strategy.cluster_resolver
    return os.path.join(workdir, f".{resolver.task_type}-{resolver.task_id}")


def resolve_jit_compile(setting: str, strategy: tf.distribute.Strategy) -> bool:
    """--jit_compile=auto|true|false → whether Keras compiles the train step with XLA.

    auto: XLA whenever there is a single replica: it fuses the memory-bound
    elementwise ops around small-channel convolutions (up to 2× on this project's
    2-core CPU, bench/results/train_bench_CPU.json, measured before the resampling
    convs became 4×4-effective; since then XLA:CPU is ~1.2× slower than the plain
    graph at the faces config's 64 px stage and still faster below it — README).
    Under MirroredStrategy on logical CPU devices XLA fails, so multi-replica runs use
    the plain graph and ``true`` is refused there with a message.
    """
    if setting == "false":
        return False
    multi_replica_cpu = (strategy.num_replicas_in_sync > 1
                         and not tf.config.list_physical_devices("GPU"))
    if setting == "true":
        if multi_replica_cpu:
            raise ConfigError("--jit_compile=true does not work under a multi-replica strategy on "
                              "CPU devices (XLA fails there); use --jit_compile=auto or false")
        return True
    return strategy.num_replicas_in_sync == 1


def prepare_workdir(config: Config, workdir: str) -> None:
    """Refuses a workdir started with another config; writes config.json."""
    path = os.path.join(workdir, "config.json")
    if tf.io.gfile.exists(path):
        with tf.io.gfile.GFile(path) as f:
            saved = Config.from_dict(json.load(f))
        conflicts = config.conflicts_with(saved)
        if conflicts:
            flat_old, flat_new = saved.to_dict(), config.to_dict()
            details = ", ".join(f"{k} (workdir {_lookup(flat_old, k)!r}, flags {_lookup(flat_new, k)!r})"
                                for k in conflicts)
            raise ConfigError(f"--workdir={workdir} was started with a different config: {details}; "
                              f"use a new --workdir or the original flags")
    tf.io.gfile.makedirs(workdir)
    with tf.io.gfile.GFile(path + ".tmp", "w") as f:
        f.write(config.to_json())
    tf.io.gfile.rename(path + ".tmp", path, overwrite=True)


def _lookup(d: dict, dotted: str):
    for part in dotted.split("."):
        d = d.get(part) if isinstance(d, dict) else None
    return d


class StopRequest:
    """Turns SIGTERM/SIGINT into a flag the training loop checks between steps."""

    def __init__(self):
        self.requested = False
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, frame):
        logging.warning("received %s: checkpointing, then exiting", signal.Signals(signum).name)
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


# -- per-step bookkeeping ---------------------------------------------------------
class StageCallback(keras.callbacks.Callback):
    """Advances α and images_seen, stops at the stage end, and runs the periodic jobs."""

    def __init__(self, trainer: "Trainer", phase: Phase, stop_at: int):
        super().__init__()
        self.trainer, self.phase, self.stop_at = trainer, phase, stop_at
        self.schedule = trainer.schedule
        self.images = int(trainer.model.images_seen.numpy())
        self.tick_start = (time.perf_counter(), self.images)

    def on_train_batch_begin(self, batch, logs=None):
        self.trainer.model.alpha.assign(self.schedule.phase_at(self.images).alpha)

    def on_train_batch_end(self, batch, logs=None):
        model = self.trainer.model
        before, self.images = self.images, self.images + self.phase.batch
        model.images_seen.assign(self.images)
        if logs is not None:
            logs["kimg"] = self.images / 1000.0
            logs["alpha"] = float(model.alpha.numpy())
        self.trainer.periodic(before, self.images)
        if self.images >= self.stop_at or self.trainer.stop.requested:
            model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        seconds, images = time.perf_counter() - self.tick_start[0], self.images - self.tick_start[1]
        self.tick_start = (time.perf_counter(), self.images)
        scalars = dict(logs or {})
        scalars["timing/sec_per_kimg"] = seconds / max(images, 1) * 1000.0
        scalars["schedule/stage"] = self.phase.stage
        scalars["schedule/learning_rate"] = self.phase.learning_rate
        self.trainer.write_scalars(scalars)


# -- the trainer ------------------------------------------------------------------
def make_optimizers(model, train: TrainConfig, learning_rate: float) -> list:
    """[G, D] Adam optimizers set up as the config says, built for the model's variables.

    fp16 wraps each in dynamic loss scaling (keeps fp16 gradients finite). Call it in
    the distribution strategy's scope; the trainer and the benchmarks share it.
    """
    opts = []
    for name, net in (("g_adam", model.generator), ("d_adam", model.discriminator)):
        opt = keras.optimizers.Adam(learning_rate, beta_1=train.adam_beta1, beta_2=train.adam_beta2,
                                    epsilon=train.adam_epsilon, name=name)
        if train.mixed_precision == "fp16":
            opt = keras.optimizers.LossScaleOptimizer(opt, name=name + "_scaled")
        opt.build(net.trainable_variables)
        opts.append(opt)
    return opts


class Trainer:
    """Owns the model, the checkpoints and the workdir outputs of one run."""

    def __init__(self, config: Config, workdir: str, strategy: tf.distribute.Strategy | None = None):
        self.config = config
        self.workdir = workdir
        self.strategy = strategy or tf.distribute.get_strategy()
        self.chief = is_chief(self.strategy)
        self.outdir = worker_dir(workdir, self.strategy)
        self.schedule = Schedule(config.model, config.schedule)
        self.stop = StopRequest()
        # Data first: a bad --data fails before a paper-size model is built.
        self.report = data_lib.scan_training_data(config.model, config.data)
        logging.info("data %s: %s", config.data.source, self.report.summary())
        keras.utils.set_random_seed(config.train.seed)  # same initial weights on every worker
        with self.strategy.scope():
            self.model = PAN(config)
        self.checkpointer = Checkpointer(self.model, os.path.join(self.outdir, "checkpoints"),
                                         keep=config.run.keep_checkpoints)
        self.writer = (tf.summary.create_file_writer(os.path.join(workdir, "tensorboard"))
                       if self.chief else tf.summary.create_noop_writer())
        self.jit_compile = resolve_jit_compile(config.train.jit_compile, self.strategy)
        self._samples = {}

    # Periodic jobs, triggered when images_seen crosses a multiple of their interval.
    def periodic(self, before: int, after: int) -> None:
        run = self.config.run
        if _crossed(before, after, run.checkpoint_kimg):
            self.checkpointer.save()
        if _crossed(before, after, run.sample_kimg):
            self.write_samples()

    def write_scalars(self, scalars: dict) -> None:
        step = int(self.model.images_seen.numpy())
        with self.writer.as_default(step=step):
            for name, value in scalars.items():
                tag = name if "/" in name else f"train/{name}"
                tf.summary.scalar(tag, float(value))
        self.writer.flush()

    def write_samples(self) -> None:
        """LR | G_ema(LR) | HR grid at the current stage, to PNG and TensorBoard."""
        if not self.chief:
            return
        model, stage = self.model, self.model.stage
        if stage not in self._samples:
            res = self.config.model.stage_resolutions[stage]
            self._samples[stage] = data_lib.fixed_batch(
                self.report, self.config.model, self.config.data, res,
                self.config.model.input_resolution(stage), self.config.run.num_samples,
                seed=self.config.train.seed)
        lr, hr = self._samples[stage]
        fake = model.g_ema(lr, stage=stage, alpha=model.alpha)
        grid = sample_grid(lr, fake, hr)
        images = int(model.images_seen.numpy())
        folder = os.path.join(self.workdir, "samples")
        tf.io.gfile.makedirs(folder)
        path = os.path.join(folder, f"stage{stage}-{images // 1000:06d}kimg.png")
        tf.io.write_file(path, tf.io.encode_png(grid))
        with self.writer.as_default(step=images):
            tf.summary.image("samples/lr_output_hr", grid[None])

    def _new_optimizers(self, phase: Phase):
        """Fresh Adam pair for a stage (ProGAN resets optimizer state at every stage)."""
        with self.strategy.scope():
            return make_optimizers(self.model, self.config.train, phase.learning_rate)

    def run(self) -> PAN:
        """Trains until the schedule (or --stop_kimg, or a signal) ends; returns the model."""
        config, model, schedule = self.config, self.model, self.schedule
        images = self.checkpointer.restore_networks()
        self._export_if_missed(images)
        stop_at = config.run.stop_images or schedule.total_images
        with self.stop:
            while images < min(stop_at, schedule.total_images) and not self.stop.requested:
                phase = schedule.phase_at(images)
                # The checkpointed optimizer state belongs to the last stage trained, so a
                # stage that differs is starting now (also when resuming at its start).
                if self.checkpointer.starts(phase.stage) and model.grow(phase.stage):
                    logging.info("stage %d: new block initialised as the old output, upsampled",
                                 phase.stage)
                g_opt, d_opt = self._new_optimizers(phase)
                model.set_stage(phase.stage, phase.batch,
                                ema_origin=phase.fade_end if config.train.ema_stage_rampup else 0)
                model.compile(g_opt, d_opt, jit_compile=self.jit_compile)
                resumed = self.checkpointer.attach_optimizers(g_opt, d_opt, phase.stage)
                logging.info("stage %d: %dpx → %dpx, batch %d, lr %g, images %d → %d%s",
                             phase.stage, phase.input_resolution, phase.resolution, phase.batch,
                             phase.learning_rate, images, phase.stage_end,
                             " (optimizer state restored)" if resumed else "")
                dataset = data_lib.make_dataset(
                    self.report, config.model, config.data, phase.resolution,
                    phase.input_resolution, phase.batch, start_index=images,
                    seed=config.train.seed)
                end = min(phase.stage_end, stop_at)
                steps_per_tick = max(1, math.ceil(config.run.tick_kimg * 1000 / phase.batch))
                ticks = math.ceil(math.ceil((end - images) / phase.batch) / steps_per_tick)
                model.fit(dataset, epochs=ticks, steps_per_epoch=steps_per_tick, shuffle=False,
                          callbacks=[StageCallback(self, phase, end)], verbose=config.run.verbose)
                images = int(model.images_seen.numpy())
                self.checkpointer.save()
                budget = 0 if self.stop.requested else config.run.stop_images
                if schedule.stage_done(phase.stage, images, budget):
                    # A finished stage, or the --stop_kimg budget spent mid-stage: either
                    # way the user gets the G_ema they paid for (a resumed run re-exports).
                    self.write_samples()
                    self.finish_stage(phase.stage)
        return model

    def finish_stage(self, stage: int) -> None:
        """A stage is complete: export G_ema as SavedModel version ``stage`` (chief only)."""
        if self.config.run.export and self.chief:
            path = export_lib.export_stage(self.model.g_ema, self.config, stage,
                                           self.workdir, int(self.model.images_seen.numpy()))
            logging.info("exported stage %d to %s", stage, path)

    def _export_if_missed(self, images: int) -> None:
        """A run killed between a stage's final checkpoint and its export (at the stage's
        end or at a spent --stop_kimg budget) resumes with exactly the weights it would
        have exported: export them now, unless that version already holds them."""
        stage = int(self.checkpointer.opt_stage.numpy())  # the stage trained last
        if not (self.config.run.export and self.chief and stage >= 0
                and self.schedule.stage_done(stage, images, self.config.run.stop_images)):
            return
        model_dir = os.path.join(self.workdir, export_lib.EXPORT_DIR, self.config.run.model_name)
        exported = export_lib.exported_versions(model_dir).get(stage, {})
        if exported.get("images_seen") != images:
            logging.info("stage %d ended at %d images but was not exported; exporting now",
                         stage, images)
            self.finish_stage(stage)


def _crossed(before: int, after: int, interval_kimg: float) -> bool:
    interval = max(1, int(interval_kimg * 1000))
    return after // interval > before // interval


def sample_grid(lr: tf.Tensor, fake: tf.Tensor, hr: tf.Tensor) -> tf.Tensor:
    """Rows of [LR (nearest-upscaled) | output | HR] → uint8 [N·r, 3r, 3]."""
    res = hr.shape[1]
    lr_up = tf.image.resize(lr, [res, res], method="nearest")
    row = tf.concat([lr_up, tf.cast(fake, tf.float32), hr], axis=2)          # [N,r,3r,3]
    grid = tf.reshape(row, [-1, row.shape[2], 3])                             # [N·r,3r,3]
    return tf.cast(tf.round(tf.clip_by_value((grid + 1.0) * 127.5, 0, 255)), tf.uint8)


def train(config: Config, workdir: str, strategy: tf.distribute.Strategy | None = None) -> Trainer:
    """Library entry point: prepares the workdir and trains (resuming if possible)."""
    strategy = strategy or tf.distribute.get_strategy()
    if is_chief(strategy):
        prepare_workdir(config, workdir)
    trainer = Trainer(config, workdir, strategy)
    trainer.run()
    return trainer

"""Checkpoints that make a killed run resume exactly where it stopped.

A checkpoint holds G, D, G_ema, the two Adam optimizers, ``images_seen``, the
stage the optimizer state belongs to, and the adaptive augmentation's state
(``--d_augment_target``: p and its running sums). Everything else is recomputed:
the schedule from ``images_seen`` (schedule.py), the data stream and the
training noise from ``(seed, images_seen)`` (data.py, gan.py).

Resume order:
  1. restore networks and counters (no optimizers yet: a new stage gets fresh
     Adam state, ProGAN style);
  2. the trainer computes the phase and builds that stage's optimizers;
  3. if the checkpoint's optimizer state belongs to this stage, restore it too.

The augmentation state is restored where the checkpoint has it and left at its
start (p = 0) where it does not: checkpoints written before it existed, or by
runs without it, still resume and branch.

``tf.train.CheckpointManager`` writes a checkpoint completely before it updates
its index file, so a crash mid-save leaves the previous checkpoint in charge.
"""

from __future__ import annotations

import tensorflow as tf
from absl import logging


def trained_stage(reader) -> int:
    """The stage a checkpoint's last step trained (the ``opt_stage`` a
    :class:`Checkpointer` saves), from ``tf.train.load_checkpoint(path)``'s reader;
    -1 where the checkpoint does not say."""
    key = "opt_stage/.ATTRIBUTES/VARIABLE_VALUE"
    return int(reader.get_tensor(key)) if reader.has_tensor(key) else -1


class Checkpointer:
    """Saves and restores one PAN model's training state under ``directory``."""

    def __init__(self, model, directory: str, keep: int = 3):
        self.model = model
        self.opt_stage = tf.Variable(-1, dtype=tf.int64, trainable=False, name="opt_stage")
        self._state = dict(generator=model.generator, discriminator=model.discriminator,
                           g_ema=model.g_ema, images_seen=model.images_seen.value,
                           opt_stage=self.opt_stage)
        self._optional = dict(augment_p=model.augment_p.value,
                              augment_signs=model.augment_signs.value)
        self.checkpoint = tf.train.Checkpoint(**self._state, **self._optional)
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=keep)
        self._last_saved = None     # images_seen of this process's last save

    @property
    def latest(self) -> str | None:
        return self.manager.latest_checkpoint

    def restore_networks(self, path: str | None = None) -> int:
        """Step 1: networks, G_ema and counters from ``path`` (default: the latest
        checkpoint); returns images_seen (0 if there is none)."""
        path = path or self.latest
        if path is None:
            return 0
        tf.train.Checkpoint(**self._state).restore(path).expect_partial() \
            .assert_existing_objects_matched()
        tf.train.Checkpoint(**self._optional).restore(path).expect_partial()
        images = int(self.model.images_seen.numpy())
        logging.info("resumed from %s at %d images", path, images)
        return images

    def starts(self, stage: int) -> bool:
        """Whether ``stage`` starts now: the optimizer state on hand (restored or still
        attached) belongs to another stage, or there is none."""
        return int(self.opt_stage.numpy()) != stage

    def attach_optimizers(self, g_optimizer, d_optimizer, stage: int) -> bool:
        """Step 3: track this stage's optimizers; restore their state if it is theirs."""
        restored = self.latest is not None and not self.starts(stage)
        self.checkpoint.g_optimizer = g_optimizer
        self.checkpoint.d_optimizer = d_optimizer
        if restored:
            tf.train.Checkpoint(**self._state, g_optimizer=g_optimizer, d_optimizer=d_optimizer) \
                .restore(self.latest).expect_partial().assert_existing_objects_matched()
        self.opt_stage.assign(stage)
        return restored

    def save(self) -> str:
        """Writes a checkpoint numbered by images shown (once per number)."""
        images = int(self.model.images_seen.numpy())
        if images == self._last_saved:  # e.g. a periodic save right at a stage's end
            return self.latest
        path = self.manager.save(checkpoint_number=images)
        self._last_saved = images
        logging.info("saved checkpoint %s", path)
        return path

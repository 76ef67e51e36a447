"""The PAN training model: G, D and G_ema with a custom ``train_step``.

One step (paper §4.2, DESIGN §5)::

    x   = fade(hr)                          real targets, blended like the networks
    x̂   = G(lr)                             fresh noise every step
    L_d = softplus(D(x̂)) + softplus(-D(x)) + γ‖∇D(x)‖²      Eq. 3  → update D
    L_g = softplus(-D(G(lr)))                               Eq. 4  → update G
    G_ema ← lerp(G, G_ema, β)               half-life ema_kimg

The stage (which blocks are active) is a Python int chosen by the trainer; a
new stage means a new traced step, so ``set_stage`` drops Keras' cached train
function. α and images_seen are non-trainable variables that the trainer
advances between steps, so a fade-in never retraces.

Distribution: Keras sums gradients over replicas, so per-example losses are
averaged with ``tf.nn.compute_average_loss`` over the *global* batch.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from pan_tf import augment as augment_lib
from pan_tf import losses
from pan_tf.config import Config
from pan_tf.discriminator import Discriminator
from pan_tf.generator import Generator, NoiseSpec
from pan_tf.layers import downsample2x, lerp, upsample2x


# --mixed_precision → Keras dtype policy of G and D (variables stay float32).
DTYPE_POLICIES = {"none": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def fade_targets(hr: tf.Tensor, alpha) -> tf.Tensor:
    """ProGAN's real-image fade: lerp(up(down(x)), x, α) on [N,r,r,3]."""
    return lerp(upsample2x(downsample2x(hr)), hr, alpha)


class PAN(keras.Model):
    """Generator, discriminator and EMA generator trained as one Keras model."""

    def __init__(self, config: Config, **kwargs):
        super().__init__(name=kwargs.pop("name", "pan"), **kwargs)
        self.config = config
        policy = DTYPE_POLICIES[config.train.mixed_precision]
        self.generator = Generator(config.model, name="generator", dtype=policy)
        self.discriminator = Discriminator(config.model, name="discriminator", dtype=policy)
        # G_ema is what gets evaluated and exported: always float32.
        self.g_ema = Generator(config.model, name="g_ema", dtype="float32")
        self.sync_ema()
        # Set between steps by the trainer (never inside train_step).
        self.alpha = keras.Variable(1.0, trainable=False, name="alpha")
        self.images_seen = keras.Variable(0, dtype="int64", trainable=False, name="images_seen")
        # --d_augment_target: the adaptive p, and [Σ sign D(real), count] since it last
        # moved (both checkpointed, so a resumed run adapts as an uninterrupted one).
        self.augment_p = keras.Variable(0.0, trainable=False, name="augment_p")
        self.augment_signs = keras.Variable([0.0, 0.0], trainable=False, name="augment_signs")
        self.stage = 0
        self.global_batch = 1
        self.ema_origin = 0   # images_seen where G_ema's half-life ramp starts (set_stage)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in
                         ("d_loss", "g_loss", "r1", "real_logits", "real_sign", "fake_logits")}
        self.built = True

    # -- setup -----------------------------------------------------------------
    def compile(self, g_optimizer, d_optimizer, **kwargs):
        # Handing Keras the (already built) G optimizer stops it from building a
        # default RMSprop over every weight.
        super().compile(optimizer=g_optimizer, **kwargs)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer

    def set_stage(self, stage: int, global_batch: int, ema_origin: int = 0) -> None:
        """Selects the active blocks; the next fit() traces a fresh step.

        ``ema_origin``: the images_seen from which --ema_rampup counts (0, StyleGAN2-ADA;
        the stage's fade end with --ema_stage_rampup). Before it the half-life is 0, so
        G_ema is G, and the ramp restarts from G there.
        """
        self.stage, self.global_batch, self.ema_origin = stage, global_batch, ema_origin
        self.train_function = None

    def grow(self, stage: int) -> bool:
        """Called once as ``stage`` starts training. With ``--grow_init=identity`` (beyond
        the paper) an SR stage's new block starts as the old output upsampled, in G and,
        from its own weights, in G_ema. Returns whether anything changed."""
        model = self.config.model
        res = model.stage_resolutions[stage]
        if model.grow_init != "identity" or res <= model.lr_size:  # stage 0 is ≤ lr_size
            return False
        for g in (self.generator, self.g_ema):
            g.init_grown_block(res)
        return True

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """No-op: every variable (networks, trackers, optimizers) exists before fit().

        Keras would otherwise pull a probe batch and average it across replicas,
        which fails under MultiWorkerMirroredStrategy (PerReplica → Tensor).
        """

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, lr, training=False):
        """G_ema at the current stage, α = 1: what gets evaluated and exported."""
        return self.g_ema(lr, stage=self.stage)

    # -- the step --------------------------------------------------------------
    def _step_seed(self, salt: int) -> tf.Tensor:
        """A stateless seed of (seed, images_seen, salt): the same after a resume."""
        step_seed = tf.stack([tf.constant(self.config.train.seed, tf.int64),
                              tf.convert_to_tensor(self.images_seen)])
        return tf.random.experimental.stateless_fold_in(tf.cast(step_seed, tf.int32), salt)

    def _batch_slice(self, local_batch) -> tuple:
        """(global batch, first global row of this replica's images): the per-step draws
        (noise, augmentation) are made for the global batch and each replica takes its
        rows, so replicas draw as one device would. The offset is 0 outside tf.distribute
        and a scalar tensor inside."""
        replica = tf.distribute.get_replica_context()
        replica_id = replica.replica_id_in_sync_group if replica is not None else 0
        return self.global_batch, replica_id * local_batch

    def _noise(self, salt: int, local_batch) -> NoiseSpec:
        """Fresh noise per step, identical whichever replica draws which images."""
        global_batch, offset = self._batch_slice(local_batch)
        return NoiseSpec(self._step_seed(salt), global_batch=global_batch, offset=offset)

    def _average(self, per_example: tf.Tensor, optimizer) -> tf.Tensor:
        """Mean over the global batch (replica gradients are summed), loss-scaled for fp16.

        Call it inside the tape: the fp16 loss scale must be part of the recorded graph.
        """
        mean = tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch)
        return optimizer.scale_loss(mean)

    def train_step(self, data):
        lr, hr = data                                   # [n,r_in,r_in,3], [n,r,r,3] in [-1,1]
        alpha = tf.convert_to_tensor(self.alpha)
        reals = fade_targets(hr, alpha) if self.stage > 0 else hr
        if self.config.train.loss == "gan":
            stats, weights = self._discriminator_step(lr, reals, alpha)   # Eq. 3
            stats.update(self._generator_step(lr, alpha))                 # Eq. 4
            if self.config.train.adaptive_augment:
                self._adapt_augment(stats["real_sign"], lr.shape[0])
        else:
            stats, weights = self._pixel_loss_step(lr, reals, alpha), {}  # Table 2 ablation
        t = self.config.train
        ramp_images = tf.maximum(tf.convert_to_tensor(self.images_seen) - self.ema_origin, 0)
        self._update_ema(losses.ema_beta(self.global_batch, t.ema_kimg, t.ema_rampup,
                                         ramp_images))
        # Trackers see per-replica means; Keras averages them over replicas.
        for name, value in stats.items():
            self.trackers[name].update_state(value, sample_weight=weights.get(name, 1.0))
        results = {name: self.trackers[name].result() for name in stats}
        if self.config.train.adaptive_augment:
            results["augment_p"] = tf.convert_to_tensor(self.augment_p)
        if isinstance(self.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
            # Keras reduces multi-worker logs with reduce(MEAN, axis=0): give them an axis.
            results = {name: tf.reshape(value, [1]) for name, value in results.items()}
        return results

    def _disc(self, images, alpha, lr, salt: int):
        """D's logits; with --d_augment, of the images transformed (draws from ``salt``)."""
        t = self.config.train
        if t.d_augment_policy:
            p = tf.convert_to_tensor(self.augment_p) if t.adaptive_augment else t.d_augment_p
            images = augment_lib.augment(images, t.d_augment_policy, self._step_seed(salt), p,
                                         batch=self._batch_slice(images.shape[0]))
        condition = lr if self.config.model.conditional_d else None
        return self.discriminator(images, stage=self.stage, alpha=alpha, condition=condition)

    def _discriminator_step(self, lr, reals, alpha):
        """L_d = softplus(D(x̂)) + softplus(-D(x)) + γ‖∇D(x)‖²; x̂ from G with fresh noise.

        With lazy R1 (StyleGAN2, ``r1_interval`` N > 1) the penalty is applied on
        every N-th step only, weighted γ·N so its expected scale stays γ.
        """
        t, n = self.config.train, lr.shape[0]
        # Separate augmentation draws for the reals (R1 included: its gradient is taken
        # through the transforms, as in StyleGAN2-ADA) and the fakes.
        disc = lambda images, salt=2: self._disc(images, alpha, lr, salt)  # noqa: E731
        fakes = self.generator(lr, stage=self.stage, alpha=alpha, noise=self._noise(0, n))
        gamma = t.r1_gamma_at(self.config.model.stage_resolutions[self.stage])
        r1_weight = losses.lazy_r1_weight(gamma, t.r1_interval, self.d_optimizer.iterations)
        with tf.GradientTape() as tape:
            if gamma == 0:
                r1, real_logits = tf.zeros([n]), disc(reals)
            elif t.r1_interval == 1:
                r1, real_logits = losses.r1_penalty(disc, reals)
            else:
                r1, real_logits = tf.cond(r1_weight > 0,
                                          lambda: losses.r1_penalty(disc, reals),
                                          lambda: (tf.zeros([n]), disc(reals)))
            fake_logits = disc(tf.stop_gradient(fakes), salt=3)
            per_example = losses.discriminator_loss(real_logits, fake_logits) + r1_weight * r1
            loss = self._average(per_example, self.d_optimizer)
        self._apply(self.d_optimizer, tape, loss, self.discriminator.trainable_variables)
        stats = {"d_loss": tf.reduce_mean(per_example), "r1": tf.reduce_mean(r1),
                 "real_logits": tf.reduce_mean(real_logits),
                 # StyleGAN2-ADA's overfitting heuristic r_t, on the reals as D judged them.
                 "real_sign": tf.reduce_mean(tf.sign(tf.cast(real_logits, tf.float32)))}
        return stats, {"r1": tf.cast(r1_weight > 0, tf.float32)}  # log R1 only where applied

    def _generator_step(self, lr, alpha):
        """L_g = softplus(-D(G(lr))) with fresh noise and the just-updated D."""
        with tf.GradientTape() as tape:
            fakes = self.generator(lr, stage=self.stage, alpha=alpha,
                                   noise=self._noise(1, lr.shape[0]))
            fake_logits = self._disc(fakes, alpha, lr, salt=4)
            per_example = losses.generator_loss(fake_logits)
            loss = self._average(per_example, self.g_optimizer)
        self._apply(self.g_optimizer, tape, loss, self._g_weights())
        return {"g_loss": tf.reduce_mean(per_example), "fake_logits": tf.reduce_mean(fake_logits)}

    def _pixel_loss_step(self, lr, reals, alpha):
        """The L1/L2 ablation: G alone against the (faded) HR targets, no discriminator."""
        with tf.GradientTape() as tape:
            fakes = self.generator(lr, stage=self.stage, alpha=alpha,
                                   noise=self._noise(1, lr.shape[0]))
            per_example = losses.pixel_loss(fakes, reals, self.config.train.loss)
            loss = self._average(per_example, self.g_optimizer)
        self._apply(self.g_optimizer, tape, loss, self._g_weights())
        return {"g_loss": tf.reduce_mean(per_example)}

    def _g_weights(self) -> list:
        """G's weights this stage updates (all of them unless --sr_freeze holds some)."""
        return self.generator.trainable_at(self.stage, self.config.schedule.sr_freeze)

    def _apply(self, optimizer, tape, scaled_loss, variables):
        grads = tape.gradient(scaled_loss, variables)
        # Blocks of other stages get no gradient; leave them (and their Adam state) alone.
        optimizer.apply_gradients([(g, v) for g, v in zip(grads, variables) if g is not None])

    def _adapt_augment(self, real_sign, local_batch) -> None:
        """--d_augment_target: adds this step's Σ sign D(real) over the global batch to the
        running sums and moves p once every ADA_INTERVAL steps' worth of images
        (augment.ada_adjust). Every replica computes the same values from the summed
        signs; they are assigned in cross-replica context, as G_ema is."""
        t = self.config.train
        n = tf.cast(local_batch, tf.float32)
        step = tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM, tf.stack([real_sign * n, n]))
        p, signs = augment_lib.ada_adjust(
            self.augment_p, self.augment_signs + step, t.d_augment_target, t.d_augment_kimg,
            t.d_augment_p, augment_lib.ADA_INTERVAL * self.global_batch)
        self._update_synced([(self.augment_p.value, p), (self.augment_signs.value, signs)],
                            lambda variable, value: variable.assign(value))

    def _update_ema(self, beta: float) -> None:
        """G_ema ← G + β·(G_ema − G), in cross-replica context so mirrored copies agree."""
        pairs = [(e.value, s.value) for e, s in zip(self.g_ema.weights, self.generator.weights)]
        self._update_synced(pairs, lambda e, s: e.assign(s + beta * (e - s)))

    @staticmethod
    def _update_synced(pairs, update) -> None:
        """``update(variable, value)`` for each (variable, value) pair, in cross-replica
        context, so every mirrored copy of a variable gets the same update (the values
        must agree across replicas)."""
        def apply(strategy, pairs):
            for variable, value in pairs:
                strategy.extended.update(variable, update, args=(value,))

        tf.distribute.get_replica_context().merge_call(apply, args=(pairs,))

    def sync_ema(self) -> None:
        """Copy G into G_ema (used when a run starts, never mid-training)."""
        for ema, src in zip(self.g_ema.weights, self.generator.weights):
            ema.assign(src)

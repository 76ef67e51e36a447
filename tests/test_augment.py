"""--d_augment: DiffAugment's transforms of D's inputs and ADA's adaptive p (beyond the paper)."""

import dataclasses
import glob
import os

import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_config

from pan_tf import augment as augment_lib
from pan_tf import trainer as train_lib
from pan_tf.config import D_AUGMENT, ConfigError, TrainConfig
from pan_tf.gan import PAN

SEED = tf.constant([7, 11], tf.int32)


def images(n=16, side=16, seed=(1, 2)):
    return tf.random.stateless_uniform([n, side, side, 3], seed, -1.0, 1.0)


def run(fn, x, jit):
    return tf.function(fn, jit_compile=True)(x) if jit else fn(x)


@pytest.mark.parametrize("jit", [False, True])
def test_translation_shifts_each_image_by_whole_pixels_with_zeros_coming_in(jit):
    x = images()
    out = run(lambda x: augment_lib.translation(x, SEED), x, jit).numpy()
    m = 2  # ⅛ of 16 px
    padded = np.pad(x.numpy(), [(0, 0), (m, m), (m, m), (0, 0)])
    shifts = []
    for i in range(len(out)):
        found = [(dy, dx) for dy in range(-m, m + 1) for dx in range(-m, m + 1)
                 if np.array_equal(out[i], padded[i, m - dy:m - dy + 16, m - dx:m - dx + 16])]
        assert len(found) == 1, f"image {i} is not one shift of its input"
        shifts.append(found[0])
    assert len(set(shifts)) > 4  # per-image draws, not one shift for the batch


@pytest.mark.parametrize("jit", [False, True])
def test_cutout_zeroes_one_square_of_half_the_side(jit):
    out = run(lambda x: augment_lib.cutout(x, SEED), tf.ones([64, 16, 16, 3]), jit).numpy()
    assert set(np.unique(out)) <= {0.0, 1.0}
    areas = []
    for cut in out[..., 0] == 0:
        rows, cols = np.flatnonzero(cut.any(axis=1)), np.flatnonzero(cut.any(axis=0))
        # One axis-aligned rectangle, at most 8×8, clipped by the image edge only.
        assert cut.sum() == len(rows) * len(cols) and np.all(np.diff(rows) == 1)
        assert 0 < len(rows) <= 8 and 0 < len(cols) <= 8
        assert len(rows) == 8 or rows[0] == 0 or rows[-1] == 15
        areas.append(cut.sum())
    assert np.array_equal(out[..., 0], out[..., 2])  # every channel cut alike
    assert 64 in areas and min(areas) < 64  # squares inside and squares at the edge


def test_color_moves_each_image_by_its_own_brightness_saturation_and_contrast():
    grey = tf.fill([16, 8, 8, 3], 0.25)
    out = augment_lib.color(grey, SEED).numpy()
    # A flat grey image has no saturation and no contrast to scale: only the brightness
    # shift, one per image, in [-½, ½), moves it.
    shift = out[:, 0, 0, 0] - 0.25
    np.testing.assert_allclose(out, np.broadcast_to(out[:, :1, :1, :1], out.shape), atol=1e-6)
    assert np.all(np.abs(shift) <= 0.5) and np.std(shift) > 0.1
    # On a colour image every pixel's deviation from its own channel mean is scaled by one
    # factor per image, saturation × contrast ∈ [0, 3).
    x = images()
    out = augment_lib.color(x, SEED).numpy()
    dev_in = x.numpy() - x.numpy().mean(axis=3, keepdims=True)
    dev_out = out - out.mean(axis=3, keepdims=True)
    factor = (dev_out * dev_in).sum(axis=(1, 2, 3)) / (dev_in ** 2).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(dev_out, factor[:, None, None, None] * dev_in, atol=1e-5)
    assert np.all((factor >= 0) & (factor < 3)) and np.std(factor) > 0.2


def test_augment_is_stateless_and_passes_gradients_to_the_images():
    x, policy = images(), D_AUGMENT
    same = augment_lib.augment(x, policy, SEED)
    np.testing.assert_array_equal(same, augment_lib.augment(x, policy, SEED))
    assert float(tf.reduce_max(tf.abs(same - augment_lib.augment(x, policy, SEED + 1)))) > 0.5
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.square(augment_lib.augment(x, policy, SEED)))
    grad = tape.gradient(loss, x).numpy()
    # Pixels shifted out or cut away get none; every image keeps most of its pixels.
    assert np.all(np.isfinite(grad)) and np.all(np.mean(grad != 0, axis=(1, 2, 3)) > 0.4)


@pytest.mark.parametrize("name, touched_at_p1", [("color", 1.0), ("translation", 24 / 25),
                                                  ("cutout", 1.0)])
def test_each_transform_touches_an_image_with_probability_p(name, touched_at_p1):
    # color is three transforms (brightness, saturation, contrast), each drawn with p;
    # a translation draws (0, 0) one time in 25 at p = 1.
    x = images(n=400)
    for p in (1.0, 0.3):
        out = augment_lib.TRANSFORMS[name](x, SEED, p).numpy()
        # 1e-5: saturation and contrast at factor 1 still round (x − mean) + mean.
        touched = np.mean(np.any(np.abs(out - x.numpy()) > 1e-5, axis=(1, 2, 3)))
        expected = 1 - (1 - p) ** 3 if name == "color" else p * touched_at_p1
        # 400 draws: the binomial's standard deviation is at most 0.025; allow 4 of them.
        assert abs(touched - expected) < 0.1, (p, touched, expected)


def test_a_slice_of_the_global_batch_is_augmented_as_on_one_device():
    x = images(n=8)
    whole = augment_lib.augment(x, D_AUGMENT, SEED, 0.5).numpy()
    halves = [augment_lib.augment(x[i:i + 4], D_AUGMENT, SEED, 0.5, batch=(8, i)).numpy()
              for i in (0, 4)]
    np.testing.assert_allclose(np.concatenate(halves), whole, atol=1e-6)


def test_config_reads_and_checks_the_policy():
    assert TrainConfig(d_augment="cutout, color").d_augment_policy == ("color", "cutout")
    assert TrainConfig().d_augment_policy == ()
    for bad, message in [("colour", "--d_augment must be a comma-separated subset"),
                         ("cutout,cutout", "each at most once")]:
        with pytest.raises(ConfigError, match=message):
            TrainConfig(d_augment=bad).validate()
    for bad_p in (0.0, 1.5):
        with pytest.raises(ConfigError, match="--d_augment_p must be in"):
            TrainConfig(d_augment="color", d_augment_p=bad_p).validate()
    with pytest.raises(ConfigError, match="--loss=l1 has no D"):
        TrainConfig(d_augment="color", loss="l1").validate()


def test_conditional_d_with_augmentation_is_refused(image_folder):
    with pytest.raises(ConfigError, match="does not combine with --conditional_d"):
        tiny_config(str(image_folder), model={"conditional_d": True},
                    train={"d_augment": "translation"})


def test_every_image_d_judges_is_augmented_in_training(tmp_path, image_folder, monkeypatch):
    calls, real_augment = [], augment_lib.augment

    def spy(images, policy, seed, p, batch):  # records each traced call: what D will see
        calls.append((tuple(images.shape[1:]), policy, p))
        return real_augment(images, policy, seed, p, batch)

    monkeypatch.setattr(augment_lib, "augment", spy)
    config = tiny_config(str(image_folder), train={"d_augment": "color,translation,cutout",
                                                   "d_augment_p": 0.5})
    model = train_lib.train(config, str(tmp_path)).model
    logs = {name: float(t.result()) for name, t in model.trackers.items() if t.count > 0}
    assert {"d_loss", "g_loss", "r1"} <= logs.keys() and all(np.isfinite(list(logs.values())))
    # Each traced step: the reals (under R1's tape), D's fakes and G's fakes, at each
    # stage's resolution (8 px, then 16 px).
    policy = ("color", "translation", "cutout")
    for side in (8, 16):
        assert calls.count(((side, side, 3), policy, 0.5)) >= 3
    assert {c[0][0] for c in calls} == {8, 16}
    # The paper's setting never calls it.
    calls.clear()
    plain = PAN(dataclasses.replace(config, train=dataclasses.replace(config.train, d_augment="")))
    plain.set_stage(1, 2)
    plain._disc(tf.zeros([2, 16, 16, 3]), 1.0, tf.zeros([2, 8, 8, 3]), salt=2)
    assert calls == []


# -- adaptive p (--d_augment_target, StyleGAN2-ADA) ------------------------------------
ADA = {"d_augment": "translation,cutout", "d_augment_target": 0.6, "d_augment_kimg": 0.1}


def test_ada_moves_p_once_per_interval_by_the_sign_of_r_t_and_keeps_it_in_range():
    # 16 images counted, an interval of 16, 0.1 kimg from 0 to 1: a move of 16/100.
    def adjust(p, signs, cap=1.0, interval=16):
        p, signs = augment_lib.ada_adjust(p, signs, 0.6, 0.1, cap, interval)
        return round(float(p), 6), signs.numpy().tolist()    # float32 p, to 1e-6

    assert adjust(0.5, [12.0, 16.0]) == (0.66, [0.0, 0.0])     # r_t 0.75 > 0.6: up
    assert adjust(0.5, [8.0, 16.0]) == (0.34, [0.0, 0.0])      # r_t 0.5: down
    assert adjust(0.5, [12.0, 12.0]) == (0.5, [12.0, 12.0])    # not due yet: sums carry on
    assert adjust(0.5, [24.0, 32.0], interval=32) == (0.82, [0.0, 0.0])
    assert adjust(0.05, [-16.0, 16.0]) == (0.0, [0.0, 0.0])    # never below 0
    assert adjust(0.9, [16.0, 16.0], cap=0.95) == (0.95, [0.0, 0.0])  # nor above the cap


def test_config_checks_the_adaptive_p():
    assert TrainConfig(**ADA).adaptive_augment and not TrainConfig(d_augment="color").adaptive_augment
    for bad, message in [({"d_augment_target": 1.0}, "--d_augment_target must be in"),
                         ({"d_augment_target": -0.1}, "--d_augment_target must be in"),
                         ({"d_augment_kimg": 0}, "--d_augment_kimg must be > 0"),
                         ({"d_augment": ""}, "name them with --d_augment")]:
        with pytest.raises(ConfigError, match=message):
            TrainConfig(**{**ADA, **bad}).validate()


def _scalars(logdir, tag) -> list[float]:
    """A TensorBoard scalar's values in order of images shown."""
    values = []
    for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            values += [(event.step, float(tf.make_ndarray(v.tensor)))
                       for v in event.summary.value if v.tag == tag]
    return [value for _, value in sorted(values)]


def test_adaptive_p_follows_r_t_in_training_and_resumes_mid_interval(tmp_path, image_folder):
    # A tick is 4 steps of 4 images: one ADA interval, so each tick's logged r_t (the mean
    # of sign D(real) over its steps) is what moved p at its end. Replaying ADA's rule on
    # the logged r_t must give the logged p. The target is low, so that p rises on this
    # data (r_t reaches 0.25–0.75 within a few ticks) and the replay covers both ways.
    train = {**ADA, "d_augment_target": 0.1}
    config = tiny_config(str(image_folder), train=train, schedule={"stable_kimg": 0.064},
                         run={"tick_kimg": 0.016})
    straight = train_lib.train(config, str(tmp_path / "straight")).model
    logs = str(tmp_path / "straight" / "tensorboard")
    r_t, p_logged = _scalars(logs, "train/real_sign"), _scalars(logs, "train/augment_p")
    assert len(r_t) == len(p_logged) == 9                        # 144 images, 16 a tick
    p, replay = 0.0, []
    for r in r_t:
        p = min(max(p + np.sign(r - 0.1) * 16 / 100, 0.0), 1.0)
        replay.append(p)
    np.testing.assert_allclose(p_logged, replay, atol=1e-6)      # float32 sums of 0.16s
    assert max(p_logged) > 0

    # Killed half-way through an interval (88 images: two steps into the sixth), resumed.
    stopped = tiny_config(str(image_folder), train=train, schedule={"stable_kimg": 0.064},
                          run={"tick_kimg": 0.016, "stop_kimg": 0.088})
    first = train_lib.train(stopped, str(tmp_path / "resumed")).model
    assert float(first.augment_signs.numpy()[1]) == 8
    resumed = train_lib.train(config, str(tmp_path / "resumed")).model
    assert float(resumed.augment_p.numpy()) == pytest.approx(float(straight.augment_p.numpy()))
    np.testing.assert_array_equal(resumed.augment_signs.numpy(), straight.augment_signs.numpy())
    for a, b in zip(straight.discriminator.weights, resumed.discriminator.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


def test_adaptive_p_sums_the_signs_of_every_replica(image_folder, mirrored):
    # Replica 0's reals all judged real (sign +1), replica 1's half (r = 0.5), 4 images
    # each: the sums must be the global batch's, [6, 8], on both replicas, and after four
    # steps (an interval of 32 images) r_t = 0.75 > 0.6 moves p up by 32/100.
    strategy = mirrored
    config = tiny_config(str(image_folder), train=ADA)
    with strategy.scope():
        model = PAN(config)
    model.set_stage(0, 8)

    def replica_step():
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        model._adapt_augment(tf.where(replica == 0, 1.0, 0.5), 4)

    step = tf.function(lambda: strategy.run(replica_step))
    step()
    for value in strategy.experimental_local_results(model.augment_signs.value):
        np.testing.assert_array_equal(value.numpy(), [6.0, 8.0])
    for _ in range(3):
        step()
    for p, signs in zip(strategy.experimental_local_results(model.augment_p.value),
                        strategy.experimental_local_results(model.augment_signs.value)):
        assert float(p) == pytest.approx(0.32)
        np.testing.assert_array_equal(signs.numpy(), [0.0, 0.0])

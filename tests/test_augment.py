"""--d_augment: DiffAugment's transforms of D's inputs (beyond the paper)."""

import dataclasses

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

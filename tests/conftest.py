"""Shared test setup: quiet TensorFlow, two logical CPUs, tiny configs and images."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import dataclasses  # noqa: E402
import pathlib  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Two logical CPU devices, so MirroredStrategy can run two replicas in-process.
# This must happen before TensorFlow initialises its devices.
_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from pan_tf import export as export_lib  # noqa: E402
from pan_tf.config import (  # noqa: E402
    Config,
    DataConfig,
    ModelConfig,
    RunConfig,
    ScheduleConfig,
    TrainConfig,
)
from pan_tf.degrade import DegradeConfig  # noqa: E402
from pan_tf.generator import random_generator  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def smooth_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A photo-like uint8 image: low-frequency colour blobs plus fine texture."""
    coarse = rng.uniform(0, 255, (4, 4, 3)).astype(np.float32)
    image = tf.image.resize(coarse[None], [height, width], method="bicubic")[0].numpy()
    image += rng.normal(0, 12, (height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def write_images(folder: pathlib.Path, count: int, size=(40, 40), seed: int = 0) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        image = smooth_image(rng, *size)
        path = folder / f"img{i:03d}.png"
        tf.io.write_file(str(path), tf.io.encode_png(image))
        paths.append(str(path))
    return paths


@pytest.fixture(scope="session")
def mirrored() -> tf.distribute.MirroredStrategy:
    """MirroredStrategy over the two logical CPUs, one for the whole session: the
    collectives of two such strategies in one process share instance keys, so the
    second fails with a shape mismatch once the first has run an all-reduce."""
    from pan_tf import trainer as train_lib
    strategy = train_lib.make_strategy("mirrored")
    assert strategy.num_replicas_in_sync == 2
    return strategy


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory) -> pathlib.Path:
    folder = tmp_path_factory.mktemp("images")
    write_images(folder, 12, size=(40, 48))
    return folder


def tiny_config(data: str, **sections) -> Config:
    """A 8→16 (×2) ladder: stage 0 restores 8×8, stage 1 super-resolves to 16×16."""
    base = Config(
        model=ModelConfig(lr_size=8, scale=2, start_res=8, fmap_base=128, fmap_max=16),
        schedule=ScheduleConfig(fade_kimg=0.016, stable_kimg=0.016, batch_size=4,
                                learning_rate=2e-3),
        # Graph mode: XLA compiles every stage's step anew, which took 47 s of a 3-stage
        # tiny run against 19 s without it on a 2-core AVX2 host. XLA keeps its own tests:
        # the XLA/graph step at stage 1 (α a tensor: the fade path is in it) and fp16.
        train=TrainConfig(jit_compile="false"),
        data=DataConfig(source=data, degrade=DegradeConfig(enabled=False)),
        run=RunConfig(tick_kimg=0.008, sample_kimg=0.016, checkpoint_kimg=0.016,
                      num_samples=2, verbose=0, export=False),
    )
    return dataclasses.replace(base, **{
        name: dataclasses.replace(getattr(base, name), **values) for name, values in sections.items()
    }).validate()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> str:
    """EXPORT_ROOT/pan of a small random-weight G_ema, exported as versions 3 (x2, 32 → 64)
    and 4 (x4, 32 → 128), noise scales 0.05 so the noise path does something. Read-only:
    pan_tf.enhance and pan_tf.evaluate's tests share it (one export per test process)."""
    workdir = tmp_path_factory.mktemp("export")
    config = tiny_config("unused", model={"lr_size": 32, "scale": 4, "fmap_base": 512,
                                          "fmap_max": 16})
    g_ema = random_generator(config.model, seed=0, noise_strength=0.05)
    for stage in (3, 4):
        export_lib.export_stage(g_ema, config, stage, str(workdir), images_seen=0)
    return str(workdir / export_lib.EXPORT_DIR / config.run.model_name)

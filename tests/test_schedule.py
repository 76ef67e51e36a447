"""phase_at: boundaries, α ramps, batch/lr maps, resume mid-fade."""

import pytest

from pan_tf.config import ModelConfig, ScheduleConfig
from pan_tf.schedule import Schedule

PAPER_MODEL = ModelConfig(lr_size=128, scale=8, start_res=8)
PAPER_SCHEDULE = ScheduleConfig(
    fade_kimg=600, stable_kimg=600, learning_rate=1e-3,
    lr_map=((128, 1.5e-3), (256, 2e-3), (512, 3e-3), (1024, 3e-3)),
    batch_size=4, batch_map=((8, 64), (16, 32), (32, 16), (64, 8)))


@pytest.fixture
def paper():
    return Schedule(PAPER_MODEL, PAPER_SCHEDULE)


def test_stage_boundaries(paper):
    # Stage 0 (8px) is stable only; every later stage fades then stabilises.
    assert paper.phase_at(0).stage == 0
    assert paper.phase_at(599_999).stage == 0
    first_fade = paper.phase_at(600_000)
    assert (first_fade.stage, first_fade.resolution, first_fade.alpha) == (1, 16, 0.0)
    assert paper.phase_at(1_799_999).stage == 1
    assert paper.phase_at(1_800_000).stage == 2
    # 8 stages: 600k + 7 × 1200k.
    assert paper.total_images == 600_000 + 7 * 1_200_000
    last = paper.phase_at(paper.total_images - 1)
    assert (last.stage, last.resolution, last.input_resolution, last.alpha) == (7, 1024, 128, 1.0)


def test_alpha_ramps_linearly_then_holds(paper):
    start = 600_000
    for frac in (0.0, 0.25, 0.5, 0.75):
        assert paper.phase_at(start + int(frac * 600_000)).alpha == pytest.approx(frac)
    assert paper.phase_at(start + 600_000).alpha == 1.0
    assert paper.phase_at(start + 1_000_000).alpha == 1.0
    assert paper.phase_at(0).alpha == 1.0  # the first stage has nothing to fade in


def test_paper_batch_and_learning_rate_maps(paper):
    by_res = {}
    images = 0
    while images < paper.total_images:
        phase = paper.phase_at(images)
        by_res[phase.resolution] = (phase.batch, phase.learning_rate)
        images = phase.stage_end
    assert by_res == {8: (64, 1e-3), 16: (32, 1e-3), 32: (16, 1e-3), 64: (8, 1e-3),
                      128: (4, 1.5e-3), 256: (4, 2e-3), 512: (4, 3e-3), 1024: (4, 3e-3)}


def test_sr_stages_keep_the_lr_input(paper):
    for images, (res, inp, scale) in {
        0: (8, 8, 1), 4_300_000: (128, 128, 1), 5_500_000: (256, 128, 2),
        6_700_000: (512, 128, 4), 8_000_000: (1024, 128, 8),
    }.items():
        phase = paper.phase_at(images)
        assert (phase.resolution, phase.input_resolution, phase.scale) == (res, inp, scale)


def test_resume_mid_fade_gives_the_same_phase(paper):
    # A fresh Schedule (as after a restart) agrees with the original everywhere.
    resumed = Schedule(PAPER_MODEL, PAPER_SCHEDULE)
    for images in (0, 123_456, 600_000, 777_777, 1_199_999, 5_000_001, paper.total_images + 5):
        assert resumed.phase_at(images) == paper.phase_at(images)


def test_past_the_end_stays_at_the_last_stage(paper):
    phase = paper.phase_at(paper.total_images + 10_000)
    assert (phase.stage, phase.alpha) == (7, 1.0)


def test_non_progressive_trains_the_last_stage_for_the_same_budget(paper):
    flat = Schedule(PAPER_MODEL, ScheduleConfig(**{**PAPER_SCHEDULE.__dict__, "progressive": False}))
    assert flat.total_images == paper.total_images
    assert flat.stages == (7,)
    for images in (0, 1_000_000, flat.total_images - 1):
        phase = flat.phase_at(images)
        assert (phase.stage, phase.resolution, phase.alpha) == (7, 1024, 1.0)


def test_steps_left_in_stage(paper):
    assert paper.steps_left_in_stage(0) == 600_000 // 64
    assert paper.steps_left_in_stage(599_990) == 1  # a last, overshooting step


def test_last_stage_can_train_longer():
    longer = Schedule(PAPER_MODEL, ScheduleConfig(**{**PAPER_SCHEDULE.__dict__,
                                                     "last_stable_kimg": 1000}))
    assert longer.total_images == paper_total() + 400_000
    assert longer.phase_at(longer.total_images - 1).stage == 7
    assert longer.phase_at(paper_total() - 600_000).stage == 7   # first 600k of the last stage
    flat = Schedule(PAPER_MODEL, ScheduleConfig(**{**PAPER_SCHEDULE.__dict__,
                                                   "last_stable_kimg": 1000, "progressive": False}))
    assert flat.total_images == longer.total_images


def paper_total():
    return Schedule(PAPER_MODEL, PAPER_SCHEDULE).total_images


def test_per_resolution_lengths_override_the_defaults():
    # A CPU-style ladder 8 → 64: a long, cheap first stage, a longer fade at 16 px,
    # and the map winning over last_stable_kimg at the last stage.
    model = ModelConfig(lr_size=16, scale=4, start_res=8)
    config = ScheduleConfig(fade_kimg=10, stable_kimg=10, last_stable_kimg=20,
                            fade_kimg_map=((16, 15),), stable_kimg_map=((8, 40), (64, 25)))
    schedule = Schedule(model, config)
    bounds = [(schedule.phase_at(i).stage_start, schedule.phase_at(i).fade_end,
               schedule.phase_at(i).stage_end) for i in (0, 40_000, 65_000, 85_000)]
    assert bounds == [(0, 0, 40_000), (40_000, 55_000, 65_000), (65_000, 75_000, 85_000),
                      (85_000, 95_000, 120_000)]
    assert schedule.total_images == 120_000
    assert schedule.phase_at(47_500).alpha == pytest.approx(0.5)
    # Without map entries the lengths are the flat ones (and last_stable_kimg).
    flat = Schedule(model, ScheduleConfig(fade_kimg=10, stable_kimg=10, last_stable_kimg=20))
    assert flat.total_images == 10_000 + 20_000 + 20_000 + 30_000

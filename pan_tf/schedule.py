"""The progressive schedule as a pure function of images shown (DESIGN §2).

``Schedule(model, schedule).phase_at(images_seen)`` gives everything the
trainer needs at that point: stage, resolutions, fade-in α, global batch and
learning rate. Nothing else carries schedule state, so resuming from any
checkpoint recomputes exactly the phase the run was in (ProGAN's
``TrainingSchedule(cur_nimg)``).

Timeline (progressive): stage 0 trains ``stable`` images; every later stage
first fades its new blocks in over ``fade`` images (α: 0 → 1, linear), then
trains ``stable`` images at α = 1 (the last stage ``last_stable`` if set).
``fade_kimg_map`` / ``stable_kimg_map`` override both lengths per resolution.
Non-progressive runs train the last stage at α = 1 for the same total number
of images, so ablations share a budget.
"""

from __future__ import annotations

import dataclasses
import math

from pan_tf.config import ModelConfig, ScheduleConfig


@dataclasses.dataclass(frozen=True)
class Phase:
    stage: int            # index into ModelConfig.stage_resolutions
    resolution: int       # generator output / discriminator input side, pixels
    input_resolution: int # generator input side, pixels (≤ lr_size)
    alpha: float          # fade-in weight of the newest blocks, 0 → 1
    batch: int            # global batch, images
    learning_rate: float  # Adam step size for G and D
    stage_start: int      # images shown when this stage began
    fade_end: int         # images shown when α reaches 1
    stage_end: int        # images shown when this stage ends

    @property
    def fading(self) -> bool:
        return self.alpha < 1.0

    @property
    def scale(self) -> int:
        return self.resolution // self.input_resolution


class Schedule:
    """Maps images shown to a :class:`Phase`."""

    def __init__(self, model: ModelConfig, schedule: ScheduleConfig):
        self.model = model
        self.config = schedule
        n = model.num_stages
        # (stage, start, fade_end, end) of every stage of the progressive ladder.
        bounds, start = [], 0
        for stage, res in enumerate(model.stage_resolutions):
            fade_len = int(round(schedule.fade_kimg_at(res) * 1000)) if stage > 0 else 0
            stable_len = int(round(schedule.stable_kimg_at(res, last=stage == n - 1) * 1000))
            bounds.append((stage, start, start + fade_len, start + fade_len + stable_len))
            start += fade_len + stable_len
        if not schedule.progressive:  # the last stage only, for the same number of images
            bounds = [(n - 1, 0, 0, start)]
        self._bounds = tuple(bounds)

    @property
    def total_images(self) -> int:
        return self._bounds[-1][3]

    @property
    def stages(self) -> tuple[int, ...]:
        """The stages this schedule trains, in order."""
        return tuple(b[0] for b in self._bounds)

    def stage_end(self, stage: int) -> int:
        return next(b[3] for b in self._bounds if b[0] == stage)

    def stage_done(self, stage: int, images_seen: int, stop_images: int = 0) -> bool:
        """Whether ``stage``'s weights at ``images_seen`` are the ones it ends with, so
        the trainer exports them: the stage's end is reached, or a ``--stop_kimg`` budget
        (``stop_images`` > 0) is spent inside it. The trainer, its resume check and
        ``pan_tf.export`` all decide with this one rule."""
        return images_seen >= self.stage_end(stage) or 0 < stop_images <= images_seen

    def phase_at(self, images_seen: int) -> Phase:
        """The phase at ``images_seen``; past the end, the last stage at α = 1."""
        images_seen = max(0, int(images_seen))
        stage, start, fade_end, end = next(
            (b for b in self._bounds if images_seen < b[3]), self._bounds[-1])
        if images_seen >= fade_end:
            alpha = 1.0
        else:
            alpha = (images_seen - start) / (fade_end - start)
        res = self.model.stage_resolutions[stage]
        return Phase(
            stage=stage,
            resolution=res,
            input_resolution=self.model.input_resolution(stage),
            alpha=float(alpha),
            batch=self.config.batch_at(res),
            learning_rate=self.config.learning_rate_at(res),
            stage_start=start,
            fade_end=fade_end,
            stage_end=end,
        )

    def steps_left_in_stage(self, images_seen: int) -> int:
        """Optimizer steps until the current stage ends (the last step may overshoot)."""
        phase = self.phase_at(images_seen)
        return max(0, math.ceil((phase.stage_end - images_seen) / phase.batch))

"""``python -m retinanet benchmark``: it times the network ``train`` would build (the recipe's width) and
a training step's steady time, not a ``fit()`` call's set-up."""

import pytest

from retinanet.fpn import FPN_CHANNELS
from retinanet.run.recipes import CPU_HEAD_CHANNELS
from retinanet.tools.benchmark import StepClock, benchmark_inference, benchmark_training

pytestmark = pytest.mark.backends("tensorflow", "jax")


def test_a_step_is_the_median_interval_between_step_ends():
    clock = StepClock()
    clock.ends = [10.0, 11.0, 13.0, 14.0, 15.0]  # one slow step among fast ones
    assert clock.seconds_per_step() == 1.0


def test_one_timed_step_is_refused_with_the_flag_to_change():
    clock = StepClock()
    clock.ends = [10.0]
    with pytest.raises(ValueError, match="--steps"):
        clock.seconds_per_step()


@pytest.mark.parametrize("recipe, channels", [("cpu", CPU_HEAD_CHANNELS), ("paper", FPN_CHANNELS)])
def test_training_is_timed_on_the_recipes_network(recipe, channels):
    row = benchmark_training("light", 64, 2, steps=3, warmup_steps=1, recipe=recipe)
    assert row["channels"] == channels
    assert 0 < row["seconds_per_step"]
    assert row["images_per_second"] == pytest.approx(2 / row["seconds_per_step"], rel=0.01)
    assert row["fit_call_seconds_per_step"] > 0


def test_inference_is_timed_on_the_recipes_network():
    row = benchmark_inference("light", 64, runs=1, score_threshold=0.05, recipe="cpu")
    assert row["channels"] == CPU_HEAD_CHANNELS and row["milliseconds_per_image"] > 0

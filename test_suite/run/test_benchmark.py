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


def test_the_fit_call_clock_times_whole_calls_as_the_peer_is_timed():
    row = benchmark_training("light", 64, 2, steps=2, warmup_steps=1, recipe="cpu", clock="fit_call")
    assert row["clock"] == "fit_call" and row["frozen"] is False
    assert row["seconds_per_step"] == row["fit_call_seconds_per_step"] > 0


def test_the_frozen_recipe_needs_resnet50_and_an_unknown_clock_is_refused():
    with pytest.raises(ValueError, match="resnet50"):
        benchmark_training("light", 64, 2, steps=2, warmup_steps=1, frozen=True)
    with pytest.raises(ValueError, match="clock"):
        benchmark_training("light", 64, 2, steps=2, warmup_steps=1, clock="wall")


def test_the_peer_is_frozen_as_detectron_freezes():
    from retinanet._keras import keras
    from retinanet.tools.benchmark import freeze_like_detectron

    images = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, name="conv1_conv")(images)
    x = keras.layers.BatchNormalization(name="conv1_bn")(x)
    x = keras.layers.Conv2D(4, 3, name="stack0_block0_1_conv")(x)
    x = keras.layers.Conv2D(4, 3, name="stack1_block0_1_conv")(x)
    x = keras.layers.BatchNormalization(name="stack1_block0_1_bn")(x)
    model = keras.Model(images, x)
    assert freeze_like_detectron(model, ("conv1_", "stack0_")) == 4
    assert [layer.name for layer in model.layers if layer.trainable and layer.weights] == ["stack1_block0_1_conv"]

"""The KerasHub peer of the GPU check, timed with this project's clock: KerasHub's RetinaNet R50-FPN
(random init), ``RetinaNetObjectDetector.fit()`` images/s on this machine's Keras backend.

The network, data and optimizer are those of the shared peer script (``../shared/peers/kerashub_retinanet.py``:
ResNet50 bottleneck blocks, P3-P7, 4 classes, SGD 0.001 with momentum 0.9, float32 images with three random
boxes each, in memory). What this adds:

- the clock of this project's side (:func:`retinanet.tools.benchmark.fit_call_seconds`, ``--clock fit_call``):
  one whole ``fit()`` call of the timed steps, no per-step callback, ended once the trained state has
  arrived; a warm-up ``fit()`` of 3 steps first, as on this project's side;
- ``--frozen``: the paper's recipe, frozen as this project freezes its ResNet50
  (:func:`retinanet.run.recipes.freeze_for_finetuning`, Detectron ``FREEZE_AT = 2``): the stem (``conv1_*``),
  stage 2 (KerasHub's ``stack0_*``) and every batch-norm layer of the image encoder.

Usage (from the repository root)::

    KERAS_BACKEND=jax python3 benchmarks/gpu/kerashub_peer.py SIZE BATCH STEPS POLICY [--frozen]

Prints one JSON line (the fields of the shared script's, and ``clock``, ``frozen``, ``seconds_per_step``).
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

KERASHUB_FROZEN_PREFIXES = ("conv1_", "stack0_")
"""KerasHub's ResNet names for the stem and stage 2 (conv2_x)."""

WARMUP_STEPS = 3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("size", type=int)
    parser.add_argument("batch", type=int)
    parser.add_argument("steps", type=int)
    parser.add_argument("policy")
    parser.add_argument("--frozen", action="store_true")
    args = parser.parse_args()
    import keras

    keras.mixed_precision.set_global_policy(args.policy)
    import keras_hub

    from retinanet.tools.benchmark import fit_call_seconds, freeze_like_detectron

    size, batch = args.size, args.batch
    resnet = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=[3, 4, 6, 3], stackwise_num_strides=[1, 2, 2, 2], block_type="bottleneck_block",
        use_pre_activation=False, image_shape=(size, size, 3))
    frozen_layers = freeze_like_detectron(resnet, KERASHUB_FROZEN_PREFIXES) if args.frozen else 0
    backbone = keras_hub.models.RetinaNetBackbone(image_encoder=resnet, min_level=3, max_level=7, use_p5=False,
                                                  image_shape=(size, size, 3))
    model = keras_hub.models.RetinaNetObjectDetector(backbone=backbone, num_classes=4, bounding_box_format="xyxy")
    model.compile(optimizer=keras.optimizers.SGD(0.001, momentum=0.9))
    rng = np.random.default_rng(0)
    n = batch * args.steps
    x = rng.uniform(0, 255, (n, size, size, 3)).astype("float32")
    xy = rng.uniform(0, size * 0.6, (n, 3, 2))
    wh = rng.uniform(16, size * 0.4, (n, 3, 2))
    y = {"boxes": np.concatenate([xy, xy + wh], -1).astype("float32"),
         "labels": rng.integers(0, 4, (n, 3)).astype("int32")}
    warm = fit_call_seconds(model, x[: batch * WARMUP_STEPS], {k: v[: batch * WARMUP_STEPS] for k, v in y.items()},
                            batch)
    seconds = fit_call_seconds(model, x, y, batch) / args.steps
    print(json.dumps({"peer": "keras-hub " + keras_hub.__version__ + " RetinaNet R50-FPN",
                      "backend": keras.backend.backend(), "policy": args.policy, "size": size, "batch": batch,
                      "steps": args.steps, "frozen": args.frozen, "frozen_layers": frozen_layers,
                      "trainable_weights": len(model.trainable_weights), "clock": "fit_call",
                      "warmup_s": round(warm, 1), "seconds_per_step": round(seconds, 4),
                      "img_per_s": round(batch / seconds, 1)}), flush=True)


if __name__ == "__main__":
    main()

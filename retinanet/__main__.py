"""Command line: ``python -m retinanet <command>``.

Until the training pipeline lands, ``demo`` runs a smoke path: it builds the reference RetinaNet, fits
it for a few steps to two generated images and decodes its detections.
"""

import argparse
import sys
import time

import numpy as np


def _smoke_images(image_size, rng):
    """Two images with one bright rectangle each, and their boxes and classes."""
    images = rng.uniform(0, 60, size=(2, image_size, image_size, 3)).astype(np.float32)
    boxes = np.array([[[16, 24, 80, 72]], [[40, 8, 120, 104]]], dtype=np.float32)
    for image, (x1, y1, x2, y2) in zip(images, boxes[:, 0].astype(int)):
        image[y1:y2, x1:x2] = 230.0
    return images, boxes, np.array([[0], [1]])


def demo(args):
    from retinanet import RetinaNet
    from retinanet._tf import keras, tf
    from retinanet.anchors import generate_anchors
    from retinanet.backbone import get_backbone, preprocess_images
    from retinanet.losses import DetectionLoss
    from retinanet.matching import assign_targets
    from retinanet.postprocess import decode_detections

    started = time.perf_counter()
    keras.utils.set_random_seed(0)
    images, boxes, classes = _smoke_images(args.image_size, np.random.default_rng(0))
    anchors = generate_anchors(args.image_size, args.image_size)
    targets = tf.stack([assign_targets(anchors, b, c) for b, c in zip(boxes, classes)])
    backbone = get_backbone(input_shape=(None, None, 3), weights=None)
    model = RetinaNet(num_classes=2, backbone=backbone)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=DetectionLoss(num_classes=2))
    inputs = preprocess_images(images)
    history = model.fit(inputs, targets, batch_size=2, epochs=args.steps, verbose=0)
    losses = history.history["loss"]
    print(f"smoke demo: {args.steps} steps on 2 images, loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    detections = decode_detections(model(inputs), args.image_size, args.image_size)
    for i in range(2):
        n = int(detections.num_detections[i])
        best = detections.boxes[i, 0].numpy().round(1) if n else None
        print(f"image {i}: {n} detections, best box {best}, ground truth {boxes[i, 0]}")
    print(f"done in {time.perf_counter() - started:.0f} s")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m retinanet", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    smoke = commands.add_parser("demo", help="run the smoke path of the reference solution")
    smoke.add_argument("--image-size", type=int, default=128, help="image side in pixels (default 128)")
    smoke.add_argument("--steps", type=int, default=20, help="training steps (default 20)")
    smoke.set_defaults(run=demo)
    args = parser.parse_args(argv)
    args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

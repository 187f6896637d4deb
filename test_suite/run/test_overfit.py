"""A tiny RetinaNet over-fits two synthetic images with the real targets, loss and decoding.

The FPN and both subnets are the paper's (256 channels, four 3×3 convolutions); only the backbone is a
small convolutional stand-in (conftest.make_tiny_backbone) so that 50 Adam steps on two 64×64 images
take seconds on a CPU. Image 0 holds a white rectangle (class 0), image 1 a black disc (class 1).

What 50 steps reliably reach, and is asserted: the loss falls steadily to a small fraction of its start;
every object is found, by a detection of its own class overlapping it with IoU > 0.5 — the best-scoring
detection of that class — whose score has risen far above the prior π = 0.01. What they do not reliably
reach, and is not asserted: that the *other* class scores lower on each object. With the focal loss the
wrong class of a positive anchor is an easy negative that is down-weighted by p^γ, so class separation
takes many more iterations than localisation.
"""

import numpy as np
import pytest
from conftest import make_tiny_backbone

from retinanet import RetinaNet
from retinanet._keras import keras, ops
from retinanet.anchors import generate_anchors
from retinanet.boxes import iou
from retinanet.losses import DetectionLoss
from retinanet.matching import assign_targets
from retinanet.postprocess import decode_detections

pytestmark = pytest.mark.backends("tensorflow", "jax")

SIZE = 64
STEPS = 50
GT_BOXES = [np.array([[4, 6, 36, 44]], np.float32), np.array([[28, 24, 60, 56]], np.float32)]
GT_CLASSES = [np.array([0]), np.array([1])]


def synthetic_images():
    """Grey noise; a white filled rectangle (class 0) in image 0, a black filled disc (class 1) in image 1."""
    rng = np.random.default_rng(0)
    images = rng.uniform(100, 150, size=(2, SIZE, SIZE, 3)).astype(np.float32)
    x1, y1, x2, y2 = GT_BOXES[0][0].astype(int)
    images[0, y1:y2, x1:x2] = 240.0
    x1, y1, x2, y2 = GT_BOXES[1][0]
    rows, cols = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    inside = (cols - (x1 + x2) / 2) ** 2 + (rows - (y1 + y2) / 2) ** 2 <= ((x2 - x1) / 2) ** 2
    images[1][inside] = 10.0
    return images / 127.5 - 1.0


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    anchors = generate_anchors(SIZE, SIZE)
    targets = ops.stack([assign_targets(anchors, boxes, classes) for boxes, classes in zip(GT_BOXES, GT_CLASSES)])
    assert (np.asarray(targets)[..., 4] >= 0).sum(axis=1).min() > 0, "every image needs positive anchors"
    model = RetinaNet(num_classes=2, backbone=make_tiny_backbone())
    model.compile(optimizer=keras.optimizers.Adam(3e-4), loss=DetectionLoss(num_classes=2))
    images = synthetic_images()
    history = model.fit(images, targets, batch_size=2, epochs=STEPS, shuffle=False, verbose=0)
    return model, images, np.array(history.history["loss"])


def test_loss_falls_steadily(trained):
    _, _, losses = trained
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.3 * losses[0], losses
    block_means = losses.reshape(5, STEPS // 5).mean(axis=1)  # mean loss of each fifth of training
    assert (np.diff(block_means) < 0).all(), block_means


def test_each_object_is_found_by_a_detection_of_its_class(trained):
    model, images, _ = trained
    detections = decode_detections(model(images), SIZE, SIZE)
    for image, (gt_boxes, gt_classes) in enumerate(zip(GT_BOXES, GT_CLASSES)):
        count = int(detections.num_detections[image])
        boxes = np.asarray(detections.boxes[image, :count])
        scores = np.asarray(detections.scores[image, :count])
        classes = np.asarray(detections.classes[image, :count])
        for gt_box, gt_class in zip(gt_boxes, gt_classes):
            own_class = np.flatnonzero(classes == gt_class)
            assert own_class.size, f"image {image}: no detection of class {gt_class}"
            best = own_class[np.argmax(scores[own_class])]
            overlap = float(iou(gt_box[None], boxes[best][None])[0, 0])
            assert overlap > 0.5, f"image {image}: best class-{gt_class} detection {boxes[best]} has IoU {overlap:.2f}"
            assert scores[best] > 0.2, f"image {image}: class-{gt_class} score {scores[best]:.3f} barely above the prior"

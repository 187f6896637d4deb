"""The input pipeline (``TrainingBatches``, ``evaluation_batches``): fixed shapes, padded ground truth, a
deterministic stream that resumes and splits across processes, and targets that land on the objects."""

import numpy as np
import pytest
from PIL import Image

from retinanet.anchors import generate_anchors
from retinanet.boxes import decode
from retinanet.data.coco import ImageRecord
from retinanet.data.loader import PADDING_CLASS, TrainingBatches, evaluation_batches, max_objects
from retinanet.matching import assign_targets
from test_transforms import GREEN, RED, assert_box_on_colour, scene

pytestmark = pytest.mark.backends("tensorflow", "jax")


@pytest.fixture
def records(tmp_path):
    """Four 128×128 scenes with a red (class 0) and a green (class 1) object, and one image without objects."""
    found = []
    rng = np.random.default_rng(0)
    for index in range(4):
        image, boxes = scene(128, 128)
        noise = rng.integers(-10, 10, image.shape) * (image == 100)
        path = tmp_path / f"{index}.png"
        Image.fromarray(np.clip(image.astype(int) + noise, 0, 255).astype(np.uint8)).save(path)
        found.append(ImageRecord(index + 1, str(path), 128, 128, boxes, np.array([0, 1], np.int32)))
    found.append(ImageRecord(99, str(path), 128, 128, np.zeros((0, 4), np.float32), np.zeros([0], np.int32)))
    return found


def test_batches_have_fixed_shapes_and_padded_ground_truth(records):
    batches = TrainingBatches(records, 128, batch_size=5, steps=3, max_boxes=4, jitter=(1.0, 1.0), workers=1)
    assert len(batches) == 3
    images, truth = batches[0]
    assert images.shape == (5, 128, 128, 3) and images.dtype == np.uint8
    assert truth["boxes"].shape == (5, 4, 4) and truth["classes"].shape == (5, 4)
    boxes = records[0].boxes
    flipped = np.stack([128 - boxes[:, 2], boxes[:, 1], 128 - boxes[:, 0], boxes[:, 3]], axis=1)
    empty = 0
    for image_boxes, image_classes in zip(truth["boxes"], truth["classes"]):
        real = image_classes != PADDING_CLASS
        if not real.any():
            empty += 1
            continue
        assert image_classes[real].tolist() == [0, 1] and (image_classes[~real] == PADDING_CLASS).all()
        assert any(np.allclose(image_boxes[real], candidate, atol=1e-4) for candidate in (boxes, flipped))
    assert empty == 1  # the image without annotations is in every pass over the data


def test_targets_assigned_from_a_batch_decode_onto_the_objects(records):
    """With flip and scale jitter: the positive anchors' targets decode to boxes around the right colour."""
    anchors = generate_anchors(128, 128)
    images, truth = TrainingBatches(records, 128, batch_size=5, steps=1, jitter=(0.7, 1.3), seed=2, workers=1)[0]
    targets = np.asarray(assign_targets(anchors, truth["boxes"], truth["classes"], gt_valid=truth["classes"] >= 0))
    checked = 0
    for image, target in zip(images, targets):
        positive = target[:, 4] >= 0
        for box, label in zip(np.asarray(decode(anchors[positive], target[positive, :4])), target[positive, 4]):
            assert_box_on_colour(image, box, (RED, GREEN)[int(label)], tolerance=2.0)
            checked += 1
    assert checked > 0


def test_the_stream_is_deterministic_resumable_and_split_across_processes(records):
    def batch(step, **kwargs):
        return TrainingBatches(records, 64, batch_size=2, steps=1, first_step=step, seed=7, workers=1, **kwargs)[0]

    whole = TrainingBatches(records, 64, batch_size=2, steps=6, seed=7, workers=1)
    for step in (0, 3, 5):
        resumed = batch(step)
        np.testing.assert_array_equal(whole[step][0], resumed[0])   # a resumed run continues the stream
        np.testing.assert_array_equal(whole[step][1]["boxes"], resumed[1]["boxes"])
    global_batch = TrainingBatches(records, 64, batch_size=4, steps=3, seed=7, workers=1)[2]
    halves = [batch(2, process_index=p, process_count=2) for p in (0, 1)]
    np.testing.assert_array_equal(np.concatenate([h[0] for h in halves]), global_batch[0])
    assert not np.array_equal(whole[0][0], whole[3][0])  # epochs are reshuffled and re-augmented


def test_every_record_appears_once_per_epoch_in_a_fresh_order(records):
    batches = TrainingBatches(records, 64, batch_size=1, steps=15, seed=1, workers=1)
    epochs = [[batches.record_at(position).image_id for position in range(start, start + 5)] for start in (0, 5, 10)]
    for epoch in epochs:
        assert sorted(epoch) == [1, 2, 3, 4, 99]
    assert len({tuple(epoch) for epoch in epochs}) > 1


def test_evaluation_keeps_order_ids_scales_and_pads_the_last_batch(records):
    batches = list(evaluation_batches(records, 64, batch_size=3))
    assert [count for *_, count in batches] == [3, 2]
    images, scales, image_ids, count = batches[1]
    assert images.shape == (3, 64, 64, 3) and image_ids[:count].tolist() == [4, 99] and image_ids[count] == -1
    np.testing.assert_allclose(np.concatenate([b[1][: b[3]] for b in batches]), 64 / 128)


def test_bad_arguments_are_explained(records):
    with pytest.raises(ValueError, match="multiple of 32"):
        TrainingBatches(records, 100, batch_size=1, steps=1)
    with pytest.raises(ValueError, match="no images"):
        TrainingBatches([], 64, batch_size=1, steps=1)
    with pytest.raises(ValueError, match="more than max_boxes"):
        TrainingBatches(records, 64, batch_size=1, steps=1, max_boxes=1, workers=1)[0]
    assert max_objects(records) == 2

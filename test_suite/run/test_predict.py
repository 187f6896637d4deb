"""Pictures of detections: one box per object (a second guess of another class is left out), every class's
boxes on request, and the score threshold; which files are read, read as training reads them, and one
picture per input file under the output folder."""

import numpy as np
import pytest
from PIL import Image

from retinanet.data import images
from retinanet.data.images import read_rgb
from retinanet.run.predict import (DRAW_OVERLAP, ImageError, draw_detections, image_files, one_box_per_object,
                                   output_names, read_image, write_pictures)
from test_bad_inputs import _rotated_photo, jpeg_bytes, noise

pytestmark = pytest.mark.backends("tensorflow", "jax")

PIXELS = np.zeros((64, 64, 3), np.uint8)
NAMES = ["ellipse", "rectangle"]


def test_a_second_guess_at_the_same_object_is_left_out():
    boxes = [[10, 10, 40, 40], [11, 10, 41, 40], [0, 0, 8, 8]]  # the first two: one object, IoU ≈ 0.94
    assert one_box_per_object(boxes, [0.6, 0.9, 0.7]) == [1, 2]


def test_objects_that_overlap_less_stay_best_first():
    boxes = np.array([[0, 0, 30, 30], [20, 0, 50, 30]], np.float32)  # IoU = 300 / 1500 = 0.2
    assert one_box_per_object(boxes, [0.5, 0.8]) == [1, 0]
    touching = np.array([[0, 0, 10, 10], [0, 0, 10, 10 * DRAW_OVERLAP]], np.float32)  # IoU exactly DRAW_OVERLAP
    assert one_box_per_object(touching, [0.9, 0.8]) == [0, 1]


def test_all_classes_draws_what_evaluation_scores():
    boxes, scores, classes = np.array([[10, 10, 40, 40], [11, 10, 41, 40]], np.float32), np.array([0.9, 0.6]), [0, 1]
    one = np.asarray(draw_detections(PIXELS, boxes, scores, classes, NAMES))
    every = np.asarray(draw_detections(PIXELS, boxes, scores, classes, NAMES, all_classes=True))
    only_first = np.asarray(draw_detections(PIXELS, boxes[:1], scores[:1], classes[:1], NAMES))
    assert np.array_equal(one, only_first) and not np.array_equal(every, one)


def test_detections_below_the_threshold_are_not_drawn():
    boxes = np.array([[10, 10, 40, 40]], np.float32)
    assert not np.asarray(draw_detections(PIXELS, boxes, [0.3], [0], NAMES, min_score=0.5)).any()
    assert np.asarray(draw_detections(PIXELS, boxes, [0.6], [0], NAMES, min_score=0.5)).any()


# ----------------------------------------------------------------------------------------------------
# Which files are read, how, and where their pictures go: one picture per input file, never two on one name.


def _touch_images(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.new("RGB", (8, 6), (10, 20, 30)).save(folder / name)
    return [folder / name for name in names]


def test_outputs_keep_paths_relative_to_the_common_folder(tmp_path):
    a, b = tmp_path / "dirA", tmp_path / "dirB"
    paths = [a / "x.png", b / "x.png", b / "y.png", b / "y.jpg", b / "z.gif"]
    assert output_names(paths) == ["dirA/x.png", "dirB/x.png", "dirB/y.png.png", "dirB/y.jpg.png", "dirB/z.png"]
    assert output_names([a / "000000.png", a / "000001.jpg"]) == ["000000.png", "000001.png"]  # one folder: names
    assert output_names([a / "Q.png", a / "q.jpg"]) == ["Q.png.png", "q.jpg.png"]  # case-insensitive file systems
    assert output_names([a / "y.png", a / "y.jpg", a / "y.png.png"]) == ["y.png.png", "y.jpg.png", "y.png-2.png"]


def test_a_file_named_twice_is_read_once(tmp_path):
    x, y = _touch_images(tmp_path / "dirA", "x.png", "y.jpg")
    (tmp_path / "dirA" / "notes.txt").write_text("not an image")
    assert image_files([tmp_path / "dirA", x, str(y)]) == [str(x), str(y)]
    with pytest.raises(FileNotFoundError, match="no such image file or directory"):
        image_files([tmp_path / "missing"])


def test_colliding_names_of_two_folders_give_one_picture_each(tmp_path):
    paths = (_touch_images(tmp_path / "in" / "dirA", "x.png")
             + _touch_images(tmp_path / "in" / "dirB", "x.png", "y.png", "y.jpg"))
    found = image_files([tmp_path / "in" / "dirA", tmp_path / "in" / "dirB"])
    assert len(found) == 4
    detections = [(np.zeros((6, 8, 3), np.uint8), np.zeros((0, 4)), np.zeros(0), np.zeros(0))] * len(found)
    written = write_pictures(found, detections, tmp_path / "out", NAMES)
    assert len(written) == len(set(written)) == len(paths) == 4
    on_disk = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.png"))
    assert on_disk == ["dirA/x.png", "dirB/x.png", "dirB/y.jpg.png", "dirB/y.png.png"]


def test_prediction_reads_images_as_training_does(tmp_path):
    """``read_image`` is the pipeline's reader: EXIF orientation applied, 16-bit scaled, errors named."""
    photo, displayed, _ = _rotated_photo(tmp_path)
    pixels = read_image(photo)
    assert pixels.shape == displayed.shape
    np.testing.assert_array_equal(pixels, read_rgb(photo))
    Image.fromarray(np.array([[0, 65535]], np.uint16)).save(tmp_path / "grey16.png")
    np.testing.assert_array_equal(read_image(tmp_path / "grey16.png")[0, :, 0], [0, 255])
    assert ImageError is images.ImageError
    (tmp_path / "cut.jpg").write_bytes(jpeg_bytes(noise())[:300])
    with pytest.raises(ImageError, match=rf"cannot read image {tmp_path / 'cut.jpg'}: .*truncated"):
        read_image(tmp_path / "cut.jpg")

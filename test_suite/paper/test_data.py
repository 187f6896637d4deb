"""The embedded synthetic dataset and the COCO-format loader."""

import hashlib
import json
import pathlib

import numpy as np
import pytest
from PIL import Image

from retinanet.data import DatasetError, load_coco
from retinanet.data.synthetic import SHAPE_CLASSES, draw_image, make_dataset, split_paths

pytestmark = pytest.mark.backends("tensorflow", "jax")

SIZES = {"train": 3, "val": 1, "test": 2}


def _digest(root):
    """SHA-256 of every file under ``root``, by relative path."""
    root = pathlib.Path(root)
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_the_same_bytes(tmp_path):
    make_dataset(tmp_path / "a", image_size=64, split_sizes=SIZES, seed=7)
    make_dataset(tmp_path / "b", image_size=64, split_sizes=SIZES, seed=7)
    first, second = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert len(first) == sum(SIZES.values()) + 3 + 1  # images, three annotation files, dataset.json
    assert first == second


def test_different_seed_gives_different_images(tmp_path):
    make_dataset(tmp_path / "a", image_size=64, split_sizes=SIZES, seed=7)
    make_dataset(tmp_path / "b", image_size=64, split_sizes=SIZES, seed=8)
    first, second = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    images = [name for name in first if name.endswith(".png")]
    assert all(first[name] != second[name] for name in images)


def test_cached_dataset_is_not_rewritten(tmp_path):
    _, generated = make_dataset(tmp_path, image_size=64, split_sizes=SIZES, seed=7)
    assert generated
    stamp = (tmp_path / "train" / "000000.png").stat().st_mtime_ns
    _, generated_again = make_dataset(tmp_path, image_size=64, split_sizes=SIZES, seed=7)
    assert not generated_again
    assert (tmp_path / "train" / "000000.png").stat().st_mtime_ns == stamp
    _, regenerated = make_dataset(tmp_path, image_size=64, split_sizes=SIZES, seed=8)  # new parameters
    assert regenerated


def test_generated_boxes_enclose_their_shapes():
    """Every box lies in the image, is tight (its edges touch the object) and the object's colour fills
    a good part of it; sizes span small to large."""
    sides = []
    for index in range(40):
        pixels, objects = draw_image(np.random.default_rng([3, index]), 96)
        assert pixels.shape == (96, 96, 3) and pixels.dtype == np.uint8
        assert 1 <= len(objects) <= 8
        for class_index, (x1, y1, x2, y2) in objects:
            assert 0 <= class_index < len(SHAPE_CLASSES)
            assert 0 <= x1 < x2 <= 96 and 0 <= y1 < y2 <= 96
            sides.append(np.sqrt((x2 - x1) * (y2 - y1)))
    assert min(sides) < 30 and max(sides) > 60


@pytest.mark.parametrize("colour_by_class", [True, False])
def test_class_hues(colour_by_class):
    """With colour_by_class each class's hue stays in its own quarter of the wheel; without, hues mix."""
    quarters = {c: set() for c in range(len(SHAPE_CLASSES))}
    for index in range(60):
        pixels, objects = draw_image(np.random.default_rng([4, index]), 96, max_objects=1, min_object_size=0.5,
                                     colour_by_class=colour_by_class)
        class_index, (x1, y1, x2, y2) = objects[0]
        centre = Image.fromarray(pixels).convert("HSV").getpixel((int((x1 + x2) / 2), int((y1 + y2) / 2)))
        quarters[class_index].add(int(centre[0] / 256 * len(SHAPE_CLASSES)))
    if colour_by_class:
        assert all(seen <= {c} for c, seen in quarters.items())
    else:
        assert any(len(seen) > 1 for seen in quarters.values())


def test_generated_annotations_load_and_match_the_drawing(tmp_path):
    make_dataset(tmp_path, image_size=64, split_sizes=SIZES, seed=7)
    dataset = load_coco(*split_paths(tmp_path, "train"))
    assert dataset.class_names == list(SHAPE_CLASSES) and dataset.category_ids == [1, 2, 3, 4]
    assert len(dataset.records) == SIZES["train"]
    _, objects = draw_image(np.random.default_rng([7, 0, 0]), 64)
    np.testing.assert_allclose(dataset.records[0].boxes, [box for _, box in objects], atol=0.01)
    assert dataset.records[0].classes.tolist() == [c for c, _ in objects]


# ----------------------------------------------------------------------------------------------------
# The loader's errors: one bad input each, the message names the file and the record.


def _write_dataset(tmp_path, annotations=None, images=None, categories=None):
    """A valid two-image dataset, with parts replaced by the arguments."""
    image_dir = tmp_path / "images"
    image_dir.mkdir(exist_ok=True)
    for name in ("a.png", "b.png"):
        Image.new("RGB", (40, 30), (90, 90, 90)).save(image_dir / name)
    content = {
        "images": images if images is not None else [
            {"id": 1, "file_name": "a.png", "width": 40, "height": 30},
            {"id": 2, "file_name": "b.png", "width": 40, "height": 30},
        ],
        "annotations": annotations if annotations is not None else [
            {"id": 10, "image_id": 1, "category_id": 5, "bbox": [2, 3, 10, 8]},
            {"id": 11, "image_id": 1, "category_id": 9, "bbox": [20, 10, 15, 15]},
        ],
        "categories": categories if categories is not None else [{"id": 9, "name": "dog"}, {"id": 5, "name": "cat"}],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(content))
    return path, image_dir


def test_loader_reads_a_valid_file_and_keeps_background_images(tmp_path):
    path, image_dir = _write_dataset(tmp_path)
    dataset = load_coco(path, image_dir)
    assert dataset.class_names == ["cat", "dog"] and dataset.category_ids == [5, 9]  # sorted by id
    first, second = dataset.records
    np.testing.assert_allclose(first.boxes, [[2, 3, 12, 11], [20, 10, 35, 25]])
    assert first.classes.tolist() == [0, 1]
    assert second.boxes.shape == (0, 4) and second.classes.shape == (0,)  # kept, as background


def test_loader_skips_crowd_annotations_for_training(tmp_path):
    path, image_dir = _write_dataset(tmp_path, annotations=[
        {"id": 10, "image_id": 1, "category_id": 5, "bbox": [2, 3, 10, 8], "iscrowd": 1}])
    assert load_coco(path, image_dir).records[0].boxes.shape == (0, 4)


def test_loader_rejects_malformed_json(tmp_path):
    path, image_dir = _write_dataset(tmp_path)
    path.write_text('{"images": [}')
    with pytest.raises(DatasetError, match=r"instances\.json: malformed JSON: .* line 1, column 13"):
        load_coco(path, image_dir)


def test_loader_rejects_missing_sections(tmp_path):
    path, image_dir = _write_dataset(tmp_path)
    path.write_text('{"images": [], "categories": []}')
    with pytest.raises(DatasetError, match=r"instances\.json: expected a list under 'annotations'"):
        load_coco(path, image_dir)


def test_loader_rejects_unknown_category_ids(tmp_path):
    path, image_dir = _write_dataset(tmp_path, annotations=[
        {"id": 10, "image_id": 2, "category_id": 7, "bbox": [2, 3, 10, 8]}])
    with pytest.raises(DatasetError, match=r"instances\.json: annotation id 10 \(image id 2, 'b\.png'\): "
                                           r"unknown category id 7; the categories are \[5, 9\]"):
        load_coco(path, image_dir)


@pytest.mark.parametrize("bbox", [[2, 3, 0, 8], [2, 3, 10, -1]])
def test_loader_rejects_boxes_of_non_positive_size(tmp_path, bbox):
    path, image_dir = _write_dataset(tmp_path, annotations=[
        {"id": 12, "image_id": 1, "category_id": 5, "bbox": bbox}])
    with pytest.raises(DatasetError, match=r"instances\.json: annotation id 12 \(image id 1, 'a\.png'\): box "
                                           r".* has non-positive width or height"):
        load_coco(path, image_dir)


@pytest.mark.parametrize("bbox", [[-5, 3, 10, 8], [35, 3, 10, 8], [2, 25, 10, 8]])
def test_loader_rejects_boxes_outside_the_image(tmp_path, bbox):
    path, image_dir = _write_dataset(tmp_path, annotations=[
        {"id": 13, "image_id": 1, "category_id": 5, "bbox": bbox}])
    with pytest.raises(DatasetError, match=r"annotation id 13 \(image id 1, 'a\.png'\): box .* lies outside "
                                           r"the 40×30 image"):
        load_coco(path, image_dir)


def test_loader_clips_boxes_that_overshoot_by_rounding(tmp_path):
    path, image_dir = _write_dataset(tmp_path, annotations=[
        {"id": 13, "image_id": 1, "category_id": 5, "bbox": [-0.5, 0, 40.9, 30]}])
    np.testing.assert_allclose(load_coco(path, image_dir).records[0].boxes, [[0, 0, 40, 30]])


def test_loader_rejects_a_missing_image_file(tmp_path):
    path, image_dir = _write_dataset(tmp_path)
    (image_dir / "b.png").unlink()
    with pytest.raises(DatasetError, match=r"instances\.json: image id 2 \('b\.png'\): image file not found at "
                                           r".*b\.png"):
        load_coco(path, image_dir)


def test_loader_rejects_an_unreadable_image_file(tmp_path):
    path, image_dir = _write_dataset(tmp_path)
    (image_dir / "a.png").write_bytes(b"this is not a PNG file")
    with pytest.raises(DatasetError, match=r"instances\.json: image id 1 \('a\.png'\): cannot read image "
                                           r".*a\.png: no image format"):
        load_coco(path, image_dir)


def test_loader_rejects_an_image_of_the_wrong_size(tmp_path):
    path, image_dir = _write_dataset(tmp_path)
    Image.new("RGB", (41, 30)).save(image_dir / "a.png")
    with pytest.raises(DatasetError, match=r"image id 1 \('a\.png'\): the file is 41×30 but the record says 40×30"):
        load_coco(path, image_dir)


def test_loader_rejects_annotations_of_unknown_images(tmp_path):
    path, image_dir = _write_dataset(tmp_path, annotations=[
        {"id": 14, "image_id": 3, "category_id": 5, "bbox": [2, 3, 10, 8]}])
    with pytest.raises(DatasetError, match=r"annotation id 14 \(image id 3\): no image has id 3"):
        load_coco(path, image_dir)


def test_loader_rejects_records_without_required_fields(tmp_path):
    path, image_dir = _write_dataset(tmp_path, annotations=[{"id": 15, "image_id": 1, "category_id": 5}])
    with pytest.raises(DatasetError, match=r"instances\.json: annotation .*'id': 15.* lacks the field\(s\) bbox"):
        load_coco(path, image_dir)

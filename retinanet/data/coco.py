"""Read a COCO-format detection dataset, checking every record.

The format (https://cocodataset.org/#format-data): one JSON object with ``images`` (``id``,
``file_name``, ``width``, ``height``), ``annotations`` (``id``, ``image_id``, ``category_id``,
``bbox = [x, y, width, height]`` in pixels, optional ``iscrowd``) and ``categories`` (``id``, ``name``).
Category ids may be any integers; the detector's class indices are their positions in ascending id order.

Every problem raises :class:`DatasetError` naming the file and the record. Images without annotations
are kept: they train the detector on background. Crowd annotations (``iscrowd = 1``) are not training
targets (as in Detectron); the COCO evaluation still reads them from the JSON file.
"""

import json
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

BOX_TOLERANCE = 1.0
"""Boxes may overshoot the image border by up to one pixel (rounding in real annotation tools); they are
clipped. Anything further outside is an error."""


class DatasetError(ValueError):
    """A COCO-format file or one of its images cannot be used; the message names the file and record."""


@dataclass(frozen=True)
class ImageRecord:
    """One image and its objects: ``boxes`` float32 ``(M, 4)`` ``[x1, y1, x2, y2]``, ``classes`` int32
    ``(M,)`` class indices in ``[0, K)``; ``M`` may be 0 (background only)."""

    image_id: int
    path: str
    width: int
    height: int
    boxes: np.ndarray
    classes: np.ndarray


@dataclass(frozen=True)
class DetectionDataset:
    """Records of one annotation file plus the category table."""

    annotations_path: str
    images_dir: str
    records: list
    category_ids: list  # COCO category id of class index k
    class_names: list

    @property
    def num_classes(self):
        return len(self.category_ids)


def _fail(path, message):
    raise DatasetError(f"{path}: {message}")


def _require(record, keys, path, what):
    if not isinstance(record, dict):
        _fail(path, f"{what} must be a JSON object, got {type(record).__name__}: {record!r:.80}")
    missing = [key for key in keys if key not in record]
    if missing:
        _fail(path, f"{what} {record!r:.120} lacks the field(s) {', '.join(missing)}")


def _read_json(path):
    if not os.path.isfile(path):
        raise DatasetError(f"{path}: annotation file not found")
    try:
        with open(path, encoding="utf-8") as f:
            content = json.load(f)
    except json.JSONDecodeError as error:
        _fail(path, f"malformed JSON: {error.msg} at line {error.lineno}, column {error.colno}")
    except UnicodeDecodeError as error:
        _fail(path, f"not UTF-8 text ({error.reason} at byte {error.start})")
    if not isinstance(content, dict):
        _fail(path, f"expected a JSON object with images, annotations and categories, got {type(content).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(content.get(key), list):
            _fail(path, f"expected a list under '{key}', got {type(content.get(key)).__name__}")
    return content


def _check_image_file(path, image, file_path):
    what = f"image id {image['id']} ('{image['file_name']}')"
    if not os.path.isfile(file_path):
        _fail(path, f"{what}: image file not found at {file_path}")
    try:
        with Image.open(file_path) as opened:
            size = opened.size
            opened.verify()
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        _fail(path, f"{what}: cannot read image file {file_path} ({error})")
    if size != (image["width"], image["height"]):
        _fail(path, f"{what}: the file is {size[0]}×{size[1]} but the record says {image['width']}×{image['height']}")


def load_coco(annotations_path, images_dir, check_images=True):
    """Load and check a COCO-format annotation file; image paths are ``images_dir/file_name``.

    Args:
        check_images: open every image's header and verify it (existence, readability and size). Cheap
            for a few thousand images; turn off for very large datasets that are known to be good.

    Raises:
        DatasetError: on malformed JSON, missing fields, duplicate or unknown ids, unknown category ids,
            boxes with non-positive size or outside their image, missing or unreadable image files.
    """
    path = annotations_path
    content = _read_json(path)

    category_ids, class_names = [], []
    for category in sorted(content["categories"], key=lambda c: c.get("id", 0) if isinstance(c, dict) else 0):
        _require(category, ("id", "name"), path, "category")
        if category["id"] in category_ids:
            _fail(path, f"category id {category['id']} appears twice")
        category_ids.append(category["id"])
        class_names.append(str(category["name"]))
    if not category_ids:
        _fail(path, "no categories: a detector needs at least one class")
    class_index = {category_id: index for index, category_id in enumerate(category_ids)}

    images = {}
    for image in content["images"]:
        _require(image, ("id", "file_name", "width", "height"), path, "image")
        if image["id"] in images:
            _fail(path, f"image id {image['id']} appears twice")
        if not (isinstance(image["width"], int) and isinstance(image["height"], int)) or min(image["width"], image["height"]) < 1:
            _fail(path, f"image id {image['id']} ('{image['file_name']}'): width and height must be positive "
                        f"integers, got {image['width']!r}×{image['height']!r}")
        images[image["id"]] = image

    objects = {image_id: ([], []) for image_id in images}
    for annotation in content["annotations"]:
        _require(annotation, ("id", "image_id", "category_id", "bbox"), path, "annotation")
        what = f"annotation id {annotation['id']} (image id {annotation['image_id']})"
        image = images.get(annotation["image_id"])
        if image is None:
            _fail(path, f"{what}: no image has id {annotation['image_id']}")
        what = f"annotation id {annotation['id']} (image id {image['id']}, '{image['file_name']}')"
        if annotation["category_id"] not in class_index:
            _fail(path, f"{what}: unknown category id {annotation['category_id']!r}; the categories are {category_ids}")
        bbox = annotation["bbox"]
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
            _fail(path, f"{what}: bbox must be four numbers [x, y, width, height], got {bbox!r}")
        x, y, width, height = (float(v) for v in bbox)
        if width <= 0 or height <= 0:
            _fail(path, f"{what}: box {bbox} has non-positive width or height")
        if (x < -BOX_TOLERANCE or y < -BOX_TOLERANCE or x + width > image["width"] + BOX_TOLERANCE
                or y + height > image["height"] + BOX_TOLERANCE):
            _fail(path, f"{what}: box {bbox} (x, y, width, height) lies outside the "
                        f"{image['width']}×{image['height']} image")
        if annotation.get("iscrowd", 0):
            continue
        boxes, classes = objects[image["id"]]
        boxes.append([max(x, 0.0), max(y, 0.0), min(x + width, image["width"]), min(y + height, image["height"])])
        classes.append(class_index[annotation["category_id"]])

    records = []
    for image_id, image in images.items():
        file_path = os.path.join(images_dir, image["file_name"])
        if check_images:
            _check_image_file(path, image, file_path)
        boxes, classes = objects[image_id]
        records.append(ImageRecord(
            image_id=image_id, path=file_path, width=image["width"], height=image["height"],
            boxes=np.array(boxes, np.float32).reshape(-1, 4), classes=np.array(classes, np.int32),
        ))
    return DetectionDataset(annotations_path, images_dir, records, category_ids, class_names)

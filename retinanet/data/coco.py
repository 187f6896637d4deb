"""Read a COCO-format detection dataset, checking every record.

The format (https://cocodataset.org/#format-data): one JSON object with ``images`` (``id``,
``file_name``, ``width``, ``height``), ``annotations`` (``id``, ``image_id``, ``category_id``,
``bbox = [x, y, width, height]`` in pixels, optional ``iscrowd``) and ``categories`` (``id``, ``name``).
Category ids may be any integers; the detector's class indices are their positions in ascending id order.

Every problem raises :class:`DatasetError` naming the file and the record. Images without annotations
are kept: they train the detector on background. Crowd annotations (``iscrowd = 1``) are not training
targets (as in Detectron); the COCO evaluation still reads them from the JSON file.

What is refused besides malformed records: boxes with a coordinate that is not a finite number (JSON's
``NaN``, ``Infinity``) or with non-positive size; ``file_name`` entries that are absolute, contain ``..`` or
lead (through a symbolic link) out of the image folder; and, with ``check_images``, every image file that is
missing, cannot be decoded in full (truncated, corrupt, not an image: :mod:`retinanet.data.images`) or whose
size as displayed (EXIF orientation applied) differs from the record's. Boxes are read in the frame of the
image as displayed, which is what annotation tools draw on; all bad image files are named in one error,
before anything trains on them.
"""

import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from retinanet.data.images import ROTATED_ORIENTATIONS, ImageError, check_image

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


CHECK_THREADS = 8
"""Image files are decoded by this many threads at most while a dataset is checked (Pillow's decoders run
outside Python's global lock)."""

NAMED_PROBLEMS = 5
"""An error about a dataset's image files names this many of the further bad files (and counts the rest)."""


def _image_path(path, images_dir, image):
    """``images_dir/file_name``; :class:`DatasetError` unless ``file_name`` is a relative path that stays inside
    ``images_dir`` (no absolute path, no ``..``)."""
    name = image["file_name"]
    what = f"image id {image['id']} ({name!r})"
    if not isinstance(name, str) or not name.strip():
        _fail(path, f"{what}: file_name must be a file's path relative to the image folder ({images_dir}), "
                    f"got {name!r}")
    parts = name.replace("\\", "/").split("/")
    if os.path.isabs(name):
        _fail(path, f"{what}: file_name is an absolute path; file names are read relative to the image folder "
                    f"({images_dir}) and may not leave it")
    if ".." in parts:
        _fail(path, f"{what}: file_name contains '..'; file names are read relative to the image folder "
                    f"({images_dir}) and may not leave it")
    return os.path.join(images_dir, name)


def _outside(file_path, root):
    """Whether ``file_path``, its symbolic links followed, lies outside the real folder ``root``."""
    real = os.path.realpath(file_path)
    return os.path.commonpath([root, real]) != root


def _image_problem(image, file_path):
    """What is wrong with one record's image file (``None`` when nothing is): a full decode, cached."""
    if not os.path.isfile(file_path):
        return f"image file not found at {file_path}"
    try:
        info = check_image(file_path)
    except ImageError as error:
        return str(error)
    record = (image["width"], image["height"])
    if (info.width, info.height) == record:
        return None
    if info.orientation in ROTATED_ORIENTATIONS and (info.stored_width, info.stored_height) == record:
        return (f"the record says {record[0]}×{record[1]}, the size of the pixels as stored in {file_path}, but "
                f"its EXIF orientation ({info.orientation}) turns the picture to {info.width}×{info.height} as "
                "displayed; boxes are read on the picture as displayed (as annotation tools show it): give width "
                f"{info.width} and height {info.height} with boxes measured on the displayed picture, or save the "
                "file without its orientation tag")
    shown = " as displayed (EXIF orientation applied)" if info.orientation != 1 else ""
    return f"the file is {info.width}×{info.height}{shown} but the record says {record[0]}×{record[1]}"


def _check_image_files(path, checked):
    """Decode every ``(image record, file path)`` once (threads); one :class:`DatasetError` naming them all."""
    if not checked:
        return
    workers = max(1, min(CHECK_THREADS, os.cpu_count() or 1, len(checked)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        problems = [(image, problem) for (image, _), problem in
                    zip(checked, pool.map(lambda item: _image_problem(*item), checked)) if problem]
    if not problems:
        return
    (image, problem), others = problems[0], problems[1:]
    message = f"image id {image['id']} ({image['file_name']!r}): {problem}"
    if others:
        named = ", ".join(f"{other['file_name']!r} (image id {other['id']})" for other, _ in others[:NAMED_PROBLEMS])
        more = f" and {len(others) - NAMED_PROBLEMS} more" if len(others) > NAMED_PROBLEMS else ""
        message += f"; {len(others)} more image file(s) cannot be used either: {named}{more}"
    _fail(path, message)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def load_coco(annotations_path, images_dir, check_images=True):
    """Load and check a COCO-format annotation file; image paths are ``images_dir/file_name``.

    Args:
        check_images: decode every image file in full once (:func:`retinanet.data.images.check_image`,
            cached per file for the process) and compare its size as displayed with the record's. About a
            millisecond per small PNG, a few per large JPEG, spread over up to :data:`CHECK_THREADS` threads;
            turn off for very large datasets that are known to be good (a bad file then stops training when
            it is first read, with an :class:`~retinanet.data.images.ImageError` naming it).

    Raises:
        DatasetError: on malformed JSON, missing fields, duplicate or unknown ids, unknown category ids,
            boxes that are not finite, have non-positive size or lie outside their image, file names that
            leave ``images_dir``, missing, undecodable or wrongly sized image files (all of them named).
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
        if not all(isinstance(image[k], int) and not isinstance(image[k], bool) for k in ("width", "height")) \
                or min(image["width"], image["height"]) < 1:
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
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
            _fail(path, f"{what}: bbox must be four numbers [x, y, width, height], got {bbox!r}")
        if not all(math.isfinite(v) for v in bbox):
            _fail(path, f"{what}: box {bbox} has a coordinate that is not a finite number")
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

    root = os.path.realpath(images_dir)
    if check_images and images and not os.path.isdir(images_dir):
        _fail(path, f"the image folder {images_dir} does not exist (--images: the folder the file_name entries "
                    "are relative to)")
    records, checked = [], []
    for image_id, image in images.items():
        file_path = _image_path(path, images_dir, image)
        if _outside(file_path, root):
            _fail(path, f"image id {image['id']} ({image['file_name']!r}): {file_path} leads to "
                        f"{os.path.realpath(file_path)}, outside the image folder {images_dir} (a symbolic link); "
                        "pass the folder that holds the images as --images, or copy the file in")
        if check_images:
            checked.append((image, file_path))
        boxes, classes = objects[image_id]
        records.append(ImageRecord(
            image_id=image_id, path=file_path, width=image["width"], height=image["height"],
            boxes=np.array(boxes, np.float32).reshape(-1, 4), classes=np.array(classes, np.int32),
        ))
    _check_image_files(path, checked)
    return DetectionDataset(annotations_path, images_dir, records, category_ids, class_names)

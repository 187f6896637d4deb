"""The embedded default dataset: coloured shapes on textured backgrounds, written as COCO.

Every image is drawn from its own random generator seeded by ``(seed, split, index)``, so the same seed
gives the same bytes on any machine with the same Pillow and NumPy, and images can be drawn in any
order. Each image holds 1–8 objects of four classes (ellipse, rectangle, triangle, star), in random
saturated colours (colour says nothing about the class: the detector must learn shapes), with
aspect ratios between 2:3 and 3:2 (the anchors' 1:2, 1:1, 2:1 cover them), partly occluding each
other and cut by the image border (a cut object's box is its visible part, so truncated objects are
smaller still). Object sides are log-uniform between ``min_object_size`` and ``max_object_size`` times
the image side: 0.18 to 0.85 by default, 23 to 109 pixels at 128×128, which puts positive anchors
(IoU ≥ 0.5) on P3, P4 and P5 (anchor sides 32–203). Smaller objects only ever get the one anchor the
matcher forces on them (a 14-pixel square has IoU 0.19 with the smallest, 32-pixel anchor); the demo
data leaves them out so that it can be learnt on a CPU in minutes, and ``make-data --min-object-size
0.1`` puts them back. P6 and P7 (anchors of 256–813 pixels) only see objects when the images are
larger: at ``--image-size 512`` the default fractions give 92–435 pixel objects, which are matched on
P4–P7.

Layout written by :func:`make_dataset` under ``root``::

    root/dataset.json                      the generator's parameters (the cache key)
    root/annotations/{train,val,test}.json  COCO-format annotations
    root/{train,val,test}/NNNNNN.png        the images
"""

import json
import math
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SHAPE_CLASSES = ("ellipse", "rectangle", "triangle", "star")
"""Class names; COCO category ids are 1, 2, 3, 4 in this order."""

SPLITS = ("train", "val", "test")

DEFAULT_SPLIT_SIZES = {"train": 2400, "val": 200, "test": 300}
"""Images per split of the default dataset."""

DEFAULT_OBJECTS = {"max_objects": 8, "min_object_size": 0.24, "max_object_size": 0.85, "colour_by_class": True}
"""Objects per image (1 to ``max_objects``), their side as a fraction of the image side, and whether
each class has its own range of hues."""

DEFAULT_IMAGE_SIZE = 96
DEFAULT_SEED = 2017

_SUPERSAMPLING = 4
"""Shapes are drawn at 4× resolution and downsampled, so their edges are anti-aliased."""

_MAX_OCCLUDED_FRACTION = 0.4
"""A new object may cover at most this fraction of an earlier object's box."""

_MIN_VISIBLE_FRACTION = 0.5
"""An object cut by the border keeps at least this fraction of its box inside the image."""


def _polygon(shape, centre, width, height, angle):
    """Vertices ``(n, 2)`` of a polygonal shape; ``None`` for the ellipse."""
    if shape == "ellipse":
        return None
    if shape == "rectangle":
        unit = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float) / 2.0
        angle = 0.0  # axis-aligned, so that its box is tight
    elif shape == "triangle":
        corners = np.deg2rad([90.0, 210.0, 330.0])
        unit = np.stack([np.cos(corners), -np.sin(corners)], axis=1) / 2.0
    else:  # five-pointed star, inner radius 0.45 of the outer one
        corners = np.deg2rad(90.0 + 36.0 * np.arange(10))
        radii = np.where(np.arange(10) % 2 == 0, 0.5, 0.225)
        unit = np.stack([radii * np.cos(corners), -radii * np.sin(corners)], axis=1)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return centre + (unit * [width, height]) @ rotation.T


def _full_box(shape, centre, width, height, vertices):
    if vertices is None:
        return np.array([centre[0] - width / 2, centre[1] - height / 2, centre[0] + width / 2, centre[1] + height / 2])
    return np.concatenate([vertices.min(axis=0), vertices.max(axis=0)])


def _background(rng, size):
    """A muted base colour, a smooth random tint field and a few faint lines: clutter, not objects."""
    base = rng.uniform(40, 150, size=3)
    coarse = rng.normal(0.0, 25.0, size=(rng.integers(3, 7), rng.integers(3, 7), 3))
    field = np.stack(
        [np.asarray(Image.fromarray(coarse[..., c].astype(np.float32), mode="F").resize((size, size), Image.BICUBIC))
         for c in range(3)],
        axis=-1,
    )
    image = Image.fromarray(np.clip(base + field, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(2, 6)):
        points = [tuple(rng.uniform(0, size, 2)) for _ in range(2)]
        shade = tuple(int(v) for v in np.clip(base + rng.normal(0, 35, 3), 0, 255))
        draw.line(points, fill=shade, width=int(rng.integers(1, 3)))
    return np.asarray(image, dtype=np.float32)


def _object_colour(rng, class_index, colour_by_class):
    """A saturated, bright colour (HSV with S ≥ 0.6, V ≥ 0.75) that stands out from the muted background;
    with ``colour_by_class`` its hue lies in the class's own quarter of the colour wheel."""
    hue = (class_index + rng.uniform(0.15, 0.85)) / len(SHAPE_CLASSES) if colour_by_class else rng.uniform(0, 1)
    saturation, value = rng.uniform(0.6, 1.0), rng.uniform(0.75, 1.0)
    rgb = np.array(Image.new("HSV", (1, 1), (int(hue * 255), int(saturation * 255), int(value * 255))).convert("RGB").getpixel((0, 0)))
    return rgb.astype(np.float32)


def _overlap_fraction(box, other):
    """Fraction of ``other``'s area covered by ``box``."""
    width = max(0.0, min(box[2], other[2]) - max(box[0], other[0]))
    height = max(0.0, min(box[3], other[3]) - max(box[1], other[1]))
    return width * height / ((other[2] - other[0]) * (other[3] - other[1]))


def draw_image(rng, image_size, max_objects=DEFAULT_OBJECTS["max_objects"],
               min_object_size=DEFAULT_OBJECTS["min_object_size"], max_object_size=DEFAULT_OBJECTS["max_object_size"],
               colour_by_class=DEFAULT_OBJECTS["colour_by_class"]):
    """One image ``(size, size, 3) uint8`` and its objects ``[(class_index, [x1, y1, x2, y2])]``."""
    size = image_size
    image = _background(rng, size)
    objects = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(20):
            shape_index = int(rng.integers(len(SHAPE_CLASSES)))
            side = size * math.exp(rng.uniform(math.log(min_object_size), math.log(max_object_size)))
            aspect = math.exp(rng.uniform(math.log(2 / 3), math.log(3 / 2)))
            width, height = side * math.sqrt(aspect), side / math.sqrt(aspect)
            centre = rng.uniform(-0.1 * width, size + 0.1 * width), rng.uniform(-0.1 * height, size + 0.1 * height)
            centre = np.array(centre)
            vertices = _polygon(SHAPE_CLASSES[shape_index], centre, width, height, rng.uniform(-0.4, 0.4))
            full = _full_box(SHAPE_CLASSES[shape_index], centre, width, height, vertices)
            box = np.clip(full, 0, size)
            visible = (box[2] - box[0]) * (box[3] - box[1]) / ((full[2] - full[0]) * (full[3] - full[1]))
            if visible < _MIN_VISIBLE_FRACTION or min(box[2] - box[0], box[3] - box[1]) < 4:
                continue
            if any(_overlap_fraction(box, earlier) > _MAX_OCCLUDED_FRACTION for _, earlier in objects):
                continue
            break
        else:
            continue
        canvas = Image.new("L", (size * _SUPERSAMPLING, size * _SUPERSAMPLING), 0)
        pen = ImageDraw.Draw(canvas)
        if vertices is None:
            pen.ellipse(list(full * _SUPERSAMPLING), fill=255)
        else:
            pen.polygon([tuple(v) for v in vertices * _SUPERSAMPLING], fill=255)
        alpha = np.asarray(canvas.resize((size, size), Image.BOX), dtype=np.float32)[..., None] / 255.0
        image = image * (1 - alpha) + _object_colour(rng, shape_index, colour_by_class) * alpha
        objects.append((shape_index, box))
    image = image + rng.normal(0.0, 6.0, size=image.shape)  # sensor-like noise on objects and background
    picture = Image.fromarray(np.clip(image, 0, 255).round().astype(np.uint8))
    return np.asarray(picture.filter(ImageFilter.GaussianBlur(0.4))), objects


def _coco_split(images_and_objects, file_names, image_size):
    categories = [{"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(SHAPE_CLASSES)]
    images, annotations = [], []
    for image_id, ((_, objects), file_name) in enumerate(zip(images_and_objects, file_names), start=1):
        images.append({"id": image_id, "file_name": file_name, "width": image_size, "height": image_size})
        for class_index, (x1, y1, x2, y2) in objects:
            width, height = float(x2 - x1), float(y2 - y1)
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": class_index + 1,
                "bbox": [round(float(x1), 2), round(float(y1), 2), round(width, 2), round(height, 2)],
                "area": round(width * height, 2), "iscrowd": 0,
            })
    return {"images": images, "annotations": annotations, "categories": categories}


def dataset_config(image_size=DEFAULT_IMAGE_SIZE, split_sizes=None, seed=DEFAULT_SEED, objects=None):
    """The parameters that determine the dataset's bytes; stored as ``dataset.json`` and used as cache key."""
    return {"generator": "shapes-v1", "image_size": int(image_size), "seed": int(seed),
            "split_sizes": dict(split_sizes or DEFAULT_SPLIT_SIZES), "classes": list(SHAPE_CLASSES),
            "objects": {**DEFAULT_OBJECTS, **(objects or {})}}


def _write_image(job):
    """Draw image ``index`` of a split and save it as PNG; returns its objects (runs in a worker process)."""
    root, split, split_index, index, image_size, seed, objects = job
    pixels, drawn = draw_image(np.random.default_rng([seed, split_index, index]), image_size, **objects)
    Image.fromarray(pixels).save(os.path.join(root, split, f"{index:06d}.png"), optimize=False)
    return drawn


def make_dataset(root, image_size=DEFAULT_IMAGE_SIZE, split_sizes=None, seed=DEFAULT_SEED, objects=None, force=False,
                 workers=None):
    """Write the synthetic dataset under ``root`` unless the same one is already there.

    Images are drawn by ``workers`` processes (default: one per CPU; started fresh, not forked, because the
    caller may be running a multithreaded framework); each image's random generator is seeded by
    ``(seed, split, index)``, so the bytes do not depend on the number of workers.

    Returns:
        ``(config, generated)``; ``generated`` is False when a dataset with the same parameters was
        found (its ``dataset.json`` matches) and nothing was written.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    if image_size % 32:
        raise ValueError(f"image_size must be a multiple of 32 (the detector's stride), got {image_size}")
    config = dataset_config(image_size, split_sizes, seed, objects)
    manifest = os.path.join(root, "dataset.json")
    if not force and os.path.isfile(manifest):
        with open(manifest) as f:
            if json.load(f) == config:
                return config, False
    os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count(), mp_context=context) as pool:
        for split_index, split in enumerate(SPLITS):
            count = config["split_sizes"].get(split, 0)
            os.makedirs(os.path.join(root, split), exist_ok=True)
            jobs = [(root, split, split_index, index, image_size, seed, config["objects"]) for index in range(count)]
            drawn = [(None, objects) for objects in pool.map(_write_image, jobs, chunksize=32)]
            names = [f"{index:06d}.png" for index in range(count)]
            with open(os.path.join(root, "annotations", f"{split}.json"), "w") as f:
                json.dump(_coco_split(drawn, names, image_size), f)
    with open(manifest, "w") as f:
        json.dump(config, f, indent=1)
    return config, True


def split_paths(root, split):
    """``(annotations_json, images_dir)`` of one split of a dataset written by :func:`make_dataset`."""
    return os.path.join(root, "annotations", f"{split}.json"), os.path.join(root, split)

"""Prediction: detect objects in image files and draw them.

Each image is resized with padding to the run's input size exactly as in evaluation, the model's output
is decoded with :func:`retinanet.postprocess.decode_detections` (score threshold, top-k per level,
class-wise NMS; Lin et al., Sec. 4.1), boxes are mapped back to the original pixels, and the detections
scoring at least :data:`DRAW_SCORE_THRESHOLD` are drawn on the original image, one box per object
(:func:`one_box_per_object`). Images are read as training and evaluation read them
(:func:`retinanet.data.images.read_rgb`: full decode, EXIF orientation, 8-bit RGB), so a picture shows the
image as a viewer displays it.

Each input gets its own picture (:func:`output_names`): its path relative to the deepest folder holding
every input, with ``.png`` for its extension, so inputs of different folders never overwrite each other.
"""

import collections
import glob
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from retinanet.data import images as image_reader
from retinanet.data.transforms import resize_and_pad

ImageError = image_reader.ImageError
"""What prediction raises for an image file it cannot read (defined beside the reader, :mod:`retinanet.data.images`)."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")

DRAW_SCORE_THRESHOLD = 0.5
"""Detections drawn on pictures score at least this much (evaluation keeps everything above 0.05, Sec. 4.1).
Chosen on the validation split with the demo's run, where it gave the drawn boxes (one per object,
:data:`DRAW_OVERLAP`) the best F1 among 0.4, 0.5 and 0.6; above it recall drops (a drawn box counts as
right when it has an object's class and IoU ≥ 0.5 with it, each object counted once)."""

DRAW_OVERLAP = 0.4
"""A drawn box overlapping a better-scoring drawn box of any class by more than this IoU is left out (see
:func:`one_box_per_object`). Two objects of the embedded data never overlap more than this (one hides at
most 40 % of another's box, which bounds their IoU by 0.4), so only second guesses go; the paper's NMS IoU
of 0.5 would keep more of them."""

_PALETTE = ((255, 64, 64), (64, 200, 255), (255, 220, 0), (80, 255, 120), (255, 120, 255), (255, 160, 60),
            (160, 120, 255), (0, 255, 220))


def image_files(inputs):
    """Image files among ``inputs`` (files, or directories searched one level deep), sorted per directory; a
    file named twice (also through a directory, or a link) is listed once."""
    files, seen = [], set()
    for item in inputs:
        item = os.fspath(item)
        if os.path.isdir(item):
            found = sorted(p for p in glob.glob(os.path.join(glob.escape(item), "*"))
                           if p.lower().endswith(IMAGE_SUFFIXES) and os.path.isfile(p))
        elif os.path.isfile(item):
            found = [item]
        else:
            raise FileNotFoundError(f"no such image file or directory: {item}")
        for path in found:
            if os.path.realpath(path) not in seen:
                seen.add(os.path.realpath(path))
                files.append(path)
    if not files:
        raise FileNotFoundError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {[os.fspath(i) for i in inputs]}")
    return files


def output_names(paths):
    """The picture's file name under the output folder for each input path (relative, ``/``-separated).

    Each is the input's path relative to the deepest folder that holds all inputs, its extension replaced by
    ``.png``: ``predict a/x.png b/x.png`` gives ``a/x.png`` and ``b/x.png``, one folder's files give their own
    names. Inputs of one folder that differ only in their extension (``y.png``, ``y.jpg``) keep it before
    ``.png`` (``y.png.png``, ``y.jpg.png``); a name still taken gets ``-2``, ``-3``, ... No two inputs share a
    picture, and none is written outside the output folder.
    """
    absolute = [os.path.abspath(path) for path in paths]
    if not absolute:
        return []
    common = os.path.commonpath([os.path.dirname(path) for path in absolute])
    relative = [os.path.relpath(path, common) for path in absolute]
    stems = [os.path.splitext(name)[0] for name in relative]
    counts = collections.Counter(stem.lower() for stem in stems)
    names, taken = [], set()
    for name, stem in zip(relative, stems):
        candidate = (name if counts[stem.lower()] > 1 else stem) + ".png"
        base, number = candidate[: -len(".png")], 2
        while candidate.lower() in taken:
            candidate, number = f"{base}-{number}.png", number + 1
        taken.add(candidate.lower())
        names.append(candidate.replace(os.sep, "/"))
    return names


def read_image(path):
    """An image file as displayed, RGB ``uint8`` ``(h, w, 3)`` (:func:`retinanet.data.images.read_rgb`);
    :class:`ImageError` naming the file and what is wrong if it cannot be read."""
    return image_reader.read_rgb(path)


def detect_images(detector, images):
    """Detections per image (RGB ``uint8`` arrays of any size): a list of ``(pixels uint8 (h, w, 3), boxes
    (n, 4), scores (n,), classes (n,))`` in the image's pixels."""
    from retinanet.detector import InferenceModel

    inference, outputs = InferenceModel(detector), []
    for pixels in images:
        padded, _, scale = resize_and_pad(pixels, np.zeros((0, 4), np.float32), detector.image_size)
        detections = inference.detect(padded[None])
        count = int(detections["num_detections"][0])
        outputs.append((pixels, np.asarray(detections["boxes"][0, :count]) / scale,
                        np.asarray(detections["scores"][0, :count]), np.asarray(detections["classes"][0, :count])))
    return outputs


def one_box_per_object(boxes, scores, overlap=DRAW_OVERLAP):
    """Indices of the detections a picture shows, best score first: greedy NMS across classes.

    The paper's NMS runs class by class (Sec. 4.1), which is right for COCO AP, where each class is scored
    on its own: a second guess at an object's class costs that class nothing and can earn it recall, so
    evaluation keeps it. A picture, though, should show each object once, labelled with its best class: a
    box overlapping a better-scoring one by IoU > ``overlap`` is a second guess at the same object and is
    left out.
    """
    from retinanet._keras import ops
    from retinanet.boxes import iou

    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    overlaps, kept = ops.convert_to_numpy(iou(boxes, boxes)), []
    for index in np.argsort(-np.asarray(scores), kind="stable"):
        if not kept or overlaps[index, kept].max() <= overlap:
            kept.append(int(index))
    return kept


def draw_detections(pixels, boxes, scores, classes, class_names, min_score=DRAW_SCORE_THRESHOLD, zoom=1,
                    all_classes=False):
    """A PIL image of ``pixels`` (enlarged ``zoom`` times) with the boxes, class names and scores of the
    detections scoring at least ``min_score``: one box per object (:func:`one_box_per_object`), or with
    ``all_classes`` every class's boxes, as evaluation sees them."""
    picture = Image.fromarray(pixels)
    if zoom != 1:
        picture = picture.resize((picture.width * zoom, picture.height * zoom), Image.NEAREST)
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default()
    shown = np.flatnonzero(np.asarray(scores) >= min_score)
    if not all_classes:
        shown = shown[one_box_per_object(np.asarray(boxes)[shown], np.asarray(scores)[shown])]
    for box, score, label in zip(np.asarray(boxes)[shown], np.asarray(scores)[shown], np.asarray(classes)[shown]):
        colour = _PALETTE[int(label) % len(_PALETTE)]
        x1, y1, x2, y2 = (float(v) * zoom for v in box)
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=2)
        text = f"{class_names[int(label)]} {score:.2f}"
        left, top, right, bottom = draw.textbbox((x1, y1), text, font=font)
        top_y = y1 - (bottom - top) - 2 if y1 - (bottom - top) - 2 >= 0 else y1
        draw.rectangle([x1, top_y, x1 + right - left + 4, top_y + bottom - top + 2], fill=colour)
        draw.text((x1 + 2, top_y), text, fill=(0, 0, 0), font=font)
    return picture


def write_pictures(paths, detections, output_dir, class_names, min_score=DRAW_SCORE_THRESHOLD, zoom=1,
                   all_classes=False):
    """A picture under ``output_dir`` for every image path (named by :func:`output_names`), with its detections
    (from :func:`detect_images`) drawn by :func:`draw_detections`; returns the written paths, one per input."""
    written = []
    for name, (pixels, boxes, scores, classes) in zip(output_names(paths), detections):
        target = os.path.join(output_dir, *name.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        draw_detections(pixels, boxes, scores, classes, class_names, min_score, zoom, all_classes).save(target)
        written.append(target)
    return written


def predict(run_dir, inputs, output_dir, min_score=DRAW_SCORE_THRESHOLD, zoom=1, all_classes=False):
    """Detect in every image of ``inputs`` and write a picture of each under ``output_dir`` with the detections
    drawn (names: :func:`output_names`).

    Returns the written paths, one per image file (a file named twice is read once).
    """
    from retinanet.run.run_dir import load_trained_model

    paths = image_files(inputs)
    images = [read_image(path) for path in paths]  # an unreadable file stops the command before the model loads
    detector, config = load_trained_model(run_dir)
    return write_pictures(paths, detect_images(detector, images), output_dir, config.class_names, min_score, zoom,
                          all_classes)


def detection_grid(pictures, output, columns=4):
    """One PNG with several pictures side by side, ``columns`` per row (the README's picture)."""
    width, height = max(p.width for p in pictures), max(p.height for p in pictures)
    rows = -(-len(pictures) // columns)
    gap = 4
    grid = Image.new("RGB", (columns * width + (columns - 1) * gap, rows * height + (rows - 1) * gap), (255, 255, 255))
    for index, picture in enumerate(pictures):
        grid.paste(picture, ((index % columns) * (width + gap), (index // columns) * (height + gap)))
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    grid.save(output)
    return output


def draw_test_pictures(run_dir, paths, output_dir, grid_path, min_score=DRAW_SCORE_THRESHOLD, zoom=3):
    """The demo's pictures: each image's detections in ``output_dir`` and all of them, enlarged ``zoom``
    times, in one grid at ``grid_path``; the model is loaded and run once."""
    from retinanet.run.run_dir import load_trained_model

    detector, config = load_trained_model(run_dir)
    detections = detect_images(detector, [read_image(path) for path in paths])
    write_pictures(paths, detections, output_dir, config.class_names, min_score)
    pictures = [draw_detections(*found, config.class_names, min_score, zoom) for found in detections]
    return detection_grid(pictures, grid_path)

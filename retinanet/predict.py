"""Prediction: detect objects in image files and draw them.

Each image is resized with padding to the run's input size exactly as in evaluation, the model's output
is decoded with :func:`retinanet.postprocess.decode_detections` (score threshold, top-k per level,
class-wise NMS; Lin et al., Sec. 4.1), boxes are mapped back to the original pixels, and boxes, class
names and scores are drawn on the original image.
"""

import glob
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from retinanet.data.transforms import resize_and_pad

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")

DRAW_SCORE_THRESHOLD = 0.4
"""Detections drawn on pictures score at least this much (evaluation keeps everything above 0.05)."""

_PALETTE = ((255, 64, 64), (64, 200, 255), (255, 220, 0), (80, 255, 120), (255, 120, 255), (255, 160, 60),
            (160, 120, 255), (0, 255, 220))


def image_files(inputs):
    """Image files among ``inputs`` (files, or directories searched one level deep), sorted per directory."""
    files = []
    for item in inputs:
        if os.path.isdir(item):
            files.extend(sorted(p for p in glob.glob(os.path.join(item, "*")) if p.lower().endswith(IMAGE_SUFFIXES)))
        elif os.path.isfile(item):
            files.append(item)
        else:
            raise FileNotFoundError(f"no such image file or directory: {item}")
    if not files:
        raise FileNotFoundError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {list(inputs)}")
    return files


def read_image(path):
    """An image file as RGB ``uint8`` ``(h, w, 3)``; ``ValueError`` naming the file if it cannot be read."""
    try:
        with Image.open(path) as opened:
            return np.asarray(opened.convert("RGB"))
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"cannot read image {path}: {error}") from None


def detect_files(detector, paths):
    """Detections per file: a list of ``(pixels uint8 (h, w, 3), boxes (n, 4), scores (n,), classes (n,))``."""
    from retinanet.detector import InferenceModel

    inference, outputs = InferenceModel(detector), []
    for path in paths:
        pixels = read_image(path)
        padded, _, scale = resize_and_pad(pixels, np.zeros((0, 4), np.float32), detector.image_size)
        detections = inference.detect(padded[None])
        count = int(detections["num_detections"][0])
        outputs.append((pixels, np.asarray(detections["boxes"][0, :count]) / scale,
                        np.asarray(detections["scores"][0, :count]), np.asarray(detections["classes"][0, :count])))
    return outputs


def draw_detections(pixels, boxes, scores, classes, class_names, min_score=DRAW_SCORE_THRESHOLD, zoom=1):
    """A PIL image of ``pixels`` (enlarged ``zoom`` times) with boxes, class names and scores drawn."""
    picture = Image.fromarray(pixels)
    if zoom != 1:
        picture = picture.resize((picture.width * zoom, picture.height * zoom), Image.NEAREST)
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default()
    for box, score, label in zip(boxes, scores, classes):
        if score < min_score:
            continue
        colour = _PALETTE[int(label) % len(_PALETTE)]
        x1, y1, x2, y2 = (float(v) * zoom for v in box)
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=2)
        text = f"{class_names[int(label)]} {score:.2f}"
        left, top, right, bottom = draw.textbbox((x1, y1), text, font=font)
        top_y = y1 - (bottom - top) - 2 if y1 - (bottom - top) - 2 >= 0 else y1
        draw.rectangle([x1, top_y, x1 + right - left + 4, top_y + bottom - top + 2], fill=colour)
        draw.text((x1 + 2, top_y), text, fill=(0, 0, 0), font=font)
    return picture


def predict(run_dir, inputs, output_dir, min_score=DRAW_SCORE_THRESHOLD, zoom=1):
    """Detect in every image of ``inputs`` and write ``output_dir/<name>.png`` with the detections drawn.

    Returns the written paths.
    """
    from retinanet.train import load_trained_model

    detector, config = load_trained_model(run_dir)
    paths = image_files(inputs)
    os.makedirs(output_dir, exist_ok=True)
    written = []
    for path, (pixels, boxes, scores, classes) in zip(paths, detect_files(detector, paths)):
        target = os.path.join(output_dir, os.path.splitext(os.path.basename(path))[0] + ".png")
        draw_detections(pixels, boxes, scores, classes, config.class_names, min_score, zoom).save(target)
        written.append(target)
    return written


def detection_grid(run_dir, paths, output, columns=4, min_score=DRAW_SCORE_THRESHOLD, zoom=3):
    """One PNG with the detections on several images side by side (the README's picture)."""
    from retinanet.train import load_trained_model

    detector, config = load_trained_model(run_dir)
    pictures = [draw_detections(pixels, boxes, scores, classes, config.class_names, min_score, zoom)
                for pixels, boxes, scores, classes in detect_files(detector, paths)]
    width, height = max(p.width for p in pictures), max(p.height for p in pictures)
    rows = -(-len(pictures) // columns)
    gap = 4
    grid = Image.new("RGB", (columns * width + (columns - 1) * gap, rows * height + (rows - 1) * gap), (255, 255, 255))
    for index, picture in enumerate(pictures):
        grid.paste(picture, ((index % columns) * (width + gap), (index // columns) * (height + gap)))
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    grid.save(output)
    return output

"""Image files → RGB ``uint8`` pixels as a viewer displays them, the same for training, evaluation and prediction.

Every image the reference reads goes through :func:`read_rgb`:

- **a full decode**: the file is decoded to its last pixel (``Image.load()``; a PNG's chunk checksums are
  verified first), so a truncated or corrupt file of any format fails here, naming the file, and not in
  the middle of a training run. ``Image.verify()`` alone checks PNG and nothing of JPEG, BMP, GIF or TIFF.
  What a decoder reads through (data after a PNG's end chunk; damage inside a JPEG, BMP, TIFF or WebP file,
  formats without checksums, that still yields every row) is read as the decoder reads it, as a viewer
  shows it; a file cut short is always refused.
- **EXIF orientation** (``ImageOps.exif_transpose``): pixels, sizes and boxes are those of the image as
  displayed. That is the frame annotations are made in: annotation tools show the photo turned as browsers
  and viewers do and store boxes on it (VIA in a browser, detectron2 issue #788; RectLabel's maintainer,
  Rectlabel-support issue #167; Label Studio, issue #6608, which asks for the exported width and height to
  be the displayed ones too), and detectron2 reads images the same way
  (``detectron2.data.detection_utils.read_image`` applies the orientation, then ``check_image_size``
  requires the record's width and height to match). COCO's format page and pycocotools say nothing about
  it: pycocotools never opens an image.
- **8-bit RGB, scaled** (:func:`to_rgb`): 16-bit grey (``I;16*``) is divided by 257 (65535 → 255) and
  rounded; 16-bit colour PNGs arrive from Pillow as 8-bit (it keeps each sample's high byte); 32-bit
  integer (``I``) data in 0…65535 is taken as 16-bit, other ranges are stretched from their minimum to
  their maximum, as is floating-point (``F``) data unless it lies in [0, 1] (then × 255). Transparent pixels
  (``RGBA``, ``LA``, ``PA``, palette or grey images with a transparent colour) are composited over black,
  the colour of the padding around every model input; 1-bit, palette, CMYK (without its ICC profile),
  YCbCr, LAB and HSV images are converted by Pillow. The first frame of an animated or multi-page file is
  used.

:func:`check_image` does the decode once per file version (path, size, modification time) and caches the
outcome for the process; :func:`retinanet.data.load_coco` uses it to refuse a dataset with a bad image
before training starts. Problems raise :class:`ImageError`, whose message names the file and says what is
wrong with it.
"""

import os
import struct
import threading
from typing import NamedTuple

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

READABLE_FORMATS = "PNG, JPEG, BMP, GIF, TIFF or WebP"
"""What the message of an unreadable file suggests (Pillow reads more; these are the ones worth passing)."""

ORIENTATION_TAG = ExifTags.Base.Orientation
ROTATED_ORIENTATIONS = (5, 6, 7, 8)
"""EXIF orientations that turn the stored image by 90°, so that the displayed width is the stored height."""

_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError, struct.error,
                  ZeroDivisionError, Image.DecompressionBombError)
"""What Pillow raises on a broken or hostile file (``verify()`` raises ``SyntaxError``, plugins ``ValueError``,
``EOFError``, ``struct.error`` on bad headers, ``DecompressionBombError`` on absurd sizes)."""


class ImageError(ValueError):
    """An image file that cannot be used as a picture; the message names the file and what is wrong with it."""


class ImageInfo(NamedTuple):
    """What :func:`check_image` learned from a full decode of a file."""

    width: int  # as displayed (EXIF orientation applied)
    height: int
    stored_width: int  # as the pixels are stored in the file
    stored_height: int
    orientation: int  # EXIF orientation, 1 when there is none
    mode: str  # Pillow's mode of the stored pixels, e.g. "RGB", "I;16", "P"
    format: str  # Pillow's format name, e.g. "PNG", "JPEG"


def _reason(error):
    """A short description of what Pillow said about a file."""
    if isinstance(error, UnidentifiedImageError):
        return "no image format Pillow reads recognises it"
    if isinstance(error, Image.DecompressionBombError):
        return f"too large to decode safely ({error})"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error).strip() or type(error).__name__


def _orientation(image):
    orientation = image.getexif().get(ORIENTATION_TAG, 1)
    return orientation if orientation in range(1, 9) else 1


def _unreadable(path, error):
    if isinstance(error, OSError) and error.errno is not None:  # the file system's refusal, not the content's
        return ImageError(f"cannot read image {path}: {_reason(error)}")
    return ImageError(f"cannot read image {path}: {_reason(error)}; the file is truncated, corrupt or not a "
                      f"picture (pass {READABLE_FORMATS} files)")


def _decode(path, pixels=True):
    """``(RGB uint8 pixels as displayed or None, ImageInfo)`` from a full decode; :class:`ImageError` otherwise."""
    try:
        with Image.open(path) as image:
            if image.format == "PNG":
                image.verify()  # the chunks' checksums, which load() does not check; verify() ends the image
        image = Image.open(path)
    except _DECODE_ERRORS as error:
        raise _unreadable(path, error) from None
    with image:
        try:
            image.load()
            stored, mode, image_format = image.size, image.mode, image.format or "?"
            orientation = _orientation(image)
            if pixels and orientation != 1:
                ImageOps.exif_transpose(image, in_place=True)
        except _DECODE_ERRORS as error:
            raise _unreadable(path, error) from None
        width, height = stored[::-1] if orientation in ROTATED_ORIENTATIONS else stored
        info = ImageInfo(width, height, stored[0], stored[1], orientation, mode, image_format)
        if not pixels:
            to_rgb(image.crop((0, 0, 1, 1)), path)  # a mode that cannot become RGB fails here too
            return None, info
        rgb = to_rgb(image, path)
    if rgb.shape[:2] != (height, width):  # what check_image says of a file is what read_rgb gives
        raise AssertionError(f"{path}: decoded {rgb.shape[1]}×{rgb.shape[0]}, expected {width}×{height}")
    return rgb, info


def _over_black(rgba):
    """``(h, w, 4)`` uint8 RGBA composited over black → ``(h, w, 3)`` uint8, rounded."""
    colour, alpha = rgba[..., :3].astype(np.uint32), rgba[..., 3:].astype(np.uint32)
    return ((colour * alpha + 127) // 255).astype(np.uint8)


def _grey(values):
    values = np.asarray(values, np.uint8)
    return np.repeat(values[..., None], 3, axis=-1)


def _stretch(values):
    """Any-range numbers → 0…255, from their minimum to their maximum (NaN and infinities count as 0)."""
    values = np.nan_to_num(np.asarray(values, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, np.uint8)
    return np.rint((values - low) * (255.0 / (high - low))).astype(np.uint8)


def to_rgb(image, path=None):
    """A decoded PIL image of any mode as RGB ``uint8`` ``(h, w, 3)``, scaled (never clipped) to 8 bits.

    See the module's docstring for what each mode becomes.
    """
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return np.asarray(image)
    if mode.startswith("I;16"):
        return _grey(np.rint(np.asarray(image).astype(np.float64) / 257.0))
    if mode == "I":
        values = np.asarray(image)
        if values.size and values.min() >= 0 and values.max() <= 65535:
            return _grey(np.rint(values / 257.0))
        return _grey(_stretch(values))
    if mode == "F":
        values = np.asarray(image)
        finite = values[np.isfinite(values)]
        if finite.size == values.size and (not values.size or (values.min() >= 0.0 and values.max() <= 1.0)):
            return _grey(np.rint(values * 255.0))
        return _grey(_stretch(values))
    if mode in ("RGBa", "La"):  # premultiplied alpha: the colours already are the image over black
        values = np.asarray(image)
        return values[..., :3].copy() if mode == "RGBa" else _grey(values[..., 0])
    if mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        return _over_black(np.asarray(image.convert("RGBA")))
    try:
        return np.asarray(image.convert("RGB"))
    except ValueError as error:
        raise ImageError(f"cannot read image {path or ''}: its pixels (mode {mode}) cannot be converted to RGB "
                         f"({error}); pass {READABLE_FORMATS} files") from None


def read_rgb(path):
    """An image file as displayed, RGB ``uint8`` ``(h, w, 3)``: full decode, EXIF orientation, 8-bit RGB.

    Raises:
        ImageError: naming the file, when it is missing, truncated, corrupt or not an image.
    """
    return _decode(path)[0]


_checked, _checked_lock = {}, threading.Lock()


def _file_key(path):
    stat = os.stat(path)
    return os.path.realpath(path), stat.st_size, stat.st_mtime_ns


def check_image(path):
    """Decode a file in full once and say what it is (:class:`ImageInfo`); :class:`ImageError` if it cannot be used.

    The outcome (the information or the error) is cached per (real path, size, modification time) for the
    rest of the process: checking a dataset again costs a ``stat()`` per file, and a file rewritten since is
    decoded again.
    """
    try:
        key = _file_key(path)
    except OSError as error:
        raise _unreadable(path, error) from None
    with _checked_lock:
        outcome = _checked.get(key)
    if outcome is None:
        try:
            _, outcome = _decode(path, pixels=False)
        except ImageError as error:
            outcome = error
        with _checked_lock:
            _checked[key] = outcome
    if isinstance(outcome, ImageError):
        raise ImageError(str(outcome))
    return outcome


def forget_checks():
    """Empty :func:`check_image`'s cache (tests; a long-lived process that wants to re-decode everything)."""
    with _checked_lock:
        _checked.clear()

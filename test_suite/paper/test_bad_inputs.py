"""Image files and annotation records that are wrong in ways a decoder or a JSON parser lets through: every
one is either read correctly (16-bit and other pixel modes scaled to 8-bit RGB, EXIF orientation applied,
the same for training, evaluation and prediction) or refused with a :class:`DatasetError` /
:class:`ImageError` naming the file (and the record). The bad files are made here, a few pixels each."""

import io
import json
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from retinanet.data import DatasetError, load_coco
from retinanet.data import images as image_reader
from retinanet.data.images import ImageError, check_image, forget_checks, read_rgb
from retinanet.data.loader import ImageCache, TrainingBatches, evaluation_batches
from test_data import _write_dataset
from test_transforms import GREEN, RED, assert_box_on_colour, scene

pytestmark = pytest.mark.backends("tensorflow", "jax")


@pytest.fixture(autouse=True)
def fresh_checks():
    """Each test decodes its own files (the check cache is per process)."""
    forget_checks()
    yield
    forget_checks()


def write_png16(path, samples, colour_type):
    """A 16-bit PNG written byte by byte (Pillow writes 16-bit grey only): ``samples`` uint16 ``(h, w, c)``;
    colour type 0 grey, 2 RGB, 4 grey + alpha, 6 RGBA."""
    samples = np.asarray(samples, np.uint16)
    height, width = samples.shape[:2]
    rows = samples.reshape(height, -1).astype(">u2")
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)  # filter type 0 per row

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))
    return path


def jpeg_bytes(pixels, **options):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", **options)
    return buffer.getvalue()


def noise(height=30, width=40, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------------------------------
# Pixel modes: scaled to 8-bit RGB, never clipped.


def test_a_16_bit_grey_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 1000, 32768, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "grey16.png")
    with Image.open(tmp_path / "grey16.png") as opened:
        assert opened.mode.startswith("I")  # what made it load as all 255 before
    pixels = read_rgb(tmp_path / "grey16.png")
    expected = np.rint(values / 257.0).astype(np.uint8)  # 0, 1, 4, 128, 255
    assert pixels.dtype == np.uint8 and pixels.shape == (1, 5, 3)
    np.testing.assert_array_equal(pixels, np.repeat(expected[..., None], 3, axis=-1))
    np.testing.assert_array_equal(ImageCache().load(str(tmp_path / "grey16.png")), pixels)  # training reads the same


def test_16_bit_colour_pngs_keep_their_scale(tmp_path):
    levels = np.array([0, 1, 128, 200, 255], np.uint16)
    rgb = np.stack([levels * 257, levels[::-1] * 257, np.full(5, 65535)], axis=-1)[None]  # (1, 5, 3)
    pixels = read_rgb(write_png16(tmp_path / "rgb16.png", rgb, colour_type=2))
    np.testing.assert_array_equal(pixels[0, :, 0], levels)
    np.testing.assert_array_equal(pixels[0, :, 1], levels[::-1])
    assert (pixels[0, :, 2] == 255).all()
    grey_alpha = np.stack([levels * 257, np.full(5, 65535)], axis=-1)[None]  # opaque
    np.testing.assert_array_equal(read_rgb(write_png16(tmp_path / "la16.png", grey_alpha, colour_type=4))[0, :, 0],
                                  levels)


def test_other_modes_become_rgb(tmp_path):
    Image.fromarray(np.array([[0, 257, 65535, 70000]], np.int32)).save(tmp_path / "int32.tif")  # mode I
    np.testing.assert_array_equal(read_rgb(tmp_path / "int32.tif")[0, :, 0], [0, 1, 239, 255])  # min…max stretch: v · 255 / 70000
    Image.fromarray(np.array([[0, 257, 65535]], np.int32)).save(tmp_path / "int16range.tif")
    np.testing.assert_array_equal(read_rgb(tmp_path / "int16range.tif")[0, :, 0], [0, 1, 255])  # 16-bit scale
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32)).save(tmp_path / "float.tif")  # mode F in [0, 1]
    np.testing.assert_array_equal(read_rgb(tmp_path / "float.tif")[0, :, 0], [0, 128, 255])

    Image.new("LA", (1, 1), (200, 128)).save(tmp_path / "la.png")  # grey + alpha: over black
    np.testing.assert_array_equal(read_rgb(tmp_path / "la.png"), [[[100, 100, 100]]])
    Image.new("RGBA", (2, 1), (200, 100, 50, 255)).save(tmp_path / "rgba.png")
    with Image.open(tmp_path / "rgba.png") as opened:
        half = opened.copy()
    half.putpixel((1, 0), (200, 100, 50, 51))
    half.save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(read_rgb(tmp_path / "rgba.png"), [[[200, 100, 50], [40, 20, 10]]])

    palette = Image.new("P", (2, 1))
    palette.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    palette.putpixel((1, 0), 1)
    palette.save(tmp_path / "palette.png", transparency=1)  # index 1 (green) is transparent
    np.testing.assert_array_equal(read_rgb(tmp_path / "palette.png"), [[[255, 0, 0], [0, 0, 0]]])
    palette.save(tmp_path / "palette.gif")
    np.testing.assert_array_equal(read_rgb(tmp_path / "palette.gif"), [[[255, 0, 0], [0, 255, 0]]])

    keyed = Image.new("RGB", (2, 1), (10, 20, 30))
    keyed.putpixel((1, 0), (1, 2, 3))
    keyed.save(tmp_path / "keyed.png", transparency=(1, 2, 3))  # an RGB PNG with a transparent colour
    np.testing.assert_array_equal(read_rgb(tmp_path / "keyed.png"), [[[10, 20, 30], [0, 0, 0]]])

    Image.new("CMYK", (3, 1), (255, 0, 0, 0)).save(tmp_path / "cmyk.tif")  # cyan
    np.testing.assert_array_equal(read_rgb(tmp_path / "cmyk.tif")[0, 0], [0, 255, 255])
    Image.new("CMYK", (1, 1), (0, 0, 0, 0)).save(tmp_path / "cmyk.jpg", quality=100)  # white, as JPEG
    assert (read_rgb(tmp_path / "cmyk.jpg") >= 250).all()
    bits = Image.new("1", (2, 1), 0)
    bits.putpixel((1, 0), 1)
    bits.save(tmp_path / "bits.png")
    np.testing.assert_array_equal(read_rgb(tmp_path / "bits.png"), [[[0, 0, 0], [255, 255, 255]]])
    Image.new("L", (1, 1), 77).save(tmp_path / "grey.png")
    np.testing.assert_array_equal(read_rgb(tmp_path / "grey.png"), [[[77, 77, 77]]])


# ----------------------------------------------------------------------------------------------------
# Truncated and corrupt files: found by a full decode, named.


def test_a_truncated_jpeg_is_found_by_a_full_decode(tmp_path):
    data = jpeg_bytes(noise())
    (tmp_path / "half.jpg").write_bytes(data[: len(data) // 2])
    with Image.open(tmp_path / "half.jpg") as opened:
        opened.verify()  # what the loader relied on: it finds nothing wrong with a JPEG
    for read in (check_image, read_rgb, ImageCache().load):
        with pytest.raises(ImageError, match=rf"cannot read image {tmp_path / 'half.jpg'}: image file is truncated"):
            read(str(tmp_path / "half.jpg"))


@pytest.mark.parametrize("damage", ["cut in half", "garbage over the end", "zeros inside"])
@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"])
def test_truncated_or_corrupt_files_of_every_format_are_refused(tmp_path, image_format, damage):
    buffer = io.BytesIO()
    Image.fromarray(noise(64, 80)).save(buffer, image_format)
    data = bytearray(buffer.getvalue())
    if damage == "cut in half":
        data = data[: len(data) // 2]
    elif damage == "garbage over the end":
        data[-40:] = b"garbage!" * 5
    else:
        data[len(data) // 2 : len(data) // 2 + 200] = bytes(200)
    path = tmp_path / f"bad.{image_format.lower()}"
    path.write_bytes(bytes(data))
    try:
        pixels = read_rgb(path)
    except ImageError as error:
        assert str(error).startswith(f"cannot read image {path}: ") and "\n" not in str(error)
        return
    # A file cut short is always refused; damage inside a format without checksums (JPEG, BMP, TIFF, WebP) that
    # its decoder reads through gives a whole picture, as any viewer shows it.
    assert damage != "cut in half" and image_format in ("JPEG", "BMP", "TIFF", "WEBP"), f"{image_format} {damage} read"
    assert pixels.shape == (64, 80, 3)


def test_data_after_a_png_end_is_harmless(tmp_path):
    Image.fromarray(noise()).save(tmp_path / "a.png")
    with open(tmp_path / "a.png", "ab") as f:
        f.write(b"garbage after the IEND chunk")
    np.testing.assert_array_equal(read_rgb(tmp_path / "a.png"), noise())


def test_a_dataset_with_bad_images_is_refused_up_front_naming_them(tmp_path):
    path, image_dir = _write_dataset(tmp_path)
    data = (image_dir / "a.png").read_bytes()
    (image_dir / "a.png").write_bytes(data[:-40] + b"garbage!" * 5)  # a PNG with garbage at the end
    jpeg = jpeg_bytes(noise(30, 40))
    (image_dir / "b.png").write_bytes(jpeg[: len(jpeg) // 2])  # a JPEG cut in half, under a .png name
    with pytest.raises(DatasetError) as raised:
        load_coco(path, image_dir)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: image id 1 ('a.png'): cannot read image {image_dir / 'a.png'}: ")
    assert "1 more image file(s) cannot be used either: 'b.png' (image id 2)" in message


def test_each_file_is_decoded_once_until_it_changes(tmp_path, monkeypatch):
    path, image_dir = _write_dataset(tmp_path)
    decoded = []
    original = image_reader._decode
    monkeypatch.setattr(image_reader, "_decode", lambda p, **kw: decoded.append(os.path.basename(p)) or original(p, **kw))
    load_coco(path, image_dir)
    load_coco(path, image_dir)
    assert sorted(decoded) == ["a.png", "b.png"]
    Image.new("RGB", (40, 30), (1, 2, 3)).save(image_dir / "b.png", compress_level=0)  # another size in bytes
    os.utime(image_dir / "b.png", ns=(1, 1))
    load_coco(path, image_dir)
    assert sorted(decoded) == ["a.png", "b.png", "b.png"]


def test_a_file_damaged_after_the_check_is_named_when_training_reads_it(tmp_path):
    path, image_dir = _write_dataset(tmp_path)
    dataset = load_coco(path, image_dir)
    (image_dir / "a.png").write_bytes(b"overwritten")
    batches = TrainingBatches(dataset.records, 64, batch_size=2, steps=1, workers=1)
    with pytest.raises(ImageError, match=rf"cannot read image {image_dir / 'a.png'}: "):
        batches[0]


# ----------------------------------------------------------------------------------------------------
# EXIF orientation: boxes are read on the picture as displayed, in training, evaluation and prediction.


def _rotated_photo(tmp_path):
    """A JPEG whose stored pixels are ``scene()`` turned by 90° and whose EXIF orientation 6 turns it back:
    displayed, it is the 120×90 scene with its red and green boxes."""
    displayed, boxes = scene(90, 120)
    stored = Image.fromarray(displayed).transpose(Image.Transpose.ROTATE_90)  # 90×120 as stored
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "photo.jpg", quality=100, subsampling=0, exif=exif)
    return tmp_path / "photo.jpg", displayed, boxes


def _dataset_of(tmp_path, photo, boxes, width, height):
    annotations = [{"id": 20 + i, "image_id": 1, "category_id": 1 + i,
                    "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]}
                   for i, (x1, y1, x2, y2) in enumerate(boxes)]
    content = {"images": [{"id": 1, "file_name": photo.name, "width": width, "height": height}],
               "annotations": annotations, "categories": [{"id": 1, "name": "red"}, {"id": 2, "name": "green"}]}
    path = tmp_path / "photo.json"
    path.write_text(json.dumps(content))
    return path


def test_exif_orientation_is_applied_and_boxes_refer_to_the_displayed_picture(tmp_path):
    photo, displayed, boxes = _rotated_photo(tmp_path)
    with Image.open(photo) as opened:
        assert opened.size == (90, 120)  # stored portrait
    dataset = load_coco(_dataset_of(tmp_path, photo, boxes, width=120, height=90), tmp_path)
    record = dataset.records[0]
    np.testing.assert_allclose(record.boxes, boxes)

    pixels = ImageCache().load(record.path)  # training
    assert pixels.shape == (90, 120, 3)
    assert_box_on_colour(pixels, boxes[0], RED, tolerance=1)
    assert_box_on_colour(pixels, boxes[1], GREEN, tolerance=1)
    np.testing.assert_array_equal(read_rgb(photo), pixels)  # prediction's reader (test_predict.py checks it uses it)

    images, truth = TrainingBatches(dataset.records, 128, batch_size=2, steps=1, jitter=(1.0, 1.0), workers=1)[0]
    for image, image_boxes, classes in zip(images, truth["boxes"], truth["classes"]):
        for box, label in zip(image_boxes[classes >= 0], classes[classes >= 0]):
            assert_box_on_colour(image, box, (RED, GREEN)[label])

    (image,), (scale,), (image_id,), _ = next(evaluation_batches(dataset.records, 128, batch_size=1))  # evaluation
    assert image_id == 1 and scale == pytest.approx(128 / 120)
    for box, colour in zip(boxes, (RED, GREEN)):
        assert_box_on_colour(image, box * scale, colour)


def test_a_record_with_the_stored_size_of_a_rotated_photo_is_refused(tmp_path):
    photo, _, boxes = _rotated_photo(tmp_path)
    stored_boxes = np.array([[20, 10, 50, 40]], np.float32)  # inside the 90×120 stored frame
    with pytest.raises(DatasetError, match=r"image id 1 \('photo\.jpg'\): the record says 90×120, the size of the "
                                           r"pixels as stored in .*photo\.jpg, but its EXIF orientation \(6\) turns "
                                           r"the picture to 120×90 as displayed"):
        load_coco(_dataset_of(tmp_path, photo, stored_boxes, width=90, height=120), tmp_path)


# ----------------------------------------------------------------------------------------------------
# Records: boxes that are not finite numbers, file names that leave the image folder.


@pytest.mark.parametrize("bbox_text, problem", [
    ("[NaN, 3, 10, 8]", "not a finite number"),
    ("[2, 3, Infinity, 8]", "not a finite number"),
    ("[2, 3, 10, -Infinity]", "not a finite number"),
    ("[2, 3, -10, 8]", "non-positive width or height"),
    ("[2, 3, true, 8]", "must be four numbers"),
])
def test_boxes_that_are_not_finite_or_positive_are_refused(tmp_path, bbox_text, problem):
    path, image_dir = _write_dataset(tmp_path, annotations=[
        {"id": 31, "image_id": 2, "category_id": 5, "bbox": "BBOX"}])
    path.write_text(path.read_text().replace('"BBOX"', bbox_text))  # JSON as Python's parser accepts it
    with pytest.raises(DatasetError) as raised:
        load_coco(path, image_dir)
    message = str(raised.value)
    assert message.startswith(f"{path}: annotation id 31 (image id 2, 'b.png'): ") and problem in message


@pytest.mark.parametrize("file_name, problem", [
    ("ABSOLUTE", "file_name is an absolute path"),
    ("../outside/a.png", "file_name contains '..'"),
    ("sub/../../outside/a.png", "file_name contains '..'"),
    ("", "file_name must be a file's path relative to the image folder"),
])
def test_file_names_that_leave_the_image_folder_are_refused(tmp_path, file_name, problem):
    (tmp_path / "outside").mkdir()
    Image.new("RGB", (40, 30)).save(tmp_path / "outside" / "a.png")
    if file_name == "ABSOLUTE":
        file_name = str(tmp_path / "outside" / "a.png")
    path, image_dir = _write_dataset(tmp_path, images=[
        {"id": 1, "file_name": "a.png", "width": 40, "height": 30},
        {"id": 2, "file_name": file_name, "width": 40, "height": 30}], annotations=[])
    with pytest.raises(DatasetError) as raised:
        load_coco(path, image_dir)
    assert str(raised.value).startswith(f"{path}: image id 2 ({file_name!r}): {problem}")
    assert str(image_dir) in str(raised.value)


def test_a_symbolic_link_out_of_the_image_folder_is_refused(tmp_path):
    (tmp_path / "outside").mkdir()
    Image.new("RGB", (40, 30)).save(tmp_path / "outside" / "secret.png")
    path, image_dir = _write_dataset(tmp_path, images=[
        {"id": 1, "file_name": "a.png", "width": 40, "height": 30},
        {"id": 2, "file_name": "sub/link.png", "width": 40, "height": 30}], annotations=[])
    (image_dir / "sub").mkdir()
    (image_dir / "sub" / "link.png").symlink_to(tmp_path / "outside" / "secret.png")
    with pytest.raises(DatasetError, match=r"image id 2 \('sub/link\.png'\): .*link\.png leads to .*outside/secret\.png, "
                                           r"outside the image folder"):
        load_coco(path, image_dir)
    (image_dir / "sub" / "link.png").unlink()
    (image_dir / "sub" / "link.png").symlink_to(image_dir / "a.png")  # a link that stays inside is fine
    assert len(load_coco(path, image_dir).records) == 2

"""Data for training and evaluation.

``synthetic``  the embedded default dataset: procedurally drawn shapes, PNG + COCO-format JSON
``coco``       a loader for any COCO-format detection dataset, with clear errors on bad input
``images``     image files → RGB uint8 as displayed: full decode, EXIF orientation, any mode scaled to 8 bits
``transforms`` resize with padding, flip, scale jitter (NumPy and Pillow)
``loader``     the input pipeline for every backend: batches of uint8 images and padded boxes
"""

from retinanet.data.coco import DatasetError, DetectionDataset, ImageRecord, load_coco
from retinanet.data.images import ImageError, read_rgb
from retinanet.data.synthetic import SHAPE_CLASSES, make_dataset

__all__ = ["DatasetError", "DetectionDataset", "ImageRecord", "load_coco", "ImageError", "read_rgb", "SHAPE_CLASSES",
           "make_dataset"]

"""Data for training and evaluation.

``synthetic``  the embedded default dataset: procedurally drawn shapes, PNG + COCO-format JSON
``coco``       a loader for any COCO-format detection dataset, with clear errors on bad input
``transforms`` resize with padding, flip, scale jitter (NumPy and Pillow)
``loader``     the input pipeline for every backend: batches of uint8 images and padded boxes
"""

from retinanet.data.coco import DatasetError, DetectionDataset, ImageRecord, load_coco
from retinanet.data.synthetic import SHAPE_CLASSES, make_dataset

__all__ = ["DatasetError", "DetectionDataset", "ImageRecord", "load_coco", "SHAPE_CLASSES", "make_dataset"]

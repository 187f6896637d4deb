"""RetinaNet, the reference implementation of the course.

One module per part of Lin et al., "Focal Loss for Dense Object Detection" (ICCV 2017):

====================  =====================================================================
``backbone``          ResNet50 bottom-up pathway, outputs C3, C4, C5 (Sec. 4, "FPN Backbone")
``fpn``               Feature Pyramid Network, P3–P7 (Sec. 4, following Lin et al. 2017, FPN)
``heads``             classification and box subnets and their initialisation (Sec. 4, 4.1)
``model``             the RetinaNet model: backbone + FPN + shared heads (Fig. 3)
``anchors``           9 anchors per location on P3–P7 (Sec. 4, "Anchors")
``boxes``             IoU and the anchor-relative box coding
``matching``          IoU-based target assignment, 0.5 / 0.4 (Sec. 4, "Anchors")
``losses``            focal loss, smooth L1, the detection loss (Sec. 3, 4.1)
``postprocess``       inference: threshold, top-k per level, NMS (Sec. 4.1, "Inference")
====================  =====================================================================

Box format at every public boundary: ``[x1, y1, x2, y2]`` in pixels.

Around the paper's parts: ``detector`` (the model with its training step and inference), ``data/`` (the
COCO reader, the input pipeline, the embedded synthetic data); ``run/`` runs it (recipes, the training
loop, the run directory, evaluation, prediction); ``tools/`` holds the command line (``python -m
retinanet``) and the speed benchmark.
"""

import importlib

_EXPORTS = {"get_backbone": "retinanet.backbone", "FeaturePyramidNetwork": "retinanet.fpn",
            "build_head": "retinanet.heads", "RetinaNet": "retinanet.model"}

__all__ = list(_EXPORTS)


def __getattr__(name):
    """``from retinanet import RetinaNet`` loads Keras (and the backend) on first use, so that the parts that
    need no deep-learning framework (the synthetic data, the COCO loader) import in a blink."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'retinanet' has no attribute {name!r}")

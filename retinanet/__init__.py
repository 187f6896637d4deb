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
"""

from retinanet import _keras  # noqa: F401  (picks the backend; on TensorFlow, silences it first)
from retinanet.backbone import get_backbone
from retinanet.fpn import FeaturePyramidNetwork
from retinanet.heads import build_head
from retinanet.model import RetinaNet

__all__ = ["get_backbone", "FeaturePyramidNetwork", "build_head", "RetinaNet"]

"""Target assignment: which anchor learns which object.

Lin et al., Sec. 4, "Anchors": an anchor is assigned to the ground-truth box it overlaps most if their
IoU is at least 0.5 (foreground), to background if its best IoU is below 0.4, and is ignored during
training in between. As in Faster R-CNN's RPN, every ground-truth box also claims the anchor that
overlaps it most, so that no object (a small or oddly shaped one) is left without a positive anchor.

A target row per anchor is ``[dx, dy, dw, dh, label]``: the encoded box (see :mod:`retinanet.boxes`)
and the class id for a positive anchor, :data:`BACKGROUND` or :data:`IGNORE` otherwise.
"""

from retinanet._tf import tf
from retinanet.boxes import encode, iou

POSITIVE_IOU = 0.5
"""An anchor whose best IoU with a ground-truth box is ≥ 0.5 is foreground (Sec. 4)."""

NEGATIVE_IOU = 0.4
"""An anchor whose best IoU is < 0.4 is background; in [0.4, 0.5) it is ignored (Sec. 4)."""

BACKGROUND = -1.0
"""Label of a background anchor in the targets' last column."""

IGNORE = -2.0
"""Label of an ignored anchor in the targets' last column."""


def match_anchors(anchors, gt_boxes, positive_iou=POSITIVE_IOU, negative_iou=NEGATIVE_IOU):
    """Match anchors ``(N, 4)`` to ground-truth boxes ``(M, 4)``.

    Returns:
        ``(matched_index, positive, ignored)``: for each anchor the index of its best ground-truth box
        (0 when there is none), and two boolean ``(N,)`` masks; an anchor that is neither positive nor
        ignored is background. ``M = 0`` gives all background.
    """
    if not 0.0 <= negative_iou <= positive_iou <= 1.0:
        raise ValueError(f"need 0 <= negative_iou <= positive_iou <= 1, got {negative_iou}, {positive_iou}")
    overlaps = iou(anchors, gt_boxes)  # (N, M)
    num_anchors = tf.shape(overlaps)[0]

    def assign():
        best_iou = tf.reduce_max(overlaps, axis=1)
        matched = tf.argmax(overlaps, axis=1, output_type=tf.int32)
        positive = best_iou >= positive_iou
        ignored = tf.logical_and(best_iou >= negative_iou, tf.logical_not(positive))
        # Each ground-truth box claims its best anchor, if it overlaps any anchor at all.
        best_anchor = tf.argmax(overlaps, axis=0, output_type=tf.int32)  # (M,)
        claims = tf.reduce_max(overlaps, axis=0) > 0.0
        best_anchor = tf.boolean_mask(best_anchor, claims)[:, None]
        claiming_boxes = tf.boolean_mask(tf.range(tf.shape(overlaps)[1]), claims)
        matched = tf.tensor_scatter_nd_update(matched, best_anchor, claiming_boxes)
        forced = tf.scatter_nd(best_anchor, tf.ones_like(claiming_boxes, tf.bool), [num_anchors])
        return matched, tf.logical_or(positive, forced), tf.logical_and(ignored, tf.logical_not(forced))

    def all_background():
        nothing = tf.zeros([num_anchors], tf.bool)
        return tf.zeros([num_anchors], tf.int32), nothing, nothing

    return tf.cond(tf.shape(overlaps)[1] > 0, assign, all_background)


def assign_targets(anchors, gt_boxes, gt_classes):
    """Training targets ``(N, 5)`` = ``[encoded box (4), label]`` for one image.

    Args:
        anchors: ``(N, 4)`` from :func:`retinanet.anchors.generate_anchors`.
        gt_boxes: ``(M, 4)`` ground-truth boxes in pixels (``M`` may be 0).
        gt_classes: ``(M,)`` class ids in ``[0, K)``.
    """
    anchors = tf.convert_to_tensor(anchors, tf.float32)
    gt_boxes = tf.convert_to_tensor(gt_boxes, tf.float32)
    if gt_boxes.shape.rank and gt_boxes.shape[-1] not in (None, 4) and gt_boxes.shape.num_elements() != 0:
        raise ValueError(f"gt_boxes must have shape (M, 4) as [x1, y1, x2, y2], got {gt_boxes.shape}")
    gt_boxes = tf.reshape(gt_boxes, [-1, 4])  # also turns an empty list into (0, 4)
    gt_classes = tf.reshape(tf.cast(gt_classes, tf.float32), [-1])
    if None not in (gt_boxes.shape[0], gt_classes.shape[0]) and gt_boxes.shape[0] != gt_classes.shape[0]:
        raise ValueError(
            f"need one class per box: got {gt_boxes.shape[0]} gt_boxes and {gt_classes.shape[0]} gt_classes"
        )
    matched, positive, ignored = match_anchors(anchors, gt_boxes)

    padded_boxes = tf.concat([gt_boxes, [[0.0, 0.0, 1.0, 1.0]]], axis=0)  # keeps gather valid when M = 0
    padded_classes = tf.concat([gt_classes, [BACKGROUND]], axis=0)
    box_targets = encode(anchors, tf.gather(padded_boxes, matched))
    box_targets = tf.where(positive[:, None], box_targets, 0.0)
    labels = tf.where(positive, tf.gather(padded_classes, matched), BACKGROUND)
    labels = tf.where(ignored, IGNORE, labels)
    return tf.concat([box_targets, labels[:, None]], axis=-1)

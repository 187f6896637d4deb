"""Class-wise non-maximum suppression with fixed shapes, in ``keras.ops`` (every backend, jittable).

Greedy NMS (Lin et al., Sec. 4.1, "Inference", IoU 0.5) visits candidates from the best score down and
keeps one unless a kept candidate of the same class overlaps it by more than the threshold. With the
candidates sorted, "j is kept" depends only on earlier candidates::

    keep[j] = valid[j] and not any(keep[i] and suppresses[i, j] for i < j)

This module evaluates that rule for all candidates at once and repeats it until nothing changes: the
rule has exactly one solution (by induction over j), each repetition fixes at least every candidate
whose suppressors are already final, and in practice a handful of repetitions (the longest chain of
"a suppresses b, which would have suppressed c") reach it. Each repetition is one dense boolean
reduction over the ``C × C`` suppression matrix (one byte per pair), so the work is a few fixed-shape
operations instead of a loop over thousands of candidates — what accelerators and XLA are good at. The result equals TensorFlow's
``tf.image.combined_non_max_suppression`` (the test suite compares them), which the TensorFlow backend
uses instead.

On a GPU, a ``while_loop`` costs a return to the host per iteration (its condition is read there; XLA's
command buffers leave WHILE out by default), so on accelerators the first :data:`UNROLLED_ROUNDS`
repetitions are unrolled into straight-line code and the loop only checks that they converged: one
condition read per call in the usual case, and still the exact answer when a longer chain needs more
rounds. On a CPU the loop costs nothing extra and unrolled rounds would only repeat work, so there are
none (:func:`default_unrolled_rounds`).

Why not a library: JAX has no NMS of its own, and the maintained keras.ops one (KerasHub's) would make
KerasHub a dependency of the reference for one function.
"""

from retinanet._keras import BACKEND, ops
from retinanet.boxes import iou

UNROLLED_ROUNDS = 16
"""Repetitions of the rule unrolled before the convergence loop on accelerators (see the module's text). An
untrained network at 256 px with COCO's 80 classes needs 8 (its boxes overlap far more than a trained
one's), at 512 px with every candidate reaching NMS 14; a round is one boolean reduction over the
``C × C`` matrix, microseconds on a GPU, against a host round trip per loop iteration."""


def default_unrolled_rounds():
    """:data:`UNROLLED_ROUNDS` on a JAX accelerator (GPU, TPU), 0 elsewhere (a CPU, TensorFlow)."""
    if BACKEND == "jax":
        import jax

        return 0 if jax.default_backend() == "cpu" else UNROLLED_ROUNDS
    return 0


def _first_k_kept(scores, keep, max_detections):
    """Indices ``(batch, max_detections)`` of the best kept candidates, and how many there are."""
    kept_scores = ops.where(keep, scores, -1.0)
    _, index = ops.top_k(kept_scores, k=max_detections, sorted=True)
    count = ops.minimum(ops.sum(ops.cast(keep, "int32"), axis=-1), max_detections)
    return index, count


def class_wise_nms(boxes, scores, classes, iou_threshold, score_threshold, max_detections, unrolled_rounds=None):
    """Greedy NMS per class on a batch of candidates, padded to ``max_detections``.

    Args:
        boxes: ``(batch, C, 4)`` candidate boxes ``[x1, y1, x2, y2]``.
        scores: ``(batch, C)`` their scores, in any order.
        classes: ``(batch, C)`` integer class of each candidate; boxes of different classes never
            suppress each other.
        iou_threshold: a candidate overlapping a kept, better one of its class by more than this goes.
        score_threshold: candidates scoring at most this are dropped first.
        max_detections: the number of output rows per image.
        unrolled_rounds: repetitions of the rule done before the convergence loop (default
            :func:`default_unrolled_rounds`); the result does not depend on it.

    Returns:
        ``(boxes (batch, D, 4), scores (batch, D), classes (batch, D) int32, num_detections (batch,)
        int32)`` with ``D = max_detections``, best first; rows past ``num_detections`` are zero.
    """
    boxes = ops.cast(boxes, "float32")
    scores = ops.cast(scores, "float32")
    classes = ops.cast(classes, "int32")
    num_candidates = boxes.shape[1]
    if num_candidates is None:
        raise ValueError("class_wise_nms needs a known number of candidates (fixed shapes)")
    if num_candidates < max_detections:  # pad with candidates that can never be kept
        missing = max_detections - num_candidates
        boxes = ops.pad(boxes, [(0, 0), (0, missing), (0, 0)])
        scores = ops.pad(scores, [(0, 0), (0, missing)], constant_values=float("-inf"))
        classes = ops.pad(classes, [(0, 0), (0, missing)])
        num_candidates = max_detections

    scores, order = ops.top_k(scores, k=num_candidates, sorted=True)
    boxes = ops.take_along_axis(boxes, order[..., None], axis=1)
    classes = ops.take_along_axis(classes, order, axis=1)
    valid = scores > score_threshold

    earlier = ops.triu(ops.ones((num_candidates, num_candidates), dtype="bool"), k=1)  # [i, j]: i < j
    same_class = classes[:, :, None] == classes[:, None, :]
    suppresses = ops.logical_and(ops.logical_and(iou(boxes, boxes) > iou_threshold, same_class), earlier)

    def suppressed_by(keep):  # any_i keep[i] and suppresses[i, j]
        return ops.any(ops.logical_and(keep[:, :, None], suppresses), axis=1)

    def not_converged(keep, previous):
        return ops.any(ops.not_equal(keep, previous))

    def repeat_rule(keep, previous):
        return ops.logical_and(valid, ops.logical_not(suppressed_by(keep))), keep

    state = (ops.logical_and(valid, ops.logical_not(suppressed_by(valid))), valid)
    for _ in range(default_unrolled_rounds() if unrolled_rounds is None else unrolled_rounds):
        state = repeat_rule(*state)
    keep, _ = ops.while_loop(not_converged, repeat_rule, state, maximum_iterations=num_candidates)

    index, count = _first_k_kept(scores, keep, max_detections)
    filled = ops.arange(max_detections)[None, :] < count[:, None]
    out_boxes = ops.where(filled[..., None], ops.take_along_axis(boxes, index[..., None], axis=1), 0.0)
    out_scores = ops.where(filled, ops.take_along_axis(scores, index, axis=1), 0.0)
    out_classes = ops.where(filled, ops.take_along_axis(classes, index, axis=1), 0)
    return out_boxes, out_scores, out_classes, ops.cast(count, "int32")

"""Stage 3, exercise 3, matching: ``match_anchors(anchors, gt_boxes)`` (TEST_MATCHING).

Lin et al., Sec. 4, "Anchors": an anchor is positive at IoU ≥ 0.5 with its best ground-truth box, background
below 0.4, ignored in between; as torchvision's and detectron2's ``allow_low_quality_matches`` (not Detectron,
which turns such anchors below 0.4 back into background), each box that overlaps some anchor also makes
positive the anchors that overlap it most, which keep their own best box.
"""

import numpy as np

from retinanet.boxes import iou as reference_iou
from retinanet.matching import NEGATIVE_IOU, POSITIVE_IOU, match_anchors as reference_match

from course_checks.harness import Cause, as_array, call_learner, check, describe, expect, fail, passed


MATCHING_RETURNS = Cause(
    "matching.returns",
    "{what} should return three things (matched_index, positive, ignored), found {found}.")
MATCHING_SHAPES = Cause(
    "matching.shapes",
    "{what} should return three vectors with one entry per anchor, shape {expected}, found {found}.")
MATCHING_NO_OVERLAP_CLAIMS = Cause(
    "matching.no_overlap_claims",
    "Box {box} overlaps no anchor (IoU 0 with all of them), yet anchor {anchor}, which overlaps no box, is "
    "positive: only a box whose best IoU is above 0 makes its best anchors positive.")
MATCHING_ZERO_BOX_CLAIMS_ALL = Cause(
    "matching.zero_box_claims_all",
    "Box {box} overlaps no anchor: its best IoU is 0, so every anchor ties for it, and your rule makes them all "
    "positive ({count} anchors too many; without box {box} your labels are right). Only a box whose best IoU is "
    "above 0 claims its best anchors: guard with the box's best IoU (`box_best > 0`), not the anchor's.")
MATCHING_WRONG_AXIS = Cause(
    "matching.wrong_axis",
    "Anchors {listed} are positive although no box has them as its best anchor and their IoU is below "
    "{positive_iou}: the low-quality rule takes each box's best anchors, the maximum of each IoU column (over "
    "the anchors, axis 0); each anchor's own best box (axis 1) would make every overlapping anchor positive.")
MATCHING_BOTH = Cause(
    "matching.both",
    "Anchor {anchor} is both positive and ignored; an ignored anchor is one that is neither positive nor "
    "background.")
MATCHING_THRESHOLDS = Cause(
    "matching.thresholds",
    "An anchor with a best IoU of {iou:.2f} should be {expected}, found {found}; the rule is IoU ≥ "
    "{positive_iou} → positive, IoU < {negative_iou} → background, and anchors in [{negative_iou}, "
    "{positive_iou}) are ignored (check the thresholds).")
MATCHING_STRICT_POSITIVE = Cause(
    "matching.strict_positive",
    "An anchor with a best IoU of exactly {positive_iou} should be positive, found {found}: positive means "
    "IoU ≥ {positive_iou} (≥ vs >).")
MATCHING_STRICT_NEGATIVE = Cause(
    "matching.strict_negative",
    "An anchor with a best IoU of exactly {negative_iou} should be ignored, found {found}: background means "
    "IoU < {negative_iou} (< vs ≤).")
MATCHING_NO_LOW_QUALITY = Cause(
    "matching.no_low_quality",
    "Anchor {anchor} is the best anchor of a small ground-truth box but has only an IoU of {iou:.2f}; it "
    "should be positive, found {found}: every ground-truth box makes its best-overlapping anchor positive "
    "(low-quality match), so no object is left without an anchor.")
MATCHING_TIES = Cause(
    "matching.ties",
    "Anchors {tied} tie for box {box}'s best IoU ({iou:.2f}), so all of them are positive, but anchor "
    "{anchor} is {found}: a box makes positive every anchor whose IoU equals its best (compare with the "
    "column's maximum, not argmax, which picks one).")
MATCHING_FORCED_IN_BAND = Cause(
    "matching.forced_in_band",
    "Anchor {anchor} is box {box}'s best anchor with an IoU of {iou:.2f}, inside the ignored band; it should "
    "be positive and not ignored, found {found}: a box's best anchors are positive whatever their IoU, and "
    "a positive anchor is never ignored.")
MATCHING_REASSIGNED = Cause(
    "matching.reassigned",
    "Anchor {anchor} is matched to box {found}, which claims it as its best anchor, but the anchor overlaps "
    "box {expected} more (IoU {own:.2f} vs {claimed:.2f}): matched_index is the argmax of the anchor's own "
    "IoU row, also for claimed anchors (as in the paper's Detectron code and torchvision).")
MATCHING_WRONG_BOX = Cause(
    "matching.wrong_box",
    "Positive anchor {anchor} is matched to box {found}, but its highest IoU is with box {expected}; "
    "matched_index[i] is the argmax of anchor i's IoU row (axis 1).")
MATCHING_PRECISION = Cause(
    "matching.precision",
    "{what}: anchor {anchor} (IoU {iou:.4f}) should be {expected}, found {found}: a precision loss, the "
    "{rounded} were rounded to float16 (which drops the fractions of coordinates in the hundreds), moving IoUs "
    "near the thresholds; compute in float32 (`ops.convert_to_tensor(gt_boxes, dtype='float32')`).")
MATCHING_EMPTY = Cause(
    "matching.empty",
    "With no ground-truth boxes every anchor should be background (no positive, no ignored anchor), found "
    "{found}.")


def matching_case():
    """Anchors around the 0.4 / 0.5 thresholds of box 0 and the low-quality cases of boxes 1–5.

    Box 1: two anchors tie for its best IoU (0.16). Box 2: its best anchor sits inside the ignored band
    (IoU 0.45). Boxes 3 and 4: anchor 12 is box 3 itself (IoU 1) and box 4's best anchor (IoU 1/3). Box 5
    overlaps no anchor. Anchor 0 overlaps nothing, so that argmax of an all-zero column lands on it.
    """
    gt_boxes = np.array([[0, 0, 10, 10], [100, 100, 104, 104], [200, 0, 210, 10], [300, 0, 310, 10],
                         [300, 0, 330, 10], [500, 500, 510, 510]], np.float32)
    anchors = np.array([
        [50, 50, 60, 60],      # 0: IoU 0                → background
        [0, 0, 10, 10],        # 1: IoU 1 with box 0     → positive
        [0, 0, 10, 5],         # 2: IoU 0.5 exactly      → positive
        [0, 0, 10, 4.5],       # 3: IoU 0.45             → ignored
        [0, 0, 10, 4],         # 4: IoU 0.4 exactly      → ignored
        [0, 0, 10, 3.9],       # 5: IoU 0.39             → background
        [0, 0, 10, 6],         # 6: IoU 0.6              → positive
        [100, 100, 110, 110],  # 7: IoU 0.16 with box 1, tied best → positive
        [94, 94, 104, 104],    # 8: IoU 0.16 with box 1, tied best → positive
        [98, 98, 110, 110],    # 9: IoU 0.11 with box 1  → background
        [200, 0, 210, 4.5],    # 10: IoU 0.45, box 2's best → positive, not ignored
        [200, 0, 210, 3],      # 11: IoU 0.3 with box 2  → background
        [300, 0, 310, 10],     # 12: IoU 1 with box 3, box 4's best (1/3) → positive, matched to box 3
    ], np.float32)
    return anchors, gt_boxes


def precision_case():
    """Boxes with fractions in the hundreds of pixels, which float16 rounds to steps of 0.25, and anchors
    within 0.0004 of the thresholds: anchor 1 has IoU 0.5003 with box 0 (positive; 0.498 with the box in
    float16), anchor 3 IoU 0.4004 with box 1 (ignored; 0.3997 in float16). Anchors 0 and 2 are the boxes
    themselves (each box's best anchor, so no other is claimed); anchor 4 overlaps nothing."""
    gt_boxes = np.array([[300.3, 200.7, 340.3, 260.7], [420.6, 310.2, 470.6, 350.2]], np.float32)
    anchors = np.array([[300.3, 200.7, 340.3, 260.7], [300.3, 200.7, 340.3, 230.72], [420.6, 310.2, 470.6, 350.2],
                        [420.6, 310.2, 440.62, 350.2], [100, 100, 140, 140]], np.float32)
    return anchors, gt_boxes


def _float16(values):
    return np.asarray(values, np.float16).astype(np.float32)


def _labels_beside_reference(match_anchors, anchors, gt_boxes, what):
    """The learner's (matched, positive, ignored) for one case, shapes checked, and the reference's labels."""
    matched, positive, ignored = _vectors(call_learner(what, match_anchors, anchors, gt_boxes), what)
    _, ref_positive, ref_ignored = (np.asarray(x) for x in reference_match(anchors, gt_boxes))
    shapes = (matched.shape, positive.shape, ignored.shape)
    expect(all(shape == ref_positive.shape for shape in shapes), MATCHING_SHAPES, what=what,
           expected=ref_positive.shape, found=", ".join(str(shape) for shape in shapes))
    return matched, positive, ignored, ref_positive, ref_ignored


def _check_precision(match_anchors):
    """The precision case: labels flipped as float16 would flip them are blamed on float16."""
    anchors, gt_boxes = precision_case()
    what = "match_anchors(anchors, gt_boxes) with coordinates such as 300.3"
    matched, positive, ignored, ref_positive, ref_ignored = _labels_beside_reference(match_anchors, anchors, gt_boxes,
                                                                                     what)
    if np.array_equal(positive, ref_positive) and np.array_equal(ignored, ref_ignored):
        return matched, positive, anchors, gt_boxes
    best = np.asarray(reference_iou(anchors, gt_boxes)).max(axis=1)
    for rounded, case in (("boxes", (anchors, _float16(gt_boxes))), ("anchors", (_float16(anchors), gt_boxes)),
                          ("boxes and anchors", (_float16(anchors), _float16(gt_boxes)))):
        _, low_positive, low_ignored = (np.asarray(x) for x in reference_match(*case))
        if positive.shape == low_positive.shape and np.array_equal(positive, low_positive) \
                and np.array_equal(ignored, low_ignored):
            i = int(np.flatnonzero((positive != ref_positive) | (ignored != ref_ignored))[0])
            fail(MATCHING_PRECISION, what=what, anchor=i, iou=best[i], rounded=rounded,
                 expected=_label(ref_positive[i], ref_ignored[i]), found=_label(positive[i], ignored[i]))
    _diagnose_labels(positive, ignored, anchors, gt_boxes, ref_positive, ref_ignored)


def _label(positive, ignored):
    if positive and ignored:
        return "both positive and ignored"
    return "positive" if positive else "ignored" if ignored else "background"


def _labels_of(match_anchors, anchors, gt_boxes, what):
    _, positive, ignored = _vectors(call_learner(what, match_anchors, anchors, gt_boxes), what)
    _, ref_positive, ref_ignored = (np.asarray(x) for x in reference_match(anchors, gt_boxes))
    same = positive.shape == ref_positive.shape and np.array_equal(positive, ref_positive) and \
        np.array_equal(ignored, ref_ignored)
    return positive, same


def _diagnose_claims(match_anchors, positive, anchors, gt_boxes, ref_positive, overlaps):
    """Anchors made positive by a low-quality rule gone wide: a box overlapping nothing that claims every anchor,
    or the rule taken along the wrong axis (each anchor's best box instead of each box's best anchors)."""
    extra = np.flatnonzero(positive & ~ref_positive)
    if len(extra) < 2:
        return
    best, box_best = overlaps.max(axis=1), overlaps.max(axis=0)
    overlapping = box_best > 0
    what = "match_anchors(anchors, gt_boxes) without the box that overlaps no anchor"
    sub_positive, right_without = _labels_of(match_anchors, anchors, gt_boxes[overlapping], what) \
        if not overlapping.all() else (positive, False)
    if right_without:
        if not positive[best == 0].any():  # else a box claims an anchor overlapping nothing: no_overlap_claims
            fail(MATCHING_ZERO_BOX_CLAIMS_ALL, box=int(np.flatnonzero(~overlapping)[0]), count=len(extra))
        return
    sub_best = overlaps[:, overlapping].max(axis=1)
    for pattern in ((sub_best >= POSITIVE_IOU) | (sub_best > 0), np.ones_like(sub_positive)):
        if np.array_equal(sub_positive, pattern):
            fail(MATCHING_WRONG_AXIS, listed=", ".join(str(i) for i in extra[:6]) + ("…" if len(extra) > 6 else ""))


def _diagnose_labels(positive, ignored, anchors, gt_boxes, ref_positive, ref_ignored, match_anchors=None):
    """The cause of a wrong label, by the rule that the wrong anchor tests (most basic rule first)."""
    overlaps = np.asarray(reference_iou(anchors, gt_boxes))
    best = overlaps.max(axis=1)
    box_best = overlaps.max(axis=0)
    claimed = (overlaps == box_best) & (box_best > 0)  # (anchor, box): the box's best anchors, ties included
    forced = claimed.any(axis=1) & (best < POSITIVE_IOU)  # positive only because a box claims it
    at_threshold = np.isclose(best, POSITIVE_IOU, atol=1e-6) | np.isclose(best, NEGATIVE_IOU, atol=1e-6)
    found = [_label(p, i) for p, i in zip(positive, ignored)]
    wrong = [i for i in range(len(anchors)) if (positive[i], ignored[i]) != (ref_positive[i], ref_ignored[i])]
    if match_anchors is not None:
        _diagnose_claims(match_anchors, positive, anchors, gt_boxes, ref_positive, overlaps)

    for i in wrong:
        if best[i] == 0 and positive[i]:
            fail(MATCHING_NO_OVERLAP_CLAIMS, box=int(np.flatnonzero(box_best <= 0)[0]), anchor=i)
    for i in wrong:
        if positive[i] and ignored[i] and not forced[i]:
            fail(MATCHING_BOTH, anchor=i)
    for i in wrong:
        if not forced[i] and not at_threshold[i]:
            fail(MATCHING_THRESHOLDS, iou=best[i], expected=_label(ref_positive[i], ref_ignored[i]), found=found[i])
    for i in wrong:
        if not forced[i]:
            positive_edge = np.isclose(best[i], POSITIVE_IOU, atol=1e-6)
            fail(MATCHING_STRICT_POSITIVE if positive_edge else MATCHING_STRICT_NEGATIVE, found=found[i])
    for i in wrong:
        box = int(np.flatnonzero(claimed[i])[0])
        details = dict(anchor=i, box=box, iou=best[i], found=found[i])
        if best[i] >= NEGATIVE_IOU:
            fail(MATCHING_FORCED_IN_BAND, **details)
        tied = np.flatnonzero(claimed[:, box])
        if len(tied) > 1 and positive[tied].any():
            fail(MATCHING_TIES, tied=" and ".join(str(t) for t in tied), **details)
        fail(MATCHING_NO_LOW_QUALITY, **details)


def _diagnose_matched_boxes(matched, positive, anchors, gt_boxes):
    overlaps = np.asarray(reference_iou(anchors, gt_boxes))
    box_best = overlaps.max(axis=0)
    for i in np.flatnonzero(positive):
        row = overlaps[i]
        found = int(matched[i])
        if 0 <= found < len(row) and row[found] == row.max():
            continue
        expected = int(row.argmax())
        if 0 <= found < len(row) and row[found] == box_best[found]:
            fail(MATCHING_REASSIGNED, anchor=i, found=found, expected=expected, own=row[expected],
                 claimed=row[found])
        fail(MATCHING_WRONG_BOX, anchor=i, found=found, expected=expected)


def _vectors(result, what):
    expect(isinstance(result, (tuple, list)) and len(result) == 3, MATCHING_RETURNS, what=what, found=describe(result))
    matched = as_array(result[0], "matched_index")
    positive = as_array(result[1], "positive").astype(bool)
    ignored = as_array(result[2], "ignored").astype(bool)
    return matched, positive, ignored


@check
def TEST_MATCHING(match_anchors):
    """``match_anchors(anchors, gt_boxes)`` → (matched_index, positive, ignored) with the 0.5 / 0.4 rule."""
    anchors, gt_boxes = matching_case()
    what = "match_anchors(anchors, gt_boxes)"
    matched, positive, ignored, ref_positive, ref_ignored = _labels_beside_reference(match_anchors, anchors, gt_boxes,
                                                                                     what)
    if not (np.array_equal(positive, ref_positive) and np.array_equal(ignored, ref_ignored)):
        _diagnose_labels(positive, ignored, anchors, gt_boxes, ref_positive, ref_ignored, match_anchors)
    _diagnose_matched_boxes(matched, positive, anchors, gt_boxes)
    _diagnose_matched_boxes(*_check_precision(match_anchors))

    empty_what = f"{what} with no ground-truth boxes"
    _, positive, ignored = _vectors(call_learner(empty_what, match_anchors, anchors, np.zeros((0, 4), np.float32)),
                                    empty_what)
    expect(not positive.any() and not ignored.any(), MATCHING_EMPTY,
           found=f"{int(positive.sum())} positive and {int(ignored.sum())} ignored")
    passed(f"TEST_MATCHING passed: IoU ≥ {POSITIVE_IOU:g} positive, < {NEGATIVE_IOU:g} background, ignored between; "
           "every box's best anchors (ties included) positive and matched to their own best box.")

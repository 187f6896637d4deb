"""The interactive figures (course.widgets): the front-end rule, the static fallback, and that controls redraw the figure."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from course import widgets
from course.widgets import (
    InteractiveFigure,
    anchor_assignment,
    anchor_assignment_explorer,
    detection_explorer,
    detections_for,
    example_scene,
    focal_loss_explorer,
    widget_front_end_available,
)
from retinanet.anchors import generate_anchors
from retinanet.boxes import encode, iou


def scene_predictions(size=128, num_classes=3):
    """An image, its boxes, and a model output that fires around each box (several overlapping boxes each).

    Every anchor with IoU > 0.3 to box j scores for class j with a logit growing with the IoU, and its
    deltas point half-way to the box, so that NMS has near-duplicates to remove.
    """
    image, boxes = example_scene(size)
    anchors = generate_anchors(size, size)
    predictions = np.zeros((len(anchors), 4 + num_classes), np.float32)
    predictions[:, 4:] = -8.0
    overlaps = iou(anchors, boxes).numpy()
    for j, box in enumerate(boxes):
        near = overlaps[:, j] > 0.3
        predictions[near, 4 + j] = 10.0 * (overlaps[near, j] - 0.35)
        predictions[near, :4] = 0.5 * encode(anchors[near], np.repeat(box[None], near.sum(), 0)).numpy()
    return image, boxes, predictions


@pytest.fixture(autouse=True)
def no_forced_mode(monkeypatch):
    """Each test starts outside Jupyter, with no override."""
    monkeypatch.delenv(widgets.FIGURES_ENV, raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)


class FakeShell:
    """What ``get_ipython()`` returns inside a kernel: a shell with a ``kernel`` attribute."""

    kernel = object()


def test_front_end_rule(monkeypatch):
    import IPython

    assert widget_front_end_available() is False  # pytest: no kernel
    monkeypatch.setattr(IPython, "get_ipython", lambda: FakeShell())
    assert widget_front_end_available() is False  # a kernel without a server session: nbclient, nbgrader
    monkeypatch.setenv("JPY_SESSION_NAME", "/course/solutions/02-focal-loss/focal_loss.ipynb")
    assert widget_front_end_available() is True  # a kernel JupyterLab started for a notebook
    monkeypatch.setenv(widgets.FIGURES_ENV, "static")
    assert widget_front_end_available() is False
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    monkeypatch.setenv(widgets.FIGURES_ENV, "Interactive ")
    assert widget_front_end_available() is True
    monkeypatch.setenv(widgets.FIGURES_ENV, "sliders")
    with pytest.raises(ValueError, match="RETINANET_FIGURES must be 'static' or 'interactive'.*'sliders'"):
        widget_front_end_available()


def test_static_fallback_draws_the_defaults():
    figure = focal_loss_explorer()
    assert isinstance(figure, Figure)
    (axes,) = figure.axes
    cross_entropy, focal, foreground, background = (line.get_ydata() for line in axes.lines)
    p_t = axes.lines[0].get_xdata()
    np.testing.assert_allclose(cross_entropy, -np.log(p_t), rtol=1e-6)
    np.testing.assert_allclose(focal, (1 - p_t) ** 2 * -np.log(p_t), rtol=1e-4)  # Fig. 1, γ = 2
    np.testing.assert_allclose(foreground, 0.25 * (1 - p_t) ** 2 * -np.log(p_t), rtol=1e-4)  # Eq. 5
    np.testing.assert_allclose(background, 0.75 * (1 - p_t) ** 2 * -np.log(p_t), rtol=1e-4)
    assert "100× less" in axes.get_title()  # the paper's "100× lower loss" at p_t = 0.9, γ = 2

    figure = anchor_assignment_explorer()
    assert isinstance(figure, Figure)
    image, boxes = example_scene()
    masks = anchor_assignment(generate_anchors(*image.shape[:2]), boxes, 0.5, 0.4)
    drawn = [patch.get_gid() for patch in figure.axes[0].patches]
    assert drawn.count("positive") + drawn.count("forced") == masks["positive"].sum() + masks["forced"].sum() > 0
    assert drawn.count("ignored") == masks["ignored"].sum() > 0
    assert drawn.count("truth") == len(boxes)


def test_focal_loss_sliders_recompute_the_curves():
    explorer = focal_loss_explorer(interactive=True)
    assert isinstance(explorer, InteractiveFigure)
    assert set(explorer.controls) == {"gamma", "alpha"}
    picture = explorer.image.value
    focal = explorer.figure.axes[0].lines[1].get_ydata().copy()

    explorer.controls["gamma"].value = 0.0  # γ = 0: cross-entropy, α-balanced
    lines = explorer.figure.axes[0].lines
    cross_entropy = lines[0].get_ydata()
    np.testing.assert_allclose(lines[1].get_ydata(), cross_entropy, rtol=1e-4)
    assert not np.allclose(lines[1].get_ydata(), focal)
    np.testing.assert_allclose(lines[2].get_ydata(), 0.25 * cross_entropy, rtol=1e-4)
    assert explorer.image.value != picture

    picture = explorer.image.value
    explorer.controls["alpha"].value = 0.75
    lines = explorer.figure.axes[0].lines
    np.testing.assert_allclose(lines[1].get_ydata(), cross_entropy, rtol=1e-4)  # α does not touch Fig. 1
    np.testing.assert_allclose(lines[2].get_ydata(), 0.75 * cross_entropy, rtol=1e-4)
    np.testing.assert_allclose(lines[3].get_ydata(), 0.25 * cross_entropy, rtol=1e-4)
    assert explorer.image.value != picture
    assert bytes(explorer.image.value).startswith(b"\x89PNG")


def test_anchor_sliders_reassign_and_stay_ordered():
    explorer = anchor_assignment_explorer(interactive=True)

    def counts():
        drawn = [patch.get_gid() for patch in explorer.figure.axes[0].patches]
        return {name: drawn.count(name) for name in ("positive", "forced", "ignored")}

    at_paper = counts()
    explorer.controls["positive_iou"].value = 0.9
    strict = counts()
    assert strict["positive"] < at_paper["positive"]
    image, boxes = example_scene()
    overlaps = np.asarray(iou(generate_anchors(*image.shape[:2]), boxes))
    ties_for_best = (overlaps == overlaps.max(axis=0)).any(axis=1) & (overlaps.max(axis=1) < 0.9)
    assert strict["forced"] == ties_for_best.sum() >= 3  # every box still claims its best anchors (ties too)
    assert strict["ignored"] > at_paper["ignored"]

    explorer.controls["negative_iou"].value = 0.95  # above the positive threshold: the other one follows
    assert explorer.values() == {"positive_iou": 0.95, "negative_iou": 0.95}
    assert counts()["ignored"] == 0
    explorer.controls["positive_iou"].value = 0.3
    assert explorer.values() == {"positive_iou": 0.3, "negative_iou": 0.3}


def test_anchor_explorer_explains_bad_arguments():
    image, boxes = example_scene(128)
    with pytest.raises(ValueError, match="needs its ground-truth boxes"):
        anchor_assignment_explorer(image)
    with pytest.raises(ValueError, match="must have shape \\(height, width, 3\\)"):
        anchor_assignment_explorer(image[..., 0], boxes)


def test_images_in_zero_one_are_shown_like_0_255():
    image, boxes = example_scene(128)
    as_floats = anchor_assignment_explorer(image / 255.0, boxes)
    as_bytes = anchor_assignment_explorer(image, boxes)
    shown = [figure.axes[0].images[0].get_array() for figure in (as_floats, as_bytes)]
    assert np.abs(shown[0].astype(int) - shown[1].astype(int)).max() <= 1


def test_detection_controls_threshold_and_nms():
    image, boxes, predictions = scene_predictions()
    explorer = detection_explorer(image, predictions, ["yellow", "blue", "pink"], gt_boxes=boxes, interactive=True)

    def drawn():
        return [patch for patch in explorer.figure.axes[0].patches if patch.get_gid() == "detection"]

    with_nms = len(drawn())
    assert with_nms == len(detections_for(predictions[None], 128, 128, 0.05, nms=True)[0]) > 0
    picture = explorer.image.value
    explorer.controls["nms"].value = False
    without_nms = len(drawn())
    assert without_nms > with_nms  # the near-duplicates NMS removed are back
    assert explorer.image.value != picture
    explorer.controls["score_threshold"].value = 0.9
    assert len(drawn()) < without_nms
    assert "score ≥ 0.90, NMS off" in explorer.figure.axes[0].get_title()

    figure = detection_explorer(image, predictions)
    assert isinstance(figure, Figure)
    assert len([p for p in figure.axes[0].patches if p.get_gid() == "detection"]) == with_nms
    with pytest.raises(ValueError, match="one image's output"):
        detection_explorer(image, np.stack([predictions, predictions]))


def test_headless_notebook_gets_static_pictures_and_no_stderr(monkeypatch, repo_root):
    """nbclient (what the notebook tests and nbgrader's autograder use) gets PNGs, no widgets, no stderr."""
    import nbformat
    from nbclient import NotebookClient

    cells = [
        "from course.widgets import anchor_assignment_explorer, detection_explorer, focal_loss_explorer",
        "focal_loss_explorer()",
        "anchor_assignment_explorer()",
        "import sys; sys.path.insert(0, 'test_suite/course')\n"
        "from test_interactive import scene_predictions\n"
        "image, boxes, predictions = scene_predictions()\n"
        "detection_explorer(image, predictions, gt_boxes=boxes)",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    client = NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(repo_root)}}
    )
    client.execute()

    outputs = [output for cell in notebook.cells for output in cell.outputs]
    assert not [output for output in outputs if output.get("name") == "stderr"]
    pictures = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(pictures) == 3
    assert not [output for output in outputs if "application/vnd.jupyter.widget-view+json" in output.get("data", {})]

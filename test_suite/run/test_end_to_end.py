"""The reference solution end to end on tiny data: train, checkpoint, resume, evaluate, predict, CLI."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from retinanet.data.synthetic import make_dataset, split_paths
from retinanet.run.evaluate import coco_evaluate, evaluate
from retinanet.run.loop import train
from retinanet.run.predict import predict
from retinanet._keras import BACKEND, ops
from retinanet.run.recipes import TrainConfig
from retinanet.run.run_dir import latest_checkpoint, load_trained_model
from retinanet.tools.cli import main

pytestmark = pytest.mark.backends("tensorflow", "jax")

SIZES = {"train": 4, "val": 1, "test": 2}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    make_dataset(root, image_size=64, split_sizes=SIZES, seed=5)
    return root


def _config(data_root, run_dir, steps):
    annotations, images = split_paths(data_root, "train")
    return TrainConfig(annotations, images, str(run_dir), image_size=64, batch_size=2, steps=steps,
                       warmup_steps=1, checkpoint_every=1, log_every=1, backbone="light")


def _weights(run_dir):
    detector, _ = load_trained_model(run_dir)
    return [ops.convert_to_numpy(w.value) for w in detector.weights]


def test_train_checkpoint_resume_evaluate_predict(tiny_data, tmp_path):
    run = tmp_path / "run"
    history = train(_config(tiny_data, run, steps=2), progress=False)
    assert [row["step"] for row in history] == [1, 2]
    assert all(np.isfinite(row["loss"]) and row["loss"] > 0 for row in history)
    for name in ("config.json", "model.weights.h5", "history.csv", "loss_curves.png",
                 "checkpoints/step-000001.weights.h5", "checkpoints/step-000002.weights.h5"):
        assert (run / name).is_file(), name
    if BACKEND == "tensorflow":
        assert any(name.startswith("events.out.tfevents") for name in os.listdir(run / "logs"))
    trained = _weights(run)

    # Resuming a finished run restores the checkpoint's weights exactly (and trains nothing more).
    (run / "model.weights.h5").unlink()
    assert [row["step"] for row in train(_config(tiny_data, run, steps=2), resume=True, progress=False)] == [1, 2]
    for restored, original in zip(_weights(run), trained):
        np.testing.assert_array_equal(restored, original)

    # Resuming with more steps continues the step counter (the optimizer's) from the checkpoint.
    history = train(_config(tiny_data, run, steps=4), resume=True, progress=False)
    assert [row["step"] for row in history] == [1, 2, 3, 4]
    assert latest_checkpoint(run) == (4, str(run / "checkpoints" / "step-000004.weights.h5"))
    assert sorted(os.listdir(run / "checkpoints")) == [f"step-00000{i}.{kind}" for i in (2, 3, 4)
                                                       for kind in ("manifest.json", "weights.h5")]
    assert any(not np.array_equal(a, b) for a, b in zip(_weights(run), trained))

    with pytest.raises(FileExistsError, match="--resume"):
        train(_config(tiny_data, run, steps=4), progress=False)

    metrics = evaluate(run, *split_paths(tiny_data, "test"), output=tmp_path / "metrics.json")
    assert 0.0 <= metrics["mAP"] <= metrics["mAP50"] <= 1.0
    assert set(metrics["per_class"]) == {"ellipse", "rectangle", "triangle", "star"}
    assert json.loads((tmp_path / "metrics.json").read_text())["mAP50"] == metrics["mAP50"]

    written = predict(run, [split_paths(tiny_data, "test")[1]], tmp_path / "pictures", min_score=0.0)
    assert sorted(os.path.basename(p) for p in written) == ["000000.png", "000001.png"]
    for path in written:
        with Image.open(path) as picture:
            assert picture.size == (64, 64)


def _ground_truth_results(annotations_path):
    with open(annotations_path) as f:
        content = json.load(f)
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
            for a in content["annotations"]]


def test_ground_truth_scores_perfect_map(tiny_data):
    annotations, _ = split_paths(tiny_data, "test")
    metrics = coco_evaluate(annotations, _ground_truth_results(annotations))
    assert metrics["mAP"] == pytest.approx(1.0) and metrics["mAP50"] == pytest.approx(1.0)
    assert all(v["AP"] is None or v["AP"] == pytest.approx(1.0) for v in metrics["per_class"].values())


def test_a_misplaced_box_lowers_map(tiny_data):
    annotations, _ = split_paths(tiny_data, "test")
    results = _ground_truth_results(annotations)
    x, y, width, height = results[0]["bbox"]
    results[0]["bbox"] = [x + width, y, width, height]  # no overlap with its object any more
    metrics = coco_evaluate(annotations, results)
    assert metrics["mAP50"] < 1.0
    assert coco_evaluate(annotations, [])["mAP"] == 0.0


def test_cli_chains_make_data_train_evaluate_predict(tmp_path, capsys):
    data, run = tmp_path / "data", tmp_path / "run"
    main(["make-data", "--root", str(data), "--image-size", "64", "--train", "2", "--val", "0", "--test", "1"])
    annotations, images = split_paths(data, "train")
    main(["train", "--annotations", annotations, "--images", images, "--run-dir", str(run), "--image-size", "64",
          "--batch-size", "2", "--steps", "1", "--backbone", "light", "--no-progress"])
    test_annotations, test_images = split_paths(data, "test")
    main(["evaluate", "--run-dir", str(run), "--annotations", test_annotations, "--images", test_images])
    main(["predict", os.path.join(test_images, "000000.png"), "--run-dir", str(run),
          "--output-dir", str(tmp_path / "out")])
    printed = capsys.readouterr().out
    assert "all classes" in printed and "wrote 1 pictures" in printed
    assert (run / "evaluation_custom.json").is_file() and (tmp_path / "out" / "000000.png").is_file()


@pytest.mark.parametrize("command", ["make-data", "train", "evaluate", "predict", "benchmark", "demo"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: python -m retinanet " + command in capsys.readouterr().out


def test_cli_asks_for_both_annotations_and_images(tmp_path, capsys):
    assert main(["train", "--annotations", "x.json", "--run-dir", str(tmp_path / "run")]) == 1
    assert "give both --annotations and --images" in capsys.readouterr().err


def test_demo_estimates_time_left_and_ends_with_one_summary_line(tmp_path, capsys):
    picture = tmp_path / "picture.png"
    main(["demo", "--data-root", str(tmp_path / "shapes"), "--run-dir", str(tmp_path / "run"), "--steps", "12",
          "--image-size", "64", "--checkpoint-every", "12", "--no-progress", "--pictures", "2", "--picture",
          str(picture)])
    printed = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("train: ") and " s/step over steps 2-11; about " in line and "of training left" in line
               for line in printed), printed
    summary = printed[-1]
    assert summary.startswith("demo finished in ") and " CPU-s on " in summary and "mAP@0.5 " in summary, summary
    assert picture.is_file() and (tmp_path / "run" / "predictions").is_dir()

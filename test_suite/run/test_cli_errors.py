"""The command line when its user makes a mistake: each case runs ``python -m retinanet`` as a subprocess and
expects a non-zero exit, no traceback, and at most two lines on stderr that name the file (or flag) and the
fix; ``--debug`` brings the traceback back."""

import json
import shutil
import subprocess
import sys

import pytest
from PIL import Image

from retinanet.data.synthetic import make_dataset, split_paths
from retinanet.run.loop import train
from retinanet.run.recipes import TrainConfig
from retinanet.tools.cli import main

pytestmark = pytest.mark.backends("tensorflow", "jax")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """``(data root, run directory)``: a 64-px dataset and a run trained on it for one step."""
    root = tmp_path_factory.mktemp("cli")
    data, run = root / "shapes", root / "run"
    make_dataset(data, image_size=64, split_sizes={"train": 2, "val": 0, "test": 1}, seed=3)
    train(TrainConfig(*split_paths(data, "train"), str(run), image_size=64, batch_size=2, steps=1, warmup_steps=1,
                      backbone="light"), progress=False)
    return data, run


def run_cli(cwd, *arguments):
    return subprocess.run([sys.executable, "-m", "retinanet", *map(str, arguments)], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def error_lines(completed, status=1):
    """The stderr lines of a command that failed as a user's mistake should."""
    assert completed.returncode == status, (completed.returncode, completed.stderr)
    assert "Traceback" not in completed.stderr, completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2, completed.stderr
    return "\n".join(lines)


def test_a_malformed_annotation_file(tiny_run, tmp_path):
    data, _ = tiny_run
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [')
    message = error_lines(run_cli(tmp_path, "train", "--annotations", broken, "--images", data / "train",
                                  "--run-dir", tmp_path / "run"))
    assert f"{broken}: malformed JSON" in message and "fix that file" in message
    assert not (tmp_path / "run").exists()


def test_an_inconsistent_dataset(tiny_run, tmp_path):
    data, run = tiny_run
    annotations, images = split_paths(data, "test")
    content = json.loads(open(annotations).read())
    content["annotations"][0]["image_id"] = 999
    inconsistent = tmp_path / "inconsistent.json"
    inconsistent.write_text(json.dumps(content))
    message = error_lines(run_cli(tmp_path, "evaluate", "--run-dir", run, "--annotations", inconsistent,
                                  "--images", images))
    assert f"{inconsistent}: annotation id 1 (image id 999): no image has id 999" in message
    assert "--annotations" in message


def test_a_missing_run_directory(tiny_run, tmp_path):
    message = error_lines(run_cli(tmp_path, "evaluate", "--run-dir", tmp_path / "no-such-run"))
    assert f"{tmp_path / 'no-such-run'} is not a trained run" in message and "train one there first" in message
    assert not (tmp_path / "data").exists()  # the run directory is checked before any data is generated


@pytest.mark.parametrize("arguments, expected", [
    (["train", "--image-size", "100"], "argument --image-size: expected a multiple of 32"),
    (["train", "--jitter-min", "1.3", "--jitter-max", "1.2"], "--jitter-min 1.3 is above --jitter-max 1.2"),
])
def test_bad_flag_values(tmp_path, arguments, expected):
    completed = run_cli(tmp_path, *arguments)
    message = error_lines(completed, status=2 if "--image-size" in arguments else 1)
    assert expected in message and "--help" in message
    assert not (tmp_path / "data").exists()


def test_an_unreadable_image(tiny_run, tmp_path):
    _, run = tiny_run
    picture = tmp_path / "holiday.png"
    picture.write_text("not a picture")
    message = error_lines(run_cli(tmp_path, "predict", picture, "--run-dir", run))
    assert f"cannot read image {picture}" in message and "pass PNG, JPEG" in message


def test_weights_of_another_configuration(tiny_run, tmp_path):
    data, run = tiny_run
    other = tmp_path / "other-run"
    shutil.copytree(run, other)
    config = json.loads((other / "config.json").read_text())
    config["class_names"], config["category_ids"] = config["class_names"][:3], config["category_ids"][:3]
    (other / "config.json").write_text(json.dumps(config))
    message = error_lines(run_cli(tmp_path, "predict", split_paths(data, "test")[1], "--run-dir", other))
    assert f"{other / 'model.weights.h5'} does not fit the model that {other / 'config.json'} describes" in message
    assert "train again into a fresh --run-dir" in message


def test_resuming_with_another_image_size(tiny_run, tmp_path):
    data, run = tiny_run
    resumed = tmp_path / "resumed"
    shutil.copytree(run, resumed)
    message = error_lines(run_cli(tmp_path, "train", "--resume", "--run-dir", resumed, "--image-size", "96",
                                  "--annotations", split_paths(data, "train")[0], "--images", data / "train"))
    assert f"cannot resume {resumed}: its config.json says image_size=64" in message
    assert "resume with --image-size 64" in message


def test_debug_shows_the_traceback(tmp_path):
    completed = run_cli(tmp_path, "--debug", "evaluate", "--run-dir", tmp_path / "no-such-run")
    assert completed.returncode == 1
    assert "Traceback" in completed.stderr and "RunError" in completed.stderr


def _jpeg_dataset(data, folder):
    """The tiny run's train split as JPEG files in ``folder``: ``(annotations, image folder)``."""
    annotations, images = split_paths(data, "train")
    content = json.loads(open(annotations).read())
    folder.mkdir()
    for image in content["images"]:
        name = image["file_name"].replace(".png", ".jpg")
        Image.open(f"{images}/{image['file_name']}").convert("RGB").save(folder / name, quality=95)
        image["file_name"] = name
    (folder / "instances.json").write_text(json.dumps(content))
    return folder / "instances.json", folder


def test_training_on_a_truncated_jpeg_stops_before_training_naming_it(tiny_run, tmp_path):
    data, _ = tiny_run
    annotations, folder = _jpeg_dataset(data, tmp_path / "photos")
    bad = folder / "000001.jpg"
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])  # a JPEG cut in half
    message = error_lines(run_cli(tmp_path, "train", "--annotations", annotations, "--images", folder,
                                  "--run-dir", tmp_path / "run", "--image-size", "64", "--steps", "1"))
    assert f"{annotations}: image id 2 ('000001.jpg'): cannot read image {bad}: image file is truncated" in message
    assert "fix that file" in message
    assert not (tmp_path / "run").exists()


def test_predicting_a_truncated_jpeg_names_it(tiny_run, tmp_path):
    _, run = tiny_run
    picture = tmp_path / "holiday.jpg"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(picture)
    picture.write_bytes(picture.read_bytes()[:200])
    message = error_lines(run_cli(tmp_path, "predict", picture, "--run-dir", run))
    assert f"cannot read image {picture}: " in message and "truncated" in message
    assert not (tmp_path / "predictions").exists()


def test_evaluating_on_no_images(tiny_run, tmp_path):
    data, run = tiny_run
    empty = tmp_path / "empty.json"
    content = json.loads(open(split_paths(data, "test")[0]).read())
    empty.write_text(json.dumps({**content, "images": [], "annotations": []}))
    message = error_lines(run_cli(tmp_path, "evaluate", "--run-dir", run, "--annotations", empty,
                                  "--images", data / "test"))
    assert f"{empty}: no images to evaluate on" in message
    assert not (run / "evaluation_custom.json").exists()


def test_predicting_two_folders_with_the_same_names_writes_every_picture(tiny_run, tmp_path, capsys):
    """Not a mistake, but what a mistake used to cost: pictures of one folder overwriting another's."""
    data, run = tiny_run
    test_image = split_paths(data, "test")[1] + "/000000.png"
    for folder, names in (("dirA", ["x.png"]), ("dirB", ["x.png", "y.png", "y.jpg"])):
        (tmp_path / folder).mkdir()
        for name in names:
            Image.open(test_image).convert("RGB").save(tmp_path / folder / name)
    assert main(["predict", str(tmp_path / "dirA"), str(tmp_path / "dirB"), "--run-dir", str(run),
                 "--output-dir", str(tmp_path / "out")]) == 0
    written = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.png"))
    assert written == ["dirA/x.png", "dirB/x.png", "dirB/y.jpg.png", "dirB/y.png.png"]
    assert f"wrote 4 pictures to {tmp_path / 'out'}" in capsys.readouterr().out

"""Command line: ``python -m retinanet <command>`` (or ``retinanet <command>``); ``<command> --help`` for each.

    make-data   write the embedded synthetic dataset (PNG + COCO JSON), cached
    train       train a RetinaNet on a COCO-format dataset (default: the embedded train split)
    evaluate    COCO mAP of a trained run with pycocotools (default: the embedded test split)
    predict     draw a trained run's detections on image files
    benchmark   training, input-pipeline and inference speed, written as JSON
    demo        make-data → train → evaluate → predict on the embedded data (``make demo``)

A mistake of the person running a command (a bad flag value, a malformed or inconsistent dataset, a
missing run directory, an unreadable image, weights of another configuration) ends the command with one
or two lines on stderr that name the file and the fix, and a non-zero exit status; ``--debug`` shows the
Python traceback instead. Such mistakes raise their own exceptions (:data:`USER_ERRORS`); anything else is
a bug and shows its traceback.
"""

import argparse
import json
import os
import resource
import sys
import time

from retinanet.data.coco import DatasetError
from retinanet.data.synthetic import DEFAULT_IMAGE_SIZE, DEFAULT_OBJECTS, DEFAULT_SEED, DEFAULT_SPLIT_SIZES, SPLITS
from retinanet.run.predict import ImageError
from retinanet.run.run_dir import RunError, TrainingInterrupted

DATA_ROOT = os.path.join("data", "shapes")
DEMO_RUN_DIR = os.path.join("runs", "demo")
DEMO_PICTURE = os.path.join(DEMO_RUN_DIR, "detections.png")
"""The demo draws here; ``make images`` passes ``--picture images/demo_detections.png`` (the README's)."""

PROGRAM = "python -m retinanet"


class CommandLineParser(argparse.ArgumentParser):
    """argparse with a two-line error (the problem, where to read more) instead of the whole usage text."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n  `{self.prog} --help` lists the options and their ranges\n")


def flag_type(convert, accept, requirement):
    """An argparse ``type`` that converts with ``convert`` and rejects values for which ``accept`` is false."""

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {requirement}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {requirement}, got {text}")
        return value

    return parse


positive_int = flag_type(int, lambda v: v >= 1, "a whole number of at least 1")
non_negative_int = flag_type(int, lambda v: v >= 0, "a whole number of at least 0")
positive_float = flag_type(float, lambda v: v > 0, "a number above 0")
non_negative_float = flag_type(float, lambda v: v >= 0, "a number of at least 0")
score = flag_type(float, lambda v: 0 <= v <= 1, "a score between 0 and 1")
fraction = flag_type(float, lambda v: 0 < v <= 1, "a fraction of the image side in (0, 1]")
image_side = flag_type(int, lambda v: v >= 32 and v % 32 == 0,
                      "a multiple of 32 (the stride of C5), such as 96, 128 or 512")


def _add_data_arguments(parser, split):
    parser.add_argument("--annotations", help=f"COCO-format JSON (default: the embedded {split} split, "
                                              "generated if missing)")
    parser.add_argument("--images", help="directory the JSON's file_name entries are relative to")
    parser.add_argument("--data-root", default=DATA_ROOT, help=f"where the embedded data lives (default {DATA_ROOT})")


def _data_paths(args, split):
    """The annotation file and image directory to use; the embedded split unless both are given."""
    if bool(args.annotations) != bool(args.images):
        raise UsageError("give both --annotations and --images, or neither (for the embedded data)")
    if args.annotations:
        return args.annotations, args.images
    from retinanet.data.synthetic import make_dataset, split_paths

    make_dataset(args.data_root)
    return split_paths(args.data_root, split)


class UsageError(ValueError):
    """Flags that do not go together (argparse checks each flag alone)."""


def _train_config(args):
    from retinanet.run.recipes import TrainConfig

    if args.jitter_min > args.jitter_max:
        raise UsageError(f"--jitter-min {args.jitter_min} is above --jitter-max {args.jitter_max}")
    annotations, images = _data_paths(args, "train")
    return TrainConfig(
        annotations=annotations, images=images, run_dir=args.run_dir, image_size=args.image_size,
        batch_size=args.batch_size, steps=args.steps, learning_rate=args.learning_rate,
        warmup_steps=args.warmup_steps, weight_decay=args.weight_decay, clip_norm=args.clip_norm,
        optimizer=args.optimizer, recipe=args.recipe, head_channels=args.head_channels, head_init=args.head_init,
        backbone=args.backbone, backbone_weights=args.backbone_weights, mixed_precision=args.mixed_precision,
        xla=args.xla, checkpoint_every=args.checkpoint_every, log_every=args.log_every,
        jitter=(args.jitter_min, args.jitter_max), seed=args.seed, workers=args.workers,
    )


def _add_train_arguments(parser, run_dir):
    from retinanet.run.recipes import CPU_HEAD_CHANNELS, HEAD_INITS, MIXED_PRECISION, RECIPES, TrainConfig

    defaults = TrainConfig("", "", "")
    parser.add_argument("--run-dir", default=run_dir, help=f"checkpoints, logs, weights (default {run_dir})")
    parser.add_argument("--image-size", type=image_side, default=defaults.image_size,
                        help=f"square model input, a multiple of 32 (default {defaults.image_size})")
    parser.add_argument("--batch-size", type=positive_int, default=defaults.batch_size,
                        help=f"images per step and device (default {defaults.batch_size})")
    parser.add_argument("--steps", type=positive_int, default=defaults.steps,
                        help=f"training steps (default {defaults.steps})")
    parser.add_argument("--learning-rate", type=positive_float, default=None,
                        help="peak learning rate (default 0.001 for adamw, 0.01 for sgd)")
    parser.add_argument("--recipe", choices=RECIPES, default="auto",
                        help="paper: ResNet50, 256-channel pyramid and subnets initialised as the paper says, SGD; "
                             f"cpu: the light backbone, {CPU_HEAD_CHANNELS} channels, He-initialised subnets, AdamW; "
                             "auto: paper on a GPU, cpu on a CPU; the flags below override single choices (default auto)")
    parser.add_argument("--optimizer", choices=("auto", "sgd", "adamw"), default="auto",
                        help="sgd: the paper's SGD with momentum 0.9; adamw: Adam with decoupled weight decay; "
                             "auto: the recipe's (default auto)")
    parser.add_argument("--warmup-steps", type=non_negative_int, default=defaults.warmup_steps,
                        help=f"linear warm-up steps (default {defaults.warmup_steps})")
    parser.add_argument("--weight-decay", type=non_negative_float, default=defaults.weight_decay,
                        help=f"(default {defaults.weight_decay}, the paper's)")
    parser.add_argument("--clip-norm", type=non_negative_float, default=defaults.clip_norm,
                        help=f"clip the gradient's global norm; 0 turns it off (default {defaults.clip_norm})")
    parser.add_argument("--backbone", choices=("auto", "light", "resnet50"), default="auto",
                        help="auto: the recipe's, resnet50 (paper) or light (cpu) (default auto)")
    parser.add_argument("--head-channels", type=positive_int, default=None,
                        help=f"width of the pyramid and the subnets (default: the recipe's, 256 paper or "
                             f"{CPU_HEAD_CHANNELS} cpu)")
    parser.add_argument("--head-init", choices=HEAD_INITS, default="auto",
                        help="the subnets' hidden convolutions: paper (Gaussian, σ = 0.01) or he (σ = √(2/fan-in)); "
                             "auto: the recipe's (default auto)")
    parser.add_argument("--backbone-weights", default="auto",
                        help="resnet50 only: auto (ImageNet if cached), imagenet, none, or an .h5 file")
    parser.add_argument("--mixed-precision", choices=MIXED_PRECISION, default="auto",
                        help="bfloat16 (or float16 with loss scaling) compute, float32 weights; auto = bfloat16 on "
                             "an accelerator, off on a CPU (default auto)")
    parser.add_argument("--xla", choices=("auto", "on", "off"), default="auto",
                        help="TensorFlow backend: compile the step with XLA; auto = on with a GPU (JAX always "
                             "compiles) (default auto)")
    parser.add_argument("--checkpoint-every", type=positive_int, default=defaults.checkpoint_every,
                        help=f"steps between checkpoints (default {defaults.checkpoint_every})")
    parser.add_argument("--log-every", type=positive_int, default=defaults.log_every,
                        help=f"steps between log lines (default {defaults.log_every})")
    parser.add_argument("--jitter-min", type=positive_float, default=defaults.jitter[0],
                        help=f"scale jitter, lower end (default {defaults.jitter[0]})")
    parser.add_argument("--jitter-max", type=positive_float, default=defaults.jitter[1],
                        help=f"scale jitter, upper end (default {defaults.jitter[1]})")
    parser.add_argument("--seed", type=int, default=defaults.seed, help=f"(default {defaults.seed})")
    parser.add_argument("--workers", type=positive_int, default=defaults.workers,
                        help=f"input-pipeline threads (default {defaults.workers})")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --run-dir from its newest checkpoint that verifies (model and "
                             "optimizer state)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def command_make_data(args):
    from retinanet.data.synthetic import make_dataset

    if args.min_object_size >= args.max_object_size:
        raise UsageError(f"--min-object-size {args.min_object_size} must be below --max-object-size "
                         f"{args.max_object_size}")
    sizes = {"train": args.train, "val": args.val, "test": args.test}
    started = time.perf_counter()
    objects = {"max_objects": args.max_objects, "min_object_size": args.min_object_size,
               "max_object_size": args.max_object_size}
    config, generated = make_dataset(args.root, args.image_size, sizes, args.seed, objects, force=args.force,
                                     workers=args.workers)
    verb = "wrote" if generated else "found (cached)"
    print(f"{verb} {sum(sizes.values())} images ({', '.join(f'{k} {v}' for k, v in sizes.items())}) "
          f"at {args.root} in {time.perf_counter() - started:.1f} s")


def command_train(args):
    from retinanet.run.loop import train

    config = _train_config(args)
    started = time.perf_counter()
    history = train(config, resume=args.resume, progress=not args.no_progress, weights_only=args.resume_weights_only)
    if history:
        print(f"trained {config.steps} steps in {time.perf_counter() - started:.0f} s; final loss "
              f"{history[-1]['loss']:.3f}; weights in {os.path.join(config.run_dir, 'model.weights.h5')}")


def _run_evaluation(run_dir, annotations, images, output):
    from retinanet.run.evaluate import evaluate, format_table

    metrics = evaluate(run_dir, annotations, images, output)
    print(format_table(metrics))
    print(f"metrics written to {output}")
    return metrics


def command_evaluate(args):
    from retinanet.run.run_dir import load_run_config

    load_run_config(args.run_dir)  # a mistyped --run-dir stops here, before any data is generated
    annotations, images = _data_paths(args, args.split)
    output = args.output or os.path.join(args.run_dir, f"evaluation_{args.split if not args.annotations else 'custom'}.json")
    _run_evaluation(args.run_dir, annotations, images, output)


def command_predict(args):
    from retinanet.run.predict import predict

    written = predict(args.run_dir, args.inputs, args.output_dir, args.min_score, args.zoom, args.all_classes)
    print(f"wrote {len(written)} pictures to {args.output_dir}")


def command_benchmark(args):
    from retinanet.tools.benchmark import run_benchmark

    run_benchmark(args)


def cpu_seconds():
    """User + system CPU seconds of this process and its finished children (the data's drawing processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def command_demo(args):
    from retinanet.data.synthetic import make_dataset, split_paths
    from retinanet.run.loop import train
    from retinanet.run.predict import draw_test_pictures
    from retinanet.run.progress import format_duration
    from retinanet.tools.benchmark import cpu_model

    started, load = time.perf_counter(), os.getloadavg()[0]
    stamp = lambda: f"[{time.perf_counter() - started:5.0f} s]"  # noqa: E731
    config, generated = make_dataset(args.data_root)
    print(f"{stamp()} data: {'generated' if generated else 'cached'} at {args.data_root} "
          f"({', '.join(f'{k} {v}' for k, v in config['split_sizes'].items())} images)")
    args.annotations, args.images = split_paths(args.data_root, "train")
    train_config = _train_config(args)
    if not args.resume and os.path.isdir(args.run_dir):
        import shutil

        shutil.rmtree(args.run_dir)  # the demo starts afresh unless told to resume
    print(f"{stamp()} training {train_config.steps} steps, batch {train_config.batch_size}, "
          f"{train_config.image_size}×{train_config.image_size} px, into {args.run_dir}", flush=True)
    training_started = time.perf_counter()
    train(train_config, resume=args.resume, progress=not args.no_progress)
    training = time.perf_counter() - training_started
    print(f"{stamp()} training done in {format_duration(training)}; loss curves in "
          f"{os.path.join(args.run_dir, 'loss_curves.png')}")
    test_annotations, test_images = split_paths(args.data_root, "test")
    metrics = _run_evaluation(args.run_dir, test_annotations, test_images,
                              os.path.join(args.run_dir, "evaluation_test.json"))
    print(f"{stamp()} evaluation done")
    with open(test_annotations) as f:
        first_files = [image["file_name"] for image in json.load(f)["images"][: args.pictures]]
    paths = [os.path.join(test_images, name) for name in first_files]
    draw_test_pictures(args.run_dir, paths, os.path.join(args.run_dir, "predictions"), args.picture)
    print(f"{stamp()} detections drawn: {args.picture} and {os.path.join(args.run_dir, 'predictions')}/")
    total = time.perf_counter() - started
    print(f"demo finished in {format_duration(total)} (training {format_duration(training)}), {cpu_seconds():.0f} "
          f"CPU-s on {cpu_model()} ({os.cpu_count()} cores, load {load:.1f}): mAP@0.5 {metrics['mAP50']:.3f}, "
          f"mAP@[.5:.95] {metrics['mAP']:.3f} on {metrics['num_images']} held-out test images")
    return metrics


def build_parser():
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the Python traceback of an error instead of a two-line message")
    parser = CommandLineParser(prog=PROGRAM, description="RetinaNet: data, training, COCO evaluation, prediction "
                               "and benchmarks (`<command> --help` for each)")
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error instead of a "
                                                              "two-line message")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    add = lambda name, **kwargs: commands.add_parser(name, parents=[debug], **kwargs)  # noqa: E731

    make_data = add("make-data", help="write the embedded synthetic dataset (cached)")
    make_data.add_argument("--root", default=DATA_ROOT, help=f"output directory (default {DATA_ROOT})")
    make_data.add_argument("--image-size", type=image_side, default=DEFAULT_IMAGE_SIZE,
                           help=f"image side in pixels, a multiple of 32 (default {DEFAULT_IMAGE_SIZE})")
    for split in SPLITS:
        make_data.add_argument(f"--{split}", type=non_negative_int, default=DEFAULT_SPLIT_SIZES[split],
                               help=f"images in the {split} split (default {DEFAULT_SPLIT_SIZES[split]})")
    make_data.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"(default {DEFAULT_SEED})")
    make_data.add_argument("--max-objects", type=positive_int, default=DEFAULT_OBJECTS["max_objects"],
                           help=f"objects per image are 1 to this (default {DEFAULT_OBJECTS['max_objects']})")
    for bound in ("min", "max"):
        make_data.add_argument(f"--{bound}-object-size", type=fraction, default=DEFAULT_OBJECTS[f"{bound}_object_size"],
                               help=f"{bound}imum object side as a fraction of the image side "
                                    f"(default {DEFAULT_OBJECTS[f'{bound}_object_size']})")
    make_data.add_argument("--force", action="store_true", help="regenerate even if the same data is there")
    make_data.add_argument("--workers", type=positive_int, default=None, help="drawing processes (default: one per CPU)")
    make_data.set_defaults(run=command_make_data)

    train = add("train", help="train a RetinaNet on a COCO-format dataset")
    _add_data_arguments(train, "train")
    _add_train_arguments(train, os.path.join("runs", "train"))
    train.add_argument("--resume-weights-only", action="store_true",
                       help="continue from the newest checkpoint whose model weights load, with the optimizer's "
                            "state (momentum, moments) started afresh at its step: for a run whose checkpoints "
                            "--resume cannot use")
    train.set_defaults(run=command_train)

    evaluate = add("evaluate", help="COCO mAP of a trained run (pycocotools)")
    _add_data_arguments(evaluate, "test")
    evaluate.add_argument("--run-dir", default=DEMO_RUN_DIR, help=f"a trained run (default {DEMO_RUN_DIR})")
    evaluate.add_argument("--split", choices=SPLITS, default="test", help="embedded split to use (default test)")
    evaluate.add_argument("--output", help="metrics JSON (default RUN_DIR/evaluation_<split>.json)")
    evaluate.set_defaults(run=command_evaluate)

    from retinanet.run.predict import DRAW_SCORE_THRESHOLD

    predict = add("predict", help="draw a trained run's detections on images")
    predict.add_argument("inputs", nargs="+", help="image files or directories")
    predict.add_argument("--run-dir", default=DEMO_RUN_DIR, help=f"a trained run (default {DEMO_RUN_DIR})")
    predict.add_argument("--output-dir", default="predictions", help="where to write PNGs (default predictions/)")
    predict.add_argument("--min-score", type=score, default=DRAW_SCORE_THRESHOLD,
                         help=f"draw detections scoring at least this (default {DRAW_SCORE_THRESHOLD})")
    predict.add_argument("--zoom", type=positive_int, default=1, help="enlarge the pictures this many times (default 1)")
    predict.add_argument("--all-classes", action="store_true",
                         help="draw every class's boxes as evaluation scores them (class-wise NMS), not one box per "
                              "object")
    predict.set_defaults(run=command_predict)

    benchmark = add("benchmark", help="speed of training, input pipeline and inference")
    from retinanet.tools.benchmark import add_arguments

    add_arguments(benchmark)
    benchmark.set_defaults(run=command_benchmark)

    demo = add("demo", help="make-data → train → evaluate → predict on the embedded data")
    demo.add_argument("--data-root", default=DATA_ROOT, help=f"(default {DATA_ROOT})")
    _add_train_arguments(demo, DEMO_RUN_DIR)
    demo.add_argument("--pictures", type=positive_int, default=8, help="test images in the detections picture (default 8)")
    demo.add_argument("--picture", default=DEMO_PICTURE, help=f"the detections picture (default {DEMO_PICTURE}; "
                                                              "`make images` refreshes the README's)")
    demo.set_defaults(run=command_demo)
    return parser


def fix_for(error, args):
    """The second line of an error message: what to do about ``error``, or ``None`` when its message says it."""
    if isinstance(error, DatasetError):
        return ("fix that file or record (the format: README, \"Data format\"), or pass other --annotations/--images; "
                "--images is the folder the file_name entries are relative to")
    if isinstance(error, UsageError):
        return f"`{PROGRAM} {args.command} --help` lists the options"
    if isinstance(error, TrainingInterrupted):
        return None  # its message says it
    if isinstance(error, KeyboardInterrupt):
        if args.command in ("train", "demo"):
            return "continue from the last checkpoint with the same command and --resume"
        return None
    if isinstance(error, OSError):
        return "check the path and its permissions"
    return None


def describe(error):
    """The first line of an error message (``OSError`` gives its file; others their own message)."""
    if isinstance(error, KeyboardInterrupt):
        return str(error) if isinstance(error, TrainingInterrupted) else "interrupted"
    if isinstance(error, OSError) and error.filename and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return str(error) or type(error).__name__


USER_ERRORS = (DatasetError, RunError, ImageError, UsageError, OSError, KeyboardInterrupt)
"""What a user's mistake raises here: a dataset that cannot be used (:class:`DatasetError`), a run directory
that cannot be used as asked (:class:`RunError`), an image that cannot be read (:class:`ImageError`), flags
that do not go together (:class:`UsageError`; argparse itself refuses a bad value of a single flag, exit
status 2), a missing or unwritable path (``OSError``), Ctrl-C. Every other exception, ``ValueError``
included, is a bug and keeps its traceback."""


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except USER_ERRORS as error:
        if args.debug:
            raise
        fix = fix_for(error, args)
        kind = "" if isinstance(error, TrainingInterrupted) else "error: "
        sys.stderr.write(f"{PROGRAM} {args.command}: {kind}{describe(error)}\n" + (f"  {fix}\n" if fix else ""))
        return getattr(error, "exit_status", 130) if isinstance(error, KeyboardInterrupt) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

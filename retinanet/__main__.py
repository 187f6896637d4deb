"""Command line: ``python -m retinanet <command>``; ``python -m retinanet <command> --help`` for each.

    make-data   write the embedded synthetic dataset (PNG + COCO JSON), cached
    train       train a RetinaNet on a COCO-format dataset (default: the embedded train split)
    evaluate    COCO mAP of a trained run with pycocotools (default: the embedded test split)
    predict     draw a trained run's detections on image files
    benchmark   training, input-pipeline and inference speed, written as JSON
    demo        make-data → train → evaluate → predict on the embedded data (``make demo``)
"""

import argparse
import json
import os
import sys
import time

from retinanet.data.synthetic import DEFAULT_IMAGE_SIZE, DEFAULT_OBJECTS, DEFAULT_SEED, DEFAULT_SPLIT_SIZES, SPLITS

DATA_ROOT = os.path.join("data", "shapes")
DEMO_RUN_DIR = os.path.join("runs", "demo")
DEMO_PICTURE = os.path.join("images", "demo_detections.png")


def _add_data_arguments(parser, split):
    parser.add_argument("--annotations", help=f"COCO-format JSON (default: the embedded {split} split, "
                                              "generated if missing)")
    parser.add_argument("--images", help="directory the JSON's file_name entries are relative to")
    parser.add_argument("--data-root", default=DATA_ROOT, help=f"where the embedded data lives (default {DATA_ROOT})")


def _data_paths(args, split):
    """The annotation file and image directory to use; the embedded split unless both are given."""
    if bool(args.annotations) != bool(args.images):
        raise SystemExit("error: give both --annotations and --images, or neither (for the embedded data)")
    if args.annotations:
        return args.annotations, args.images
    from retinanet.data.synthetic import make_dataset, split_paths

    make_dataset(args.data_root)
    return split_paths(args.data_root, split)


def _train_config(args):
    from retinanet.train import TrainConfig

    annotations, images = _data_paths(args, "train")
    return TrainConfig(
        annotations=annotations, images=images, run_dir=args.run_dir, image_size=args.image_size,
        batch_size=args.batch_size, steps=args.steps, learning_rate=args.learning_rate,
        warmup_steps=args.warmup_steps, weight_decay=args.weight_decay, clip_norm=args.clip_norm,
        optimizer=args.optimizer,
        backbone=args.backbone, backbone_weights=args.backbone_weights, mixed_precision=args.mixed_precision,
        xla=args.xla, checkpoint_every=args.checkpoint_every, log_every=args.log_every,
        jitter=(args.jitter_min, args.jitter_max), seed=args.seed, workers=args.workers,
    )


def _add_train_arguments(parser, run_dir):
    from retinanet.train import MIXED_PRECISION, TrainConfig

    defaults = TrainConfig("", "", "")
    parser.add_argument("--run-dir", default=run_dir, help=f"checkpoints, logs, weights (default {run_dir})")
    parser.add_argument("--image-size", type=int, default=defaults.image_size,
                        help=f"square model input, a multiple of 32 (default {defaults.image_size})")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size,
                        help=f"images per step and device (default {defaults.batch_size})")
    parser.add_argument("--steps", type=int, default=defaults.steps, help=f"training steps (default {defaults.steps})")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="peak learning rate (default 0.001 for adamw, 0.01 for sgd)")
    parser.add_argument("--optimizer", choices=("auto", "sgd", "adamw"), default="auto",
                        help="sgd: the paper's SGD with momentum 0.9; adamw: Adam with decoupled weight decay; "
                             "auto: sgd on a GPU, adamw on a CPU (default auto)")
    parser.add_argument("--warmup-steps", type=int, default=defaults.warmup_steps,
                        help=f"linear warm-up steps (default {defaults.warmup_steps})")
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay,
                        help=f"(default {defaults.weight_decay}, the paper's)")
    parser.add_argument("--clip-norm", type=float, default=defaults.clip_norm,
                        help=f"clip the gradient's global norm; 0 turns it off (default {defaults.clip_norm})")
    parser.add_argument("--backbone", choices=("auto", "light", "resnet50"), default="auto",
                        help="auto: resnet50 on a GPU, the light backbone on a CPU (default auto)")
    parser.add_argument("--backbone-weights", default="auto",
                        help="resnet50 only: auto (ImageNet if cached), imagenet, none, or an .h5 file")
    parser.add_argument("--mixed-precision", choices=MIXED_PRECISION, default="auto",
                        help="bfloat16 (or float16 with loss scaling) compute, float32 weights; auto = bfloat16 on "
                             "an accelerator, off on a CPU (default auto)")
    parser.add_argument("--xla", choices=("auto", "on", "off"), default="auto",
                        help="TensorFlow backend: compile the step with XLA; auto = on with a GPU (JAX always "
                             "compiles) (default auto)")
    parser.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every,
                        help=f"steps between checkpoints (default {defaults.checkpoint_every})")
    parser.add_argument("--log-every", type=int, default=defaults.log_every,
                        help=f"steps between log lines (default {defaults.log_every})")
    parser.add_argument("--jitter-min", type=float, default=defaults.jitter[0], help="scale jitter, lower end")
    parser.add_argument("--jitter-max", type=float, default=defaults.jitter[1], help="scale jitter, upper end")
    parser.add_argument("--seed", type=int, default=defaults.seed, help=f"(default {defaults.seed})")
    parser.add_argument("--workers", type=int, default=defaults.workers,
                        help=f"input-pipeline threads (default {defaults.workers})")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def command_make_data(args):
    from retinanet.data.synthetic import make_dataset

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
    from retinanet.train import train

    config = _train_config(args)
    started = time.perf_counter()
    history = train(config, resume=args.resume, progress=not args.no_progress)
    if history:
        print(f"trained {config.steps} steps in {time.perf_counter() - started:.0f} s; final loss "
              f"{history[-1]['loss']:.3f}; weights in {os.path.join(config.run_dir, 'model.weights.h5')}")


def _run_evaluation(run_dir, annotations, images, output):
    from retinanet.evaluate import evaluate, format_table

    metrics = evaluate(run_dir, annotations, images, output)
    print(format_table(metrics))
    print(f"metrics written to {output}")
    return metrics


def command_evaluate(args):
    annotations, images = _data_paths(args, args.split)
    output = args.output or os.path.join(args.run_dir, f"evaluation_{args.split if not args.annotations else 'custom'}.json")
    _run_evaluation(args.run_dir, annotations, images, output)


def command_predict(args):
    from retinanet.predict import predict

    written = predict(args.run_dir, args.inputs, args.output_dir, args.min_score, args.zoom)
    print(f"wrote {len(written)} pictures to {args.output_dir}")


def command_benchmark(args):
    from retinanet.benchmark import run_benchmark

    run_benchmark(args)


def command_demo(args):
    from retinanet.data.synthetic import make_dataset, split_paths
    from retinanet.predict import detection_grid, predict
    from retinanet.train import train

    started = time.perf_counter()
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
          f"{train_config.image_size}×{train_config.image_size} px, into {args.run_dir}")
    train(train_config, resume=args.resume, progress=not args.no_progress)
    print(f"{stamp()} training done; loss curves in {os.path.join(args.run_dir, 'loss_curves.png')}")
    test_annotations, test_images = split_paths(args.data_root, "test")
    metrics = _run_evaluation(args.run_dir, test_annotations, test_images,
                              os.path.join(args.run_dir, "evaluation_test.json"))
    print(f"{stamp()} evaluation done")
    with open(test_annotations) as f:
        first_files = [image["file_name"] for image in json.load(f)["images"][: args.pictures]]
    paths = [os.path.join(test_images, name) for name in first_files]
    predict(args.run_dir, paths, os.path.join(args.run_dir, "predictions"))
    detection_grid(args.run_dir, paths, args.picture)
    total = time.perf_counter() - started
    print(f"{stamp()} detections drawn: {args.picture} and {os.path.join(args.run_dir, 'predictions')}/")
    print(f"demo finished in {total / 60:.1f} min: mAP@0.5 = {metrics['mAP50']:.3f}, "
          f"mAP@[.5:.95] = {metrics['mAP']:.3f} on {metrics['num_images']} held-out test images")
    return metrics


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m retinanet", description="RetinaNet: data, training, "
                                     "COCO evaluation, prediction and benchmarks (`<command> --help` for each)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    make_data = commands.add_parser("make-data", help="write the embedded synthetic dataset (cached)")
    make_data.add_argument("--root", default=DATA_ROOT, help=f"output directory (default {DATA_ROOT})")
    make_data.add_argument("--image-size", type=int, default=DEFAULT_IMAGE_SIZE,
                           help=f"image side in pixels, a multiple of 32 (default {DEFAULT_IMAGE_SIZE})")
    for split in SPLITS:
        make_data.add_argument(f"--{split}", type=int, default=DEFAULT_SPLIT_SIZES[split],
                               help=f"images in the {split} split (default {DEFAULT_SPLIT_SIZES[split]})")
    make_data.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"(default {DEFAULT_SEED})")
    make_data.add_argument("--max-objects", type=int, default=DEFAULT_OBJECTS["max_objects"],
                           help=f"objects per image are 1 to this (default {DEFAULT_OBJECTS['max_objects']})")
    for bound in ("min", "max"):
        make_data.add_argument(f"--{bound}-object-size", type=float, default=DEFAULT_OBJECTS[f"{bound}_object_size"],
                               help=f"{bound}imum object side as a fraction of the image side "
                                    f"(default {DEFAULT_OBJECTS[f'{bound}_object_size']})")
    make_data.add_argument("--force", action="store_true", help="regenerate even if the same data is there")
    make_data.add_argument("--workers", type=int, default=None, help="drawing processes (default: one per CPU)")
    make_data.set_defaults(run=command_make_data)

    train = commands.add_parser("train", help="train a RetinaNet on a COCO-format dataset")
    _add_data_arguments(train, "train")
    _add_train_arguments(train, os.path.join("runs", "train"))
    train.set_defaults(run=command_train)

    evaluate = commands.add_parser("evaluate", help="COCO mAP of a trained run (pycocotools)")
    _add_data_arguments(evaluate, "test")
    evaluate.add_argument("--run-dir", default=DEMO_RUN_DIR, help=f"a trained run (default {DEMO_RUN_DIR})")
    evaluate.add_argument("--split", choices=SPLITS, default="test", help="embedded split to use (default test)")
    evaluate.add_argument("--output", help="metrics JSON (default RUN_DIR/evaluation_<split>.json)")
    evaluate.set_defaults(run=command_evaluate)

    predict = commands.add_parser("predict", help="draw a trained run's detections on images")
    predict.add_argument("inputs", nargs="+", help="image files or directories")
    predict.add_argument("--run-dir", default=DEMO_RUN_DIR, help=f"a trained run (default {DEMO_RUN_DIR})")
    predict.add_argument("--output-dir", default="predictions", help="where to write PNGs (default predictions/)")
    predict.add_argument("--min-score", type=float, default=0.4, help="draw detections scoring at least this (0.4)")
    predict.add_argument("--zoom", type=int, default=1, help="enlarge the pictures this many times (default 1)")
    predict.set_defaults(run=command_predict)

    benchmark = commands.add_parser("benchmark", help="speed of training, input pipeline and inference")
    from retinanet.benchmark import add_arguments

    add_arguments(benchmark)
    benchmark.set_defaults(run=command_benchmark)

    demo = commands.add_parser("demo", help="make-data → train → evaluate → predict on the embedded data")
    demo.add_argument("--data-root", default=DATA_ROOT, help=f"(default {DATA_ROOT})")
    _add_train_arguments(demo, DEMO_RUN_DIR)
    demo.add_argument("--pictures", type=int, default=8, help="test images in the detections picture (default 8)")
    demo.add_argument("--picture", default=DEMO_PICTURE, help=f"the detections picture (default {DEMO_PICTURE})")
    demo.set_defaults(run=command_demo)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The docs' results tables, generated from ``benchmarks/*.json`` (the standard library only).

The measured figures live in the JSON files alone; the pages show them through tables that this script
writes between markers in ``README.md`` and ``docs/*.md``::

    <!-- table: cpu-training -->
    (generated: do not edit; every table names the machine and the JSON it comes from)
    <!-- end table -->

Usage, from anywhere::

    python benchmarks/tables.py           # rewrite every table in place (make tables)
    python benchmarks/tables.py --check   # write nothing; exit 1 naming each stale, unknown or unplaced table
    python benchmarks/tables.py --list    # the tables, the JSON each reads, and the pages that hold it

``test_suite/project/test_docs_tables.py`` runs the check, and also fails when a figure a table shows is typed in
the prose of the pages (:func:`typed_figures`): prose says "see Results" instead.
"""

import argparse
import glob
import json
import os
import re
import sys

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

BLOCK = re.compile(r"<!-- table: ([A-Za-z0-9_.-]+) -->\n(.*?)<!-- end table -->", re.S)
"""A generated table in a page: its name and its current text."""


# --- figures: every measured number a table shows goes through Figures, so the prose test knows it -----

class Figures:
    """Formats measured numbers and remembers what was shown (see :func:`typed_figures`)."""

    def __init__(self):
        self.shown = {}  # text -> the table that shows it

    def __call__(self, value, digits=0, unit="", thousands=False, times=False, bold=False):
        text = f"{value:,.{digits}f}" if thousands else f"{value:.{digits}f}"
        forms = [text]
        if thousands:
            forms.append(text.replace(",", ""))
        if isinstance(value, float) and repr(value) not in forms and len(repr(value)) <= 8:
            forms.append(repr(value))  # the JSON's own spelling, e.g. 4.153 shown as 4.15
        suffix = "×" if times else (f" {unit}" if unit else "")
        for form in forms:
            self.shown.setdefault(form, self.table)
            if suffix:
                self.shown.setdefault(form + suffix, self.table)
        shown = text + suffix
        return f"**{shown}**" if bold else shown

    table = None


def significant_digits(text):
    """Digits that identify a figure: 0.922 has 3, 0.047 has 2, 6,520 has 3, 100 has 1."""
    digits = re.sub(r"[^0-9.]", "", text)
    if "." not in digits:
        digits = digits.rstrip("0")
    return len(digits.replace(".", "").lstrip("0"))


def distinctive(text):
    """A shown figure worth looking for in prose: with its unit or ×, or with 3 significant digits."""
    return not re.fullmatch(r"[0-9.,]+", text) or significant_digits(text) >= 3


# --- reading the JSON files ------------------------------------------------------------------------------

def load(root, name):
    with open(os.path.join(root, "benchmarks", name)) as handle:
        return json.load(handle)


def load_range(values):
    """``1.2–2.2`` from load averages (several lists or numbers), or ``1.4`` when all are equal."""
    flat = []
    for value in values:
        flat.extend(value if isinstance(value, (list, tuple)) else [value])
    flat = [v for v in flat if v is not None]
    if not flat:
        return None
    low, high = min(flat), max(flat)
    return f"{low:.1f}" if f"{low:.1f}" == f"{high:.1f}" else f"{low:.1f}–{high:.1f}"


def provenance(machine, sources, date=None, load=None, extra=None):
    """The line above every table: the machine, the date, the load and the JSON files."""
    parts = [f"Measured on **{machine}**"]
    if date:
        parts.append(date)
    if load:
        parts.append(f"load average {load}")
    if extra:
        parts.append(extra)
    files = ", ".join(f"`benchmarks/{name}`" for name in sources)
    return f"*{'; '.join(parts)}. From {files}.*"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# --- the tables ------------------------------------------------------------------------------------------

DEMO = "demo-cpu-2core.json"


def demo_map(root, fig):
    data = load(root, DEMO)
    run = data["runs"][0]
    evaluation, training = run["evaluation"], data["training"]
    rows = [["all classes", fig(evaluation["mAP50"], 3, bold=True), fig(evaluation["mAP"], 3, bold=True)]]
    for name, values in evaluation["per_class"].items():
        rows.append([name, fig(values["AP50"], 3), fig(values["AP"], 3)])
    head = (f"`make demo`: {training['steps']} steps of {training['batch_size']} images at "
            f"{training['image_size']} px, {evaluation['num_images']} held-out test images")
    return "\n\n".join([provenance(data["machine"], [DEMO], data["date"], load_range(run["load_average_range"])),
                        table([head, "mAP@0.5", "mAP@[.5:.95]"], rows)])


def demo_time(root, fig):
    data = load(root, DEMO)
    steps = data["training"]["steps"]
    rows = []
    for run in data["runs"]:
        stages = run.get("stage_seconds")
        split = "—"
        if stages:
            split = " / ".join(fig(stages[k], 0) for k in ("data", "training", "evaluation", "drawing")) + " s"
            split += f" ({fig(stages['training'] / steps, 3, 's')} per step)"
        cpu = fig(run["cpu_seconds"], 0)
        if "user_seconds" in run:
            cpu += f" ({fig(run['user_seconds'], 1)} user + {fig(run['system_seconds'], 1)} system)"
        memory = fig(run["peak_memory_gib"], 1, "GiB") if "peak_memory_gib" in run else "—"
        kernels = run["kernels"] + (f" (`{run['environment']} make demo`)" if run["environment"] else "")
        rows.append([kernels, fig(run["wall_seconds"], 0, "s"), split, cpu, memory,
                     f"{fig(run['evaluation']['mAP50'], 3)} / {fig(run['evaluation']['mAP'], 3)}",
                     load_range(run["load_average_range"])])
    header = ["oneDNN kernels", "wall time", "data / training / evaluation / drawing", "CPU-seconds", "peak memory",
              "mAP@0.5 / mAP@[.5:.95]", "load average"]
    return "\n\n".join([provenance(data["machine"], [DEMO], data["date"]), table(header, rows)])


def cpu_recipe(root, fig):
    data = load(root, DEMO)
    choices = data["recipe_choices"]
    base = choices["cpu_recipe"]

    def result(entry):
        text = f"{fig(entry['mAP50'], 3)} / {fig(entry['mAP'], 3)}"
        if "training_cpu_seconds" in entry:
            text += f", {fig(entry['training_cpu_seconds'], 0, 'CPU-s')}"
        return text

    rows = [["everything as the CPU recipe has it", "", "", "**" + result(base) + "**"]]
    for choice in choices["choices"]:
        rows.append([choice["choice"], choice["paper"], choice["cpu_recipe"],
                     "; ".join(f"{alt['setting']}: {result(alt)}" for alt in choice["alternatives"])])
    header = ["choice", "the paper's", "the CPU recipe's", "mAP@0.5 / mAP@[.5:.95], training CPU-seconds"]
    return "\n\n".join([provenance(data["machine"], [DEMO], data["date"], extra=choices["what"]),
                        table(header, rows)])


BACKBONE_NAMES = {"resnet50": "ResNet50", "light": "light"}

CPU_SPEED = ("cpu-2core.json", "cpu-2core-paper.json")
ROW_NOTES = {("light", 64): "the CPU recipe: `make demo`", ("light", 256): "the paper's width",
             ("resnet50", 64): "`train --backbone resnet50` on a CPU", ("resnet50", 256): "the paper's network"}


def cpu_training(root, fig):
    files = [load(root, name) for name in CPU_SPEED]
    cases, rows = [], {}
    for data in files:
        for entry in data["training"]:
            case = (entry["image_size"], entry["batch_size"])
            if case not in cases:
                cases.append(case)
            cell = (f"{fig(entry['seconds_per_step'], 3, 's/step')}, "
                    f"{fig(entry['images_per_second'], 1, 'img/s')}")
            rows.setdefault((entry["backbone"], entry["channels"]), {})[case] = cell
        for entry in data["inference"]:
            if entry["candidates"].startswith("paper"):
                key = (entry["backbone"], entry["channels"])
                rows.setdefault(key, {})["inference"] = fig(entry["milliseconds_per_image"], 1, "ms")
                inference = entry
    cases.sort()
    header = ["backbone, pyramid and subnets"] + [f"training {size} px, batch {batch}" for size, batch in cases]
    header.append(f"inference {inference['image_size']} px, batch {inference['batch_size']}, "
                  f"{inference['classes']} classes, incl. NMS")
    body = []
    for (backbone, channels) in sorted(rows, key=lambda k: (k[0] != "light", k[1])):
        label = f"{BACKBONE_NAMES.get(backbone, backbone)}, {channels} channels"
        if (backbone, channels) in ROW_NOTES:
            label += f" ({ROW_NOTES[backbone, channels]})"
        cells = rows[backbone, channels]
        body.append([label] + [cells.get(case, "—") for case in cases] + [cells.get("inference", "—")])
    machines = sorted({data["device"]["summary"] for data in files})
    dates = sorted({data["started"][:10] for data in files})
    loads = load_range([data[k] for data in files for k in ("load_average_before", "load_average_after")])
    precision = sorted({e["precision"] for data in files for e in data["training"]})
    notes = []
    for name, data in zip(CPU_SPEED, files):
        pipeline = data.get("input_pipeline")
        if pipeline:
            notes.append(f"The input pipeline alone (`{name}`): "
                         f"{fig(pipeline['images_per_second'], 0, 'img/s', thousands=True)} at "
                         f"{pipeline['image_size']} px, batch {pipeline['batch_size']}, {pipeline['workers']} threads.")
    memory = ", ".join(f"{fig(data['peak_memory_mib'] / 1024, 1, 'GiB')} (`{name}`)" for name, data in zip(CPU_SPEED, files))
    notes.append(f"Peak memory, {files[0]['peak_memory_kind']}: {memory}.")
    return "\n\n".join([provenance(" / ".join(machines), CPU_SPEED, ", ".join(dates), loads,
                                   f"median of steady steps, {', '.join(precision)}"),
                        table(header, body), " ".join(notes)])


KERASHUB = ("kerashub-cpu.json", "kerashub-cpu-avx2.json")
CONFIGURATIONS = {
    "paper_scratch": "the paper's network, every layer training (like for like)",
    "paper_finetune": "the paper's network, fine-tuning (Detectron: stem, stage 2 and batch norm frozen)",
    "cpu_scratch": "the CPU recipe's 64-channel pyramid and subnets on ResNet50, from scratch",
    "cpu_finetune": "the same, fine-tuning from ImageNet weights",
}


def kerashub_cpu(root, fig):
    full, avx2 = (load(root, name) for name in KERASHUB)
    rows = []
    for key, label in CONFIGURATIONS.items():
        channels = full["runs"][key][0]["channels"]
        rows.append([label, channels, fig(full["forward_gflops_per_image"][key], 1),
                     fig(full["median_images_per_second"][key], 2), fig(full["ratio_to_kerashub"][key], 2, times=True),
                     fig(avx2["median_images_per_second"][key], 2), fig(avx2["ratio_to_kerashub"][key], 2, times=True)])
    rows.append(["KerasHub `RetinaNetObjectDetector.fit()`, steady steps", "", "",
                 fig(full["median_images_per_second"]["kerashub"], 2), "1×",
                 fig(avx2["median_images_per_second"]["kerashub"], 2), "1×"])
    rows.append(["KerasHub, its own script's figure (one timed `fit()` call)", "", "",
                 fig(full["kerashub_script_median_images_per_second"], 1), "",
                 fig(avx2["kerashub_script_median_images_per_second"], 1), ""])
    for key, label in (("paper_scratch", "training GFLOP/s, the paper's network (3 × forward GFLOP × img/s)"),
                       ("kerashub", "training GFLOP/s, KerasHub")):
        rows.append([label, "", "", fig(full["training_gflops_per_second_like_for_like"][key], 0), "",
                     fig(avx2["training_gflops_per_second_like_for_like"][key], 0), ""])
    rows.append(["the CPU's float32 rate on a 2048 × 2048 matrix product, GFLOP/s", "", "",
                 fig(full["matmul_gflops_per_second"], 0), "", fig(avx2["matmul_gflops_per_second"], 0), ""])
    header = ["this project's training step (as `train` runs it)", "channels", "forward GFLOP per image",
              "img/s", "× KerasHub", "AVX2 kernels: img/s", "× KerasHub"]
    machine = f"{full['cpu']}, {full['cpu_cores']} cores ({full['vector_extensions']})"
    extra = (f"{full['what']}; median of {len(full['runs']['kerashub'])} runs per side, "
             f"{full['timed_steps']} timed steps after {full['warmup_steps']}; oneDNN "
             f"{full['onednn_max_cpu_isa']} / {avx2['onednn_max_cpu_isa']}")
    loads = load_range([run["load_average"] for data in (full, avx2) for runs in data["runs"].values() for run in runs])
    return "\n\n".join([provenance(machine, KERASHUB, load=loads, extra=extra), table(header, rows)])


def gpu_check(name):
    def build(root, fig):
        data = load(root, name)
        device, versions, stages = data["device"], data["versions"], data["stages"]
        rows, fastest = [], 0.0
        peers = {}
        for stage_name, stage in stages.items():
            result = stage.get("result") or {}
            if stage_name.startswith("peer_") and "img_per_s" in result:
                precision = "bfloat16" if "bfloat16" in result["policy"] else "float32"
                peers[result["size"], result["batch"], precision, bool(result.get("frozen"))] = result
        for stage_name, stage in stages.items():
            result = stage.get("result") or {}
            for entry in result.get("training", []):
                what = (f"training, {BACKBONE_NAMES.get(entry['backbone'], entry['backbone'])}, {entry['image_size']} px, batch {entry['batch_size']}, "
                        f"{entry['precision']}" + (", the paper's recipe (stem, stage 2 and batch norm frozen)"
                                                   if entry.get("frozen") else ""))
                measured = (f"{fig(entry['images_per_second'], 1, 'img/s', bold=not rows)} "
                            f"({fig(entry['seconds_per_step'], 4, 's/step')}, peak "
                            f"{fig(entry['peak_memory_mib'] / 1024, 1, 'GiB')})")
                fastest = max(fastest, entry["images_per_second"])
                peer = peers.get((entry["image_size"], entry["batch_size"], entry["precision"], bool(entry.get("frozen"))))
                beside = "—"
                if peer:
                    beside = (f"{peer['peer']} `fit()`: {fig(peer['img_per_s'], 1, 'img/s')} (this project "
                              f"{fig(entry['images_per_second'] / peer['img_per_s'], 2, times=True)})")
                rows.append([what, measured, beside])
        for stage in stages.values():
            result = stage.get("result") or {}
            groups = {}
            for entry in result.get("inference", []):
                key = (entry["backbone"], entry["image_size"], entry["batch_size"], entry["classes"], entry["precision"])
                groups.setdefault(key, {})["paper" if entry["candidates"].startswith("paper") else "all"] = entry
            for (backbone, size, batch, classes, precision), entries in groups.items():
                cells = []
                if "paper" in entries:
                    cells.append(fig(entries["paper"]["milliseconds_per_image"], 1, "ms"))
                if "all" in entries:
                    cells.append(f"{fig(entries['all']['milliseconds_per_image'], 1, 'ms')} with every candidate "
                                 "reaching NMS")
                rows.append([f"inference incl. decoding and NMS, {BACKBONE_NAMES.get(backbone, backbone)}, {size} px, batch {batch}, "
                             f"{classes} classes, {precision}", "; ".join(cells), "—"])
        for stage in stages.values():
            pipeline = (stage.get("result") or {}).get("input_pipeline")
            if pipeline:
                share = f" ({fig(pipeline['images_per_second'] / fastest, 2, times=True)} the fastest training step's rate)" if fastest else ""
                rows.append([f"input pipeline alone, {pipeline['image_size']} px, batch {pipeline['batch_size']}, "
                             f"{pipeline['workers']} threads", fig(pipeline["images_per_second"], 1, "img/s") + share, "—"])
        missing = [f"`{stage_name}`: {stage['status']}" for stage_name, stage in stages.items() if stage.get("status") != "ok"]
        if missing:
            rows.append(["not measured in this call", "; ".join(missing), ""])
        machine = f"{', '.join(device['accelerators']) or 'no accelerator'} ({device['cpu']}, {device['cpu_cores']} cores)"
        call = f"`bash benchmarks/gpu/run.sh --part {data['part']}`" if "part" in data else "`bash benchmarks/gpu/run.sh`"
        clock = "; both sides timed by whole `fit()` calls" if "clock" in data else ""
        extra = (f"one call of {call}, {data['elapsed_seconds']:.0f} s{clock}; "
                 + ", ".join(f"{k} {v}" for k, v in versions.items() if k in ("python", "keras", "jax", "tensorflow")))
        return "\n\n".join([provenance(machine, [name], data["started"][:10], extra=extra),
                            table(["measure", "this project", "peer, same call"], rows)])
    return build


def checks(root, fig):
    data = load(root, "checks.json")
    rows = []
    for name, times in data["checks"].items():
        check, cell = times["check_s"], times["cell_s"]
        rows.append([f"`{name}`", f"{fig(check['median_s'], 3, 's')} ({fig(check['max_s'], 3, 's')})",
                     f"{fig(cell['median_s'], 3, 's')} ({fig(cell['max_s'], 3, 's')})"])
    for name, times in data["imports"].items():
        rows.append([name.replace("import tests", "`import tests`"),
                     f"{fig(times['median_s'], 3, 's')} ({fig(times['max_s'], 3, 's')})", ""])
    budget = data["budget_s"]
    header = ["check", "the check's call: median (worst)", "its whole cell: median (worst)"]
    samples = data["load_average_1min_at_samples"]
    extra = (f"{data['repeats']} fresh kernels per check; TensorFlow {data['tensorflow']}; budget "
             f"{budget['check']:g} s per check, {budget['import_tests']:g} s for the import: "
             f"{'all within' if data['within_budget'] else 'NOT all within'}")
    return "\n\n".join([provenance(data["machine"], ["checks.json"], data["date"],
                                   load_range([samples["min"], samples["max"]]), extra),
                        table(header, rows)])


def grading(root, fig):
    data = load(root, "grading.json")
    course, klass, hostile = data["full_course_submission"], data["class"], data["hostile_catalogue"]
    points = sum(o[2] for o in course["outcomes"]), sum(o[3] for o in course["outcomes"])
    rows = [
        [f"a full course submission ({len(course['assignments'])} assignments, {points[0]:g}/{points[1]:g} points), "
         f"{course['jobs']} jobs", fig(course["seconds"], 1, "s", bold=True), f"≤ {course['target_seconds']} s"],
        [f"a class of {klass['students']} (`{klass['assignment']}`), {klass['serial']['jobs']} job",
         fig(klass["serial"]["seconds"], 1, "s"), ""],
        [f"the same class, {klass['parallel']['jobs']} jobs", fig(klass["parallel"]["seconds"], 1, "s"),
         "same grades" if klass["same_grades"] else "DIFFERENT grades"],
        [f"speed-up with {klass['parallel']['jobs']} jobs", fig(klass["speedup"], 2, times=True, bold=True),
         f"≥ {klass['target_speedup']}×"],
        [f"the hostile catalogue ({hostile['cases']} submissions)", fig(hostile["seconds"], 1, "s"),
         "every case as expected" if hostile["all_as_expected"] else "NOT every case as expected"],
        ["peak memory of the driver process", fig(data["peak_driver_memory_mb"], 0, "MB"), ""],
    ]
    loads = load_range([course["load_average_before"], course["load_average_after"],
                        klass["serial"]["load_average_before"], klass["parallel"]["load_average_after"]])
    return "\n\n".join([provenance(data["machine"], ["grading.json"], data.get("date"), loads, data["sandbox"]),
                        table(["grading", "wall time", "target / outcome"], rows)])


def grading_before_after(root, fig):
    data = load(root, "grading-before-after.json")
    medians, commits = data["median_seconds"], data["commits"]
    rows = [[f"before (`{commits['before']}`)", fig(medians["before"], 2, "s")],
            [f"after (`{commits['after']}`)", fig(medians["after"], 2, "s")],
            ["after ÷ before", fig(data["after_over_before"], 2, times=True, bold=True)]]
    loads = load_range([side["load_average_before"] for r in data["rounds"] for side in r.values()])
    extra = f"{data['what']}; {len(data['rounds'])} alternating rounds, medians"
    return "\n\n".join([provenance(data["machine"], ["grading-before-after.json"], data["date"], loads, extra),
                        table(["commit", "median wall time"], rows)])


def cpu_before_after(root, fig):
    data = load(root, "cpu-before-after.json")
    runs = data["runs"]
    rows = []
    for i, (before, after) in enumerate(zip(runs["before"], runs["after"]), 1):
        rows.append([f"round {i}", fig(before["images_per_second"], 2, "img/s"), fig(after["images_per_second"], 2, "img/s"),
                     fig(after["images_per_second"] / before["images_per_second"], 2, times=True)])
    medians, cpu = data["median_images_per_second"], data["median_cpu_seconds_per_run"]
    rows.append(["median img/s", fig(medians["before"], 2, "img/s"), fig(medians["after"], 2, "img/s"),
                 fig(data["after_over_before"], 2, times=True, bold=True)])
    rows.append(["median CPU-seconds per run", fig(cpu["before"], 1, "CPU-s"), fig(cpu["after"], 1, "CPU-s"),
                 fig(data["cpu_seconds_after_over_before"], 2, times=True)])
    extra = f"{data['what']}; {data['steps']} steps per run"
    return "\n\n".join([provenance(f"{data['cpu']}, {data['cpu_cores']} cores", ["cpu-before-after.json"], data["date"],
                                   load_range(data["load_average_range"]), extra),
                        table(["", f"before (`{data['before']}`)", f"after ({data['after']})", "after ÷ before"], rows)])


def _mutation_extra(data, fig):
    sample = data.get("sample")
    scope = f"a sample of {sample['size']} (seed {sample['seed']})" if sample else "every mutant"
    return (f"{scope}, {data['jobs']} worker processes, {fig(data['seconds'], 0, 's')} in all; score = killed ÷ "
            f"(mutants − equivalent)")


def mutation(root, fig):
    data = load(root, "mutation.json")
    rows = []
    entries = list(data["checks"].items()) + [("all checks", data["total"])]
    for name, entry in entries:
        label = f"`{name}`" if name.startswith("TEST_") else f"**{name}**"
        rows.append([label, entry["mutants"], entry["equivalent"], entry["killed"], entry["survived"],
                     entry["errors"] + entry["timeouts"],
                     fig(100 * entry["score"], 1, "%", bold=not name.startswith("TEST_"))])
    header = ["check", "mutants", "equivalent", "killed (message)", "survived", "crashed or timed out", "score"]
    return "\n\n".join([provenance(data["machine"], ["mutation.json"], data["date"],
                                   load_range([data["load_average_before"], data["load_average_after"]]),
                                   _mutation_extra(data, fig)),
                        table(header, rows)])


def mutation_summary(root, fig):
    data = load(root, "mutation.json")
    total = data["total"]
    weakest = min(data["checks"].items(), key=lambda item: item[1]["score"])
    rows = [[total["mutants"], total["equivalent"], total["killed"], total["survived"], total["errors"] + total["timeouts"],
             fig(100 * total["score"], 1, "%", bold=True), f"`{weakest[0]}` {fig(100 * weakest[1]['score'], 1, '%')}"]]
    header = ["machine-made mutants", "equivalent", "killed (message)", "survived", "crashed or timed out",
              "score", "lowest check"]
    return "\n\n".join([provenance(data["machine"], ["mutation.json"], data["date"]), table(header, rows)])


def tables(root=REPOSITORY):
    """``{name: (build, [JSON files read])}``, one GPU table per ``benchmarks/gpu-*.json``."""
    found = {
        "demo-map": (demo_map, [DEMO]),
        "demo-time": (demo_time, [DEMO]),
        "cpu-recipe": (cpu_recipe, [DEMO]),
        "cpu-training": (cpu_training, list(CPU_SPEED)),
        "kerashub-cpu": (kerashub_cpu, list(KERASHUB)),
        "checks": (checks, ["checks.json"]),
        "grading": (grading, ["grading.json"]),
        "grading-before-after": (grading_before_after, ["grading-before-after.json"]),
        "cpu-before-after": (cpu_before_after, ["cpu-before-after.json"]),
        "mutation-summary": (mutation_summary, ["mutation.json"]),  # before "mutation", which repeats its figures
        "mutation": (mutation, ["mutation.json"]),
    }
    for path in sorted(glob.glob(os.path.join(root, "benchmarks", "gpu-*.json"))):
        name = os.path.basename(path)
        found[name[: -len(".json")]] = (gpu_check(name), [name])
    return found


def render(root=REPOSITORY):
    """``(texts, figures)``: every table's Markdown by name, and the :class:`Figures` they show."""
    fig, texts = Figures(), {}
    for name, (build, _) in tables(root).items():
        fig.table = name
        texts[name] = build(root, fig)
    return texts, fig


# --- the pages --------------------------------------------------------------------------------------------

def pages(root=REPOSITORY):
    """The Markdown pages that may hold tables: README.md and docs/*.md (paths relative to ``root``)."""
    return ["README.md"] + sorted(os.path.relpath(p, root) for p in glob.glob(os.path.join(root, "docs", "*.md")))


def block(name, text):
    return f"<!-- table: {name} -->\n\n{text}\n\n<!-- end table -->"


def update(root=REPOSITORY, write=True):
    """Bring every page's tables up to date (or only compare); returns the problems, one line each."""
    texts, _ = render(root)
    problems, placed = [], set()
    for page in pages(root):
        path = os.path.join(root, page)
        with open(path, encoding="utf-8") as handle:
            old = handle.read()

        def replace(match):
            name = match.group(1)
            if name not in texts:
                problems.append(f"{page}: unknown table {name!r} (known: {', '.join(texts)})")
                return match.group(0)
            placed.add(name)
            new = block(name, texts[name])
            if new != match.group(0):
                problems.append(f"{page}: table {name!r} is stale")
            return new

        new = BLOCK.sub(replace, old)
        if write and new != old:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(new)
    for name in texts:
        if name not in placed:
            problems.append(f"table {name!r} appears in no page: put `<!-- table: {name} -->` and "
                            f"`<!-- end table -->` where it belongs (docs/results.md)")
    return problems


def prose(text):
    """A page's text without its generated tables."""
    return BLOCK.sub("", text)


def typed_figures(text, figures):
    """The shown figures that ``text`` (prose) types itself: ``[(figure, table)]``."""
    found = []
    for figure, table_name in figures.shown.items():
        if not distinctive(figure):
            continue
        pattern = r"(?<![\w.,])" + re.escape(figure) + (r"(?![\w]|[.,]\d)" if figure[-1].isalnum() else "")
        if re.search(pattern, text):
            found.append((figure, table_name))
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description="Generate the docs' results tables from benchmarks/*.json.")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 naming each stale table")
    parser.add_argument("--list", action="store_true", help="the tables, their JSON files and their pages")
    parser.add_argument("--root", default=REPOSITORY, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.list:
        where = {}
        for page in pages(args.root):
            with open(os.path.join(args.root, page), encoding="utf-8") as handle:
                for name in BLOCK.findall(handle.read()):
                    where.setdefault(name[0], []).append(page)
        for name, (_, sources) in tables(args.root).items():
            print(f"{name:28s} {', '.join(sources):50s} {', '.join(where.get(name, ['(no page)']))}")
        return 0
    problems = update(args.root, write=not args.check)
    for problem in problems:
        print(problem, file=sys.stderr)
    if args.check:
        if problems:
            print("regenerate: python benchmarks/tables.py", file=sys.stderr)
            return 1
        print("every table is up to date")
        return 0
    unfixable = [p for p in problems if "is stale" not in p]
    print(f"tables written ({len(problems) - len(unfixable)} updated)")
    return 1 if unfixable else 0


if __name__ == "__main__":
    sys.exit(main())

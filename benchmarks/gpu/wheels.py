"""The GPU check's wheel set, checked: against the wheels' metadata (here, after download) and against what
is installed (there, before any stage).

``benchmarks/gpu/wheels.txt`` pins every wheel the GPU machine lacks, in groups (``# group NAME:``), and names
what the image has (``# IMAGE ...``) and what is deliberately left out (``# not needed: NAME (why), ...``).

- ``python3 benchmarks/gpu/wheels.py metadata DIR``: every ``.whl`` of DIR against the pins (one wheel per pin,
  at its version) and each wheel's ``Requires-Dist`` evaluated for CPython 3.12 on Linux (with the extras
  another wheel asks for): a requirement met by no pinned wheel, no image package and no "not needed" entry,
  or a pinned wheel whose version does not satisfy a requirement, is an error. ``prepare.sh`` runs it.
- ``python3 benchmarks/gpu/wheels.py installed [--groups core,peer]``: the installed version of every pin of
  those groups (``importlib.metadata``) equals its pin, and the groups' modules import (``keras`` reporting
  the pinned version). ``run.sh`` runs it before the stages.

Exit status 0 when all is well, 1 with one line per problem otherwise.
"""

import argparse
import email.parser
import glob
import importlib
import importlib.metadata
import os
import re
import sys
import zipfile

WHEELS_TXT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wheels.txt")

IMPORTS = {"core": ("keras", "optree", "namex", "pycocotools.coco", "jax"),
           "peer": ("keras_hub", "grain", "regex", "tokenizers")}
"""What each group must be able to import."""

TARGET = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
          "platform_system": "Linux", "os_name": "posix", "platform_machine": "x86_64",
          "implementation_name": "cpython", "platform_python_implementation": "CPython"}
"""The GPU machine's environment markers."""


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def read_wheels_txt(path=WHEELS_TXT):
    """``(pins {name: (version, group)}, image names, not-needed names)`` of ``wheels.txt``."""
    pins, image, not_needed, group = {}, set(), set(), None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if match := re.match(r"# group (\w+):", line):
                group = match.group(1)
            elif line.startswith("# IMAGE"):
                image.update(canonical(name) for name in line.split(":", 1)[1].split())
            elif line.startswith("# not needed:"):
                text = re.sub(r"\([^)]*\)", "", line.split(":", 1)[1])
                not_needed.update(canonical(name) for name in re.findall(r"[A-Za-z0-9_.-]+", text))
            elif line and not line.startswith("#"):
                name, _, version = line.partition("==")
                if not version:
                    raise SystemExit(f"{path}: {line!r} is not pinned (NAME==VERSION)")
                pins[canonical(name)] = (version.strip(), group)
    return pins, image, not_needed


def wheel_metadata(path):
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
        return email.parser.Parser().parsestr(archive.read(name).decode())


def check_metadata(folder, path=WHEELS_TXT):
    from packaging.requirements import Requirement
    from packaging.version import Version

    pins, image, not_needed = read_wheels_txt(path)
    problems, wheels = [], {}
    for wheel in sorted(glob.glob(os.path.join(folder, "*.whl"))):
        metadata = wheel_metadata(wheel)
        wheels[canonical(metadata["Name"])] = (metadata["Version"], metadata)
    for name, (version, _) in pins.items():
        if name not in wheels:
            problems.append(f"pinned {name}=={version} has no wheel in {folder}")
        elif wheels[name][0] != version:
            problems.append(f"pinned {name}=={version}, but the wheel in {folder} is {wheels[name][0]}")
    for name in wheels:
        if name not in pins:
            problems.append(f"{folder} holds a wheel of {name}, which wheels.txt does not pin")
    extras = {name: {""} for name in wheels}
    changed = True
    while changed:  # extras asked for by other wheels (etils[epath,epy]) bring their own requirements
        changed = False
        for name, (_, metadata) in wheels.items():
            for text in metadata.get_all("Requires-Dist") or []:
                requirement = Requirement(text)
                if any(requirement.marker is None or requirement.marker.evaluate({**TARGET, "extra": extra})
                       for extra in extras[name]):
                    wanted = canonical(requirement.name)
                    if wanted in extras and not set(requirement.extras) <= extras[wanted]:
                        extras[wanted] |= set(requirement.extras)
                        changed = True
    for name, (_, metadata) in wheels.items():
        for text in metadata.get_all("Requires-Dist") or []:
            requirement = Requirement(text)
            if requirement.marker is not None and not any(
                    requirement.marker.evaluate({**TARGET, "extra": extra}) for extra in extras[name]):
                continue
            wanted = canonical(requirement.name)
            if wanted in wheels:
                if not requirement.specifier.contains(Version(wheels[wanted][0]), prereleases=True):
                    problems.append(f"{name} requires {text}, the pinned wheel is {wanted} {wheels[wanted][0]}")
            elif wanted not in image and wanted not in not_needed:
                problems.append(f"{name} requires {text}: no pinned wheel, not in the image, not listed as not "
                                "needed in wheels.txt")
    return problems


def check_installed(groups, path=WHEELS_TXT):
    pins, _, _ = read_wheels_txt(path)
    problems = []
    for name, (version, group) in pins.items():
        if group not in groups:
            continue
        try:
            found = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{name}=={version} (group {group}) is not installed")
            continue
        if found != version:
            problems.append(f"{name} {found} is installed, wheels.txt pins {version} (group {group})")
    for group in groups:
        for module in IMPORTS.get(group, ()):
            try:
                importlib.import_module(module)
            except Exception as error:  # noqa: BLE001 — any failure to import is the environment's
                problems.append(f"import {module} (group {group}) failed: {type(error).__name__}: {error}")
    if "core" in groups and "keras" in sys.modules:
        import keras

        if keras.__version__ != pins["keras"][0]:
            problems.append(f"import keras gives Keras {keras.__version__} ({keras.__file__}), wheels.txt pins "
                            f"{pins['keras'][0]}")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("metadata", "installed"))
    parser.add_argument("folder", nargs="?", help="the wheels' folder (metadata)")
    parser.add_argument("--groups", default="core,peer", help="groups to check (installed; default core,peer)")
    parser.add_argument("--wheels-txt", default=WHEELS_TXT)
    args = parser.parse_args()
    if args.what == "metadata":
        if not args.folder:
            parser.error("metadata needs the wheels' folder")
        problems = check_metadata(args.folder, args.wheels_txt)
    else:
        problems = check_installed(set(args.groups.split(",")), args.wheels_txt)
    for problem in problems:
        print(f"wheels: {problem}", file=sys.stderr)
    if problems:
        print(f"wheels: {len(problems)} problem(s) with the {args.what} wheel set ({args.wheels_txt})",
              file=sys.stderr)
        return 1
    print(f"wheels: the {args.what} wheel set is complete and as pinned")
    return 0


if __name__ == "__main__":
    sys.exit(main())

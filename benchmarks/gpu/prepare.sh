#!/usr/bin/env bash
# Prepare what the GPU check carries to the device machine (run here, from the repository root).
#
# The GPU machine has Python 3.12, JAX with CUDA and the packages wheels.txt lists as IMAGE, but no Keras
# and no network. This downloads exactly the pinned wheels of benchmarks/gpu/wheels.txt (no resolver: the
# file is the resolution) into .gpu/wheels, then checks them against their own metadata
# (benchmarks/gpu/wheels.py metadata): a requirement that nothing meets fails here, not on the device.
# .gpu/ is git-ignored; name it in the device call's `carry`.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python3}"
rm -rf .gpu/wheels
mkdir -p .gpu/wheels
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
    -d .gpu/wheels -r benchmarks/gpu/wheels.txt
"$PYTHON" benchmarks/gpu/wheels.py metadata .gpu/wheels
du -sh .gpu

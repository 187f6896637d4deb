#!/usr/bin/env bash
# Prepare what the GPU check carries to the device machine (run here, from the repository root).
#
# The GPU machine has Python 3.12, JAX with CUDA, numpy, pillow, matplotlib, tqdm, h5py, rich, absl-py,
# ml-dtypes and pytest, but no TensorFlow, no Keras and no network. This downloads the missing wheels
# (benchmarks/gpu/wheels.txt: Keras 3 and its small dependencies, pycocotools, and KerasHub with grain
# for the peer) into .gpu/wheels, and copies the peer benchmark scripts into .gpu/peers. .gpu/ is
# git-ignored; name it in the device call's `carry`.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .gpu/wheels .gpu/peers
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
    -d .gpu/wheels -r benchmarks/gpu/wheels.txt
peers=${PEERS_DIR:-../shared/peers}
cp "$peers/kerashub_retinanet.py" "$peers/torchvision_retinanet.py" .gpu/peers/
du -sh .gpu

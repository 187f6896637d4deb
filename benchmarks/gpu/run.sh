#!/usr/bin/env bash
# The GPU check, one part per `device` call (benchmarks/gpu/run.py says what each part runs):
#   here, once:          bash benchmarks/gpu/prepare.sh                  (wheels into .gpu/, checked)
#   on the GPU machine:  bash benchmarks/gpu/run.sh --part 1             (carry [".gpu"]; then --part 2, 3)
#   on a CPU with JAX:   bash benchmarks/gpu/run.sh --smoke --part all   (every stage at tiny sizes)
# It writes gpu-<device>-part<N>.json into $OUT (device machine) or benchmarks/.
#
# It cannot report success on failure: it exits non-zero when the carried wheels do not install, when an
# installed version differs from benchmarks/gpu/wheels.txt or a needed module does not import (exit 3,
# before any stage), and when any stage of the part fails, times out or is skipped (exit 1, run.py).
#
# Environment: PYTHON (default python3), GPU_WHEELS (default .gpu/wheels), GPU_SITE (where they install,
# default /tmp/site), GPU_WHEELS_TXT (default benchmarks/gpu/wheels.txt). JAX's persistent compilation
# cache is .jax-cache/ in the repository (git-ignored and never carried, so a warm machine keeps it between
# calls: a second call, or a rerun, skips the compilations the first one made).
set -uo pipefail
cd "$(dirname "$0")/../.."
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1
export JAX_COMPILATION_CACHE_DIR="${JAX_COMPILATION_CACHE_DIR:-$PWD/.jax-cache}"
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="${JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS:-0.5}"
PYTHON="${PYTHON:-python3}"
wheels="${GPU_WHEELS:-.gpu/wheels}"
site="${GPU_SITE:-/tmp/site}"
wheels_txt="${GPU_WHEELS_TXT:-benchmarks/gpu/wheels.txt}"
groups=core,peer
for argument in "$@"; do
  [ "$argument" = "--no-peer" ] && groups=core
done
if [ -d "$wheels" ]; then
  shopt -s nullglob
  found=("$wheels"/*.whl)
  if [ ${#found[@]} -eq 0 ]; then
    echo "run.sh: $wheels holds no wheels: run benchmarks/gpu/prepare.sh here and carry .gpu" >&2
    exit 3
  fi
  if ! "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
      "${found[@]}"; then
    echo "run.sh: installing the carried wheels from $wheels into $site failed (above); no stage ran" >&2
    exit 3
  fi
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
if ! "$PYTHON" benchmarks/gpu/wheels.py installed --groups "$groups" --wheels-txt "$wheels_txt"; then
  echo "run.sh: the environment does not match $wheels_txt (above); no stage ran" >&2
  exit 3
fi
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
fi
"$PYTHON" benchmarks/gpu/run.py "$@"
status=$?
[ $status -ne 0 ] && echo "run.sh: the check failed (exit $status)" >&2
exit $status

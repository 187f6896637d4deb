#!/usr/bin/env bash
# The GPU check in one `device` call (see benchmarks/gpu/run.py for the stages and README "GPU"):
#   here, once:          bash benchmarks/gpu/prepare.sh            (wheels and peer scripts into .gpu/)
#   on the GPU machine:  bash benchmarks/gpu/run.sh                 (device run, carry [".gpu"])
#   on a CPU with JAX:   bash benchmarks/gpu/run.sh --smoke        (tries every stage at tiny sizes)
# It writes gpu-<device>.json into $OUT (device machine) or benchmarks/.
set -euo pipefail
cd "$(dirname "$0")/../.."
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1
if [ -d .gpu/wheels ] && ! python3 -c "import keras" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/wheels/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
exec python3 benchmarks/gpu/run.py "$@"

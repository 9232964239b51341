#!/usr/bin/env bash
# The GPU check of the training input pipeline: one prepared script, under 8 minutes.
#
#   benchmarks/gpu_check.sh prepare      # here (training environment): .gpucheck/ = snapshot files + job.json
#   benchmarks/gpu_check.sh              # on the GPU machine: NCCL on one GPU, nvidia-smi sampled every 200 ms
#   benchmarks/gpu_check.sh --cpu        # anywhere: the same run on the CPU with gloo
#
# Extra arguments go to `benchmarks/gpu_check.py run` (--epochs, --batch-size, --workers,
# --repeat-files, --bound-steps).  With the device tool: carry `.gpucheck` (prepared here,
# about 15 MB) and run `bash benchmarks/gpu_check.sh`.  The loader needs only numpy,
# pandas, pyarrow, pyyaml and torch, which the GPU machine has; wheels put in
# .gpucheck/wheels/ (e.g. `pip download --no-deps -d .gpucheck/wheels NAME==VERSION`
# from this machine's registry at prepare time) are installed from there, offline.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "prepare" ]; then
    shift
    exec .venv-train/bin/python benchmarks/gpu_check.py prepare --out .gpucheck "$@"
fi

if [ ! -f .gpucheck/job.json ]; then
    echo "gpu_check: .gpucheck/job.json is missing: run 'benchmarks/gpu_check.sh prepare' first" \
         "(where .venv-train exists) and carry .gpucheck with the code" >&2
    exit 2
fi

PY=${PYTHON:-}
if [ -z "$PY" ]; then
    if [ -x .venv-train/bin/python ]; then PY=.venv-train/bin/python; else PY=python3; fi
fi
if compgen -G ".gpucheck/wheels/*.whl" > /dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/moulin-gpucheck-site .gpucheck/wheels/*.whl
    export PYTHONPATH=/tmp/moulin-gpucheck-site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1 NCCL_SOCKET_IFNAME=lo
"$PY" -c "import numpy, pandas, pyarrow, yaml, torch; print('python', '.'.join(map(str, __import__('sys').version_info[:3])), 'torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'pyarrow', pyarrow.__version__, 'numpy', numpy.__version__)"
if [ "${1:-}" != "--cpu" ] && command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi
exec timeout 450 "$PY" benchmarks/gpu_check.py run --data .gpucheck "$@"

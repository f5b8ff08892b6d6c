#!/usr/bin/env bash
# Makes .venv-bench for bench/compare_pytorch.py: the latest PyTorch 2.x from PyPI, with numpy,
# matplotlib (the sweep plot) and pytest (tests/interop/gs_interop.py imports it). On demand only:
# neither scripts/setup.sh nor CI runs this. The project's .venv keeps Debian's torch 1.13.
#
# Why a plain `pip install torch`: PyPI's Linux torch wheel is the CUDA build. Installed with
# --no-deps (plus its pure-Python deps) `import torch` fails on a CPU-only machine with
# "libcufile.so.0: cannot open shared object file", since libtorch links the CUDA libraries that
# the nvidia-* wheels provide. So the dependencies come along (several GB; CPU runs never load
# them) and the CPU-only wheel index is not used (this workplace reaches PyPI only).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${GS_BENCH_VENV:-.venv-bench}
if [ ! -x "$VENV/bin/python" ]; then
  /usr/bin/python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip
"$VENV/bin/pip" install -q --disable-pip-version-check --upgrade "torch>=2" numpy matplotlib pytest
"$VENV/bin/python" -c "import torch; print('torch', torch.__version__, 'in $VENV')"

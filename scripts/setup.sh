#!/usr/bin/env bash
# Installs everything gradscope needs on a fresh Debian 12 machine, idempotently:
# apt packages (compilers' libraries, data set) and a Python venv for the interop tests.
# Usage: bash scripts/setup.sh            (safe to run again; does nothing when all is there)
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libeigen3-dev zlib1g-dev libstb-dev libgtest-dev libgmock-dev libbenchmark-dev
  libprotobuf-dev protobuf-compiler libonnx-dev nlohmann-json3-dev libcli11-dev
  libomp-dev libdnnl-dev libopenmpi-dev openmpi-bin dataset-fashion-mnist chromium
  python3 python3-venv python3-torch python3-numpy
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing apt packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The venv uses Debian's python3 so that python3-torch (CPU, 1.13) is visible via
# --system-site-packages; the pinned PyPI packages below sit on top of Debian's numpy.
VENV=.venv
if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
if ! "$VENV/bin/python" -c "import onnxruntime, onnx, safetensors, tensorboard, torch, numpy, pytest" 2>/dev/null; then
  echo "setup: installing Python packages into $VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r scripts/requirements-test.txt
fi
echo "setup: ok"

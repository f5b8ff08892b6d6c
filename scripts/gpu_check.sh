#!/usr/bin/env bash
# The GPU check of issue 7, for a GPU machine (it is copied into .gpu/ by scripts/gpu_bundle.sh,
# which builds what it runs): the cuda-labelled tests (every CUDA variant against the CPU,
# fashionnet trained on both devices, the trainer's features), every CUDA kernel variant timed,
# and fashionnet trained for 2 epochs on the GPU against the same run on the CPU, and once more
# on the GPU with cuDNN's convolutions.
# Usage, from the repository root: bash .gpu/gpu_check.sh [OUT_DIR]   (default .gpu/out)
set -uo pipefail
cd "$(dirname "$0")"
OUT=${1:-out}
mkdir -p "$OUT"
# CUDA libraries: the toolkit's or the ones PyTorch's wheels install (site-packages/nvidia/...).
find_lib_dir() {
  find /usr/local/cuda*/ /opt /usr/lib /usr/local/lib /root /home -name "$1" -printf '%h\n' 2>/dev/null | head -1
}
dirs=""
for lib in libcublas.so.13 libcublasLt.so.13 libcudnn.so.9 libcudart.so.13 libnvrtc.so.13; do
  d=$(find_lib_dir "$lib")
  if [[ -z "$d" ]]; then echo "note: $lib not found on this machine"; else dirs="$dirs:$d"; fi
done
export LD_LIBRARY_PATH="$PWD/lib$dirs:${LD_LIBRARY_PATH:-}"
mkdir -p /usr/share/datasets && cp -rn fashion-mnist /usr/share/datasets/ 2>/dev/null || true
nvidia-smi | tee "$OUT/gpu.txt"  # its header has the driver version: CUDA 13 needs R580 or newer
if ! ./gradscope cuda 2>&1 | tee -a "$OUT/gpu.txt" | grep -Eq 'devices: [1-9]'; then
  echo "gpu_check: gradscope sees no CUDA device (driver too old for CUDA 13, or a library missing:" \
    "ldd ./gradscope below); nothing else is run" | tee -a "$OUT/gpu.txt"
  ldd ./gradscope | tee -a "$OUT/gpu.txt"
  exit 1
fi
status=0
./test_cuda --gtest_output=xml:"$OUT/test_cuda.xml" 2>&1 | tee "$OUT/test_cuda.log" || status=1
if grep -q '^\[  SKIPPED \]' "$OUT/test_cuda.log"; then  # on a GPU, a skipped test is a failed check
  echo "gpu_check: tests were skipped on a GPU machine" | tee -a "$OUT/test_cuda.log"
  status=1
fi
# Google Benchmark 1.7 (Debian's) takes a plain number of seconds ("0.05s" is refused).
./bench_cuda_kernels --benchmark_min_time=0.05 --benchmark_out="$OUT/bench_cuda.json" \
  --benchmark_out_format=json 2>&1 | tee "$OUT/bench_cuda.log" || status=1
for device in cuda cpu; do
  ./gradscope train --device "$device" --epochs 2 --seed 1 --no-tensorboard --out "/tmp/gs_fn_$device" 2>&1 |
    grep -v '^epoch .*\[' | tee "$OUT/train_$device.log" || status=1
done
# The same GPU run with cuDNN's convolutions (the default is im2col), to decide the default.
GS_KERNELS=cuda.conv2d=cudnn,cuda.conv2d_backward_data=cudnn,cuda.conv2d_backward_weight=cudnn \
  ./gradscope train --device cuda --epochs 2 --seed 1 --no-tensorboard --out /tmp/gs_fn_cudnn 2>&1 |
  grep -v '^epoch .*\[' | tee "$OUT/train_cuda_cudnn.log" || status=1
exit $status

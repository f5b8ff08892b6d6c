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
# CUDA libraries: the toolkit's or the ones PyTorch's wheels install.
libs=$(find /usr/local/cuda*/lib* /opt /usr/lib -name 'libcublas.so.13' -printf '%h\n' 2>/dev/null | head -1)
cudnn=$(find /usr/local/cuda*/lib* /opt /usr/lib -name 'libcudnn.so.9' -printf '%h\n' 2>/dev/null | head -1)
rt=$(find /usr/local/cuda*/lib* /opt /usr/lib -name 'libcudart.so.13' -printf '%h\n' 2>/dev/null | head -1)
export LD_LIBRARY_PATH="$PWD/lib:$libs:$cudnn:$rt:${LD_LIBRARY_PATH:-}"
mkdir -p /usr/share/datasets && cp -rn fashion-mnist /usr/share/datasets/ 2>/dev/null || true
nvidia-smi -L | tee "$OUT/gpu.txt"
./gradscope cuda | tee -a "$OUT/gpu.txt"
status=0
./test_cuda --gtest_output=xml:"$OUT/test_cuda.xml" 2>&1 | tee "$OUT/test_cuda.log" || status=1
./bench_cuda_kernels --benchmark_min_time=0.05s --benchmark_out="$OUT/bench_cuda.json" \
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

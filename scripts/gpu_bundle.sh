#!/usr/bin/env bash
# Prepares, on a machine without a GPU, everything the GPU check needs on a GPU machine that
# cannot build the project (no Eigen, GoogleTest, ... there): builds build-gpu (Release, CUDA for
# sm_80/sm_90, no oneDNN, no -march=native: the GPU machine's CPU may differ) and copies the
# cuda-labelled test binary, bench_cuda_kernels, gradscope, the libraries they need that a CUDA
# machine may lack, Fashion-MNIST and scripts/gpu_check.sh into .gpu/ (git-ignored; the device
# tool carries at most 64 MiB, so the binaries are stripped and the size is checked).
# Then, on the GPU machine, in the repository root: bash .gpu/gpu_check.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${GS_JOBS:-$(nproc)}
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DGS_CUDA=ON -DGS_DNNL=OFF -DGS_NATIVE=OFF >/dev/null
cmake --build build-gpu -j "$JOBS" --target test_cuda bench_cuda_kernels gradscope
rm -rf .gpu && mkdir -p .gpu/lib .gpu/fashion-mnist
cp build-gpu/tests/test_cuda build-gpu/bench/bench_cuda_kernels build-gpu/gradscope scripts/gpu_check.sh .gpu/
strip .gpu/test_cuda .gpu/bench_cuda_kernels .gpu/gradscope
cp /usr/share/datasets/fashion-mnist/*-ubyte.gz .gpu/fashion-mnist/
# Libraries outside glibc and the big CUDA ones (cuBLAS, cuDNN: the GPU machine's toolkit or torch
# wheels bring those; libcuda is the driver's). The CUDA runtime is small and comes along.
for bin in .gpu/test_cuda .gpu/bench_cuda_kernels .gpu/gradscope; do
  ldd "$bin" | awk '/=> \// {print $3}' | grep -Ev 'libcuda\.so|libcublas|libcudnn|libc\.so|libm\.so|libdl|libpthread|librt|libgcc_s|libstdc\+\+|ld-linux' || true
done | sort -u | xargs -r -I{} cp -L {} .gpu/lib/
cp -L "$(g++ -print-file-name=libstdc++.so.6)" .gpu/lib/  # the GPU machine's may be older
du -sh .gpu
ls .gpu .gpu/lib
size_mib=$(du -sm .gpu | cut -f1)
if ((size_mib >= 64)); then
  echo "gpu_bundle: .gpu is ${size_mib} MiB, above the device tool's 64 MiB carry limit" >&2
  exit 1
fi

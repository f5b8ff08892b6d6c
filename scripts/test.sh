#!/usr/bin/env bash
# Sets up a fresh machine (scripts/setup.sh), builds gradscope (Release, -O3 -march=native)
# and runs the whole test suite with ctest: C++ rooms, Python interop tests, GPU tests (which
# skip, loudly, without a GPU). Then, where there is no GPU, the GPU tests once more on the CUDA
# emulator (build-emu, GS_CUDA=EMULATE: the same .cu files compiled as C++, run on the CPU).
# Usage: bash scripts/test.sh [--sanitize]
#   --sanitize  also builds the ASan+UBSan configuration and runs the CPU core rooms under it,
#               and the CUDA op tests on an ASan+UBSan emulated build (build-asan-emu).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
JOBS=${GS_JOBS:-$(nproc)}
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$JOBS"
ctest --test-dir build --output-on-failure -j "$JOBS" --timeout 900
cuda_info=$(./build/gradscope cuda)
if ! [[ "$cuda_info" =~ devices:\ [1-9] ]]; then  # no GPU (or no CUDA build)
  echo "== no GPU here: the cuda-labelled tests again, on the CUDA emulator (build-emu)"
  cmake -S . -B build-emu -G Ninja -DCMAKE_BUILD_TYPE=Release -DGS_CUDA=EMULATE -DGS_BUILD_BENCH=OFF >/dev/null
  cmake --build build-emu -j "$JOBS" --target test_cuda bench_cuda_kernels
  ctest --test-dir build-emu -L cuda --output-on-failure -j "$JOBS" --timeout 900
fi
if [[ "${1:-}" == "--sanitize" ]]; then
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Sanitize -DGS_CUDA=OFF -DGS_BUILD_BENCH=OFF >/dev/null
  cmake --build build-asan -j "$JOBS" --target test_tensor test_kernels test_autograd
  for t in test_tensor test_kernels test_autograd; do ./build-asan/tests/$t --gtest_brief=1; done
  # The CUDA backend's host code, the emulated runtime/cuBLAS/cuDNN and the kernels under ASan too.
  cmake -S . -B build-asan-emu -G Ninja -DCMAKE_BUILD_TYPE=Sanitize -DGS_CUDA=EMULATE -DGS_BUILD_BENCH=OFF >/dev/null
  cmake --build build-asan-emu -j "$JOBS" --target test_cuda
  ./build-asan-emu/tests/test_cuda --gtest_filter='CudaOps.*:CudaCudnnEmulated.*' --gtest_brief=1
fi

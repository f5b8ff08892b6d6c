#!/usr/bin/env bash
# The main job: set up, build, and train the default model (fashionnet) on Fashion-MNIST with
# a progress bar, logs and checkpoints under runs/fashionnet (10% of the training set held out
# for validation, which picks best.safetensors). Extra arguments go to
# `gradscope train` (e.g. --epochs 2). Usage: bash scripts/run.sh [train flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target gradscope
# Defaults first; a flag given on the command line (e.g. --out) replaces the default. With
# --config or --resume the run's own config decides (a default given here would override it).
defaults=(--model fashionnet --data fashion-mnist --val-fraction 0.1 --out runs/fashionnet)
[[ " $* " == *" --config"* || " $* " == *" --resume"* ]] && defaults=()
args=()
for ((i = 0; i < ${#defaults[@]}; i += 2)); do
  [[ " $* " == *" ${defaults[i]} "* || " $* " == *" ${defaults[i]}="* ]] || args+=("${defaults[i]}" "${defaults[i + 1]}")
done
exec ./build/gradscope train "${args[@]}" "$@"

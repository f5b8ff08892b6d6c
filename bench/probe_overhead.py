"""Overhead of gradscope's probes and NaN/Inf detection, and of PyTorch's anomaly mode, on
fashionnet training (Fashion-MNIST, batch 64, same thread count, best of --repeats runs).

  GS_BUILD_DIR=build .venv/bin/python bench/probe_overhead.py --images 3200 --threads 2

Prints one line per configuration: images/s and the ratio of step time to the plain run.
gradscope figures come from the run directory's timing.jsonl (training loop only, no eval)."""
import argparse
import gzip
import json
import os
import subprocess
import tempfile
import time

import numpy as np
import torch

FASHION = "/usr/share/datasets/fashion-mnist"


def gradscope_rate(binary, images, threads, extra):
    with tempfile.TemporaryDirectory() as out:
        cmd = [binary, "train", "--model", "fashionnet", "--epochs", "1", "--batch", "64", "--limit-train",
               str(images), "--limit-test", "64", "--threads", str(threads), "--no-progress", "--out", out, *extra]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr}")
        with open(os.path.join(out, "timing.jsonl")) as f:
            return json.loads(f.readline())["images_per_s"]


def load_idx(name):
    with gzip.open(os.path.join(FASHION, name), "rb") as f:
        data = f.read()
    if "images" in name:
        n = int.from_bytes(data[4:8], "big")
        return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, 1, 28, 28)
    return np.frombuffer(data, dtype=np.uint8, offset=8).astype(np.int64)


def torch_rate(images, threads, anomaly):
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    n = torch.nn
    model = n.Sequential(n.Conv2d(1, 32, 3, padding=1), n.BatchNorm2d(32), n.ReLU(), n.MaxPool2d(2),
                         n.Conv2d(32, 64, 3, padding=1), n.BatchNorm2d(64), n.ReLU(), n.MaxPool2d(2), n.Flatten(),
                         n.Linear(3136, 128), n.ReLU(), n.Linear(128, 10))
    x = (torch.from_numpy(load_idx("train-images-idx3-ubyte.gz")[:images].astype(np.float32)) / 255 - 0.2860) / 0.3530
    y = torch.from_numpy(load_idx("train-labels-idx1-ubyte.gz")[:images])
    opt = torch.optim.AdamW(model.parameters(), 2e-3, weight_decay=5e-4)
    torch.autograd.set_detect_anomaly(anomaly)
    start = time.perf_counter()
    for i in range(0, images, 64):
        loss = torch.nn.functional.cross_entropy(model(x[i:i + 64]), y[i:i + 64])
        opt.zero_grad()
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - start
    torch.autograd.set_detect_anomaly(False)
    return images / seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=3200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-torch", action="store_true")
    args = ap.parse_args()
    binary = os.path.join(os.environ.get("GS_BUILD_DIR", "build"), "gradscope")
    configs = [("gradscope plain", []), ("gradscope --detect-anomaly", ["--detect-anomaly"]),
               ("gradscope --probe-every 50", ["--probe-every", "50"]),
               ("gradscope --probe-every 1", ["--probe-every", "1"])]
    results = {}
    for name, extra in configs:
        results[name] = max(gradscope_rate(binary, args.images, args.threads, extra) for _ in range(args.repeats))
    if not args.skip_torch:
        for name, anomaly in [("torch plain", False), ("torch detect_anomaly", True)]:
            results[name] = max(torch_rate(args.images, args.threads, anomaly) for _ in range(args.repeats))
    for name, rate in results.items():
        base = results["torch plain" if name.startswith("torch") else "gradscope plain"]
        print(f"{name:32s} {rate:9.1f} img/s   step time x{base / rate:.3f}")


if __name__ == "__main__":
    main()

"""The PyTorch yardstick for `gradscope train --model fashionnet`: the same model, data,
normalisation, optimizer (AdamW lr 2e-3, weight decay 5e-4), one-cycle schedule stepped per
batch (cycling beta1 0.95 -> 0.85 and back, torch's default and gradscope's), batch 64, no augmentation. Prints one JSON line per
epoch with test accuracy and train images/s, so the two can be compared run for run.
Usage: .venv/bin/python bench/pytorch_fashionnet.py [--epochs 10] [--threads 2]"""
import argparse
import gzip
import json
import time

import numpy as np
import torch
import torch.nn as nn

DIR = "/usr/share/datasets/fashion-mnist"


def load(prefix):
    with gzip.open(f"{DIR}/{prefix}-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(f"{DIR}/{prefix}-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    return (torch.from_numpy(x.astype(np.float32)) / 255 - 0.2860) / 0.3530, torch.from_numpy(y)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_x, train_y = load("train")
    test_x, test_y = load("t10k")
    model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=5e-4)
    steps = (len(train_x) + args.batch - 1) // args.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps * args.epochs)
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.randperm(len(train_x))
        t0 = time.time()
        loss_sum = 0.0
        for i in range(0, len(train_x), args.batch):
            idx = order[i:i + args.batch]
            loss = nn.functional.cross_entropy(model(train_x[idx]), train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
        seconds = time.time() - t0
        model.eval()
        with torch.no_grad():
            logits = torch.cat([model(test_x[i:i + 256]) for i in range(0, len(test_x), 256)])
        acc = (logits.argmax(1) == test_y).float().mean().item()
        print(json.dumps({"epoch": epoch, "train_loss": loss_sum / len(train_x), "test_acc": acc,
                          "images_per_s": len(train_x) / seconds}), flush=True)


if __name__ == "__main__":
    main()

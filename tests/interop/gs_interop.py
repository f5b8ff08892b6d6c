"""Shared pieces of the interop tests: where the build is, how to run `gradscope` and the
test tools, Fashion-MNIST as numpy, and the torch equivalents of layers/zoo.h."""
import gzip
import os
import shutil
import subprocess

import numpy as np
import pytest
from torch import nn

FASHION = "/usr/share/datasets/fashion-mnist"


def build_dir():
    build = os.environ.get("GS_BUILD_DIR")
    if not build:
        pytest.skip("GS_BUILD_DIR is not set (ctest sets it; for a manual run point it at your build dir)")
    return build


def built(relpath):
    """Path of a binary under the build dir; fails clearly when it was not built."""
    path = os.path.join(build_dir(), relpath)
    assert os.path.exists(path), f"{path} is missing: build its target"
    return path


def gradscope(*args, timeout=600):
    return subprocess.run([built("gradscope"), *map(str, args)], capture_output=True, text=True, timeout=timeout)


def mpirun(n, *args, timeout=600):
    """`mpirun -np n gradscope ARGS` (Open MPI from scripts/setup.sh; allowed to run as root)."""
    launcher = shutil.which("mpirun")
    assert launcher, "mpirun is missing: bash scripts/setup.sh installs openmpi-bin"
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    return subprocess.run([launcher, "-np", str(n), "--oversubscribe", built("gradscope"), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)


def load_idx(name):
    """A Fashion-MNIST IDX file: images (N,1,28,28) uint8 or labels (N,) int64."""
    with gzip.open(os.path.join(FASHION, name), "rb") as f:
        data = f.read()
    if "images" in name:
        n = int.from_bytes(data[4:8], "big")
        return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, 1, 28, 28)
    return np.frombuffer(data, dtype=np.uint8, offset=8).astype(np.int64)


# ---- torch equivalents of layers/zoo.h (same parameter names and layouts) ----

class BasicBlock(nn.Module):
    """torchvision.models.resnet.BasicBlock (same names and layout), with a non-inplace ReLU."""

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


def mlp(c, k, s):
    return nn.Sequential(nn.Flatten(), nn.Linear(c * s * s, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                         nn.Linear(128, k))


def lenet5(c, k, s):
    m = (s // 2 - 4) // 2
    return nn.Sequential(nn.Conv2d(c, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * m * m, 120), nn.ReLU(), nn.Linear(120, 84),
                         nn.ReLU(), nn.Linear(84, k))


def fashionnet(c=1, k=10, s=28):
    m = s // 4
    return nn.Sequential(nn.Conv2d(c, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * m * m, 128), nn.ReLU(), nn.Linear(128, k))


def resnet8(c, k, s):
    return nn.Sequential(nn.Conv2d(c, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                         BasicBlock(16, 16), BasicBlock(16, 32, 2), BasicBlock(32, 64, 2),
                         nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(64, k))

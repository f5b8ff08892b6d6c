"""gradscope's zoo models and model specs against their torch.nn equivalents (torch 1.13).

For each model, torch builds the same architecture (a torch.nn.Sequential, with a BasicBlock as
torchvision's for resnet8), saves its state_dict with safetensors, and
tests/interop/tools_layers/gs_layers_tool (in GS_BUILD_DIR) loads it strictly, runs a fixed input
and writes what it computed: outputs in eval and train mode, parameter gradients, and the
running statistics after a training step. State_dict keys, shapes, parameter counts and print(model)
text are compared too.
"""
import json
import os
import subprocess

import numpy as np
import pytest
import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from gs_interop import BasicBlock, fashionnet, lenet5, mlp, resnet8

ATOL = 1e-4


def tool_path():
    build = os.environ.get("GS_BUILD_DIR")
    if not build:
        pytest.skip("GS_BUILD_DIR is not set (ctest sets it; for a manual run point it at your build dir)")
    path = os.path.join(build, "tests", "interop", "tools_layers", "gs_layers_tool")
    assert os.path.exists(path), f"{path} is missing: build the gs_layers_tool target"
    return path


def run_tool(*args):
    proc = subprocess.run([tool_path(), *map(str, args)], capture_output=True, text=True, timeout=120)
    return proc


# (name, builder, in_channels, num_classes, image_size, expected parameter count from layers/zoo.h)
MODELS = [
    ("mlp", mlp, 1, 10, 28, 235146),
    ("lenet5", lenet5, 1, 10, 28, 61706),
    ("fashionnet", fashionnet, 1, 10, 28, 421834),
    ("resnet8", resnet8, 3, 10, 32, 78042),
    ("fashionnet", fashionnet, 3, 7, 32, None),
    ("lenet5", lenet5, 3, 5, 32, None),
]
IDS = [f"{m[0]}-{m[2]}x{m[4]}-{m[3]}" for m in MODELS]


def randomise(model, seed):
    """Non-trivial BN affine parameters and running statistics, so eval mode tests them."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm2d):
                n = mod.num_features
                mod.weight.copy_(0.5 + torch.rand(n, generator=g))
                mod.bias.copy_(0.1 * torch.randn(n, generator=g))
                mod.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                mod.running_var.copy_(0.5 + torch.rand(n, generator=g))
                mod.num_batches_tracked.fill_(5)
    return model


def prepare(tmp_path, builder, c, k, s, seed=0):
    torch.manual_seed(seed)
    model = randomise(builder(c, k, s), seed)
    weights = tmp_path / "weights.safetensors"
    save_file({key: t.contiguous() for key, t in model.state_dict().items()}, str(weights))
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(4, c, s, s, generator=g)
    w = torch.randn(4, k, generator=g)
    inputs = tmp_path / "input.safetensors"
    save_file({"input": x, "out_weight": w}, str(inputs))
    return model, weights, inputs, x, w


def close(name, actual, expected, atol=ATOL, rtol=1e-4):
    a, e = actual.detach().double().numpy(), expected.detach().double().numpy()
    assert a.shape == e.shape, f"{name}: shape {a.shape} vs torch {e.shape}"
    err = np.abs(a - e).max() if a.size else 0.0
    assert np.allclose(a, e, atol=atol, rtol=rtol), f"{name}: max |diff| {err:.3g}"


@pytest.mark.parametrize("name,builder,c,k,s,count", MODELS, ids=IDS)
def test_describe_matches_torch(name, builder, c, k, s, count):
    proc = run_tool("describe", name, c, k, s)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    model = builder(c, k, s)
    sd = model.state_dict()
    assert info["keys"] == list(sd.keys())
    assert info["shapes"] == [list(t.shape) for t in sd.values()]
    assert info["dtypes"] == ["i64" if t.dtype == torch.int64 else "f32" for t in sd.values()]
    assert info["parameters"] == [n for n, _ in model.named_parameters()]
    torch_count = sum(p.numel() for p in model.parameters())
    assert info["num_parameters"] == torch_count
    if count is not None:
        assert torch_count == count  # the hand count in layers/zoo.h and tests/layers/test_zoo.cpp
    assert info["repr"] == repr(model)


def compare_run(tmp_path, model, name, c, k, s, weights, inputs, x, w, *mode):
    """Runs the tool on the same weights and input, then torch in the same mode; compares the
    output and every parameter gradient of sum(output * w). Returns the tool's tensors."""
    out_path = tmp_path / "out.safetensors"
    proc = run_tool("run", name, c, k, s, weights, inputs, out_path, *mode)
    assert proc.returncode == 0, proc.stderr
    got = load_file(str(out_path))
    model.train(bool(mode))
    y = model(x)
    close("output", got["output"], y)
    (y * w).sum().backward()
    for pname, p in model.named_parameters():
        close(f"grad.{pname}", got[f"grad.{pname}"], p.grad)
    return got


@pytest.mark.parametrize("name,builder,c,k,s,count", MODELS, ids=IDS)
def test_eval_output_and_gradients_match_torch(tmp_path, name, builder, c, k, s, count):
    model, weights, inputs, x, w = prepare(tmp_path, builder, c, k, s)
    compare_run(tmp_path, model, name, c, k, s, weights, inputs, x, w)


@pytest.mark.parametrize("name,builder,c,k,s,count", MODELS, ids=IDS)
def test_train_step_matches_torch(tmp_path, name, builder, c, k, s, count):
    model, weights, inputs, x, w = prepare(tmp_path, builder, c, k, s, seed=3)
    got = compare_run(tmp_path, model, name, c, k, s, weights, inputs, x, w, "train")
    # Running statistics (unbiased variance) and num_batches_tracked after one training forward.
    for key, t in model.state_dict().items():
        if t.dtype == torch.int64:
            assert got[f"state.{key}"].item() == t.item(), key
        else:
            close(f"state.{key}", got[f"state.{key}"], t)


SPEC = {"layers": [
    {"type": "conv2d", "in": 3, "out": 8, "kernel": 3, "padding": 1},
    {"type": "batchnorm2d", "features": 8},
    {"type": "leaky_relu", "slope": 0.1},
    {"type": "basic_block", "in": 8, "out": 16, "stride": 2},
    {"type": "avgpool2d", "kernel": 2},
    {"type": "conv2d", "in": 16, "out": 16, "kernel": [3, 1], "stride": [1, 2], "padding": [1, 0], "groups": 4,
     "bias": False},
    {"type": "gelu"},
    {"type": "adaptive_avgpool2d", "out": [2, 2]},
    {"type": "flatten"},
    {"type": "dropout", "p": 0.5},
    {"type": "linear", "in": 64, "out": 12},
    {"type": "tanh"},
    {"type": "linear", "in": 12, "out": 5},
    {"type": "sigmoid"},
]}


def spec_torch():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.LeakyReLU(0.1), BasicBlock(8, 16, 2),
                         nn.AvgPool2d(2), nn.Conv2d(16, 16, (3, 1), (1, 2), (1, 0), groups=4, bias=False), nn.GELU(),
                         nn.AdaptiveAvgPool2d((2, 2)), nn.Flatten(), nn.Dropout(0.5), nn.Linear(64, 12), nn.Tanh(),
                         nn.Linear(12, 5), nn.Sigmoid())


def test_spec_model_matches_torch(tmp_path):
    spec = tmp_path / "net.json"
    spec.write_text(json.dumps(SPEC))
    proc = run_tool("describe", spec, 0, 0, 0)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    model = spec_torch()
    assert info["keys"] == list(model.state_dict().keys())
    assert info["num_parameters"] == sum(p.numel() for p in model.parameters())
    assert info["repr"] == repr(model)
    model, weights, inputs, x, w = prepare(tmp_path, lambda c, k, s: spec_torch(), 3, 5, 16)
    out_path = tmp_path / "out.safetensors"
    proc = run_tool("run", spec, 0, 0, 0, weights, inputs, out_path)
    assert proc.returncode == 0, proc.stderr
    got = load_file(str(out_path))
    model.eval()
    y = model(x)
    close("output", got["output"], y)
    (y * w).sum().backward()
    for pname, p in model.named_parameters():
        close(f"grad.{pname}", got[f"grad.{pname}"], p.grad)


def test_torch_checkpoint_with_a_missing_key_is_refused(tmp_path):
    model = fashionnet(1, 10, 28)
    sd = {k: t.contiguous() for k, t in model.state_dict().items() if k != "5.running_var"}
    sd["9.weight"] = torch.zeros(128, 3000)
    weights = tmp_path / "weights.safetensors"
    save_file(sd, str(weights))
    inputs = tmp_path / "input.safetensors"
    save_file({"input": torch.zeros(1, 1, 28, 28)}, str(inputs))
    proc = run_tool("run", "fashionnet", 1, 10, 28, weights, inputs, tmp_path / "out.safetensors")
    assert proc.returncode == 1
    assert "missing key(s): '5.running_var'" in proc.stderr
    assert "size mismatch for '9.weight': checkpoint has [128,3000], the model has [128,3136]" in proc.stderr

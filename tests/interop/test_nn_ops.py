"""conv2d, pooling, batch norm and the losses against torch 1.13: forward and backward on the
same inputs.

Each case writes its inputs as raw f32 files, runs tests/interop/tools/gs_nn_ops_tool (built in
GS_BUILD_DIR) for gradscope's output and gradients, and compares with torch.nn.functional.
"""
import json
import os
import subprocess

import numpy as np
import pytest
import torch
import torch.nn.functional as F

TOL = 1e-4  # f32, as atol and rtol


def tool_path():
    build = os.environ.get("GS_BUILD_DIR")
    if not build:
        pytest.skip("GS_BUILD_DIR is not set (ctest sets it; for a manual run point it at your build dir)")
    path = os.path.join(build, "tests", "interop", "tools", "gs_nn_ops_tool")
    assert os.path.exists(path), f"{path} is missing: build the gs_nn_ops_tool target"
    return path


def run_gradscope(tmp_path, op, params, inputs, kernels=None):
    """inputs: name -> np.float32 array; kernels: a GS_KERNELS selection ("conv2d=ref,...") or None.
    Returns name -> array for every out_*.bin the tool wrote."""
    shapes = {}
    for name, value in inputs.items():
        np.ascontiguousarray(value, dtype=np.float32).tofile(tmp_path / f"{name}.bin")
        shapes[name] = list(value.shape)
    spec = {"op": op, "dir": str(tmp_path), "params": params, "inputs": shapes}
    spec_path = tmp_path / "case.json"
    spec_path.write_text(json.dumps(spec))
    env = dict(os.environ)
    env.pop("GS_KERNELS", None)
    if kernels:
        env["GS_KERNELS"] = kernels
    proc = subprocess.run([tool_path(), str(spec_path)], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, f"gs_nn_ops_tool failed: {proc.stderr}"
    return {p.name[4:-4]: np.fromfile(p, dtype=np.float32) for p in tmp_path.glob("out_*.bin")}


def leaf(array):
    return torch.tensor(array, requires_grad=True)


def check(ours, name, expected):
    assert name in ours, f"gradscope wrote no {name}"
    expected = expected.detach().numpy().astype(np.float32)
    np.testing.assert_allclose(ours[name].reshape(expected.shape), expected, rtol=TOL, atol=TOL, err_msg=name)


def rand(rng, *shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


CONV_CASES = [
    # (N, C, H, W), (K, C/g, R, S), stride, padding, dilation, groups, bias
    ((4, 1, 28, 28), (32, 1, 3, 3), (1, 1), (1, 1), (1, 1), 1, True),  # fashionnet conv1
    ((3, 32, 14, 14), (64, 32, 3, 3), (1, 1), (1, 1), (1, 1), 1, True),  # fashionnet conv2
    ((2, 6, 14, 14), (16, 6, 5, 5), (1, 1), (0, 0), (1, 1), 1, True),  # lenet5 conv2
    ((2, 4, 9, 8), (6, 4, 3, 2), (2, 2), (1, 0), (1, 1), 1, False),  # stride 2, non-square, no bias
    ((2, 3, 10, 9), (4, 3, 3, 3), (1, 2), (2, 1), (2, 1), 1, True),  # dilation
    ((2, 4, 7, 7), (6, 2, 3, 3), (2, 1), (1, 1), (1, 1), 2, True),  # groups 2
    ((2, 5, 6, 6), (7, 5, 1, 1), (1, 1), (0, 0), (1, 1), 1, True),  # pointwise
]


# "default": the build's own choice (onednn where oneDNN is linked, else direct/im2col)
@pytest.mark.parametrize("variant", ["im2col", "ref", "direct", "default"])
@pytest.mark.parametrize("case", CONV_CASES, ids=[f"conv{i}" for i in range(len(CONV_CASES))])
def test_conv2d(tmp_path, case, variant):
    x_shape, w_shape, stride, padding, dilation, groups, has_bias = case
    rng = np.random.default_rng(1)
    inputs = {"x": rand(rng, *x_shape), "weight": rand(rng, *w_shape) * 0.3}
    if has_bias:
        inputs["bias"] = rand(rng, w_shape[0])
    x, w = leaf(inputs["x"]), leaf(inputs["weight"])
    b = leaf(inputs["bias"]) if has_bias else None
    y = F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    inputs["gy"] = rand(rng, *y.shape)
    y.backward(torch.tensor(inputs["gy"]))
    params = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    selection = None if variant == "default" else ",".join(
        f"{op}={variant}" for op in ("conv2d", "conv2d_backward_data", "conv2d_backward_weight"))
    ours = run_gradscope(tmp_path, "conv2d", params, inputs, kernels=selection)
    check(ours, "y", y)
    check(ours, "grad_x", x.grad)
    check(ours, "grad_weight", w.grad)
    if has_bias:
        check(ours, "grad_bias", b.grad)


POOL_CASES = [((2, 3, 28, 28), (2, 2), (2, 2), (0, 0)), ((2, 2, 9, 7), (3, 3), (2, 2), (1, 1)),
              ((1, 3, 8, 9), (3, 2), (1, 2), (1, 0))]


@pytest.mark.parametrize("case", POOL_CASES, ids=[f"pool{i}" for i in range(len(POOL_CASES))])
def test_max_pool2d(tmp_path, case):
    x_shape, kernel, stride, padding = case
    rng = np.random.default_rng(2)
    inputs = {"x": rand(rng, *x_shape)}
    x = leaf(inputs["x"])
    y = F.max_pool2d(x, kernel, stride, padding)
    inputs["gy"] = rand(rng, *y.shape)
    y.backward(torch.tensor(inputs["gy"]))
    ours = run_gradscope(tmp_path, "max_pool2d", {"kernel": kernel, "stride": stride, "padding": padding}, inputs)
    check(ours, "y", y)
    check(ours, "grad_x", x.grad)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("case", POOL_CASES, ids=[f"pool{i}" for i in range(len(POOL_CASES))])
def test_avg_pool2d(tmp_path, case, count_include_pad):
    x_shape, kernel, stride, padding = case
    rng = np.random.default_rng(3)
    inputs = {"x": rand(rng, *x_shape)}
    x = leaf(inputs["x"])
    y = F.avg_pool2d(x, kernel, stride, padding, count_include_pad=count_include_pad)
    inputs["gy"] = rand(rng, *y.shape)
    y.backward(torch.tensor(inputs["gy"]))
    params = {"kernel": kernel, "stride": stride, "padding": padding, "count_include_pad": count_include_pad}
    ours = run_gradscope(tmp_path, "avg_pool2d", params, inputs)
    check(ours, "y", y)
    check(ours, "grad_x", x.grad)


@pytest.mark.parametrize("x_shape,out_size", [((2, 3, 7, 9), (3, 4)), ((2, 4, 5, 5), (1, 1)), ((1, 2, 6, 4), (6, 4))])
def test_adaptive_avg_pool2d(tmp_path, x_shape, out_size):
    rng = np.random.default_rng(4)
    inputs = {"x": rand(rng, *x_shape)}
    x = leaf(inputs["x"])
    y = F.adaptive_avg_pool2d(x, out_size)
    inputs["gy"] = rand(rng, *y.shape)
    y.backward(torch.tensor(inputs["gy"]))
    ours = run_gradscope(tmp_path, "adaptive_avg_pool2d", {"output_size": out_size}, inputs)
    check(ours, "y", y)
    check(ours, "grad_x", x.grad)


def batch_norm_inputs(rng, x_shape, affine):
    """x, running statistics and (affine) weight and bias for a batch-norm case."""
    channels = x_shape[1]
    inputs = {"x": rand(rng, *x_shape, lo=-2.0, hi=3.0), "running_mean": rand(rng, channels),
              "running_var": rand(rng, channels, lo=0.5, hi=2.0)}
    if affine:
        inputs["weight"] = rand(rng, channels, lo=0.5, hi=1.5)
        inputs["bias"] = rand(rng, channels)
    return inputs


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("x_shape", [(8, 4, 5, 5), (16, 6)], ids=["4d", "2d"])
def test_batch_norm(tmp_path, x_shape, affine, training):
    rng = np.random.default_rng(5)
    inputs = batch_norm_inputs(rng, x_shape, affine)
    x = leaf(inputs["x"])
    w = leaf(inputs["weight"]) if affine else None
    b = leaf(inputs["bias"]) if affine else None
    running_mean = torch.tensor(inputs["running_mean"])
    running_var = torch.tensor(inputs["running_var"])
    y = F.batch_norm(x, running_mean, running_var, w, b, training=training, momentum=0.1, eps=1e-5)
    inputs["gy"] = rand(rng, *y.shape)
    y.backward(torch.tensor(inputs["gy"]))
    ours = run_gradscope(tmp_path, "batch_norm", {"training": training, "momentum": 0.1, "eps": 1e-5}, inputs)
    check(ours, "y", y)
    check(ours, "grad_x", x.grad)
    if affine:
        check(ours, "grad_weight", w.grad)
        check(ours, "grad_bias", b.grad)
    check(ours, "running_mean", running_mean)
    check(ours, "running_var", running_var)


# ---- losses ----

def run_loss(tmp_path, op, params, inputs, y, grads):
    """Runs `op` in gradscope and compares y and each (name -> torch leaf) gradient. A scalar y
    is backpropagated as is; an unreduced one with the seed gy."""
    ours = run_gradscope(tmp_path, op, params, inputs)
    check(ours, "y", y)
    for name, leaf_tensor in grads.items():
        check(ours, name, leaf_tensor.grad)


CE_CASES = [
    # (logits shape, target kind, label_smoothing, weighted, ignore some)
    ((6, 5), "index", 0.0, False, False),
    ((6, 5), "index", 0.1, True, True),
    ((6, 5), "index", 0.0, True, False),
    ((5,), "index", 0.2, True, False),           # unbatched (C) with a 0-d target
    ((2, 4, 3, 5), "index", 0.1, True, True),    # (N, C, H, W) with (N, H, W): segmentation
    ((3, 4, 7), "index", 0.0, False, True),      # (N, C, L)
    ((6, 5), "prob", 0.0, False, False),         # soft labels
    ((6, 5), "prob", 0.15, True, False),
    ((2, 3, 2, 4), "prob", 0.1, True, False),
]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", CE_CASES, ids=[f"ce{i}" for i in range(len(CE_CASES))])
def test_cross_entropy(tmp_path, case, reduction):
    shape, kind, smoothing, weighted, ignore_some = case
    rng = np.random.default_rng(len(shape) * 10 + int(smoothing * 100) + weighted)
    C = shape[0] if len(shape) == 1 else shape[1]
    inputs = {"x": rand(rng, *shape, lo=-3.0, hi=3.0)}
    target_shape = shape[:1] + shape[2:] if len(shape) > 1 else ()
    if kind == "index":
        target = rng.integers(0, C, size=target_shape)
        if ignore_some:
            target.reshape(-1)[::4] = -100
        inputs["target"] = np.asarray(target, dtype=np.float32)
        torch_target = torch.tensor(target, dtype=torch.int64)
    else:
        logits_q = rng.normal(size=shape)
        q = np.exp(logits_q) / np.exp(logits_q).sum(axis=1 if len(shape) > 1 else 0, keepdims=True)
        inputs["target"] = q.astype(np.float32)
        torch_target = leaf(inputs["target"])
    weight = None
    if weighted:
        inputs["class_weight"] = rand(rng, C, lo=0.2, hi=3.0)
        weight = torch.tensor(inputs["class_weight"])
    x = leaf(inputs["x"])
    y = F.cross_entropy(x, torch_target, weight=weight, reduction=reduction, label_smoothing=smoothing)
    if reduction == "none":
        inputs["gy"] = rand(rng, *y.shape)
        y.backward(torch.tensor(inputs["gy"]))
    else:
        y.backward()
    grads = {"grad_x": x}
    if kind == "prob":
        grads["grad_target"] = torch_target
    params = {"label_smoothing": smoothing, "reduction": reduction, "target_index": kind == "index"}
    run_loss(tmp_path, "cross_entropy", params, inputs, y, grads)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_and_bce_with_logits(tmp_path, reduction):
    rng = np.random.default_rng(21)
    for op in ("mse_loss", "bce_with_logits"):
        case_dir = tmp_path / op
        case_dir.mkdir()
        inputs = {"x": rand(rng, 4, 3, 5, lo=-30.0, hi=30.0) if op == "bce_with_logits" else rand(rng, 4, 3, 5),
                  "target": rand(rng, 4, 3, 5, lo=0.0, hi=1.0)}
        x, t = leaf(inputs["x"]), leaf(inputs["target"])
        fn = F.mse_loss if op == "mse_loss" else F.binary_cross_entropy_with_logits
        y = fn(x, t, reduction=reduction)
        if reduction == "none":
            inputs["gy"] = rand(rng, *y.shape)
            y.backward(torch.tensor(inputs["gy"]))
        else:
            y.backward()
        run_loss(case_dir, op, {"reduction": reduction}, inputs, y, {"grad_x": x, "grad_target": t})


@pytest.mark.parametrize("channels,from_logits", [(3, True), (1, True), (3, False)])
def test_soft_dice_loss(tmp_path, channels, from_logits):
    """torch has no Dice loss: the formula of layers/losses.h written in torch."""
    rng = np.random.default_rng(22 + channels)
    shape = (2, channels, 4, 5)
    labels = rng.integers(0, max(channels, 2), size=(2, 4, 5))
    onehot = np.eye(max(channels, 2))[labels].transpose(0, 3, 1, 2)[:, :channels]
    inputs = {"x": rand(rng, *shape, lo=-2.0, hi=2.0) if from_logits else rand(rng, *shape, lo=0.0, hi=1.0),
              "target": onehot.astype(np.float32)}
    x, t = leaf(inputs["x"]), leaf(inputs["target"])
    if from_logits:
        p = torch.sigmoid(x) if channels == 1 else torch.softmax(x, dim=1)
    else:
        p = x
    eps = 1.0
    dice = (2 * (p * t).sum(dim=(2, 3)) + eps) / (p.sum(dim=(2, 3)) + t.sum(dim=(2, 3)) + eps)
    y = 1 - dice.mean()
    y.backward()
    run_loss(tmp_path, "soft_dice_loss", {"eps": eps, "from_logits": from_logits}, inputs, y,
             {"grad_x": x, "grad_target": t})

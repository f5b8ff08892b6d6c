"""Double backward (create_graph) of conv2d, pooling, batch norm and the losses against torch 1.13.

For each op: the first-order gradients are taken with create_graph, s = sum over x, weight, bias
of sum(grad * v) for fixed random v, and s is differentiated again, w.r.t. the inputs and the seed
gy. gs_nn_ops_tool does it with params.double; torch with torch.autograd.grad(create_graph=True),
in f64 on the same f32 values.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from test_nn_ops import batch_norm_inputs, rand, run_gradscope

TOL = 2e-4  # gradscope runs in f32; relative to each tensor's largest value


def double_case(tmp_path, op, params, inputs, forward, wrt, rng):
    """inputs: name -> f32 array (x, weight, bias and any others); forward(tensors) -> y in torch.
    Adds v_<name> (and gy for a non-scalar y), runs both engines, compares y, the first-order
    gradients and the second-order ones."""
    tensors = {k: torch.tensor(v, dtype=torch.float64, requires_grad=k in wrt) for k, v in inputs.items()}
    y = forward(tensors)
    seed = None
    if y.dim() > 0:
        inputs["gy"] = rand(rng, *y.shape)
        seed = torch.tensor(inputs["gy"], dtype=torch.float64, requires_grad=True)
    leaves = [tensors[k] for k in wrt]
    grads = torch.autograd.grad(y, leaves, seed, create_graph=True)
    s = 0
    for name, g in zip(wrt, grads):
        inputs["v_" + name] = rand(rng, *g.shape)
        s = s + (g * torch.tensor(inputs["v_" + name], dtype=torch.float64)).sum()
    s.backward()

    ours = run_gradscope(tmp_path, op, dict(params, double=True), inputs)
    compare(ours, "y", y)
    for name, g in zip(wrt, grads):
        compare(ours, "grad_" + name, g)
    expected = {name: tensors[name].grad for name in wrt}
    if seed is not None:
        expected["gy"] = seed.grad
    for name, grad in expected.items():
        if grad is None or not torch.any(grad):  # s does not depend on it: gradscope may leave it out
            assert "gg_" + name not in ours or not np.any(ours["gg_" + name]), name
        else:
            compare(ours, "gg_" + name, grad)


def compare(ours, name, expected):
    assert name in ours, f"gradscope wrote no {name}"
    expected = expected.detach().numpy()
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(ours[name].reshape(expected.shape), expected, rtol=TOL, atol=TOL * scale,
                               err_msg=name)


CONV_CASES = [
    # (N, C, H, W), (K, C/g, R, S), stride, padding, dilation, groups, bias
    ((2, 3, 6, 6), (4, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1, True),
    ((2, 4, 9, 8), (6, 4, 3, 2), (2, 2), (1, 0), (1, 1), 1, False),  # stride 2, non-square, no bias
    ((2, 3, 10, 9), (4, 3, 3, 3), (1, 2), (2, 1), (2, 1), 1, True),  # dilation
    ((2, 4, 7, 7), (6, 2, 3, 3), (2, 1), (1, 1), (1, 1), 2, True),  # groups 2
]


@pytest.mark.parametrize("case", CONV_CASES, ids=[f"conv{i}" for i in range(len(CONV_CASES))])
def test_conv2d_double_backward(tmp_path, case):
    x_shape, w_shape, stride, padding, dilation, groups, has_bias = case
    rng = np.random.default_rng(1)
    inputs = {"x": rand(rng, *x_shape), "weight": rand(rng, *w_shape) * 0.3}
    wrt = ["x", "weight"]
    if has_bias:
        inputs["bias"] = rand(rng, w_shape[0])
        wrt.append("bias")
    params = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    double_case(tmp_path, "conv2d", params, inputs,
                lambda t: F.conv2d(t["x"], t["weight"], t.get("bias"), stride=stride, padding=padding,
                                   dilation=dilation, groups=groups), wrt, rng)


@pytest.mark.parametrize("kind", ["max", "avg", "avg_exclude_pad", "adaptive"])
def test_pool_double_backward(tmp_path, kind):
    rng = np.random.default_rng(2)
    inputs = {"x": rand(rng, 2, 3, 9, 7)}
    if kind == "adaptive":
        double_case(tmp_path, "adaptive_avg_pool2d", {"output_size": [4, 3]}, inputs,
                    lambda t: F.adaptive_avg_pool2d(t["x"], (4, 3)), ["x"], rng)
        return
    params = {"kernel": [3, 3], "stride": [2, 2], "padding": [1, 1]}
    if kind == "max":
        forward = lambda t: F.max_pool2d(t["x"], 3, 2, 1)  # noqa: E731
        double_case(tmp_path, "max_pool2d", params, inputs, forward, ["x"], rng)
    else:
        include = kind == "avg"
        forward = lambda t: F.avg_pool2d(t["x"], 3, 2, 1, count_include_pad=include)  # noqa: E731
        double_case(tmp_path, "avg_pool2d", dict(params, count_include_pad=include), inputs, forward, ["x"], rng)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("x_shape", [(6, 3, 4, 4), (10, 4)], ids=["4d", "2d"])
def test_batch_norm_double_backward(tmp_path, x_shape, affine, training):
    rng = np.random.default_rng(5)
    inputs = batch_norm_inputs(rng, x_shape, affine)
    wrt = ["x", "weight", "bias"] if affine else ["x"]

    def forward(t):
        # torch updates the running statistics in place: on copies, as gradscope's are its own
        return F.batch_norm(t["x"], t["running_mean"].clone(), t["running_var"].clone(), t.get("weight"),
                            t.get("bias"), training=training, momentum=0.1, eps=1e-5)

    double_case(tmp_path, "batch_norm", {"training": training, "momentum": 0.1, "eps": 1e-5}, inputs, forward,
                wrt, rng)


CE_CASES = [
    # (logits shape, label_smoothing, weighted, ignore some)
    ((6, 5), 0.0, False, False),
    ((6, 5), 0.1, True, True),
    ((2, 4, 3, 3), 0.1, True, True),  # (N, C, H, W) with (N, H, W)
]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", CE_CASES, ids=[f"ce{i}" for i in range(len(CE_CASES))])
def test_cross_entropy_double_backward(tmp_path, case, reduction):
    shape, smoothing, weighted, ignore_some = case
    rng = np.random.default_rng(7 + len(shape))
    C = shape[1]
    target = rng.integers(0, C, size=shape[:1] + shape[2:])
    if ignore_some:
        target.reshape(-1)[::4] = -100
    inputs = {"x": rand(rng, *shape, lo=-3.0, hi=3.0), "target": np.asarray(target, dtype=np.float32)}
    if weighted:
        inputs["class_weight"] = rand(rng, C, lo=0.2, hi=3.0)
    torch_target = torch.tensor(target, dtype=torch.int64)

    def forward(t):
        return F.cross_entropy(t["x"], torch_target, weight=t.get("class_weight"), reduction=reduction,
                               label_smoothing=smoothing)

    params = {"label_smoothing": smoothing, "reduction": reduction, "target_index": True}
    double_case(tmp_path, "cross_entropy", params, inputs, forward, ["x"], rng)


def test_soft_label_cross_entropy_and_mse_double_backward(tmp_path):
    rng = np.random.default_rng(9)
    q = rng.dirichlet(np.ones(5), size=6).astype(np.float32)
    inputs = {"x": rand(rng, 6, 5, lo=-3.0, hi=3.0), "target": q}
    (tmp_path / "ce").mkdir()
    double_case(tmp_path / "ce", "cross_entropy", {"label_smoothing": 0.1, "reduction": "mean"}, inputs,
                lambda t: F.cross_entropy(t["x"], t["target"], label_smoothing=0.1), ["x"], rng)
    (tmp_path / "mse").mkdir()
    inputs = {"x": rand(rng, 4, 3), "target": rand(rng, 4, 3)}
    double_case(tmp_path / "mse", "mse_loss", {"reduction": "sum"}, inputs,
                lambda t: F.mse_loss(t["x"], t["target"], reduction="sum"), ["x"], rng)
